"""Outputs that stay where they were made: a handle in the engine, the value fetched on demand.

An executor that runs tasks on other machines (Dask) can leave an attempt's output there and
report a :class:`RemoteOutput` instead of the value (``Outcome(output=handle)``), when the job
allows it (``job.keeps_remote_output``: the engine allows it unless the run's store must
serialize every output). The engine keeps the handle as the task's output and

- hands it, unchanged, to a dependent task on an executor that :meth:`RemoteOutput.kept_by`
  says holds it (a Dask task gets the future: the data moves worker to worker);
- fetches it for anything else that needs the value here: a task on another executor (in
  process, in its worker thread), and the caller reading ``result.tasks[id].output`` or
  ``result.outputs`` (see :class:`FetchingColumn`).

A handle fetches once and keeps the value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, overload

from ._base import Executor

__all__ = ["FetchingColumn", "RemoteOutput", "local"]


class RemoteOutput(ABC):
    """A task's output that lives elsewhere (a Dask worker's memory)."""

    __slots__ = ()

    @abstractmethod
    def fetch(self) -> Any:
        """The value, brought to this process (the first call fetches; later ones reuse it)."""

    @abstractmethod
    def kept_by(self, executor: Executor) -> bool:
        """Whether a task on ``executor`` can take this handle as it is (no fetch)."""


def local(value: Any) -> Any:
    """``value``, fetched if it is a :class:`RemoteOutput`."""
    return value.fetch() if isinstance(value, RemoteOutput) else value


class FetchingColumn(Sequence[Any]):
    """A run's outputs as a sequence that fetches each remote output when it is read."""

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [local(value) for value in self._values[index]]
        return local(self._values[index])

    def __iter__(self) -> Iterator[Any]:
        return map(local, self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<FetchingColumn of {len(self)} outputs>"
