"""How long an MP4 / MOV file's video is shown, read from its edit list: what a trimmed file's frame count leaves out.

A file trimmed without re-encoding (``ffmpeg -ss 0.5 -c copy``, a phone's or an editor's lossless trim) keeps the
packets from the key frame before the cut and lists them all in the frame count OpenCV reports, but its edit list
(ISO/IEC 14496-12 ``moov/trak/edts/elst``) shows only the part after the cut; decoders never hand out the rest. So
a whole trimmed file ends "short" of its count. Only the boxes on the way to the edit list are read (``moov`` is
sought, not the media); a file of another kind, or one without an edit list, gives None.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Dict, Iterator, Optional, Tuple, Union

__all__ = ["shown_seconds", "lists_its_samples", "has_video_track"]

_MAX_MOOV = 64 << 20  # a moov box this large is no index we need to read (a 10-hour file's is a few MB)
_MAX_TOP_BOXES = 10_000  # a broken or hostile file is given up on, not walked for ever


def shown_seconds(path: Union[str, os.PathLike]) -> Optional[float]:
    """Seconds of video the first video track's edit list shows, or None (not an MP4 / MOV file, no edit list,
    an edit list of nothing but empty edits, or boxes that do not add up). Only regular files are read: a pipe's
    bytes are the video reader's."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            moov = _top_box(f, b"moov")
    except OSError:
        return None
    if moov is None:
        return None
    try:
        return _shown_seconds(moov)
    except (struct.error, ValueError, IndexError):  # a box cut short or holding nonsense (an empty one)
        return None


def lists_its_samples(path: Union[str, os.PathLike]) -> bool:
    """Whether the MP4 / MOV file at ``path`` lists all its samples in ``moov``, so that the frame count OpenCV
    reports is the file's own. A fragmented file (``moov/mvex``: OBS's, DASH and CMAF segments, ``-movflags
    frag_keyframe``) lists none there; FFmpeg then estimates a count from the duration, which spans the audio too.
    False for a file of another kind, without a readable ``moov``, or not a regular file."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            moov = _top_box(f, b"moov")
        return moov is not None and b"mvex" not in _children(moov)
    except (OSError, struct.error, ValueError):
        return False


def has_video_track(path: Union[str, os.PathLike]) -> Optional[bool]:
    """Whether the MP4 / MOV file at ``path`` has a video track (a ``trak`` whose handler is ``vide``); None when
    that cannot be told (a file of another kind, no readable ``moov``, not a regular file). An M4A, or an MP4 of
    a voice memo, has only sound."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            moov = _top_box(f, b"moov")
        if moov is None:
            return None
        return any(_children(_children(trak).get(b"mdia", b"")).get(b"hdlr", b"")[8:12] == b"vide"
                   for kind, trak in _boxes(moov) if kind == b"trak")
    except (OSError, struct.error, ValueError):
        return None


def _top_box(f: BinaryIO, name: bytes) -> Optional[bytes]:
    """The payload of the top-level box ``name``, sought past the others; None when absent or too large."""
    size_of_file = os.fstat(f.fileno()).st_size
    start = 0
    for _ in range(_MAX_TOP_BOXES):
        f.seek(start)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:  # a 64-bit size follows the name
            if len(head) < 16:
                return None
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:  # the box runs to the end of the file
            size = size_of_file - start
        if size < header:
            return None
        if start == 0 and kind not in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"):
            return None  # not an ISO base media file: no need to walk it
        if kind == name:
            if size - header > _MAX_MOOV:
                return None
            f.seek(start + header)
            payload = f.read(size - header)
            return payload if len(payload) == size - header else None
        start += size
        if start >= size_of_file:
            return None
    return None


def _boxes(data: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """(name, payload) of the boxes laid one after another in ``data``."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = len(data) - at
        if size < header or at + size > len(data):
            raise ValueError("a box runs past its parent")
        yield kind, data[at + header:at + size]
        at += size


def _children(data: bytes) -> Dict[bytes, bytes]:
    """The first box of each name among ``data``'s boxes."""
    found: Dict[bytes, bytes] = {}
    for kind, payload in _boxes(data):
        found.setdefault(kind, payload)
    return found


def _shown_seconds(moov: bytes) -> Optional[float]:
    boxes = list(_boxes(moov))
    mvhd = next((payload for kind, payload in boxes if kind == b"mvhd"), None)
    if mvhd is None:
        return None
    # mvhd: version (1 byte), flags (3), then creation and modification times (4 or 8 bytes each), the timescale
    timescale = struct.unpack_from(">I", mvhd, 20 if mvhd[0] == 1 else 12)[0]
    if timescale == 0:
        return None
    for kind, trak in boxes:
        if kind != b"trak":
            continue
        parts = _children(trak)
        mdia = _children(parts.get(b"mdia", b""))
        hdlr = mdia.get(b"hdlr", b"")
        if hdlr[8:12] != b"vide":  # version and flags (4 bytes), pre_defined (4), the handler type
            continue
        elst = _children(parts.get(b"edts", b"")).get(b"elst")
        if elst is None:
            return None  # the first video track is shown whole
        version, count = elst[0], struct.unpack_from(">I", elst, 4)[0]
        entry = ">QqI" if version == 1 else ">IiI"  # segment duration, media time (-1: an empty edit), rate
        step = struct.calcsize(entry)
        if 8 + count * step > len(elst):
            raise ValueError("the edit list is cut short")
        shown = sum(duration for duration, media_time, _ in
                    (struct.unpack_from(entry, elst, 8 + i * step) for i in range(count)) if media_time != -1)
        return shown / timescale if shown > 0 else None
    return None
