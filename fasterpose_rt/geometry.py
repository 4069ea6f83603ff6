"""The project's coordinate conventions, written down once. Training (``models/``) and the runtime cite this file.

Conventions
-----------
1. Photo and crop coordinates follow OpenCV: the centre of pixel (column i, row j) is (x=i, y=j);
   pixel (i, j) covers [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5].
2. A person box is ``[x, y, w, h]`` in photo coordinates; its centre is ``(x + w/2, y + h/2)``.
3. Box -> crop: keep the box centre, grow the shorter side to the model's aspect ratio (input w/h), multiply
   both sides by ``box_padding``. The resulting photo region maps *edge to edge* onto the crop
   ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, so the region's centre lands on the crop centre
   ``((W - 1)/2, (H - 1)/2)``. Optional rotation (training augmentation) turns the region about its centre.
4. Heatmap pixel (i, j) sits at crop coordinate ``((i + 0.5)·s - 0.5, (j + 0.5)·s - 0.5)`` with
   ``s = crop size / heatmap size`` per axis (unbiased, UDP: Huang et al., CVPR 2020).
5. The same rule between a photo decoded at 1/f size and the photo: pixel (i, j) of the smaller one covers an
   f x f block, centred at ``((i + 0.5)·f - 0.5, (j + 0.5)·f - 0.5)`` of the photo (libjpeg's scaled decoding);
   and, with a factor per axis, between a video frame's stored pixels and the same frame with square pixels
   (an anamorphic video's, ``cv2.resize`` with fx, fy).

Every function is vectorised over persons and keypoints.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "box_centers_and_sizes",
    "crop_affine",
    "invert_affine",
    "apply_affine",
    "heatmap_to_crop",
    "crop_to_heatmap",
    "turned_extent",
    "rescale_points",
    "rescale_boxes",
]


def box_centers_and_sizes(boxes, input_size, padding=1.0):
    """Person boxes to crop regions (convention 2 and 3).

    boxes (N, 4) [x, y, w, h] photo px; input_size (W, H) of the model; padding: context factor.
    Returns centers (N, 2) and sizes (N, 2) = region (width, height) in photo px, with aspect W/H.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w_in, h_in = float(input_size[0]), float(input_size[1])
    centers = boxes[:, :2] + boxes[:, 2:] / 2.0
    bw, bh = boxes[:, 2].copy(), boxes[:, 3].copy()
    aspect = w_in / h_in
    wide = bw > bh * aspect
    bh = np.where(wide, bw / aspect, bh)
    bw = np.where(wide, bw, bh * aspect)
    sizes = np.stack([bw, bh], axis=1) * float(padding)
    return centers, sizes


def crop_affine(centers, sizes, input_size, rotation_deg=None):
    """Affine maps photo -> crop (convention 3).

    centers (N, 2), sizes (N, 2) photo px (aspect already W/H), input_size (W, H),
    rotation_deg (N,) or None: the region is turned counter-clockwise in the photo by this angle,
    i.e. the person appears rotated clockwise in the crop.
    Returns M (N, 2, 3) float64 with crop = M[:, :, :2] @ photo + M[:, :, 2]; pass M[n] to cv2.warpAffine.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    n = centers.shape[0]
    w_in, h_in = float(input_size[0]), float(input_size[1])
    k = np.stack([w_in / sizes[:, 0], h_in / sizes[:, 1]], axis=1)  # (N, 2) px of crop per photo px
    theta = np.zeros(n) if rotation_deg is None else np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.empty((n, 2, 2))
    rot[:, 0, 0], rot[:, 0, 1] = cos, sin
    rot[:, 1, 0], rot[:, 1, 1] = -sin, cos
    lin = k[:, :, None] * rot  # scale rows: crop axes may scale differently
    crop_center = np.array([(w_in - 1.0) / 2.0, (h_in - 1.0) / 2.0])
    offset = crop_center[None, :] - np.einsum("nij,nj->ni", lin, centers)
    return np.concatenate([lin, offset[:, :, None]], axis=2)


def invert_affine(m):
    """Inverse of affine maps. m (N, 2, 3) -> (N, 2, 3)."""
    m = np.asarray(m, dtype=np.float64)
    # The 2x2 inverse in closed form, not np.linalg.inv: LAPACK through older numpy's OpenBLAS (1.22, say) leaves a
    # worker thread spinning after each call, a second core burnt during inference (CPU time 2x wall at 1 thread).
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    det = a * d - b * c
    if not np.all(np.isfinite(det) & (det != 0)):
        raise np.linalg.LinAlgError("Singular matrix")
    lin_inv = np.stack([np.stack([d, -b], axis=1), np.stack([-c, a], axis=1)], axis=1) / det[:, None, None]
    offset = -np.einsum("nij,nj->ni", lin_inv, m[:, :, 2])
    return np.concatenate([lin_inv, offset[:, :, None]], axis=2)


def apply_affine(points, m):
    """Apply per-person affine maps. points (N, K, 2), m (N, 2, 3) -> (N, K, 2) float64."""
    points = np.asarray(points, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return np.einsum("nij,nkj->nki", m[:, :, :2], points) + m[:, None, :, 2]


def heatmap_to_crop(xy, stride):
    """Heatmap px -> crop px (convention 4). xy (..., 2); stride (sx, sy) = crop size / heatmap size."""
    s = np.asarray(stride, dtype=np.float64)
    return (np.asarray(xy, dtype=np.float64) + 0.5) * s - 0.5


def crop_to_heatmap(xy, stride):
    """Crop px -> heatmap px, the exact inverse of :func:`heatmap_to_crop`. xy (..., 2)."""
    s = np.asarray(stride, dtype=np.float64)
    return (np.asarray(xy, dtype=np.float64) + 0.5) / s - 0.5


def turned_extent(points, rotation_deg):
    """The tight box of each person's points in a frame turned as :func:`crop_affine` turns its region.

    points (N, P, 2) photo px (NaN points are ignored), rotation_deg (N,). Returns centers (N, 2) in photo px and
    sizes (N, 2) (width, height along the turned axes, at least 1 px): pass them to :func:`box_centers_and_sizes`
    as boxes ``[cx - w/2, cy - h/2, w, h]`` and to :func:`crop_affine` with the same angles.
    """
    pts = np.asarray(points, dtype=np.float64)
    th = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64).reshape(-1))
    cos, sin = np.cos(th), np.sin(th)
    rot = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)  # photo -> turned frame, (N, 2, 2)
    pivot = np.nanmean(pts, axis=1)
    q = np.einsum("nij,nkj->nki", rot, pts - pivot[:, None])
    lo, hi = np.nanmin(q, axis=1), np.nanmax(q, axis=1)
    centers = pivot + np.einsum("nji,nj->ni", rot, 0.5 * (lo + hi))  # back to the photo: rot is orthogonal
    return centers, np.maximum(hi - lo, 1.0)


def _factors(factor) -> np.ndarray:
    """One factor for both axes, or (fx, fy): as an array that scales (..., 2) points, x by fx and y by fy."""
    f = np.asarray(factor, np.float64)
    if f.shape not in ((), (2,)):
        raise ValueError(f"factor must be one number or (fx, fy), got shape {f.shape}")
    return f


def rescale_points(points, factor):
    """Points (..., 2) of a photo decoded at 1/``factor`` size -> the full photo's px (convention 5); a factor
    below 1 maps the other way (1/f: full photo -> the smaller one). ``factor`` (fx, fy): each axis its own, as
    between a video's stored frame and the frame shown with square pixels (``video.VideoPoses.square_factors``,
    from its ``pixel_aspect``)."""
    return (np.asarray(points, np.float64) + 0.5) * _factors(factor) - 0.5


def rescale_boxes(boxes, factor):
    """Boxes (..., 4) [x, y, w, h] as ``rescale_points``: the corner moves as a point (a pixel edge, -0.5, stays
    one), the sides grow ``factor`` times."""
    b = np.asarray(boxes, np.float64)
    return np.concatenate([rescale_points(b[..., :2], factor), b[..., 2:] * _factors(factor)], axis=-1)
