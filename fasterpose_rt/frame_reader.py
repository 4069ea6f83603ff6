"""Read a video's frames in a thread of their own, so decoding overlaps the model's work.

Two policies:
- in order (video files): the thread decodes up to ``ahead`` frames ahead of the caller, who gets every frame.
- newest only (cameras and streams, ``latest=True``): the thread takes every frame as the source delivers it and
  keeps only the newest. A caller slower than the source gets the newest frame each time; the ones in between are
  dropped (counted in ``dropped``). Results then lag the source by about one model call, where reading in order
  falls further behind with every frame of a source that queues them (an RTSP stream does), or reads frames a
  camera's driver buffered while the model was busy.

OpenCV releases the GIL while it decodes, so the thread costs the caller almost nothing.
``python -m benchmarks.frame_reading`` measures both policies (docs/usage.md, "Cameras and streams").
"""
from __future__ import annotations

import collections
import threading
from typing import Iterator, Optional

from .inputs import iter_video_frames
from .prefetch import READ_AHEAD

__all__ = ["FrameReader"]

_JOIN_SECONDS = 2.0  # close() waits this long for a read in progress (a camera delivers its next frame sooner)
_POLL_SECONDS = 0.1  # the caller waits in steps this long, so Ctrl-C reaches it at once


class FrameReader:
    """Iterate over (frame index, (H, W, 3) uint8 BGR frame) of a capture, read by a thread of its own; with
    ``times``, (index, frame, timestamp in seconds or None), the timestamp read with the frame
    (``inputs.iter_video_frames``: it is the frame's own only right after reading it, in the thread).

    cap: an opened cv2.VideoCapture (or any object with its ``read()``, ``grab()`` and ``release()``), released
    by the reader when the source ends or on ``close()``. every: decode frames 0, every, 2·every, ... (the
    others are only grabbed), read by ``inputs.iter_video_frames``. latest: keep only the newest decoded frame
    (see the module's docstring); else deliver every one in order, decoding up to ``ahead`` frames ahead.
    The thread starts at once; iterate once. Raises (while iterating) what ``inputs.iter_video_frames`` raises:
    InputReadError when not a single frame decodes, and any error the source raised, after the frames read
    before it.
    """

    def __init__(self, cap, every: int = 1, latest: bool = False, ahead: int = READ_AHEAD,
                 expected: Optional[int] = None, times: bool = False, counted: bool = True):
        if every < 1 or ahead < 1:
            raise ValueError(f"every and ahead must be >= 1, got {every} and {ahead}")
        self.every, self.latest, self.ahead = int(every), bool(latest), int(ahead)
        self.expected = expected  # the frames a file lists: one that stops well short of them is an error
        self.counted = bool(counted)  # False: expected is an estimate (inputs.counts_frames), not checked
        self.times = bool(times)
        self.dropped = 0  # frames decoded and replaced by a newer one before the caller took them (latest only)
        self._cap = cap
        self._frames: collections.deque = collections.deque()  # (index, frame[, time]), oldest first
        self._changed = threading.Condition()
        self._stop = self._ended = False
        self._error: Optional[Exception] = None
        self._thread = threading.Thread(target=self._read, name="fasterpose-frame-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """The thread: read until the source ends, fails or ``close()``; then release the capture."""
        # InputReadError: no frame, or cut off
        frames = iter_video_frames(self._cap, self.every, self.expected, self.times, self.counted)
        try:
            for item in frames:
                with self._changed:
                    while not self.latest and len(self._frames) >= self.ahead and not self._stop:
                        self._changed.wait()
                    if self._stop:
                        break
                    if self.latest:
                        self.dropped += len(self._frames)
                        self._frames.clear()
                    self._frames.append(item)
                    self._changed.notify_all()
        except Exception as e:  # handed to the caller, after the frames read before it
            self._error = e
        finally:
            frames.close()
            self._cap.release()  # also when the frames were never started
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def __iter__(self) -> Iterator[tuple]:
        try:
            while True:
                with self._changed:
                    while not self._frames and not self._ended:
                        self._changed.wait(_POLL_SECONDS)
                    if not self._frames:
                        break
                    item = self._frames.popleft()
                    self._changed.notify_all()  # room for the thread's next frame
                yield item
        finally:
            self.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop reading and release the capture (waits up to 2 s for a read in progress to return)."""
        with self._changed:
            self._stop = True
            self._frames.clear()
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_SECONDS)
