"""Accuracy metrics shared by training validation, ``fasterpose eval`` and the benchmarks (numpy only)."""
from __future__ import annotations

import numpy as np

from .skeletons import TORSO_NAMES, flip_permutation, torso_pairs

# pck_interval draws at most this many resampled indices at a time (32 MB of int64)
_RESAMPLE_ELEMENTS = 1 << 22
# Body orientation bins of pck_by_orientation: (name, lowest angle, highest angle) in degrees from upright.
ORIENTATION_BINS = (("upright", 0.0, 30.0), ("tilted", 30.0, 90.0), ("inverted", 90.0, 180.0))


def torso_sizes(gt, visible, names):
    """Torso size per person: left shoulder to right hip, else right shoulder to left hip; NaN if neither.

    gt (N, K, 2), visible (N, K) bool, names: K keypoint names. Returns (N,) float64.
    """
    pairs = torso_pairs(names)
    if pairs is None:
        raise ValueError(f"PCK needs {TORSO_NAMES}")
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    sizes = np.full(gt.shape[0], np.nan)
    for a, b in reversed(pairs):  # the first pair wins where both are labelled and apart
        length = np.linalg.norm(gt[:, a] - gt[:, b], axis=1)
        ok = vis[:, a] & vis[:, b] & np.isfinite(length) & (length > 0)  # else the other diagonal, as documented
        sizes = np.where(ok, length, sizes)
    return sizes


def pck(pred, gt, visible, names, threshold=0.2, torso=None):
    """PCK@threshold, torso-normalised, over labelled joints of persons with a measurable torso.

    pred, gt (N, K, 2); visible (N, K); torso: (N,) sizes to use instead of measuring them on gt (where the torso's
    joints are labelled but not counted, e.g. cut off the photo). Returns (overall, per_keypoint (K,), counted);
    overall is NaN when no joint is counted, as is per_keypoint[k] for a joint never counted.
    """
    hit, use = _hits(pred, gt, visible, names, threshold, torso)
    counted = use.sum(axis=0)
    per_kp = np.where(counted > 0, hit.sum(axis=0) / np.maximum(counted, 1), np.nan)
    # NaN, not 0.0, when no joint is counted: "nothing to score" must not read as "every joint missed"
    overall = float(hit.sum() / use.sum()) if use.any() else float("nan")
    return overall, per_kp, int(use.sum())


def pck_interval(pred, gt, visible, names, threshold=0.2, level=0.95, reps=2000, seed=0, baseline=None,
                 groups=None, torso=None):
    """Bootstrap confidence interval of PCK: persons are resampled with replacement ``reps`` times (a person's
    joints stay together, as they are not independent). It says how much the figure owes to which persons the
    validation set happens to hold.

    With ``baseline`` (another model's predictions (N, K, 2) for the same persons) it is the interval of the
    difference PCK(pred) − PCK(baseline), both scored on each resample (paired): much narrower than the two
    separate intervals, and the one to read when asking whether a model is better.

    With ``groups`` ((N,) labels, e.g. the video each frame's person comes from) whole groups are resampled
    instead of persons: rows that are not independent of each other must stay together.

    pred, gt (N, K, 2); visible (N, K); torso as in ``pck``. Returns (low, high); (nan, nan) when no joint is
    counted.
    """
    hit, use = _hits(pred, gt, visible, names, threshold, torso)
    if baseline is not None:
        hit = hit.astype(np.int64) - _hits(baseline, gt, visible, names, threshold, torso)[0]
    hits, counted = hit.sum(axis=1), use.sum(axis=1)
    if groups is not None:  # one row per group: its hits and counted joints summed
        _, label = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)
        hits, counted = np.bincount(label, hits), np.bincount(label, counted)
    keep = counted > 0
    hits, counted = hits[keep], counted[keep]
    if not len(counted):
        return float("nan"), float("nan")
    # Resamples are drawn in chunks so memory stays bounded for large N (one draw of reps x N indices is several
    # GB at 100,000 persons); the generator yields the same indices either way, so the interval does not change.
    rng, n = np.random.default_rng(seed), len(counted)
    rows = max(1, _RESAMPLE_ELEMENTS // n)
    values = np.empty(reps)
    for start in range(0, reps, rows):
        idx = rng.integers(0, n, (min(rows, reps - start), n))
        values[start:start + len(idx)] = hits[idx].sum(axis=1) / counted[idx].sum(axis=1)
    tail = 50 * (1 - level)
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _hits(pred, gt, visible, names, threshold, torso=None):
    """(hit, use), both (N, K) bool: joint within threshold × torso; joint counted (labelled, torso measurable)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    torso = torso_sizes(gt, vis, names) if torso is None else np.asarray(torso, np.float64).reshape(-1)
    use = vis & np.isfinite(torso)[:, None] & (torso[:, None] > 0)
    hit = (np.linalg.norm(pred - gt, axis=2) <= threshold * np.nan_to_num(torso)[:, None]) & use
    return hit, use


def mirror_hits(pred, gt, visible, names, flip_pairs, threshold=0.2):
    """PCK hits of each prediction as it is and with every left and right exchanged.

    pred, gt (N, K, 2); visible (N, K); flip_pairs: [[left, right], ...]. Returns (hit, mirrored, use), each
    (N, K) bool: hit as predicted; hit once the prediction's sides are exchanged; joint counted (labelled, torso
    measurable).
    """
    pred = np.asarray(pred, dtype=np.float64)
    hit, use = _hits(pred, gt, visible, names, threshold)
    mirrored, _ = _hits(pred[:, flip_permutation(len(names), flip_pairs)], gt, visible, names, threshold)
    return hit, mirrored, use


def left_right_confusions(pred, gt, visible, names, flip_pairs, threshold=0.2):
    """How many PCK misses are left/right confusions — the model's or the label's (sports photos and
    crowd-sourced labels mix up "the person's left" and "the left of the photo").

    pred, gt (N, K, 2); visible (N, K); flip_pairs: [[left, right], ...] keypoint indices. Returns a dict:
    ``misses`` (joints that miss), ``mirror_hits`` (of those, joints whose prediction lands on the label of
    their mirror partner), ``persons_mirrored`` (persons whose prediction, with every left and right
    exchanged, hits more joints than as it is) and ``pck_mirror_forgiven`` (PCK when each person may be
    scored as predicted or mirrored, whichever hits more: an upper bound of what fixing the sides would buy).
    """
    hit, mirrored, use = mirror_hits(pred, gt, visible, names, flip_pairs, threshold)
    total = max(int(use.sum()), 1)
    perm = flip_permutation(len(names), flip_pairs)
    # mirrored[:, k] scores the partner's prediction on k's label; a joint's own prediction on its partner's label
    # is mirrored[:, perm[k]] (the partner labelled and measurable there)
    on_partner = mirrored[:, perm] & (perm != np.arange(len(perm)))
    return {
        "misses": int((use & ~hit).sum()),
        "mirror_hits": int((use & ~hit & on_partner).sum()),
        "persons_mirrored": int((mirrored.sum(axis=1) > hit.sum(axis=1)).sum()),
        "pck_mirror_forgiven": float(np.maximum(hit.sum(axis=1), mirrored.sum(axis=1)).sum() / total),
    }


def body_orientation(gt, visible, names):
    """Angle (deg, 0-180) of each person's body axis from the photo's up direction: 0 for a person standing,
    180 for one upside down. The axis runs from the hips' midpoint to the shoulders' midpoint.

    gt (N, K, 2), visible (N, K); names must hold left/right_shoulder and left/right_hip (else ValueError).
    Returns (N,) float64, NaN where a shoulder or a hip is unlabelled.
    """
    pairs = torso_pairs(names)
    if pairs is None:
        raise ValueError(f"body orientation needs {TORSO_NAMES}")
    (l_sh, r_hip), (r_sh, l_hip) = pairs
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    axis = (gt[:, l_sh] + gt[:, r_sh] - gt[:, l_hip] - gt[:, r_hip]) / 2
    angle = np.degrees(np.arctan2(np.abs(axis[:, 0]), -axis[:, 1]))  # photo y grows downwards
    known = vis[:, [l_sh, r_sh, l_hip, r_hip]].all(axis=1) & (np.hypot(axis[:, 0], axis[:, 1]) > 0)
    return np.where(known, angle, np.nan)


def pck_by_orientation(pred, gt, visible, names, threshold=0.2):
    """PCK per body orientation (:data:`ORIENTATION_BINS`, then "unknown" for persons whose shoulders or hips
    are not all labelled). Sports photos hold many persons sideways or upside down, and models are usually
    much weaker there: this tells how much of the error that is.

    pred, gt (N, K, 2); visible (N, K). Returns [{"orientation", "degrees" ([low, high] or None), "persons",
    "joints", "pck" (None without joints)}, ...] in bin order.
    """
    hit, use = _hits(pred, gt, visible, names, threshold)
    angle = body_orientation(gt, visible, names)
    bins = [(name, [low, high], (angle >= low) & ((angle < high) | (high >= 180)))
            for name, low, high in ORIENTATION_BINS] + [("unknown", None, np.isnan(angle))]
    out = []
    for name, degrees, member in bins:
        member = member & use.any(axis=1)
        joints = int(use[member].sum())
        out.append({"orientation": name, "degrees": degrees, "persons": int(member.sum()), "joints": joints,
                    "pck": float(hit[member].sum() / joints) if joints else None})
    return out


# Score bins of score_reliability: tenths of [0, 1].
SCORE_BIN_EDGES = tuple(i / 10 for i in range(11))


def score_reliability(pred, gt, visible, names, scores, threshold=0.2, edges=SCORE_BIN_EDGES):
    """How often a joint given a score is right: PCK@threshold of the joints in each score bin, and the
    calibration error of reading a score as that chance.

    pred, gt (N, K, 2); visible (N, K); scores (N, K) in [0, 1] (raw heatmap peaks, or confidences); edges:
    increasing bin edges (the last bin holds its upper edge). Returns {"bins": [{"low", "high", "joints",
    "mean_score", "pck"}, ...] (bins without joints left out), "ece": the joint-weighted mean of
    |pck − mean_score| over the bins (expected calibration error; 0 when a score is the chance the joint is
    right; None when no joint counts), "joints"}; counted joints as in ``pck``, those with a non-finite score left
    out.
    """
    hit, use = _hits(pred, gt, visible, names, threshold)
    sc = np.asarray(scores, np.float64)
    use = use & np.isfinite(sc)
    s, h = sc[use], hit[use]
    edges = np.asarray(edges, np.float64)
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    joints = np.bincount(which, minlength=len(edges) - 1)
    hits = np.bincount(which, h.astype(np.float64), minlength=len(edges) - 1)
    total = np.bincount(which, s, minlength=len(edges) - 1)
    bins = [{"low": float(edges[i]), "high": float(edges[i + 1]), "joints": int(joints[i]),
             "mean_score": float(total[i] / joints[i]), "pck": float(hits[i] / joints[i])}
            for i in np.flatnonzero(joints)]
    ece = float(np.abs(hits - total).sum() / len(s)) if len(s) else None  # None, not NaN: reports are JSON
    return {"bins": bins, "ece": ece, "joints": int(len(s))}


def oks(pred, gt, visible, areas, sigmas):
    """COCO's object keypoint similarity, broadcast: the mean over labelled joints of exp(-d^2 / (2 area (2 sigma)^2)),
    d the distance between predicted and labelled joint (pycocotools' ``computeOks`` for persons with labelled joints).

    pred, gt (..., K, 2); visible (..., K) bool (the labelled joints); areas (...) the labelled persons' areas;
    sigmas (K,). Returns (...) float64 in [0, 1]; 0 for a person without a labelled joint.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    vis = np.asarray(visible, bool)
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    area = np.asarray(areas, np.float64)[..., None] + np.spacing(1)
    e = ((pred - gt) ** 2).sum(axis=-1) / var / area / 2.0
    labelled = vis.sum(axis=-1)
    return np.where(labelled > 0, (np.exp(-e) * vis).sum(axis=-1) / np.maximum(labelled, 1), 0.0)

