"""Work beside the model, in a thread: ``prefetch`` runs a function over items a few steps ahead of the caller
(the CLI decodes its next photos while the model works on the current ones), ``OrderedJobs`` runs jobs in order after
it (the CLI draws and writes its --vis pictures and videos). OpenCV releases the GIL while it decodes, draws and
encodes.

``benchmarks.photo_reading`` measures reading ahead (docs/usage.md, "Camera photos are decoded smaller").
"""
from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Generator, Iterable, List, Tuple, TypeVar

__all__ = ["prefetch", "OrderedJobs", "READ_AHEAD"]

READ_AHEAD = 4  # photos or video frames decoded ahead: a few smooth out slow ones, more only hold memory

T = TypeVar("T")
R = TypeVar("R")


class _Done:
    """A Future-like holder of a result computed in the caller's thread (depth 0)."""

    def __init__(self, function, item):
        self._function, self._item = function, item

    def result(self):
        return self._function(self._item)


class _Reader:
    """One daemon thread running the calls submitted to it, in order. ThreadPoolExecutor's threads are joined when
    Python exits, so one stuck reading an input that never answers (a hung network mount) kept a run that Ctrl-C
    or SIGTERM had stopped alive for ever; a daemon thread is left behind. For reading only: nothing it does needs
    finishing."""

    def __init__(self, name: str):
        self._jobs: "queue.SimpleQueue" = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, function: Callable, item) -> Future:
        future: Future = Future()
        self._jobs.put((future, function, item))
        return future

    def shutdown(self) -> None:
        """End the thread once the calls submitted so far are done (or cancelled)."""
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, item = job
            if not future.set_running_or_notify_cancel():  # cancelled before it started
                continue
            try:
                future.set_result(function(item))
            except BaseException as e:  # handed to whoever asks for the result
                future.set_exception(e)


def prefetch(function: Callable[[T], R], items: Iterable[T], depth: int = READ_AHEAD
             ) -> Generator[Tuple[T, "Future[R]"], None, None]:
    """Yield (item, future) in the items' order, ``function(item)`` running in one worker thread for up to
    ``depth`` items ahead of the one yielded; ``future.result()`` returns its value or raises its exception.
    depth 0: nothing runs ahead, ``result()`` calls the function then. Closing the iterator early (a ``break``)
    cancels the calls not started."""
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        for item in items:
            yield item, _Done(function, item)  # type: ignore[misc]
        return
    pending: Deque[Tuple[T, Future]] = collections.deque()
    source = iter(items)
    pool = _Reader("fasterpose-prefetch")
    try:
        for item in source:
            pending.append((item, pool.submit(function, item)))
            if len(pending) > depth:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown()


class OrderedJobs:
    """Jobs run in the order given, by one worker thread, at most ``pending`` waiting (``submit`` waits for the
    oldest beyond that, so memory stays bounded). Each job is (label, function); an exception it raises is kept
    with its label and handed back by ``failures()`` (finished jobs) or ``finish()`` (all, waiting for them)."""

    def __init__(self, pending: int = READ_AHEAD):
        self.pending = max(int(pending), 1)
        self._jobs: Deque[Tuple[Any, Future]] = collections.deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fasterpose-behind")

    def submit(self, label, function: Callable[[], object]) -> List[Tuple[Any, BaseException]]:
        """Queue ``function()``; returns the failures of the jobs finished so far (label, exception)."""
        self._jobs.append((label, self._pool.submit(function)))
        if len(self._jobs) > self.pending:
            self._jobs[0][1].exception()  # wait for the oldest
        return self.failures()

    def failures(self) -> List[Tuple[Any, BaseException]]:
        """(label, exception) of the jobs finished since the last call that failed, in their order."""
        out = []
        while self._jobs and self._jobs[0][1].done():
            label, future = self._jobs.popleft()
            error = future.exception()
            if error is not None:
                out.append((label, error))
        return out

    def finish(self) -> List[Tuple[Any, BaseException]]:
        """Wait for every job; their failures, as ``failures``."""
        for _, future in self._jobs:
            future.exception()
        return self.failures()
