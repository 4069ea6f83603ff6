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

__all__ = ["collect_decoder_messages", "decoded_saying", "add_decoder_line", "stderr_lock", "damage_said",
           "decoder_words"]

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
_spool_file = None  # one for the process: windows never overlap (stderr_lock)
_window_saved: Optional[int] = None  # the real descriptor 2, duplicated, while a window is open
_fd_lock = threading.Lock()  # held for descriptor work alone (never a decode): _close may race a window's end
_EXIT_WAIT = 5.0  # seconds an exit waits for a window to close (a decode: milliseconds, a huge PNG's seconds)


@contextlib.contextmanager
def collect_decoder_messages() -> Iterator[List[str]]:
    """Within the block, decodes in this thread (:func:`decoded_saying`) keep their decoder's lines in the list
    it yields, instead of letting them reach stderr unnamed. Best effort: a line another thread's decoder printed
    during the window (one decoding outside such a block) would be kept here too, so a program turns this on only
    where its decodes all run inside such blocks (the CLI's)."""
    said: List[str] = []
    outer = getattr(_local, "said", None)
    _local.said = said
    try:
        yield said
    finally:
        _local.said = outer


def decoded_saying(decode: Callable[[], T]) -> T:
    """``decode()``, its decoder's stderr lines kept when :func:`collect_decoder_messages` is on in this thread
    (also when it raises); else simply ``decode()``."""
    said: Optional[List[str]] = getattr(_local, "said", None)
    if said is None:
        return decode()
    caught: List[str] = []
    try:
        with stderr_captured() as caught:
            return decode()
    finally:  # (after the window closed, which fills ``caught``)
        said.extend(caught)


def add_decoder_line(line: str) -> None:
    """Keep ``line`` as if the decoder had printed it, when :func:`collect_decoder_messages` is on in this thread
    (a JPEG cut short is decoded with its end marker put back: libjpeg's own line for it is then not printed)."""
    said: Optional[List[str]] = getattr(_local, "said", None)
    if said is not None:
        said.append(line)


def decoder_words(said: List[str]) -> str:
    """The decoder's lines ``said``, each once, in order, as one text (for a message about the photo)."""
    return "; ".join(dict.fromkeys(said))


def damage_said(said: List[str]) -> str:
    """A warning's text for the decoder's lines ``said`` about a photo that decoded (no leading "warning: name:")."""
    what = decoder_words(said)
    if any(_DAMAGE_LINE.match(line) for line in said):
        return f"damaged data, decoded as far as the decoder could: parts may be gray or garbled ({what})"
    return f"its decoder said: {what}"


@contextlib.contextmanager
def stderr_captured() -> Iterator[List[str]]:
    """Point descriptor 2 at a temporary file for the block; afterwards the decoder lines it caught are in the
    yielded list (filled as the block ends) and every other byte is written back to the real stderr. Where
    descriptor 2 cannot be redirected (closed, the process exiting, or a window already open in this thread: its
    lines are the outer one's), the block runs as it is and nothing is caught here."""
    caught: List[str] = []
    with stderr_lock:
        saved = _redirect() if not _closed and not getattr(_local, "in_window", False) else None
        _local.in_window = saved is not None or getattr(_local, "in_window", False)
        try:
            yield caught
        finally:
            if saved is not None:
                _local.in_window = False
                caught.extend(_restore(saved))


def _redirect() -> Optional[int]:
    """Descriptor 2 -> the spool file; returns a duplicate of the real one (None: left as it was)."""
    global _spool_file, _window_saved
    try:
        if _spool_file is None:
            _spool_file = tempfile.TemporaryFile()
        _spool_file.seek(0)
        _spool_file.truncate()
        saved = os.dup(2)
    except OSError:
        return None
    with _fd_lock:
        try:
            os.dup2(_spool_file.fileno(), 2)
        except OSError:
            os.close(saved)
            return None
        _window_saved = saved
    return saved


def _restore(saved: int) -> List[str]:
    """Descriptor 2 back to ``saved``; the decoder lines the spool caught, the rest written back."""
    global _window_saved
    with _fd_lock:  # (else _close could put back a number closed meanwhile, and reused by the next file opened)
        with contextlib.suppress(OSError):  # (put back already by _close, at an exit that could not wait)
            os.dup2(saved, 2)
        _window_saved = None
        with contextlib.suppress(OSError):
            os.close(saved)
    assert _spool_file is not None
    _spool_file.seek(0)
    text = _spool_file.read()
    caught, others = [], []
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
    return caught


@atexit.register
def _close() -> None:
    """No window opens after this. One open now is waited for (a reader thread is a daemon), a few seconds at most:
    then descriptor 2 is put back regardless, so nothing printed at exit is lost."""
    global _closed
    if stderr_lock.acquire(timeout=_EXIT_WAIT):
        _closed = True
        if _spool_file is not None:  # no window opens now: its spool is done with (else a ResourceWarning at exit)
            with contextlib.suppress(OSError):
                _spool_file.close()
        stderr_lock.release()
        return
    _closed = True
    with _fd_lock:
        if _window_saved is not None:
            with contextlib.suppress(OSError):
                os.dup2(_window_saved, 2)
