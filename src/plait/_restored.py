"""Where a resumed run starts from: what it is made of, and how it is put back into the run.

A part of :class:`plait._engine._Run` (see :mod:`plait._run_state`). ``_resume`` reads the run's
store into a :class:`Restored`, by task index: the outputs (and their payloads) of the tasks that
succeeded, which do not run again; each task's attempts so far, and when it started and
finished; the answers given and the questions still open; the tasks that skipped themselves and
stay skipped; the recorded instances of mapped tasks. As the run's state is built,
:meth:`_Restoring._restore` writes it into the run's per-task columns -- a mapped task's own
output excepted: it expands again, its succeeded instances restored (see ``_mapping``) -- and
retry budgets count from the attempts restored (``attempts_before``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._pause import Question
from ._results import TaskError
from ._run_state import _RunState
from .executors._remote import RemoteOutput

if TYPE_CHECKING:
    from ._mapping import RestoredInstance

__all__ = ["Restored"]


@dataclass(slots=True)
class Restored:
    """Where a resumed run starts from, as read from its store (by task index)."""

    outputs: dict[int, Any]  # tasks that succeeded: they do not run again
    payloads: dict[int, bytes]
    attempts: dict[int, int]
    started_at: dict[int, float]
    finished_at: dict[int, float]
    answers: dict[int, dict[str, Any]]
    questions: dict[int, Question]  # questions still open
    # tasks that skipped themselves (raise plait.Skip) and whose dependencies ended the same
    # way as then: they stay skipped, with their reason (see plait._restart)
    skipped: dict[int, TaskError | None] = field(default_factory=dict)
    # the recorded instances of mapped tasks, by the mapped task's index and item: those that
    # succeeded do not run again when it expands (see plait._mapping)
    instances: dict[int, dict[int, RestoredInstance]] = field(default_factory=dict)


class _Restoring(_RunState):
    """Putting a resumed run's state back; part of :class:`plait._engine._Run`."""

    def _restore(self, restored: Restored) -> None:
        map_over = self.graph.map_over
        if self.graph.mapped:  # a mapped task expands again, its succeeded instances restored
            kept = {i: o for i, o in restored.outputs.items() if map_over[i] < 0}
            restored.outputs = kept
            restored.payloads = {i: p for i, p in restored.payloads.items() if i in kept}
        self._restored_instances = dict(restored.instances)
        for i, output in restored.outputs.items():
            self.outputs[i] = output
            if isinstance(output, RemoteOutput):  # a pause resumed in the same process
                self.remote_outputs = True
            self.payloads[i] = restored.payloads.get(i)
        self._succeeded_before = sorted(restored.outputs)
        self._skipped_before = sorted(restored.skipped)
        for i, reason in restored.skipped.items():
            self.errors[i] = reason
        for i, attempts in restored.attempts.items():
            self.attempts[i] = self.attempts_before[i] = attempts
        for i, at in restored.started_at.items():
            self.started_at[i] = at
        for i, at in restored.finished_at.items():
            self.finished_at[i] = at
        for i, answers in restored.answers.items():
            self.answers[i] = dict(answers)
        self.questions.update(restored.questions)
