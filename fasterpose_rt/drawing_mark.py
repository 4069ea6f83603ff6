"""A mark inside the ``--vis`` drawings ``fasterpose predict`` writes (JPEG and PNG pictures, MP4 videos), so a
later run tells its own drawings from a photo or video of the same name (a user's ``a_pose.jpg`` beside ``a.jpg``)
and never draws over one.

JPEG: a comment segment (COM, 0xFFFE) after the start-of-image marker and the JFIF APP0 segment OpenCV writes; PNG:
a ``tEXt`` chunk (keyword ``Software``) after ``IHDR``; MP4: a ``free`` box after the others, at the file's end
(ISO/IEC 14496-12: a box of free space, which readers skip). Decoders skip all three; the pixels are untouched.
``predict`` draws photos of other formats as PNG, so every drawing it writes carries the mark.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Union

__all__ = ["MARK", "MARKABLE", "add_mark", "mark_video", "has_mark", "may_draw_over"]

MARK = b"fasterpose --vis drawing"
MARKABLE = frozenset({".jpg", ".jpeg", ".png", ".mp4"})  # the suffixes whose files carry the mark
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEAD = 512  # the mark sits within the first few dozen bytes of a marked picture, the last few of a video
_FREE_BOX = struct.pack(">I", 8 + len(MARK)) + b"free" + MARK  # an MP4 box: size, type, payload


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


def mark_video(path: Union[str, os.PathLike]) -> None:
    """Add the mark to the MP4 file at ``path`` (whole, its boxes written): a ``free`` box at its end."""
    with open(path, "ab") as f:
        f.write(_FREE_BOX)


def has_mark(path: Union[str, os.PathLike]) -> bool:
    """Whether the file at ``path`` is a picture ``add_mark`` marked, or a video ``mark_video`` marked (False when
    it cannot be read)."""
    try:
        with open(path, "rb") as f:
            if os.path.splitext(os.fspath(path))[1].lower() == ".mp4":
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - len(_FREE_BOX)))
                return f.read() == _FREE_BOX
            return MARK in f.read(_HEAD)
    except OSError:
        return False


def may_draw_over(path: Union[str, os.PathLike]) -> bool:
    """Whether a drawing may be written to ``path``: nothing is there, or a marked drawing, or a file of a format
    predict never draws in (known by its name). False for a JPEG, PNG or MP4 without the mark (somebody's photo or
    video) and for anything there that is no regular file (a folder, a pipe, a link to nothing)."""
    if not os.path.lexists(path):
        return True
    if not os.path.isfile(path):
        return False
    return os.path.splitext(os.fspath(path))[1].lower() not in MARKABLE or has_mark(path)
