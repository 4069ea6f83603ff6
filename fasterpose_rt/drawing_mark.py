"""A mark inside the ``--vis`` pictures ``fasterpose predict`` writes as JPEG or PNG, so a later run tells its own
drawings from a photo of the same name (a user's ``a_pose.jpg`` beside ``a.jpg``) and never draws over a photo.

JPEG: a comment segment (COM, 0xFFFE) after the start-of-image marker and the JFIF APP0 segment OpenCV writes; PNG:
a ``tEXt`` chunk (keyword ``Software``) after ``IHDR``. Decoders skip both; the pixels are untouched. Pictures of
other formats (BMP, WebP, TIFF) and drawn videos carry no mark: they are known by their names alone.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Union

__all__ = ["MARK", "MARKABLE", "add_mark", "has_mark", "may_draw_over"]

MARK = b"fasterpose --vis drawing"
MARKABLE = frozenset({".jpg", ".jpeg", ".png"})  # the suffixes whose files carry the mark
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEAD = 512  # the mark sits within the first few dozen bytes of a marked file


def add_mark(data: bytes, suffix: str) -> bytes:
    """``data``, an encoded picture of the format ``suffix`` names (``.jpg``, ``.png``, ...), with the mark added;
    unchanged for a format that carries none, or bytes that are not what the suffix says."""
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        at = 2
        if data[2:4] == b"\xff\xe0" and len(data) >= 6:  # keep APP0 (JFIF) first, where strict readers look for it
            at = 4 + struct.unpack(">H", data[4:6])[0]
        return data[:at] + b"\xff\xfe" + struct.pack(">H", 2 + len(MARK)) + MARK + data[at:]
    if suffix == ".png" and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        at = 8 + 12 + struct.unpack(">I", data[8:12])[0]  # after IHDR: length, type, data, CRC
        body = b"tEXt" + b"Software\x00" + MARK
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        return data[:at] + chunk + data[at:]
    return data


def has_mark(path: Union[str, os.PathLike]) -> bool:
    """Whether the file at ``path`` is a picture ``add_mark`` marked (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return MARK in f.read(_HEAD)
    except OSError:
        return False


def may_draw_over(path: Union[str, os.PathLike]) -> bool:
    """Whether a drawing may be written to ``path``: nothing is there, or a drawing of a format that carries no
    mark (a video: known by its name), or a marked one. False for a JPEG or PNG without the mark (somebody's
    picture) and for anything there that is no regular file (a folder, a pipe, a link to nothing)."""
    if not os.path.lexists(path):
        return True
    if not os.path.isfile(path):
        return False
    return os.path.splitext(os.fspath(path))[1].lower() not in MARKABLE or has_mark(path)
