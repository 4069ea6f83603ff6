"""Keypoint results: one entry per person, written as a COCO JSON list (or a CSV table) atomically and safely on
interruption, or as JSON Lines as they come.

Every write of a list or table goes to a temporary file in the target's folder (a symlink's target's folder; a
FIFO, device or /dev/stdout is written in place, once, at the end), is flushed to disk and renamed
over the target, so the file always holds either the previous or the new complete JSON, never a torn one. The
writer rewrites the file every few seconds (or N photos) while a run goes on, so an interrupted run keeps what it
finished. JSON Lines (one entry per line) are appended instead and flushed after every photo or frame: nothing is
kept in memory or rewritten (long videos, cameras), a pipe gets each frame's persons at once, and an interrupted
run keeps every line it completed.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, TextIO, Union

import numpy as np

__all__ = ["coco_entries", "csv_header", "csv_row", "atomic_write_text", "atomic_write_bytes", "ResultsWriter",
           "FORMATS"]

FORMATS = ("json", "jsonl", "csv")


def _finite(v: float, ndigits: int) -> float:
    """JSON has no NaN/inf: such values become 0 (they only arise from broken models)."""
    return round(float(v), ndigits) if math.isfinite(v) else 0.0


def coco_entries(result, image_id: int, file_name: str, frame: Optional[int] = None,
                 category_id: int = 1, time: Optional[float] = None, pixel_aspect: float = 1.0) -> List[dict]:
    """A PoseResult (keypoints (N, K, 2), scores (N, K), boxes (N, 4)) -> N COCO keypoint result dicts.

    Keys: image_id, file_name, category_id (the person category, 1 in COCO), bbox [x, y, w, h],
    keypoints [x1, y1, s1, ...] (s = keypoint score), score (the mean keypoint score, as PoseResult.to_coco),
    frame and time (seconds from the video's start) for video frames, pixel_aspect for an anamorphic video's
    (how many times as wide as tall its pixels are shown: x times it is the px a player shows), track_id for
    followed persons
    (PoseTracker's), keypoint_confidences [c1, c2, ...] when the model measured what its scores mean
    (``PoseResult.confidences``), and presence (the chance a person is there at all) when it has a presence head
    (``PoseResult.presence``). Coordinates are rounded to 0.01 px, scores to 1e-4 and confidences to 1e-3 to
    keep files small; plain Python numbers only.
    """
    out = []
    for d in result.to_coco(int(image_id), category_id=int(category_id)):
        kp = np.nan_to_num(np.asarray(d["keypoints"], np.float64).reshape(-1, 3), nan=0.0, posinf=0.0, neginf=0.0)
        kp = np.concatenate([np.round(kp[:, :2], 2), np.round(kp[:, 2:], 4)], axis=1)
        entry = {
            "image_id": int(image_id),
            "file_name": str(file_name),
            "category_id": int(category_id),
            "bbox": [_finite(v, 2) for v in d["bbox"]],
            "keypoints": kp.ravel().tolist(),
            "score": _finite(d["score"], 4),
        }
        if frame is not None:
            entry["frame"] = int(frame)
        if time is not None:
            entry["time"] = _finite(time, 4)
        if pixel_aspect != 1.0:
            entry["pixel_aspect"] = _finite(pixel_aspect, 6)
        if "track_id" in d:
            entry["track_id"] = d["track_id"]
        if "keypoint_confidences" in d:
            entry["keypoint_confidences"] = [_finite(v, 3) for v in d["keypoint_confidences"]]
        if "presence" in d:
            entry["presence"] = _finite(d["presence"], 3)
        out.append(entry)
    return out


_CSV_FIRST = ["file_name", "frame", "time", "image_id", "track_id", "score", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]


def csv_header(keypoint_names: Sequence[str], confidences: bool = False, presence: bool = False) -> List[str]:
    """CSV columns: one row per person (the fields of a results entry; frame, time and track_id empty where the
    entry has none), then ``<name>_x``, ``<name>_y``, ``<name>_score`` for each keypoint, in model order; with
    ``confidences`` (a model that measured what its scores mean) ``<name>_confidence`` for each keypoint after
    them, and with ``presence`` (a model with a presence head) a last ``presence`` column, so the other columns
    keep their places."""
    columns = _CSV_FIRST + [f"{n}_{part}" for n in keypoint_names for part in ("x", "y", "score")]
    return (columns + ([f"{n}_confidence" for n in keypoint_names] if confidences else [])
            + (["presence"] if presence else []))


def csv_row(entry: dict) -> list:
    """One results entry (``coco_entries``'s dict) as the values of ``csv_header``'s columns."""
    return ([entry["file_name"], entry.get("frame", ""), entry.get("time", ""), entry["image_id"],
             entry.get("track_id", ""), entry["score"], *entry["bbox"]] + list(entry["keypoints"])
            + list(entry.get("keypoint_confidences", [])) + ([entry["presence"]] if "presence" in entry else []))


def _csv_line(values: Sequence) -> str:
    """One CSV row ending in a line feed. csv quotes a field only for the characters of its line terminator (and a
    line feed): one written for CR LF quotes a file name holding a lone CR too, which readers take as a row's end."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()[:-2] + "\n"


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder + fsync + rename (atomic on POSIX and
    Windows). The new file gets the usual permissions (0666 minus umask); the temporary file never lingers.
    A symlink's target is what is replaced (the link stays a link); a file no rename may stand in for (a device
    such as /dev/null, a FIFO, the pipe behind /dev/stdout: ``written_in_place``) is written as it is."""
    path = Path(path)
    if written_in_place(path):
        _write_in_place(path, text)
        return
    atomic_write_bytes(path, text.encode("utf-8", errors="surrogateescape"))  # a file name's own bytes


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    """``data`` to the regular file ``path`` as :func:`atomic_write_text` writes: a failed write (a full disk,
    Ctrl-C) leaves what was there before, never a cut-off file. Raises OSError naming ``path``."""
    path = Path(path)
    real = Path(os.path.realpath(path))  # the rename lands on the link's target, in the target's folder
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=str(real.parent))
    except OSError as e:
        raise _naming(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, real)
    except BaseException as e:  # includes KeyboardInterrupt mid-write: the target is untouched
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _naming(e, path) from None
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """The same error, naming the file the user asked for rather than our temporary one (or none, e.g. ENOSPC)."""
    return OSError(error.errno, f"cannot write: {error.strerror or error}", str(path))


def written_in_place(path: os.PathLike) -> bool:
    """Whether a write to ``path`` must go into the file as it is, not through a rename that would put a plain file
    in its place: an existing file that is no regular file (a device such as /dev/null, a FIFO, the pipe or
    terminal behind /dev/stdout or /dev/fd/N), or a regular one whose real name is not known (a file behind
    /dev/fd/N deleted since), or any file named as one this process holds open (/dev/stdout, /dev/fd/N: a
    rename would replace what the shell opened, e.g. the log of ``>> log``). False for a new file, a regular file
    and a symlink to one."""
    import stat

    try:
        found = os.stat(path)
    except OSError:  # nothing there yet (or a dangling link): the rename makes it
        return False
    if not stat.S_ISREG(found.st_mode) or _names_open_file(path):
        return True
    try:
        real = os.stat(os.path.realpath(path))
    except OSError:
        return True
    return (real.st_dev, real.st_ino) != (found.st_dev, found.st_ino)


def _names_open_file(path: os.PathLike) -> bool:
    """Whether ``path`` names a file by a process's descriptor: /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N,
    /proc/<pid>/fd/N (its folder's real path taken: /dev/fd is a link to /proc/self/fd on Linux)."""
    folder, name = os.path.split(os.path.abspath(path))
    for folder in (folder, os.path.realpath(folder)):
        if folder == "/dev" and name in ("stdin", "stdout", "stderr"):
            return True
        if name.isdigit() and (folder == "/dev/fd" or (folder.startswith("/proc/") and folder.endswith("/fd"))):
            return True
    return False


def _own_descriptor(path: os.PathLike) -> Optional[int]:
    """The descriptor of this process that ``path`` names (/dev/stdout: 1, /dev/fd/N and /proc/self/fd/N: N), or
    None."""
    folder, name = os.path.split(os.path.abspath(path))
    for folder in (folder, os.path.realpath(folder)):
        if folder == "/dev" and name in ("stdin", "stdout", "stderr"):
            return ("stdin", "stdout", "stderr").index(name)
        if name.isdigit() and folder in ("/dev/fd", "/proc/self/fd", f"/proc/{os.getpid()}/fd"):
            return int(name)
    return None


def _open_text(path: Path) -> TextIO:
    """``path`` opened for writing text (a file name's own bytes kept). A descriptor of this process by name
    (/dev/stdout) is written through a copy of it, as the shell's redirection set it up: opening the name anew
    would empty the file of ``>> log``."""
    fd = _own_descriptor(path)
    if fd is not None:
        return os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="surrogateescape")
    return open(path, "w", encoding="utf-8", errors="surrogateescape")


class _WholeLines:
    """A JSON Lines results file that holds whole lines only: each write goes to the file at once (no buffer), and
    one that fails part-way (a full disk, Ctrl-C between two parts) is cut back to where it began."""

    def __init__(self, fd: int):
        self._fd = fd
        self._append = _appends(fd)  # a shell's `>> log`: each write lands at the end, wherever the offset is
        self._end = os.lseek(fd, 0, os.SEEK_CUR)

    def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8", errors="surrogateescape"))  # a file name's own bytes
        if self._append:  # where this write will begin (the offset of an appending file says nothing)
            self._end = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except BaseException:
            try:
                os.ftruncate(self._fd, self._end)
                os.lseek(self._fd, self._end, os.SEEK_SET)
            except OSError:
                pass
            raise
        self._end = os.lseek(self._fd, 0, os.SEEK_CUR)

    def flush(self) -> None:  # nothing is held back
        pass

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)


def write_all(stream: TextIO, text: str) -> None:
    """Write ``text`` to ``stream`` and flush. The process's stdout (on POSIX) gets every byte or an OSError: Python's
    own write of a large text to a pipe whose reader had closed sent the first 64 KiB and dropped the rest without
    an error (a results list cut short, exit 0: review s61). A file name that is not UTF-8 keeps its own bytes, as
    in a results file, whatever the locale's error handler. Any other stream is written as a text stream."""
    try:
        fd = stream.fileno() if os.name == "posix" and stream in (sys.stdout, sys.__stdout__) else None
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both OSError and ValueError
        fd = None
    if fd is None:
        stream.write(text)
        stream.flush()
        return
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        data = memoryview(text.encode(encoding, errors="surrogateescape"))
    except UnicodeEncodeError:  # a character the locale's encoding has no byte for
        data = memoryview(text.encode(encoding, errors="backslashreplace"))
    stream.flush()  # what the stream holds goes first
    while data:
        data = data[os.write(fd, data):]


def _appends(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: files opened here never append
        return False
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def _open_lines(path: Path) -> Union[TextIO, _WholeLines]:
    """A JSON Lines file opened as :func:`_open_text` opens it; a regular file's writes kept to whole lines."""
    f = _open_text(path)
    if not _is_regular(f.fileno()):  # a pipe or a terminal: nothing to cut back
        return f
    fd = os.dup(f.fileno())
    f.close()
    return _WholeLines(fd)


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _write_in_place(path: Path, text: str) -> None:
    """``atomic_write_text`` for a file ``written_in_place``: opened and written (a FIFO waits for its reader)."""
    try:
        with _open_text(path) as f:
            f.write(text)
            f.flush()
            if _is_regular(f.fileno()):  # fsync of a pipe or terminal fails (EINVAL)
                os.fsync(f.fileno())
    except OSError as e:
        raise _naming(e, path) from None


class ResultsWriter:
    """Collects result entries and keeps ``path`` a valid JSON list (fmt "json") or CSV table (fmt "csv", one row
    per person: ``csv_header(keypoint_names, confidences, presence)``) of everything added so far; or appends them
    as JSON Lines (fmt "jsonl", one entry per line, to ``path`` or ``stream``).

    path None -> a list or table is written only at :meth:`close`, which prints it to ``stream`` (stdout); JSON
    Lines go there as they are added. :meth:`step` (call once per finished photo or frame) rewrites a list or
    table file when ``every_s`` seconds or ``every_n`` photos have passed since the last write (entries are
    serialised once, so rewrites only join strings), and flushes JSON Lines. A list or table going to a file
    ``written_in_place`` (a FIFO, a device, /dev/stdout) is written once, at :meth:`close`: a reader of a pipe
    gets one whole list, not each rewrite after the other.
    """

    def __init__(self, path: Optional[os.PathLike], every_s: float = 5.0, every_n: int = 100,
                 stream: Optional[TextIO] = None, fmt: str = "json", keypoint_names: Optional[Sequence[str]] = None,
                 confidences: bool = False, presence: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
        self._header: Optional[str] = None  # CSV only: the first line
        if fmt == "csv":
            if keypoint_names is None:
                raise ValueError("CSV results need the keypoint names for their columns")
            self._header = _csv_line(csv_header(keypoint_names, confidences, presence))
        self.path = Path(path) if path is not None else None
        self._in_place = self.path is not None and written_in_place(self.path)
        self.every_s, self.every_n = every_s, every_n
        self.stream = stream
        self._lines = fmt == "jsonl"
        self._file: Optional[Union[TextIO, _WholeLines]] = None  # JSON Lines to a file: from first write to close()
        self._count = 0
        self._parts: List[str] = []
        self._since = 0
        self._last = time.monotonic()
        self._dirty = False

    def __len__(self) -> int:
        return self._count

    def check_writable(self) -> None:
        """Fail early (OSError) when the results file cannot be created, before any work is done."""
        if self.path is not None and self._lines:
            self._open()
        elif self.path is not None and self._in_place:  # written at close only: its permission is what can fail
            if not os.access(self.path, os.W_OK):
                import errno

                raise _naming(PermissionError(errno.EACCES, os.strerror(errno.EACCES)), self.path)
        elif self.path is not None:
            self.flush(force=True)

    def _open(self) -> Union[TextIO, _WholeLines]:
        """The JSON Lines file, created (emptied) on first use."""
        if self._file is None:
            assert self.path is not None
            try:
                self._file = _open_lines(self.path)
            except OSError as e:
                raise _naming(e, self.path) from None
        return self._file

    def _out(self) -> Union[TextIO, _WholeLines]:
        return self._open() if self.path is not None else (self.stream or sys.stdout)

    def add(self, entries: List[dict]) -> None:
        self._count += len(entries)
        if self._lines:
            out = self._out()  # opening the file names its own errors
            try:
                out.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries))
            except OSError as e:
                if self.path is None:
                    raise
                raise _naming(e, self.path) from None
            return
        if self._header is not None:  # CSV
            self._parts.extend(_csv_line(csv_row(e)) for e in entries)
        else:
            self._parts.extend(json.dumps(e, separators=(",", ":")) for e in entries)
        self._dirty = self._dirty or bool(entries)

    def step(self) -> None:
        """One photo or frame finished: rewrite the file when due (JSON Lines: flush them)."""
        if self._lines:
            try:
                self._out().flush()
            except OSError as e:  # a full disk shows here, JSON Lines being buffered
                if self.path is None:
                    raise
                raise _naming(e, self.path) from None
            return
        self._since += 1
        due = self._since >= self.every_n or time.monotonic() - self._last >= self.every_s
        if self.path is not None and not self._in_place and due:
            self.flush()

    def text(self) -> str:
        if self._header is not None:  # CSV
            return self._header + "".join(self._parts)
        return "[\n" + ",\n".join(self._parts) + "\n]\n" if self._parts else "[]\n"

    def flush(self, force: bool = False) -> None:
        if self.path is not None and (self._dirty or force):
            atomic_write_text(self.path, self.text())
            self._dirty = False
        self._since, self._last = 0, time.monotonic()

    def abandon(self) -> None:
        """Close without writing: a file that is there stays as it was (JSON Lines: if none was written yet)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts, self._dirty = [], False

    def close(self) -> None:
        """Final write (file) or print (stdout); JSON Lines: flushed, and the file synced and closed."""
        if self._lines:
            out = self._out()
            out.flush()
            if self.path is not None:
                if _is_regular(out.fileno()):  # fsync of a pipe or device fails (EINVAL)
                    os.fsync(out.fileno())
                out.close()
                self._file = None
            return
        if self.path is not None:
            self.flush(force=True)
        else:
            write_all(self.stream or sys.stdout, self.text())
