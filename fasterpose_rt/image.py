"""Photos of any common layout -> the one layout the runtime crops from: (H, W, 3) uint8 BGR, as cv2.imread gives."""
from __future__ import annotations

import os
import warnings

import cv2
import numpy as np

__all__ = ["to_bgr_uint8"]


# Floats up to this are on the 0..1 scale: a 0..1 photo resampled (bicubic, Lanczos) overshoots 1 a little, and
# reading it as 0..255 made it black; a 0..255 photo whose brightest value is 1.5 is black in either reading.
FLOAT_UNIT_SCALE_MAX = 1.5


def to_bgr_uint8(image) -> np.ndarray:
    """Convert a photo to (H, W, 3) uint8 BGR.

    Accepted layouts: (H, W) or (H, W, 1) gray, (H, W, 3) BGR, (H, W, 4) BGRA (alpha dropped).
    Accepted types: uint8 (as is); uint16 in either byte order (0..65535 scaled to 0..255, e.g. 16-bit PNGs read
    with ``cv2.IMREAD_UNCHANGED``); other integer types whose values lie in 0..255; floats in [0, 1] (OpenCV's
    convention for float images) when no finite value exceeds 1.5, else in 0..255. Floats are clipped, NaN
    becomes 0 and +-inf the scale's ends. A uint16 array whose values all lie in 0..255 gets a UserWarning: 8-bit
    values in a wider type look black on the 16-bit scale (``image.astype(np.uint8)`` reads them as such).
    Raises ``ValueError`` naming the problem for any other shape or type, an empty photo or None (what
    ``cv2.imread`` returns for a file it cannot read), and ``TypeError`` for a file path (decode it first, e.g.
    with ``cv2.imread``).
    """
    return _bgr_uint8(image, warn=True)


def decoded_to_bgr_uint8(image) -> np.ndarray:
    """:func:`to_bgr_uint8` for a decoder's output (a file's or a video's frame), whose uint16 is on the 16-bit scale
    by the file's own word: no warning for a dark one."""
    return _bgr_uint8(image, warn=False)


def _bgr_uint8(image, warn: bool) -> np.ndarray:
    if image is None:  # np.asarray would make it a 0-d object array: "got shape ()" says nothing
        raise ValueError("image is None: cv2.imread returns None when it cannot read the file (a wrong path, or "
                         "not a photo it can decode)")
    if isinstance(image, (str, bytes, os.PathLike)):
        raise TypeError(f"expected a decoded image array, got the path {image!r}; read it with cv2.imread first")
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
        raise ValueError(f"image must be (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA; got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image is empty (shape {img.shape})")
    img = _to_uint8(img, warn)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(img)


def _to_uint8(img: np.ndarray, warn: bool) -> np.ndarray:
    """Any supported dtype -> uint8 on the 0..255 scale; shape unchanged. warn: a UserWarning for uint16 whose values
    all lie in 0..255 (an array of 8-bit values in a wider type: the 16-bit scale makes it black)."""
    dt = img.dtype
    if dt == np.uint8:
        return img
    if dt.kind == "u" and dt.itemsize == 2:  # uint16 in either byte order (">u2" from raw or FITS readers)
        # Round-to-nearest of v * 255 / 65535 (= v / 257): exact for 8-bit values stored as v * 257.
        if warn and img.size and 0 < int(img.max()) <= 255:  # (a 16-bit photo so dark is black anyway)
            warnings.warn("a uint16 image whose values are all 0..255 is read on the 16-bit scale (0..65535) and looks "
                          "black; pass image.astype(np.uint8) if it holds 8-bit values", UserWarning, stacklevel=4)
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if dt == np.bool_ or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise ValueError(f"unsupported image dtype {dt}; use uint8, uint16, another integer type or float")
    if np.issubdtype(dt, np.integer):
        lo, hi = int(img.min()), int(img.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"image of dtype {dt} has values in [{lo}, {hi}]; only 0..255 is understood (or use uint16)"
            )
        return img.astype(np.uint8)
    f = img.astype(np.float32, copy=False)
    finite = np.isfinite(f)
    # the scale from the finite values: one inf pixel must not turn a 0..1 photo into a black 0..255 one
    unit = not finite.any() or float(f.max(where=finite, initial=-np.inf)) <= FLOAT_UNIT_SCALE_MAX
    f = np.nan_to_num(f, nan=0.0, posinf=1.0 if unit else 255.0, neginf=0.0)
    if unit:
        f = f * 255.0
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)
