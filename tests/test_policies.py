"""Retry policies: validation, which failures are retried, and how long to wait before a retry."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait import (
    BindingError,
    ConfigError,
    OutputNotStorableError,
    RetryPolicy,
    ShellCommandError,
)


class TransientError(Exception):
    pass


class SubTransientError(TransientError):
    pass


# -- defaults and validation --------------------------------------------------------------------


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert policy.backoff == 0.1
    assert policy.max_backoff == 30.0
    assert policy.jitter == 0.5
    assert policy.retry_on == (Exception,)


def test_a_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, r"^max_retries must be an int >= 0, not -1$"),
        ({"max_retries": 1.5}, r"^max_retries must be an int >= 0, not 1\.5$"),
        ({"max_retries": "3"}, r"^max_retries must be an int >= 0, not '3'$"),
        ({"backoff": -0.1}, r"^backoff must be >= 0 seconds, not -0\.1$"),
        (
            {"backoff": 2.0, "max_backoff": 1.0},
            r"^max_backoff \(1\.0\) must be >= backoff \(2\.0\)$",
        ),
        ({"max_backoff": -1}, r"^max_backoff \(-1\) must be >= backoff \(0\.1\)$"),
        ({"jitter": 1.5}, r"^jitter must be between 0 and 1, not 1\.5$"),
        ({"jitter": -0.01}, r"^jitter must be between 0 and 1, not -0\.01$"),
        ({"jitter": math.nan}, r"^jitter must be between 0 and 1, not nan$"),
        ({"retry_on": int}, r"^retry_on must hold exception types, not <class 'int'>$"),
        (
            {"retry_on": (ValueError, "KeyError")},
            r"^retry_on must hold exception types, not 'KeyError'$",
        ),
        (
            {"retry_on": (ValueError, ValueError())},
            r"^retry_on must hold exception types, not ValueError\(\)$",
        ),
        pytest.param(
            {"backoff": math.nan},
            r"^backoff must be >= 0 seconds, not nan$",
        ),
        pytest.param(
            {"max_backoff": math.nan},
            r"^max_backoff \(nan\) must be >= backoff \(0\.1\)$",
        ),
        pytest.param(
            {"retry_on": 42},
            r"^retry_on must .*, not 42$",
        ),
        pytest.param(
            {"retry_on": "ValueError"},
            r"^retry_on must .*, not 'ValueError'$",
        ),
    ],
    ids=repr,
)
def test_invalid_settings_raise_config_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": 0},
        {"backoff": 0},
        {"backoff": 0, "max_backoff": 0},
        {"backoff": 1.0, "max_backoff": 1.0},
        {"jitter": 0},
        {"jitter": 1},
        {"retry_on": ()},
        {"retry_on": BaseException},
        {"retry_on": (KeyboardInterrupt, OSError)},
    ],
    ids=repr,
)
def test_boundary_settings_are_accepted(options: dict[str, Any]) -> None:
    RetryPolicy(**options)


# -- should_retry -------------------------------------------------------------------------------


def test_should_retry_allows_exactly_max_retries_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.should_retry(attempt, ValueError()) for attempt in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]


def test_max_retries_zero_never_retries() -> None:
    assert RetryPolicy(max_retries=0).should_retry(1, ValueError()) is False


def test_a_single_retry_on_type_is_stored_as_a_tuple() -> None:
    policy = RetryPolicy(retry_on=TransientError)
    assert policy.retry_on == (TransientError,)


def test_retry_on_a_single_type_retries_it_and_its_subclasses_only() -> None:
    policy = RetryPolicy(retry_on=TransientError)
    assert policy.should_retry(1, TransientError()) is True
    assert policy.should_retry(1, SubTransientError()) is True
    assert policy.should_retry(1, ValueError()) is False


def test_retry_on_a_tuple_retries_any_of_its_types() -> None:
    policy = RetryPolicy(retry_on=(TransientError, KeyError))
    assert policy.should_retry(1, KeyError("k")) is True
    assert policy.should_retry(1, SubTransientError()) is True
    assert policy.should_retry(1, LookupError()) is False


def test_retry_on_an_empty_tuple_never_retries() -> None:
    assert RetryPolicy(retry_on=()).should_retry(1, ValueError()) is False


def test_the_default_retries_exceptions_but_not_base_exceptions() -> None:
    policy = RetryPolicy()
    assert policy.should_retry(1, RuntimeError()) is True
    assert policy.should_retry(1, KeyboardInterrupt()) is False


def test_the_attempt_limit_applies_to_matching_errors_too() -> None:
    policy = RetryPolicy(max_retries=1, retry_on=TransientError)
    assert policy.should_retry(2, TransientError()) is False


def test_retry_on_a_list_works_like_a_tuple() -> None:
    policy = RetryPolicy(retry_on=[ValueError, KeyError])  # type: ignore[arg-type]
    assert policy.should_retry(1, KeyError()) is True
    assert policy.retry_on == (ValueError, KeyError)


# -- delay --------------------------------------------------------------------------------------


def test_delay_without_jitter_doubles_from_the_backoff() -> None:
    policy = RetryPolicy(backoff=0.1, max_backoff=100.0, jitter=0)
    delays = [policy.delay(attempt) for attempt in range(1, 7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2])


def test_delay_is_capped_at_max_backoff() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=5.0, jitter=0)
    assert [policy.delay(attempt) for attempt in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(60) == 5.0


def test_zero_backoff_retries_at_once() -> None:
    policy = RetryPolicy(backoff=0, max_backoff=0)
    assert [policy.delay(attempt) for attempt in range(1, 10)] == [0.0] * 9


def test_delay_stays_capped_for_very_late_attempts() -> None:
    policy = RetryPolicy(max_retries=10_000, backoff=0.1, max_backoff=30.0, jitter=0)
    assert policy.delay(2_000) == 30.0


def test_jitter_draws_between_the_full_delay_and_its_reduced_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=100.0, jitter=0.25)
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert policy.delay(3) == 4.0
    monkeypatch.setattr(random, "random", lambda: 0.5)
    assert policy.delay(3) == pytest.approx(4.0 * (1 - 0.25 * 0.5))
    monkeypatch.setattr(random, "random", lambda: math.nextafter(1.0, 0.0))
    assert policy.delay(3) == pytest.approx(3.0)


def test_jitter_varies_the_delay() -> None:
    policy = RetryPolicy(backoff=1.0, jitter=0.5)
    assert len({policy.delay(1) for _ in range(20)}) > 1


def test_full_jitter_can_wait_almost_nothing_but_never_less() -> None:
    policy = RetryPolicy(backoff=1.0, jitter=1.0)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(0.0 < d <= 1.0 for d in delays)
    assert min(delays) < 0.5


@given(
    backoff=st.floats(min_value=0, max_value=10, allow_nan=False),
    extra=st.floats(min_value=0, max_value=100, allow_nan=False),
    jitter=st.floats(min_value=0, max_value=1, allow_nan=False),
    attempt=st.integers(min_value=1, max_value=80),
)
@settings(max_examples=300, deadline=None)
def test_delay_stays_within_the_jitter_band_of_the_capped_exponential(
    backoff: float, extra: float, jitter: float, attempt: int
) -> None:
    max_backoff = backoff + extra
    policy = RetryPolicy(backoff=backoff, max_backoff=max_backoff, jitter=jitter)
    base = min(max_backoff, backoff * 2.0 ** (attempt - 1))
    delay = policy.delay(attempt)
    assert base * (1 - jitter) - 1e-12 <= delay <= base + 1e-12
    assert 0.0 <= delay <= max_backoff + 1e-12


@given(
    backoff=st.floats(min_value=0.001, max_value=10, allow_nan=False),
    attempt=st.integers(min_value=1, max_value=60),
)
@settings(max_examples=100, deadline=None)
def test_delays_without_jitter_never_shrink(backoff: float, attempt: int) -> None:
    policy = RetryPolicy(backoff=backoff, max_backoff=50.0 + backoff, jitter=0)
    assert policy.delay(attempt) <= policy.delay(attempt + 1)


# -- errors that no retry can change ------------------------------------------------------------


def _shell_error(returncode: int) -> ShellCommandError:
    return ShellCommandError("failed", command="x", returncode=returncode, stdout="", stderr="")


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_shell_error(127), False),  # command not found
        (_shell_error(126), False),  # not executable
        (_shell_error(1), True),
        (_shell_error(-9), True),  # killed: perhaps by the OOM killer, perhaps not again
        (OutputNotStorableError("no"), False),
        (BindingError("no"), False),
        (TypeError("inside the task"), True),
        (TransientError(), True),
    ],
)
def test_errors_that_cannot_succeed_on_retry_are_not_retried(
    error: BaseException, retried: bool
) -> None:
    assert RetryPolicy(max_retries=5).should_retry(1, error) is retried


def test_a_command_that_is_not_found_fails_at_once() -> None:
    wf = plait.Workflow("missing")
    wf.add_task("build", plait.ShellTask("plait-no-such-command-x --version"))
    result = plait.run(wf, max_retries=3, retry_backoff=0)
    task = result.tasks["build"]
    assert task.status is plait.TaskStatus.FAILED
    assert task.attempts == 1
    assert task.error is not None and "exited with status 127" in task.error.message


def _hides_its_signature(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # the signature plait reads is fn's...
    def wrapper() -> Any:  # ...but the function it calls takes nothing
        return fn()

    return wrapper


def test_parameters_that_do_not_fit_the_function_fail_at_once_as_a_binding_error() -> None:
    calls = []

    @_hides_its_signature
    def load(day: str) -> str:
        calls.append(day)
        return day

    wf = plait.Workflow("binding")
    wf.add_task("load", load, params={"day": "mon"})
    result = plait.run(wf, max_retries=3, retry_backoff=0)
    task = result.tasks["load"]
    assert (task.status, task.attempts, calls) == (plait.TaskStatus.FAILED, 1, [])
    assert task.error is not None and task.error.type.endswith("BindingError")
    assert re.fullmatch(
        r"task 'load': calling \S+\.load with parameters \['day'\] failed: \S+\(\) got an "
        r"unexpected keyword argument 'day'; make its signature name the parameters it takes\s*",
        task.error.message,
    )


def test_a_type_error_raised_inside_a_task_is_retried() -> None:
    calls = []

    def parse(text: str = "x") -> int:
        calls.append(text)
        return int(None)  # type: ignore[arg-type]

    wf = plait.Workflow("inside")
    wf.add_task("parse", parse)
    result = plait.run(wf, max_retries=2, retry_backoff=0)
    assert (result.tasks["parse"].attempts, len(calls)) == (3, 3)
