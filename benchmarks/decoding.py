"""Heatmap decoders compared: accuracy on synthetic Gaussians (also near the map's edge), speed, real models' PCK.

Synthetic accuracy, accuracy near the map's edge and the time for one frame's worth of persons; optionally PCK on
real models' heatmaps of labelled persons.

``python -m benchmarks.decoding [--rounds 30] [--results-dir D] [--ann COCO --images DIR [--models default,fast]
[--threads T]]`` -> ``benchmarks/results/decoding.{md,json}`` (or D).

Decoders (all return (N, K, 2) heatmap px):
  argmax         integer peak only;
  quarter        SimpleBaseline's step: 0.25 px from the peak towards the higher neighbour, per axis;
  DARK           ``fasterpose_rt.decode.decode_heatmaps`` (default modulation, sigma 2 at 48 px wide), its blur
                 gathered with indices clipped into the map: the border pixel is replicated;
  DARK σ=0       the same without modulation (blur_sigma=0);
  DARK zero-pad  DARK with the blur's patch zero outside the map (mmpose's zero-padded blur of the whole map),
                 written here; along an axis where the peak is on the border pixel, the runtime's (unblurred)
                 one-sided step;
  DARK σ=0 at 1 px  DARK, but σ=0 for integer peaks 1 px from the map's edge (next to a border pixel): the
                 runtime's ``edge_peaks="unblurred"``, which a model's metadata may choose (``export.edge_peaks``);
  DARK loop      the same maths as DARK, one keypoint at a time in Python (the baseline for the speed-up).
Maps are 64×48 (h×w), Gaussians of sigma 1.5 / 2 / 3 with uniformly random sub-pixel centres, clean or with
3 % multiplicative noise (map · (1 + 0.03·n), n ~ N(0, 1)).
Near the edge: clean Gaussians made as the training encoder makes targets (``models/codec.py``: sigma 2·w/48,
sampled at pixel centres), on the bundled models' heatmap sizes, centres 0.5-4 px (in bins) from the centre of
the outermost pixels of one edge (chosen at random; the map's outer edge is 0.5 px further out) and ≥ 4 px from the
others; per decoder the mean distance to the true centre and the mean signed error along the outward normal
(positive: pushed outwards).
Time: every decoder once per round, in turns (the order rotated by one every round), ``--rounds`` rounds; a
decoder's time relative to the loop is ``common.paired_ratio``: the median, over every run of as many consecutive
rounds as decoders (each decoder once in every position), of the geometric mean of its per-round ratios.
Real models (``--ann``): every model (``--models``: bundled names or ONNX paths, comma-separated) is run once over
the annotation file's labelled persons (each on its ``bbox`` as ``fasterpose eval`` runs it, else the tightest box
around its labelled joints; photos read in the file's frame, ``annotated_photos.read_as_listed``) with the
runtime's own crops, session and sigmoid (``PosePredictor._infer``), and the same probability heatmaps are decoded
by every decoder (but the loop). PCK@0.2 and PCK@0.1 (``fasterpose_rt.metrics``: torso rule, paired 95 % person
bootstrap intervals of the difference to DARK, ``pck_interval``) over all labelled joints and over the joints whose
integer peak is within 1 heatmap px of the map's edge (the torso measured on all the person's joints).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fasterpose_rt import PosePredictor
from fasterpose_rt.annotated_photos import frame_warnings, listed_size, read_as_listed
from fasterpose_rt.decode import argmax_heatmaps, decode_heatmaps, default_blur_sigma
from fasterpose_rt.evaluate import _labelled_box, in_model_order, load_annotations, match_keypoints
from fasterpose_rt.geometry import apply_affine, crop_to_heatmap, heatmap_to_crop, invert_affine
from fasterpose_rt.inputs import InputReadError
from fasterpose_rt.metrics import pck, pck_interval, torso_sizes
from fasterpose_rt.preprocess import crop_transforms, warp_crops

from .common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio, positive_int, run_main,
                     shown_path, write_results)
from .orientation import IMAGES, resolve_model

H, W = 64, 48
PERSONS, KEYPOINTS = 16, 17
SIGMAS = (1.5, 2.0, 3.0)
NOISE = (0.0, 0.03)
BATCHES = 8  # accuracy: 8 × 16 × 17 = 2176 maps per setting
MARGIN = 4.0  # centres keep this far from the border (decoders fall back to argmax on the border)
ROUNDS = 30  # timing rounds, each decoder once per round
EDGE_SIZES = ((44, 32), (32, 24))  # (h, w): the bundled default and fast models' heatmaps (176×128, 128×96 input)
EDGE_BINS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)  # bin edges of the centre's distance from the edge pixels
EDGE_MAPS = 2048  # maps per (size, distance bin)
EDGE_PX = 1  # real models: joints whose integer peak is at most this many heatmap px from the map's edge
THRESHOLDS = (0.2, 0.1)  # PCK thresholds (torso fractions) of the real-model section
MODELS = "default,fast"


def gaussians(rng, n, k, sigma, noise):
    """Synthetic maps (n, k, H, W) float32 with peak 1 at random centres (n, k, 2) (x, y) heatmap px."""
    centres = np.stack([rng.uniform(MARGIN, W - 1 - MARGIN, (n, k)), rng.uniform(MARGIN, H - 1 - MARGIN, (n, k))], 2)
    x = np.arange(W)[None, None, None, :]
    y = np.arange(H)[None, None, :, None]
    d2 = (x - centres[..., 0, None, None]) ** 2 + (y - centres[..., 1, None, None]) ** 2
    hm = np.exp(-d2 / (2 * sigma**2))
    if noise > 0:
        hm = np.clip(hm * (1 + noise * rng.standard_normal(hm.shape)), 0, None)
    return hm.astype(np.float32), centres


def decode_argmax(hm):
    return argmax_heatmaps(hm)[0].astype(np.float32)


def decode_quarter(hm):
    """SimpleBaseline: shift 0.25 px towards the larger neighbour, for peaks not on the border. (N, K, 2)."""
    n, k, h, w = hm.shape
    peak = argmax_heatmaps(hm)[0]
    px, py = peak[..., 0], peak[..., 1]
    inner = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    ni, ki = np.arange(n)[:, None], np.arange(k)[None, :]
    cx, cy = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
    dx = hm[ni, ki, py, cx + 1] - hm[ni, ki, py, cx - 1]
    dy = hm[ni, ki, cy + 1, px] - hm[ni, ki, cy - 1, px]
    shift = 0.25 * np.stack([np.sign(dx), np.sign(dy)], 2) * inner[..., None]
    return (peak + shift).astype(np.float32)


def decode_dark(hm):
    return decode_heatmaps(hm)[0]


def decode_dark_noblur(hm):
    return decode_heatmaps(hm, blur_sigma=0)[0]


def edge_distance(peak, h: int, w: int):
    """Heatmap px from each integer peak (N, K, 2) (x, y) to the nearest edge pixel of an (h, w) map: (N, K) int
    (0: on the border pixel)."""
    px, py = peak[..., 0], peak[..., 1]
    return np.minimum(np.minimum(px, w - 1 - px), np.minimum(py, h - 1 - py))


def decode_dark_zero_pad(hm, blur_sigma=None):
    """DARK whose modulation blurs a zero-padded map (mmpose's ``cv2.GaussianBlur`` of the whole map with a zero
    border, kernel normalised over all its taps) instead of replicating the border pixel as the runtime does.

    hm (N, K, H, W) probabilities -> (N, K, 2) float32 heatmap px. The runtime's maths otherwise: the blurred 3×3
    around each integer peak (gathered as a (N, K, P, P) patch, zero where it leaves the map), the log, the
    second-order step clipped to ±1 px (a 1-D step along an axis whose peak is off the border when the other one
    is on it). Along an axis on which the peak sits on the border pixel the runtime's one-sided step is taken as is
    (it does not blur, so padding cannot change it). Away from the edge (patch inside the map) it is the runtime.
    """
    hm = np.asarray(hm, np.float32)
    n, k, h, w = hm.shape
    sigma = default_blur_sigma(w) if blur_sigma is None else float(blur_sigma)
    peak, scores = argmax_heatmaps(hm)
    px, py = peak[..., 0], peak[..., 1]
    radius = min(int(np.ceil(3 * sigma)), max(h, w)) if sigma > 0 else 0
    offs = np.arange(-(radius + 1), radius + 2)
    d = offs[None, :] - np.array([-1, 0, 1])[:, None]  # (3, P): tap offsets of the 3 blurred pixels
    g = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= radius) if sigma > 0 else (d == 0).astype(np.float64)
    g /= g.sum(axis=1, keepdims=True)
    ys, xs = py[..., None] + offs, px[..., None] + offs  # (N, K, P)
    inside = ((ys >= 0) & (ys < h))[..., :, None] & ((xs >= 0) & (xs < w))[..., None, :]  # (N, K, P, P)
    ni, ki = np.arange(n)[:, None, None, None], np.arange(k)[None, :, None, None]
    patch = hm[ni, ki, np.clip(ys, 0, h - 1)[..., :, None], np.clip(xs, 0, w - 1)[..., None, :]] * inside
    lg = np.log(np.maximum(g @ patch.astype(np.float64) @ g.T, 1e-10))  # (N, K, 3, 3) [row, col]
    dx, dy = 0.5 * (lg[..., 1, 2] - lg[..., 1, 0]), 0.5 * (lg[..., 2, 1] - lg[..., 0, 1])
    dxx = lg[..., 1, 2] - 2 * lg[..., 1, 1] + lg[..., 1, 0]
    dyy = lg[..., 2, 1] - 2 * lg[..., 1, 1] + lg[..., 0, 1]
    dxy = 0.25 * (lg[..., 2, 2] - lg[..., 2, 0] - lg[..., 0, 2] + lg[..., 0, 0])
    det = dxx * dyy - dxy * dxy
    inner_x, inner_y, found = (px > 0) & (px < w - 1), (py > 0) & (py < h - 1), scores > 1e-10
    ok = inner_x & inner_y & (det > 1e-12) & (dxx < 0) & (dyy < 0) & found
    only_x, only_y = inner_x & ~inner_y & (dxx < 0) & found, inner_y & ~inner_x & (dyy < 0) & found
    safe = np.where(ok, det, 1.0)
    ox = np.where(ok, -(dyy * dx - dxy * dy) / safe, -dx / np.where(only_x, dxx, -1.0))
    oy = np.where(ok, -(dxx * dy - dxy * dx) / safe, -dy / np.where(only_y, dyy, -1.0))
    ox = np.where(ok | only_x, np.clip(ox, -1.0, 1.0), 0.0)
    oy = np.where(ok | only_y, np.clip(oy, -1.0, 1.0), 0.0)
    xy = np.stack([px + ox, py + oy], axis=2)
    border = np.stack([~inner_x, ~inner_y], axis=2)
    if border.any():  # the runtime's one-sided steps (gathered only when some peak is on the border pixel)
        xy = np.where(border, decode_heatmaps(hm, blur_sigma)[0], xy)
    return xy.astype(np.float32)


def decode_dark_noblur_at_edge(hm):
    """DARK, but without modulation (σ=0) for peaks exactly 1 px from the map's edge (``edge_distance`` 1); the
    border pixel's own step never blurs: the runtime's ``edge_peaks="unblurred"``, which a model's metadata may
    choose (``export.edge_peaks``). (N, K, H, W) -> (N, K, 2) heatmap px."""
    return decode_heatmaps(hm, edge_peaks="unblurred")[0]


def decode_dark_loop(hm, blur_sigma=None):
    """DARK one keypoint at a time: the maths of ``decode_heatmaps`` written as a plain Python loop."""
    n, k, h, w = hm.shape
    sigma = default_blur_sigma(w) if blur_sigma is None else blur_sigma
    r = int(math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.zeros((n, k, 2), np.float32)
    for a in range(n):
        for b in range(k):
            m = hm[a, b]
            py, px = divmod(int(m.argmax()), w)
            out[a, b] = px, py
            if not (0 < px < w - 1 and 0 < py < h - 1) or m[py, px] <= 1e-10:
                continue
            # Blurred log-map at the 3x3 around the peak (borders replicated).
            lg = np.empty((3, 3))
            for i, dy in enumerate((-1, 0, 1)):
                rows = np.clip(np.arange(py + dy - r, py + dy + r + 1), 0, h - 1)
                for j, dx in enumerate((-1, 0, 1)):
                    cols = np.clip(np.arange(px + dx - r, px + dx + r + 1), 0, w - 1)
                    lg[i, j] = math.log(max(float(taps @ m[np.ix_(rows, cols)].astype(np.float64) @ taps), 1e-10))
            grad = np.array([lg[1, 2] - lg[1, 0], lg[2, 1] - lg[0, 1]]) / 2
            hess = np.array([[lg[1, 2] - 2 * lg[1, 1] + lg[1, 0], (lg[2, 2] - lg[2, 0] - lg[0, 2] + lg[0, 0]) / 4],
                             [0.0, lg[2, 1] - 2 * lg[1, 1] + lg[0, 1]]])
            hess[1, 0] = hess[0, 1]
            if np.linalg.det(hess) > 1e-12 and hess[0, 0] < 0 and hess[1, 1] < 0:
                out[a, b] += np.clip(-np.linalg.solve(hess, grad), -1, 1)
    return out


DECODERS = {
    "argmax": decode_argmax,
    "quarter": decode_quarter,
    "DARK": decode_dark,
    "DARK σ=0": decode_dark_noblur,
    "DARK zero-pad": decode_dark_zero_pad,
    "DARK σ=0 at 1 px": decode_dark_noblur_at_edge,
    "DARK loop": decode_dark_loop,
}
COMPARED = [name for name in DECODERS if name != "DARK loop"]  # near the edge and on real models (loop = DARK)


def accuracy(rng):
    """{(sigma, noise): {decoder: (mean, max) error in heatmap px}}; also the largest |DARK - DARK loop|."""
    res, loop_gap = {}, 0.0
    for sigma in SIGMAS:
        for noise in NOISE:
            hm, centres = gaussians(rng, BATCHES * PERSONS, KEYPOINTS, sigma, noise)
            preds = {name: fn(hm) for name, fn in DECODERS.items()}
            loop_gap = max(loop_gap, float(np.abs(preds["DARK"] - preds["DARK loop"]).max()))
            res[(sigma, noise)] = {
                name: (float(e.mean()), float(e.max()))
                for name, e in ((nm, np.linalg.norm(p - centres, axis=2)) for nm, p in preds.items())
            }
    return res, loop_gap


def encoder_sigma(w: int) -> float:
    """The training targets' Gaussian sigma in heatmap px for a map w px wide (``models/codec.py``: 2 at 48 wide)."""
    return 2.0 * w / 48.0


def edge_gaussians(rng, n: int, h: int, w: int, near: float, far: float):
    """n clean maps (n, 1, h, w) float32 as the encoder makes targets (peak 1, ``encoder_sigma(w)``, sampled at pixel
    centres), each centre a uniform distance in [near, far) px from the outermost pixel centres of one edge (left,
    right, top or bottom at random) and uniform along it, ≥ MARGIN px from the other edges.
    Returns maps, centres (n, 2) (x, y) heatmap px, outward unit normals (n, 2) of the chosen edges."""
    side = rng.integers(0, 4, n)  # 0 left, 1 right, 2 top, 3 bottom
    d = rng.uniform(near, far, n)
    along_x, along_y = rng.uniform(MARGIN, w - 1 - MARGIN, n), rng.uniform(MARGIN, h - 1 - MARGIN, n)
    cx = np.select([side == 0, side == 1], [d, w - 1 - d], along_x)
    cy = np.select([side == 2, side == 3], [d, h - 1 - d], along_y)
    normals = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[side]
    inv = -0.5 / encoder_sigma(w) ** 2
    ex = np.exp(inv * (np.arange(w)[None, :] - cx[:, None]) ** 2)  # (n, w): separable, as the encoder
    ey = np.exp(inv * (np.arange(h)[None, :] - cy[:, None]) ** 2)  # (n, h)
    maps = (ey[:, :, None] * ex[:, None, :]).astype(np.float32)[:, None]
    return maps, np.stack([cx, cy], axis=1), normals


def edge_accuracy(rng, sizes=EDGE_SIZES, bins=EDGE_BINS, maps: int = EDGE_MAPS, names=None):
    """{((h, w), (near, far)): {decoder: (mean error, mean outward error)}} in heatmap px, ``maps`` maps per row
    (``edge_gaussians``), for the decoders ``names`` (default COMPARED). Outward error: the error's component along
    the edge's outward normal (positive: the decoded centre lies further out than the true one)."""
    names = COMPARED if names is None else names
    res = {}
    for h, w in sizes:
        for near, far in zip(bins[:-1], bins[1:]):
            hm, centres, normals = edge_gaussians(rng, maps, h, w, near, far)
            row = {}
            for name in names:
                err = DECODERS[name](hm)[:, 0].astype(np.float64) - centres  # (maps, 2)
                row[name] = (float(np.linalg.norm(err, axis=1).mean()), float((err * normals).sum(axis=1).mean()))
            res[((h, w), (near, far))] = row
    return res


def timing(rng, rounds: int = ROUNDS):
    """{decoder: (rounds,) seconds per call} on one (16, 17, 64, 48) float32 batch, the decoders timed in turns
    round by round (``common.interleaved_times``: the order rotates), so their per-round ratios share the
    machine's state."""
    hm, _ = gaussians(rng, PERSONS, KEYPOINTS, 2.0, 0.03)
    return interleaved_times({name: (lambda fn=fn: fn(hm)) for name, fn in DECODERS.items()}, rounds)


def labelled_persons(data: dict, source: str, names):
    """The persons of a checked COCO file (``evaluate.load_annotations``) to score: (rows, boxes (P, 4) [x, y, w, h]
    photo px), rows indexing ``data["annotations"]``: of the person category (``evaluate.match_keypoints``' for the
    keypoint names ``names``), not a crowd, with a labelled joint. A box is the ``bbox`` ``fasterpose eval`` runs the
    person on, else the tightest box around its labelled joints (``evaluate._labelled_box``)."""
    category = match_keypoints(data, list(names), source, need_sigmas=False).category["id"]
    rows, boxes = [], []
    for j, a in enumerate(data["annotations"]):
        kp = a.get("keypoints")
        if a.get("category_id") == category and not a.get("iscrowd", 0) and isinstance(kp, list) \
                and any(v > 0 for v in kp[2::3]):
            rows.append(j)
            boxes.append(_labelled_box(a, np.asarray(kp, np.float64).reshape(-1, 3)))
    if not rows:
        raise SystemExit(f"error: {source}: no labelled person to score")
    return rows, np.asarray(boxes, np.float64).reshape(-1, 4)


def model_heatmaps(predictors, data: dict, rows, boxes: np.ndarray, images: Path):
    """Each predictor's probability heatmaps of the persons ``rows`` (of ``data["annotations"]``) in ``boxes``
    (P, 4), every photo read once (in the file's frame, ``read_as_listed``) and cropped, run and turned into
    probabilities by the runtime's own code. Returns [(heatmaps (P, K, h, w) float32, affines (P, 2, 3) photo ->
    crop)] per predictor. On the first photo each predictor's ``predict`` must give what DARK finds on these maps
    (else SystemExit: the runtime changed under the benchmark)."""
    entries = {im["id"]: im for im in data["images"]}
    by_photo = {}  # image id -> positions in rows
    for i, j in enumerate(rows):
        by_photo.setdefault(data["annotations"][j]["image_id"], []).append(i)
    maps = [None] * len(predictors)
    affines = [np.zeros((len(rows), 2, 3)) for _ in predictors]
    as_stored, differ = 0, []
    for n, (image_id, idx) in enumerate(tqdm(by_photo.items(), desc="photos", unit="photo")):
        path, size = Path(images) / entries[image_id]["file_name"], listed_size(entries[image_id])
        try:
            photo, frame = read_as_listed(path, size)
        except InputReadError as e:
            raise SystemExit(f"error: {path}: {e} (wrong --images folder?)") from None
        as_stored += frame == "stored"
        if frame == "neither":
            differ.append((path, photo.shape[:2], size))
        for m, pred in enumerate(predictors):
            aff = crop_transforms(boxes[idx], pred.metadata)
            hm = pred._infer(pred._normalize(warp_crops(photo, aff, pred.input_size)))[0]
            if maps[m] is None:
                maps[m] = np.zeros((len(rows),) + hm.shape[1:], np.float32)
            maps[m][idx], affines[m][idx] = hm, aff
            if n == 0:
                mine = to_photo(decode_heatmaps(hm, edge_peaks=pred.metadata.edge_peaks)[0], aff, pred.input_size,
                                hm.shape)
                if not np.allclose(mine, pred.predict(photo, boxes[idx]).keypoints, atol=1e-3):
                    raise SystemExit(f"error: {pred.model_path}: its decoding of the heatmaps taken here does not "
                                     "give what predict() gives: the benchmark no longer follows the runtime's pipeline")
    for message in frame_warnings(as_stored, differ):
        print(f"warning: {message}", file=sys.stderr)
    return list(zip(maps, affines))


def to_photo(xy, affines, input_size, heatmap_shape):
    """Heatmap px (P, K, 2) of maps shaped (..., h, w) -> photo px (P, K, 2) float64 through crops of input_size
    (w, h) made by ``affines`` (P, 2, 3) (``geometry.heatmap_to_crop``, then the inverse affine)."""
    stride = (input_size[0] / heatmap_shape[-1], input_size[1] / heatmap_shape[-2])
    return apply_affine(heatmap_to_crop(xy, stride), invert_affine(affines))


def score_model(hm, affines, gt, vis, names, input_size, decoders=None):
    """One model's heatmaps decoded by every decoder and scored.

    hm (P, K, h, w) probabilities, affines (P, 2, 3), gt (P, K, 2) photo px, vis (P, K) bool, names the K keypoint
    names (the torso rule's). Returns {"joints", "edge_joints", "decoders": {name: {"pck@T": ..., "edge pck@T": ...,
    "diff pck@T" / "diff edge pck@T": [low, high] (paired 95 % bootstrap interval of the difference to DARK;
    absent for DARK), "edge_median_outward_px": median error along the nearest edge's outward normal, heatmap px,
    over the edge joints}}}: "edge" joints have their integer peak ≤ EDGE_PX from the map's edge; the torso is
    always measured on all of the person's joints."""
    decoders = COMPARED if decoders is None else decoders
    h, w = hm.shape[-2:]
    stride = (input_size[0] / w, input_size[1] / h)
    peak = argmax_heatmaps(hm)[0]
    px, py = peak[..., 0], peak[..., 1]
    edge = edge_distance(peak, h, w) <= EDGE_PX
    nearest = np.argmin(np.stack([px, w - 1 - px, py, h - 1 - py]), axis=0)  # (P, K): left, right, top, bottom
    normals = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[nearest]
    gt_hm = crop_to_heatmap(apply_affine(gt, affines), stride)
    torso = torso_sizes(gt, vis, names)
    counted = vis & np.isfinite(torso)[:, None] & (torso[:, None] > 0)
    subsets = {"": vis, "edge ": vis & edge}
    xy = {name: DECODERS[name](hm) for name in decoders}
    base = to_photo(xy["DARK"], affines, input_size, hm.shape)
    out = {"joints": int(counted.sum()), "edge_joints": int((counted & edge).sum()), "decoders": {}}
    for name in decoders:
        photo = to_photo(xy[name], affines, input_size, hm.shape)
        r = {}
        for label, use in subsets.items():
            for t in THRESHOLDS:
                r[f"{label}pck@{t:g}"] = pck(photo, gt, use, names, t, torso=torso)[0]
                if name != "DARK":
                    r[f"diff {label}pck@{t:g}"] = list(pck_interval(photo, gt, use, names, t, baseline=base,
                                                                   torso=torso))
        outward = ((xy[name] - gt_hm) * normals).sum(axis=-1)[counted & edge]
        r["edge_median_outward_px"] = float(np.median(outward)) if outward.size else float("nan")
        out["decoders"][name] = r
    return out


def real_models(ann: Path, images: Path, models, threads=None):
    """The real-model section: (Markdown, data, printable tables). models: ONNX paths."""
    source = shown_path(ann)
    data = load_annotations(ann)
    predictors = [PosePredictor(m, threads=threads) for m in models]
    rows, boxes = labelled_persons(data, source, predictors[0].keypoint_names)
    taken = model_heatmaps(predictors, data, rows, boxes, images)
    md, tables, results = [], [], []
    header = ["decoder"] + [f"{label}PCK@{t:g}" for label in ("", "edge ") for t in THRESHOLDS] + \
        ["edge median outward (hm px)"]
    for pred, (hm, aff) in zip(predictors, taken):
        ordered = in_model_order(data, pred.keypoint_names, source)
        kp = np.array([ordered["annotations"][j]["keypoints"] for j in rows], np.float64).reshape(len(rows), -1, 3)
        scored = score_model(hm, aff, kp[..., :2], kp[..., 2] > 0, pred.keypoint_names, pred.input_size)
        table_rows = []
        for name, r in scored["decoders"].items():
            cells = [name]
            for label in ("", "edge "):
                for t in THRESHOLDS:
                    key = f"{label}pck@{t:g}"
                    cell = f"{r[key]:.4f}"
                    if name != "DARK":
                        lo, hi = r[f"diff {key}"]
                        base = scored["decoders"]["DARK"][key]
                        cell += f" ({r[key] - base:+.4f}: {lo:+.4f} to {hi:+.4f})"
                    cells.append(cell)
            table_rows.append(cells + [f"{r['edge_median_outward_px']:+.3f}"])
        table = markdown_table(header, table_rows)
        name = shown_path(pred.model_path)
        h, w = hm.shape[-2:]
        md += [f"### `{name}`", "",
               f"{len(rows)} persons, {scored['joints']} labelled joints counted, {scored['edge_joints']} of them "
               f"with their peak ≤ {EDGE_PX} px from the edge of the {h}×{w} heatmap (input {pred.input_size[0]}×"
               f"{pred.input_size[1]}, box padding {pred.box_padding:g}, no flip test).", "", table, ""]
        tables.append(f"{name}\n{table}")
        results.append({"model": name, "persons": len(rows), "heatmap_hw": [h, w], "input_size": list(pred.input_size),
                        "box_padding": pred.box_padding, **scored})
    intro = (f"## Real models\n\nPersons of `{source}`, photos from `{shown_path(images)}`; each model run once, "
             "its probability heatmaps decoded by every decoder. PCK (torso) over all labelled joints and over the "
             f"joints whose integer peak is ≤ {EDGE_PX} heatmap px from the map's edge ('edge'); in brackets the "
             "difference to DARK (the runtime) and its paired 95 % bootstrap interval (persons resampled). Edge "
             "median outward: the median, over the edge joints, of the error (decoded − label, in heatmap px) "
             "along the nearest edge's outward normal (positive: further out than the label).")
    return "\n\n".join([intro] + ["\n".join(md)]), {"ann": source, "models": results}, tables


def run(rounds: int = ROUNDS, results_dir=None, real=None):
    """Every section; ``real``: None, or (ann, images, model paths, threads) for the real-model section."""
    real_md, real_data, real_tables = real_models(*real) if real is not None else (None, None, [])
    rng = np.random.default_rng(0)
    acc, loop_gap = accuracy(rng)
    rounds_s = timing(rng, rounds)
    edge = edge_accuracy(np.random.default_rng(1), maps=EDGE_MAPS)  # its own generator: the sections above draw as they always did
    times = {name: float(np.median(t)) for name, t in rounds_s.items()}
    vs_loop = {name: paired_ratio(t, rounds_s["DARK loop"]) for name, t in rounds_s.items()}
    names = list(DECODERS)
    acc_rows = [
        [f"{s:g}", "clean" if nz == 0 else f"{nz:.0%} noise"] + [f"{acc[(s, nz)][n][0]:.4f} / {acc[(s, nz)][n][1]:.3f}" for n in names]
        for s in SIGMAS
        for nz in NOISE
    ]
    edge_rows = [[f"{h}×{w}", f"{encoder_sigma(w):.3g}", f"{near:g}-{far:g}"]
                 + [f"{m:.3f} / {o:+.3f}" for m, o in edge[((h, w), (near, far))].values()]
                 for (h, w), (near, far) in edge]
    edge_table = markdown_table(["map h×w", "sigma", "distance"] + COMPARED, edge_rows)
    time_rows = [[n, f"{times[n] * 1e3:.3f}", f"{vs_loop[n]:.4f}"] for n in names]
    ratio = vs_loop["DARK"]
    body = "\n\n".join([
        f"## Accuracy\n\nError = distance to the true centre in heatmap px, mean / max over "
        f"{BATCHES * PERSONS * KEYPOINTS} maps per row ({H}×{W} maps, centres ≥ {MARGIN:g} px from the border).",
        markdown_table(["sigma", "maps"] + names, acc_rows),
        f"Largest |DARK − DARK loop| over all rows: {loop_gap:.2e} px (same maths, vectorised vs loop).",
        f"## Near the edge\n\nClean Gaussians as the training encoder makes them (`models/codec.py`: sigma 2·w/48 "
        f"heatmap px, sampled at pixel centres) on the bundled models' heatmap sizes, {EDGE_MAPS} maps per row, each "
        "centre a uniform distance (the row's range, heatmap px) from the outermost pixel centres of one edge (the "
        "map's outer edge is 0.5 px further out), ≥ "
        f"{MARGIN:g} px from the others. Cells: mean error / mean signed error along the edge's outward normal "
        "(positive: pushed outwards), heatmap px (× 4 for crop px). DARK's blur (sigma 2·w/48 as well) replicates "
        "the border pixel, which pulls centres near the edge outwards; σ=0 is exact on clean Gaussians.",
        edge_table,
        f"## Time\n\nOne batch of {PERSONS} persons × {KEYPOINTS} keypoints, {H}×{W} maps (sigma 2, 3 % noise); "
        f"median of {rounds} rounds, every decoder once per round in turns (the order rotated by one every round); "
        "time / DARK loop is the median, over every window of consecutive rounds in which each decoder held every "
        "position once, of the window's geometric-mean ratio. Measured on a shared machine (see the load "
        "average above): absolute times are indicative, the ratios are the point.",
        markdown_table(["decoder", "ms / batch", "time / DARK loop"], time_rows),
        f"Vectorised DARK takes {ratio:.3f} of the loop's time ({1 / ratio:.0f}× faster); target ≤ 0.25: "
        f"{'met' if ratio <= 0.25 else 'NOT met'}.",
    ] + ([real_md] if real_md else []))
    data = {
        "heatmap_hw": [H, W], "persons": PERSONS, "keypoints": KEYPOINTS, "margin_px": MARGIN,
        "accuracy": [
            {"sigma": s, "noise": nz, "errors_px": {n: {"mean": m, "max": x} for n, (m, x) in acc[(s, nz)].items()}}
            for (s, nz) in acc
        ],
        "max_abs_dark_vs_loop_px": loop_gap,
        "edge": {
            "maps_per_row": EDGE_MAPS,
            "rows": [{"heatmap_hw": [h, w], "sigma": encoder_sigma(w), "distance_px": [near, far],
                      "errors_px": {n: {"mean": m, "mean_outward": o} for n, (m, o) in row.items()}}
                     for ((h, w), (near, far)), row in edge.items()],
        },
        "rounds": rounds,
        "median_seconds": times,
        "time_over_loop": vs_loop,
        "vectorised_over_loop_time": ratio,
    }
    if real_data is not None:
        data["real_models"] = real_data
    path = write_results("decoding", "Heatmap decoding: accuracy and speed", body, data, results_dir=results_dir)
    print(markdown_table(["sigma", "maps"] + names, acc_rows))
    print("\nNear the edge (mean error / mean outward error, heatmap px):")
    print(edge_table)
    print(markdown_table(["decoder", "ms / batch", "time / DARK loop"], time_rows))
    for table in real_tables:
        print(f"\n{table}")
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.decoding", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=positive_int, default=ROUNDS,
                    help=f"timing rounds, every decoder once per round (default {ROUNDS})")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where to write decoding.{md,json} (default benchmarks/results)")
    ap.add_argument("--ann", type=Path, default=None,
                    help="COCO keypoint file: also decode real models' heatmaps of its labelled persons")
    ap.add_argument("--images", type=Path, default=IMAGES, help="the photos of --ann (default: LSPET's)")
    ap.add_argument("--models", default=MODELS,
                    help=f"with --ann: comma-separated bundled model names or ONNX paths (default {MODELS})")
    ap.add_argument("--threads", type=positive_int, default=None, help="with --ann: the models' threads")
    a = ap.parse_args(argv)
    real = None
    if a.ann is not None:
        if not a.ann.is_file():
            raise SystemExit(f"error: {a.ann}: file not found")
        models = [resolve_model(m.strip()) for m in a.models.split(",") if m.strip()]
        if not models:
            raise SystemExit("error: --models names no model")
        real = (a.ann, a.images, models, a.threads)
    run(a.rounds, a.results_dir, real)


if __name__ == "__main__":
    run_main(main)
