"""Sync task functions on a pool of worker threads."""

from __future__ import annotations

import threading
from queue import SimpleQueue

from ._base import Executor, Job

__all__ = ["ThreadExecutor"]


class ThreadExecutor(Executor):
    """Runs jobs on up to ``max_workers`` threads, started as work arrives.

    A worker that finishes a job takes the next job the engine hands back at once, so a chain of
    sync tasks runs on one thread with no hand-off. A worker whose job was abandoned (it ran past
    its timeout) is replaced at once, and exits when the job finally returns.
    """

    def __init__(self, max_workers: int, *, name: str = "plait-worker") -> None:
        self._max_workers = max_workers
        self._name = name
        self._queue: SimpleQueue[Job | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._current: list[Job | None] = []  # the job each worker runs, by worker number
        self._abandoned: set[int] = set()  # workers stuck in an abandoned job
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._max_workers

    def submit(self, job: Job) -> None:
        self._queue.put(job)
        if len(self._workers) - len(self._abandoned) < self._max_workers:
            self._spawn()

    def abandon(self, job: Job) -> None:
        with self._lock:
            for number, current in enumerate(self._current):
                if current is job:
                    self._abandoned.add(number)
        self._spawn()

    def shutdown(self, *, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            live = [
                worker
                for number, worker in enumerate(self._workers)
                if number not in self._abandoned
            ]
        for _ in live:
            self._queue.put(None)
        if wait:
            for worker in live:
                worker.join()

    def _spawn(self) -> None:
        with self._lock:
            if self._closed or len(self._workers) - len(self._abandoned) >= self._max_workers:
                return
            number = len(self._workers)
            worker = threading.Thread(
                target=self._work, args=(number,), name=f"{self._name}-{number}", daemon=True
            )
            self._workers.append(worker)
            self._current.append(None)
        worker.start()

    def _work(self, number: int) -> None:
        get = self._queue.get
        current = self._current
        while (job := get()) is not None:
            while job is not None:
                current[number] = job
                job.run()
                next_job = job.finish()
                if job.abandoned:
                    return  # a replacement worker has taken this one's place
                job = next_job
            current[number] = None
