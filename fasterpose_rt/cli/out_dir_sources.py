"""Which input an --out-dir results file was written for.

A run records each results file's input in one JSON Lines file at the --out-dir's root (``SOURCES_NAME``): its real
path and a fingerprint of its bytes (its size and a hash of its first and last 64 KiB), with a hash of the results
file as written. A later run into that folder then tells its own files (the same bytes, wherever they are now: a
copied folder, a card mounted elsewhere) from another input's of the same name (two cards' DCIM/IMG_0001.JPG, each
run from its own root), and from its own file whose input has changed since (run again). A line counts only while the
results file is the one it was written with; a file with no such line (written before there was a record, by
another tool, copied in from another folder, or its line lost to a stopped run or an unwritable record) is told by
the file_name its first entry records."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Dict, Optional, Tuple

from ..inputs import InputItem

SOURCES_NAME = ".fasterpose_sources.jsonl"
_EDGE = 65536  # bytes hashed at each end: a photo's EXIF header and the last of its pixels' data
_COMPACT_AT = 1000  # a record with this many more lines than files (reruns add lines) is rewritten, one per file


def fingerprint(path: os.PathLike) -> Optional[str]:
    """``size:sha256`` of a file's first and last 64 KiB (all of it when smaller); None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.sha256(f.read(_EDGE))
            if size > _EDGE:
                f.seek(max(_EDGE, size - _EDGE))
                digest.update(f.read(_EDGE))
    except OSError:
        return None
    return f"{size}:{digest.hexdigest()}"


def _content_hash(path: os.PathLike) -> Optional[str]:
    """sha256 of a whole (results) file; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def recorded_source(results_file: Path) -> Optional[str]:
    """The input an --out-dir results file names (its first entry's file_name); "" when it names none (nobody was
    found: ``[]``, or a video's empty lines), None when it is not such a file."""
    try:
        with open(results_file, "rb") as f:
            if results_file.suffix == ".jsonl":
                line = next((line for line in f if line.strip()), None)
                entries = [json.loads(line)] if line is not None else []
            else:
                entries = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    if not entries:
        return ""
    name = entries[0].get("file_name") if isinstance(entries[0], dict) else None
    return name if isinstance(name, str) and name else None


def same_input(recorded: str, item: InputItem) -> bool:
    """Whether a results file's recorded file_name is this input file: the same real path (relative names taken
    from the current folder); when it names no file from here, a relative name of two or more parts that the
    input's real path ends in (the name as given from another folder: ``shoot/a.jpg`` is ``/data/shoot/a.jpg``, run
    now from /), or the same name (a file moved since)."""
    if os.path.exists(recorded):  # a file from here: that one, or another input's
        return os.path.realpath(recorded) == os.path.realpath(item.path)
    name = os.path.normpath(recorded)
    parts = Path(name).parts
    if not os.path.isabs(name) and ".." not in parts and len(parts) > 1:  # a bare a.jpg would be every a.jpg
        if Path(os.path.realpath(item.path)).parts[-len(parts):] == parts:
            return True
    return name == os.path.normpath(item.path)


class SourceRecord:
    """An --out-dir's record of its results files' inputs (``SOURCES_NAME``), read once, added to as files are
    written. Lines are appended whole; a line cut short by a stopped run is passed over, the last line of a file
    counts. A record grown long by reruns is rewritten with one line per file when read (a line another run
    appends at that moment may be lost: its file is then told by the name it holds)."""

    def __init__(self, out_dir: Path):
        self.folder = out_dir
        self.path = out_dir / SOURCES_NAME
        # results file -> (input's real path, input's fingerprint, the results file's hash)
        self._known: Optional[Dict[str, Tuple[str, str, str]]] = None

    def _usable(self) -> bool:
        """Whether the record is a regular file of its own, or none yet. A symbolic link in its place was followed
        (a planted link to a file of the user's had it wiped or appended to), a FIFO hung the run and /dev/zero
        filled the memory (review s68): such a record is neither read nor written."""
        try:
            return stat.S_ISREG(os.lstat(self.path).st_mode)
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _entries(self) -> Dict[str, Tuple[str, str, str]]:
        if self._known is None:
            self._known, lines = {}, 0
            if not self._usable():
                return self._known
            try:
                with open(self.path, "rb") as f:
                    for line in f:
                        lines += 1
                        try:
                            e = json.loads(line)
                            self._known[e["results"]] = (str(e["source"]), str(e["fingerprint"]), str(e["content"]))
                        except (ValueError, KeyError, TypeError):
                            continue
            except OSError:  # none yet (or unreadable): files are told by the names they record
                pass
            if lines > 2 * len(self._known) + _COMPACT_AT:
                self._compact()
        return self._known

    def _compact(self) -> None:
        from ..results import atomic_write_text  # (the CLI's writer: a whole file or the old one)

        assert self._known is not None
        text = "".join(self._line(key, *entry) for key, entry in self._known.items())
        try:
            atomic_write_text(self.path, text)
        except OSError:  # left long: still read right
            pass

    @staticmethod
    def _line(key: str, source: str, print_: str, content: str) -> str:
        return json.dumps({"results": key, "source": source, "fingerprint": print_, "content": content}) + "\n"

    def _key(self, results_file: Path) -> str:
        return Path(os.path.relpath(results_file, self.folder)).as_posix()

    def get(self, results_file: Path) -> Optional[Tuple[str, str]]:
        """(input's real path, fingerprint) recorded for ``results_file``, or None: also when the file is not the
        one the line was written with (written since by another run, tool or copy)."""
        known = self._entries().get(self._key(results_file))
        if known is None or _content_hash(results_file) != known[2]:
            return None
        return known[0], known[1]

    def add(self, results_file: Path, source: Path) -> None:
        """Record that ``results_file``, as it is now, holds the results of the input file ``source``. Raises
        OSError."""
        print_, content = fingerprint(source), _content_hash(results_file)
        if print_ is None or content is None:
            raise OSError(f"cannot read {source if print_ is None else results_file} again")
        key, real = self._key(results_file), os.path.realpath(source)
        line = self._line(key, real, print_, content)  # ASCII (json escapes): any name
        known = self._entries()
        if not self._usable():
            raise OSError(f"{self.path} is not a regular file (a symbolic link, a device or a folder)")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            os.write(fd, line.encode("ascii"))  # one write: runs appending at once do not mix their lines
        finally:
            os.close(fd)
        known[key] = (real, print_, content)


@dataclass(frozen=True)
class Owner:
    """Whose results an --out-dir file holds, for one input: ``own``; ``changed`` (its own, but the input's bytes
    differ from those it was written for: run again); ``other`` (another input's: ``source`` names it); or
    ``none`` (no results file)."""

    kind: str
    source: str = ""


def owner(results_file: Path, item: InputItem, record: SourceRecord, inputs: AbstractSet[str]) -> Owner:
    """Whose results ``results_file`` holds, for ``item`` (a photo or video file) among the run's ``inputs`` (their
    real paths): by the record when it has the file, else by the file_name it holds. Recorded for another path but
    of the same bytes, it is the item's (moved, copied, mounted elsewhere) unless that path is another input of
    the run (two copies of one photo keep a file each)."""
    recorded = recorded_source(results_file)
    if recorded is None:
        return Owner("none")
    known = record.get(results_file)
    if known is not None:
        real, print_ = known
        here = os.path.realpath(item.path)
        if fingerprint(item.path) == print_ and (real == here or real not in inputs):
            return Owner("own")
        return Owner("changed") if real == here else Owner("other", real)
    if recorded == "" or same_input(recorded, item):
        return Owner("own")
    return Owner("other", recorded)
