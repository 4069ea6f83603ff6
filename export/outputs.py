"""Checks on the file a tool is about to write, made before its costly work: a typo in --out must not cost the run,
and --out must never name one of the tool's own inputs."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["same_file", "check_writable"]


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file (symlinks and hard links followed; ``b`` None: no)."""
    if a is None or b is None:
        return False
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def check_writable(out, inputs=()) -> Path:
    """``out`` as a Path; raise InputError when it cannot be written: a folder, one of ``inputs`` ((what, path or
    None) pairs: the files the tool reads, such as ("the --ann file", ann)), or in a folder that does not exist and
    cannot be made, or cannot take a new file. Creates nothing (a probe file is removed at once)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"cannot write {out}: it is a folder; give a file name")
    same = next((what for what, path in inputs if same_file(out, path)), None)
    if same is not None:  # it would be replaced by the model before anything reads it again
        raise InputError(f"cannot write {out}: it is {same}; give another --out")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:  # the folders missing are made when it is written
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {out}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror or e}") from None
    return out
