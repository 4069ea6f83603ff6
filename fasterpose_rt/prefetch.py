"""Run a function over items a few steps ahead of the caller, in a thread: the CLI decodes its next photos while
the model works on the current ones (OpenCV releases the GIL while it decodes).

``benchmarks.photo_reading`` measures it (README, "Command line").
"""
from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Deque, Generator, Iterable, Tuple, TypeVar

__all__ = ["prefetch", "READ_AHEAD"]

READ_AHEAD = 4  # photos or video frames decoded ahead: a few smooth out slow ones, more only hold memory

T = TypeVar("T")
R = TypeVar("R")


class _Done:
    """A Future-like holder of a result computed in the caller's thread (depth 0)."""

    def __init__(self, function, item):
        self._function, self._item = function, item

    def result(self):
        return self._function(self._item)


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
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fasterpose-prefetch")
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
        pool.shutdown(wait=False)
