"""Engine settings: defaults, validation, and how ``plait.run`` takes them."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
from typing import Any

import pytest

import plait
from plait import ConfigError, EngineConfig, RetryPolicy, RunStatus, Workflow

SETTINGS = [
    "max_concurrency",
    "task_timeout",
    "retry_failed_tasks",
    "max_retries",
    "retry_backoff",
    "retry_max_backoff",
    "retry_jitter",
    "fail_fast",
    "pools",
    "cancel_grace",
    "max_log_bytes",
    "lease_seconds",
    "default_executor",
    "learn_estimates",
    "tracing",
    "max_map",
]


def recording_workflow(ran: list[str]) -> Workflow:
    wf = Workflow("w")

    @wf.task
    def a() -> None:
        ran.append("a")

    return wf


def always_failing_workflow(attempts: list[int]) -> Workflow:
    wf = Workflow("w")

    @wf.task
    def boom(ctx: plait.Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("boom")

    return wf


# -- defaults -----------------------------------------------------------------------------------


def test_the_settings_are_the_documented_fields() -> None:
    assert [f.name for f in dataclasses.fields(EngineConfig)] == SETTINGS


def test_defaults() -> None:
    config = EngineConfig()
    assert config.max_concurrency == os.cpu_count()
    assert config.task_timeout == 300
    assert config.retry_failed_tasks is True
    assert config.max_retries == 3
    assert config.retry_backoff == 0.1
    assert config.retry_max_backoff == 30.0
    assert config.retry_jitter == 0.5
    assert config.fail_fast is False
    assert dict(config.pools) == {}
    assert config.cancel_grace == 5.0
    assert config.lease_seconds == 30.0


def test_max_concurrency_defaults_to_one_when_the_cpu_count_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert EngineConfig().max_concurrency == 1


def test_max_concurrency_default_is_read_per_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert EngineConfig().max_concurrency == 3


def test_settings_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        EngineConfig(4)  # type: ignore[misc]


def test_a_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EngineConfig().max_concurrency = 2  # type: ignore[misc]


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_concurrency": 0}, r"^max_concurrency must be an int >= 1, not 0$"),
        ({"max_concurrency": -2}, r"^max_concurrency must be an int >= 1, not -2$"),
        ({"max_concurrency": 2.0}, r"^max_concurrency must be an int >= 1, not 2\.0$"),
        ({"max_concurrency": None}, r"^max_concurrency must be an int >= 1, not None$"),
        ({"task_timeout": 0}, r"^task_timeout must be > 0 seconds or None, not 0$"),
        ({"task_timeout": -1.0}, r"^task_timeout must be > 0 seconds or None, not -1\.0$"),
        ({"task_timeout": math.nan}, r"^task_timeout must be > 0 seconds or None, not nan$"),
        ({"cancel_grace": -1}, r"^cancel_grace must be >= 0 seconds, not -1$"),
        ({"lease_seconds": 0.1}, r"^lease_seconds must be a number of seconds >= 0.5, not 0.1$"),
        (
            {"lease_seconds": math.inf},
            r"^lease_seconds must be a number of seconds >= 0.5, not inf$",
        ),
        ({"lease_seconds": "30"}, r"^lease_seconds must be a number of seconds >= 0.5, not '30'$"),
        ({"pools": {"db": 0}}, r"^pool 'db' needs an int limit >= 1, not 0$"),
        ({"pools": {"db": 2, "cpu": 1.5}}, r"^pool 'cpu' needs an int limit >= 1, not 1\.5$"),
        ({"pools": {"db": None}}, r"^pool 'db' needs an int limit >= 1, not None$"),
        ({"max_retries": -1}, r"^max_retries must be an int >= 0, not -1$"),
        pytest.param(
            {"retry_backoff": -1},
            r"^retry_backoff must be >= 0 seconds, not -1$",
        ),
        pytest.param(
            {"retry_max_backoff": 0.01},
            r"^retry_max_backoff \(0\.01\) must be >= retry_backoff \(0\.1\)$",
        ),
        pytest.param(
            {"retry_jitter": 2},
            r"^retry_jitter must be between 0 and 1, not 2$",
        ),
        pytest.param(
            {"retry_failed_tasks": False, "max_retries": -1},
            r"^max_retries must be an int >= 0, not -1$",
        ),
        pytest.param(
            {"cancel_grace": math.nan},
            r"^cancel_grace must be >= 0 seconds, not nan$",
        ),
    ],
    ids=repr,
)
def test_invalid_settings_raise_config_error(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EngineConfig(**settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_concurrency": 1},
        {"task_timeout": None},
        {"task_timeout": 0.001},
        {"cancel_grace": 0},
        {"max_retries": 0},
        {"retry_jitter": 0},
        {"retry_backoff": 0, "retry_max_backoff": 0},
        {"pools": {"db": 1, "cpu": 64}},
    ],
    ids=repr,
)
def test_boundary_settings_are_accepted(settings: dict[str, Any]) -> None:
    config = EngineConfig(**settings)
    for name, value in settings.items():
        assert getattr(config, name) == value


# -- pools --------------------------------------------------------------------------------------


def test_pools_are_read_only() -> None:
    config = EngineConfig(pools={"db": 2})
    with pytest.raises(TypeError):
        config.pools["db"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        config.pools["new"] = 1  # type: ignore[index]
    assert dict(config.pools) == {"db": 2}


def test_pools_are_copied_from_the_given_mapping() -> None:
    pools = {"db": 2}
    config = EngineConfig(pools=pools)
    pools["db"] = 100
    pools["cpu"] = 1
    assert dict(config.pools) == {"db": 2}


# -- default_retry ------------------------------------------------------------------------------


def test_default_retry_mirrors_the_retry_settings() -> None:
    config = EngineConfig(max_retries=5, retry_backoff=0.2, retry_max_backoff=3.0, retry_jitter=0)
    assert config.default_retry == RetryPolicy(
        max_retries=5, backoff=0.2, max_backoff=3.0, jitter=0, retry_on=(Exception,)
    )


def test_default_retry_of_the_defaults() -> None:
    assert EngineConfig().default_retry == RetryPolicy()


def test_default_retry_does_not_retry_when_retrying_is_off() -> None:
    policy = EngineConfig(retry_failed_tasks=False, max_retries=5).default_retry
    assert policy.max_retries == 0
    assert policy.should_retry(1, RuntimeError()) is False


# -- plait.run and its settings -----------------------------------------------------------------


def test_run_rejects_an_unknown_setting_naming_it_and_the_valid_ones() -> None:
    ran: list[str] = []
    with pytest.raises(ConfigError) as info:
        plait.run(recording_workflow(ran), nonexistent_setting=1)
    assert str(info.value) == (
        "unknown engine setting(s) ['nonexistent_setting']; the settings are: "
        + ", ".join(SETTINGS)
    )
    assert ran == []


def test_run_names_every_unknown_setting_sorted() -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown engine setting\(s\) \['max_concurency', 'zeta'\]; "
    ):
        plait.run(recording_workflow([]), zeta=1, max_concurency=2, fail_fast=True)


def test_run_rejects_an_invalid_setting_before_running_anything() -> None:
    ran: list[str] = []
    with pytest.raises(ConfigError, match=r"^max_concurrency must be an int >= 1, not 0$"):
        plait.run(recording_workflow(ran), max_concurrency=0)
    assert ran == []


def test_run_settings_override_the_given_config() -> None:
    attempts: list[int] = []
    config = EngineConfig(max_retries=5, retry_backoff=0, retry_max_backoff=0)
    result = plait.run(always_failing_workflow(attempts), config=config, max_retries=1)
    assert result.status is RunStatus.FAILED
    assert attempts == [1, 2]


def test_run_uses_the_given_config() -> None:
    attempts: list[int] = []
    config = EngineConfig(retry_failed_tasks=False)
    plait.run(always_failing_workflow(attempts), config=config)
    assert attempts == [1]


def test_run_from_inside_a_running_loop_says_to_use_arun() -> None:
    ran: list[str] = []
    wf = recording_workflow(ran)

    async def main() -> None:
        plait.run(wf)

    with pytest.raises(
        RuntimeError,
        match=r"^plait\.run\(\) cannot be called from a running event loop; use "
        + re.escape("`await plait.arun(...)`")
        + r" instead$",
    ):
        asyncio.run(main())
    assert ran == []


def test_arun_from_inside_a_running_loop_works() -> None:
    ran: list[str] = []
    wf = recording_workflow(ran)

    async def main() -> plait.RunResult:
        return await plait.arun(wf, max_concurrency=1)

    assert asyncio.run(main()).status is RunStatus.SUCCEEDED
    assert ran == ["a"]


def test_max_map_is_an_int_of_zero_or_more() -> None:
    assert EngineConfig().max_map == 100_000
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ConfigError, match=rf"^max_map must be an int >= 0, not {bad!r}$"):
            EngineConfig(max_map=bad)  # type: ignore[arg-type]
