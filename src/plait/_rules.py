"""Trigger rules: when a task runs, given how its direct dependencies ended.

A rule looks only at a task's *direct* dependencies, through four counts kept by the scheduler
(each edge is counted once, when its dependency finishes) plus how many have not finished:

- ``succeeded``: dependencies that succeeded;
- ``failed``: dependencies that failed;
- ``upstream_failed``: dependencies skipped because something upstream failed (skip cause
  ``upstream_failed``), or cancelled -- "something went wrong above", as Airflow's state of that
  name;
- ``skipped``: dependencies skipped for any other reason (a rule that could not be met, an
  upstream skip, or ``raise plait.Skip``).

The names and meanings are Airflow's (``airflow.utils.trigger_rule.TriggerRule``). :func:`decide`
is the one evaluator for every rule, the default ``all_success`` included. It answers as early as
the answer is certain:

- **run** as soon as the rule is met by what has finished (``one_success`` at the first success,
  ``always`` at once; the ``all_*`` and ``none_*`` rules once every dependency finished);
- **skip**, with a :class:`~plait.SkipCause`, as soon as no way the unfinished dependencies could
  end would let the task run *or change the cause* (``one_failed`` is skipped once all its
  dependencies succeeded; ``all_success`` at the first failure). Waiting for the cause to be
  certain keeps the outcome a function of the dependencies' final states, not of the order they
  finished in (Airflow decides the cause by whichever state it sees first);
- **wait** (``None``) otherwise.

The skip causes follow Airflow's choice between its ``upstream_failed`` and ``skipped`` states:
``upstream_failed`` where Airflow sets ``upstream_failed``; ``upstream_skipped`` where Airflow
skips because dependencies were skipped; ``trigger_rule`` where the rule failed for another reason
(``one_failed`` with no failure, ``all_failed`` with a success...).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

from ._exceptions import InvalidOptionError
from ._public import publish_exports
from ._state import SkipCause

__all__ = ["RUN", "Skip", "TriggerRule", "coerce_rule", "decide", "skip_note"]


class Skip(Exception):  # a signal, not an error: named for what it asks
    """Raised by a task to end ``skipped`` on purpose: nothing is wrong, there is nothing to do
    (Airflow's ``AirflowSkipException``).

    The task's skip cause is ``"skipped_by_task"`` and its output ``None``; its dependents follow
    their trigger rules, counting it as skipped (not failed). It is never retried, and it does
    not fail the run. ``reason`` is kept for the report.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class TriggerRule(StrEnum):
    """When a task runs, judged on its direct dependencies (Airflow's trigger rules)."""

    ALL_SUCCESS = "all_success"
    """Every dependency succeeded (the default)."""
    ALL_FAILED = "all_failed"
    """Every dependency failed or was skipped because something upstream failed."""
    ALL_DONE = "all_done"
    """Every dependency finished, however it ended."""
    ALL_SKIPPED = "all_skipped"
    """Every dependency was skipped."""
    ONE_SUCCESS = "one_success"
    """At least one dependency succeeded; runs at the first success."""
    ONE_FAILED = "one_failed"
    """At least one dependency failed (or was skipped by a failure); runs at the first."""
    ONE_DONE = "one_done"
    """At least one dependency succeeded or failed; runs at the first."""
    NONE_FAILED = "none_failed"
    """Every dependency finished and none failed: each succeeded or was skipped."""
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    """Every dependency finished, none failed, and at least one succeeded."""
    NONE_SKIPPED = "none_skipped"
    """Every dependency finished and none was skipped."""
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    """Every dependency finished and at least one succeeded."""
    ALWAYS = "always"
    """Runs at once, whatever its dependencies do (their outputs only if they are ready)."""

    @property
    def decides_on_success(self) -> bool:
        """Whether a dependency's success can decide this rule while other dependencies still
        run (``one_success`` runs at once; ``all_failed`` is skipped at once). For the other rules
        a success matters only once every dependency finished: the scheduler asks them then."""
        return self in _DECIDE_ON_SUCCESS

    @property
    def needs_every_success(self) -> bool:
        """Whether the task runs only when every dependency succeeded: only then is each
        dependency's output sure to be there."""
        return self is _ALL_SUCCESS


_DECIDE_ON_SUCCESS = frozenset(
    {TriggerRule.ONE_SUCCESS, TriggerRule.ONE_DONE, TriggerRule.ALL_FAILED, TriggerRule.ALL_SKIPPED}
)

#: What :func:`decide` returns for a task that can run now.
RUN: Final = "run"
Decision = Literal["run"] | SkipCause | None

# Members as constants: reading one off its enum class costs about a thousand instructions
# (CPython 3.11), more than the rest of a decision.
_ALL_SUCCESS = TriggerRule.ALL_SUCCESS
_ALWAYS = TriggerRule.ALWAYS
_ALL_DONE = TriggerRule.ALL_DONE
_ONE_SUCCESS = TriggerRule.ONE_SUCCESS
_ALL_DONE_MIN_ONE_SUCCESS = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS
_ONE_FAILED = TriggerRule.ONE_FAILED
_ONE_DONE = TriggerRule.ONE_DONE
_ALL_FAILED = TriggerRule.ALL_FAILED
_ALL_SKIPPED = TriggerRule.ALL_SKIPPED
_NONE_FAILED = TriggerRule.NONE_FAILED
_NONE_FAILED_MIN_ONE_SUCCESS = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
_NONE_SKIPPED = TriggerRule.NONE_SKIPPED
_UPSTREAM_FAILED = SkipCause.UPSTREAM_FAILED
_UPSTREAM_SKIPPED = SkipCause.UPSTREAM_SKIPPED
_TRIGGER_RULE = SkipCause.TRIGGER_RULE


def decide(  # noqa: PLR0917  # positional: it runs once per edge, where a call's cost shows
    rule: TriggerRule, succeeded: int, failed: int, upstream_failed: int, skipped: int, pending: int
) -> Decision:
    """Whether a task can run (:data:`RUN`), must be skipped (its :class:`SkipCause`) or must wait
    (``None``), given the counts of its direct dependencies by how they ended.

    A task without dependencies runs under every rule.
    """
    if rule is _ALL_SUCCESS:  # the default first: the common case pays one comparison
        if failed or upstream_failed:
            return _UPSTREAM_FAILED
        if pending:
            return None
        return _UPSTREAM_SKIPPED if skipped else RUN
    failures = failed + upstream_failed
    if rule is _ALWAYS:
        return RUN
    if rule is _ALL_DONE:
        return None if pending else RUN
    if rule is _ONE_SUCCESS or rule is _ALL_DONE_MIN_ONE_SUCCESS:
        if succeeded and (rule is _ONE_SUCCESS or not pending):
            return RUN
        if pending:
            return None
        if succeeded + failures + skipped == 0:
            return RUN  # no dependencies at all
        return _UPSTREAM_SKIPPED if failures == 0 else _UPSTREAM_FAILED
    if rule is _ONE_FAILED:
        if failures:
            return RUN
        if pending:
            return None
        return _TRIGGER_RULE if succeeded + skipped else RUN
    if rule is _ONE_DONE:
        if succeeded or failed:
            return RUN
        if pending:
            return None
        return _TRIGGER_RULE if upstream_failed + skipped else RUN
    if rule is _ALL_FAILED:
        if succeeded or skipped:
            return _TRIGGER_RULE
        return None if pending else RUN
    if rule is _ALL_SKIPPED:
        if succeeded or failures:
            return _TRIGGER_RULE
        return None if pending else RUN
    if rule is _NONE_FAILED:
        if failures:
            return _UPSTREAM_FAILED
        return None if pending else RUN
    if rule is _NONE_FAILED_MIN_ONE_SUCCESS:
        if failures:
            return _UPSTREAM_FAILED
        if pending:
            return None
        return _UPSTREAM_SKIPPED if skipped and not succeeded else RUN
    if rule is _NONE_SKIPPED:
        if skipped:
            return _UPSTREAM_SKIPPED
        return None if pending else RUN
    raise ValueError(f"unknown trigger rule {rule!r}")  # pragma: no cover  # the enum is closed


def skip_note(skip_cause: str | None, cause: str = "") -> str:
    """Why a task was skipped, in words, for the report and the live view: ``skip_cause`` as
    :class:`SkipCause` names it, ``cause`` the task whose end decided it ("" when unknown: a
    task record keeps the why, only the event log keeps the which)."""
    if skip_cause == SkipCause.SKIPPED_BY_TASK:
        return "skipped itself (plait.Skip)"
    if skip_cause == SkipCause.UPSTREAM_SKIPPED:
        return f"upstream skipped ({cause!r})" if cause else "upstream skipped"
    if skip_cause == SkipCause.TRIGGER_RULE:
        return f"trigger rule not met (after {cause!r})" if cause else "trigger rule not met"
    # upstream_failed, and events recorded before causes were
    return f"{cause!r} did not succeed" if cause else "upstream failed"


def coerce_rule(value: object, task_id: str) -> TriggerRule:
    """``value`` (a :class:`TriggerRule` or its name) as a rule, for task ``task_id``.

    Raises:
        InvalidOptionError: ``value`` names no rule.
    """
    try:
        return TriggerRule(value)  # type: ignore[arg-type]  # a wrong type is caught below
    except ValueError:
        names = ", ".join(rule.value for rule in TriggerRule)
        raise InvalidOptionError(
            f"task {task_id!r}: trigger={value!r} is not a trigger rule; use one of {names}"
        ) from None


publish_exports(globals())  # plait.X, not plait._rules.X: see plait._public
