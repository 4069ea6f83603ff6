"""Sets of photos gathered from folders and zip files, each picture once: what the presence head is fitted on and
measured on (photos of nobody: desktop wallpapers unpacked from Debian packages, a wheel's sample pictures).

Used by ``python -m export.presence_head`` and ``python -m benchmarks.person_presence``; no other part of the
runtime needs it.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .inputs import IMAGE_EXTENSIONS, InputReadError, read_image

__all__ = ["read_photo_set", "PhotoSetError"]

THUMB = 16  # repeats: the same THUMB x THUMB grey thumbnail ...
SAME = 4.0  # ... within this mean difference in grey levels (a wallpaper shipped in several sizes)


class PhotoSetError(ValueError):
    """A source is neither a folder nor a zip file."""


def _members(source: Path) -> Iterator[Tuple[str, Optional[np.ndarray]]]:
    """(name, decoded photo or None) of every photo file in a folder (recursively) or a zip file, in name order."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for name in sorted(archive.namelist()):
                if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                    data = np.frombuffer(archive.read(name), np.uint8)
                    yield name, cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    elif source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()):
            try:
                yield str(path.relative_to(source)), read_image(path)
            except InputReadError:
                yield str(path.relative_to(source)), None
    else:
        raise PhotoSetError(f"{source}: neither a folder nor a zip file")


def read_photo_set(sources: Sequence[os.PathLike], exclude: Iterable[str] = (), min_side: int = 32
                   ) -> Tuple[List[str], List[np.ndarray], dict]:
    """The distinct photos of ``sources`` (folders, searched recursively, or zip files such as wheels), those whose
    file name is in ``exclude`` left out.

    Files that cannot be decoded, and photos smaller than ``min_side`` px, are skipped; a picture found several
    times (the same 16 x 16 grey thumbnail within 4 grey levels, e.g. one wallpaper in several sizes) is kept once,
    its largest copy. Returns (names (M,) "source:member", photos (M,) (H, W, 3) uint8 BGR in the order found,
    counts {"files", "unreadable", "too_small", "repeats"}).
    """
    exclude = set(exclude)
    found: List[Tuple[str, np.ndarray]] = []
    counts = {"files": 0, "unreadable": 0, "too_small": 0, "repeats": 0}
    for source in sources:
        source = Path(source)
        for name, photo in _members(source):
            if Path(name).name in exclude:
                continue
            counts["files"] += 1
            if photo is None:
                counts["unreadable"] += 1
            elif min(photo.shape[:2]) < min_side:
                counts["too_small"] += 1
            else:
                found.append((f"{source.name}:{name}", photo))
    if not found:  # nothing to compare; callers say "no readable photo" themselves
        return [], [], counts
    # the largest copy of each picture first, then the found order restored
    order = sorted(range(len(found)), key=lambda i: -found[i][1].shape[0] * found[i][1].shape[1])
    thumbs = np.array([cv2.resize(cv2.cvtColor(found[i][1], cv2.COLOR_BGR2GRAY), (THUMB, THUMB),
                                  interpolation=cv2.INTER_AREA) for i in order], np.float32).reshape(len(order), -1)
    kept: List[int] = []  # indices into found
    rows: List[int] = []  # their thumbnails' rows
    for j, i in enumerate(order):
        if rows and (np.abs(thumbs[rows] - thumbs[j]).mean(axis=1) < SAME).any():
            counts["repeats"] += 1
            continue
        kept.append(i)
        rows.append(j)
    kept.sort()
    return [found[i][0] for i in kept], [found[i][1] for i in kept], counts
