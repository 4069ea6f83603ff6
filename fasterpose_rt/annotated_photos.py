"""An annotation file's photos read in the frame of its keypoints: COCO gives each photo's stored width and height,
and a photo whose EXIF orientation would turn it away from them is read as stored (fasterpose eval, training,
the exporter's crops)."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .inputs import read_image

__all__ = ["listed_size", "read_as_listed", "frame_warnings"]


def listed_size(entry: dict) -> Optional[Tuple[int, int]]:
    """(H, W) an annotation file's ``images[]`` entry gives (COCO's ``height`` and ``width``: the stored bitmap's,
    the frame of its keypoints), or None unless both are positive integers."""
    h, w = entry.get("height"), entry.get("width")
    if isinstance(h, int) and isinstance(w, int) and not isinstance(h, bool) and not isinstance(w, bool) \
            and h > 0 and w > 0:
        return h, w
    return None


def read_as_listed(path: os.PathLike, size: Optional[Sequence[int]]) -> Tuple[np.ndarray, str]:
    """Decode the photo at ``path`` in the frame of its annotation file entry, whose ``size`` (H, W) is the stored
    bitmap's (COCO's, :func:`listed_size`): EXIF orientation applied (``read_image``) unless that turns it away
    from ``size`` and the stored bitmap has it. Returns ((H, W, 3) uint8 BGR, "" (as read_image reads it, or no size
    given) / "stored" (orientation ignored) / "neither" (the size matches neither way)); InputReadError as
    read_image."""
    image = read_image(path)
    if size is None or image.shape[:2] == tuple(size):
        return image, ""
    if image.shape[:2] == tuple(size)[::-1]:  # a quarter turn: EXIF orientations 5-8
        stored = read_image(path, orientation=False)  # (HEIF: upright again, so "neither" below)
        if stored.shape[:2] == tuple(size):
            return stored, "stored"
    return image, "neither"


def frame_warnings(as_stored: int, differ: Sequence[tuple]) -> List[str]:
    """What to warn (none, one or two messages, without "warning: ") after reading photos with
    :func:`read_as_listed`: ``as_stored`` of them were read ignoring their EXIF orientation ("stored"), ``differ``
    lists (path, read (H, W), listed (H, W)) of those whose size matched neither way ("neither")."""
    said = []
    if as_stored:  # the file's keypoints are in the stored bitmap's frame, where its width and height are
        said.append(f"{as_stored} photo{'s' if as_stored > 1 else ''} read as stored, an EXIF orientation ignored: "
                    f"it would turn {'them' if as_stored > 1 else 'it'} away from the width and height the annotation "
                    "file gives (the frame of its keypoints)")
    if differ:
        named = "; ".join(f"{p} is {w}x{h} px, listed as {lw}x{lh}" for p, (h, w), (lh, lw) in differ[:3])
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        said.append(f"{len(differ)} photo{'s are' if len(differ) > 1 else ' is'} not the size the annotation file "
                    f"gives, with or without EXIF orientation: {named}{more}; the file's keypoints may be in another "
                    "frame")
    return said
