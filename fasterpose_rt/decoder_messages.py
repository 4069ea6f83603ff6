"""What a photo's C decoder says, tied to the photo: libjpeg prints its warnings on damaged data ("Corrupt JPEG
data: 359 extraneous bytes before marker 0xd9") straight to the process's stderr, unnamed, and OpenCV decodes on.
In a folder of thousands of photos such a line names no file.

``collect_decoder_messages()`` turns that on for the calling thread (the CLI's reader): while it is on, each decode
runs with file descriptor 2 pointed at a temporary file (``stderr_captured``), and the decoder's lines are kept
for the caller to say with the photo's name. Only the in-memory decode runs in that window, never a file read (a
hung network mount would hold it). Whatever else reached descriptor 2 meanwhile (another thread's progress bar) is
written back as it came. ``stderr_lock`` is held for the window: the CLI's own messages take it, so none is caught
in a window, and at exit it is taken once more so no window is left open (nothing printed after it is lost).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import tempfile
import threading
from typing import Callable, Iterator, List, Optional, TypeVar

__all__ = ["collect_decoder_messages", "decoded_saying", "stderr_lock", "damage_said"]

T = TypeVar("T")

# the lines libjpeg(-turbo) and libpng print on their own (jerror.h's JWRN_* texts, libpng's warning prefix)
_DECODER_LINE = re.compile(r"^(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|Inconsistent "
                           r"progression sequence|Unknown Adobe color transform|Warning: unknown JFIF|libpng "
                           r"(warning|error)|Application transferred too many scanlines)")

# of those, the ones that mean the data is damaged (the decoder filled in what it could not read)
_DAMAGE_LINE = re.compile(r"^(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|Inconsistent "
                          r"progression sequence|libpng error)")

stderr_lock = threading.RLock()
_local = threading.local()
_closed = False


@contextlib.contextmanager
def collect_decoder_messages() -> Iterator[List[str]]:
    """Within the block, decodes in this thread (:func:`decoded_saying`) keep their decoder's lines in the list
    it yields, instead of letting them reach stderr unnamed."""
    said: List[str] = []
    outer = getattr(_local, "said", None)
    _local.said = said
    try:
        yield said
    finally:
        _local.said = outer


def decoded_saying(decode: Callable[[], T]) -> T:
    """``decode()``, its decoder's stderr lines kept when :func:`collect_decoder_messages` is on in this thread;
    else simply ``decode()``."""
    said: Optional[List[str]] = getattr(_local, "said", None)
    if said is None:
        return decode()
    with stderr_captured() as caught:
        result = decode()
    said.extend(caught)
    return result


def damage_said(said: List[str]) -> str:
    """A warning's text for the decoder's lines ``said`` about a photo that decoded (no leading "warning: name:")."""
    what = "; ".join(dict.fromkeys(said))  # (once each, in order)
    if any(_DAMAGE_LINE.match(line) for line in said):
        return f"damaged data, decoded as far as the decoder could: parts may be gray or garbled ({what})"
    return f"its decoder said: {what}"


@contextlib.contextmanager
def stderr_captured() -> Iterator[List[str]]:
    """Point descriptor 2 at a temporary file for the block; afterwards the decoder lines it caught are in the
    yielded list and every other byte is written back to the real stderr. Where descriptor 2 cannot be
    redirected (closed, or the process exiting), the block runs as it is and nothing is caught."""
    caught: List[str] = []
    with stderr_lock:
        saved = _redirect() if not _closed else None
        try:
            yield caught
        finally:
            if saved is not None:
                _restore(saved, caught)


def _spool():
    spool = getattr(_local, "spool", None)
    if spool is None:
        spool = _local.spool = tempfile.TemporaryFile()
    return spool


def _redirect() -> Optional[int]:
    """Descriptor 2 -> this thread's spool file; returns a duplicate of the real one (None: left as it was)."""
    try:
        spool = _spool()
        spool.seek(0)
        spool.truncate()
        saved = os.dup(2)
    except OSError:
        return None
    try:
        os.dup2(spool.fileno(), 2)
    except OSError:
        os.close(saved)
        return None
    return saved


def _restore(saved: int, caught: List[str]) -> None:
    os.dup2(saved, 2)
    os.close(saved)
    spool = _local.spool
    spool.seek(0)
    text = spool.read()
    if not text:
        return
    others = []
    for line in text.splitlines(keepends=True):
        words = line.decode("utf-8", "replace").strip()
        if _DECODER_LINE.match(words):
            caught.append(words)
        else:
            others.append(line)
    rest = b"".join(others)
    with contextlib.suppress(OSError):
        while rest:
            rest = rest[os.write(2, rest):]


@atexit.register
def _close() -> None:
    """No window opens after this, and one open now is waited for (a reader thread is a daemon)."""
    global _closed
    if stderr_lock.acquire(timeout=5):
        _closed = True
        stderr_lock.release()
