"""Find the person in a photo without boxes: the pose model itself, run on a grid of windows.

The model is calibrated for the tight box around a person. One box over the whole photo sees a small person at a
fraction of the crop's pixels, and refining from there often never finds it. So a photo without boxes is also cut
into windows half its long side wide (its short side on a photo over twice as wide as tall: a row along it),
overlapping by half (a 3 x 2 grid on a 4:3 photo), every window and the whole photo go through the network in one
batch, and the few whose poses score best (mean joint score) are refined; the best after refining is the photo's
person. Asked for several persons (``max_persons``), it refines more windows and also reports the further persons
that score well and are not made of a reported person's joints (``pick_persons``). Asked to (``min_presence``), a
person the search (or the whole photo) found is reported only when it is there at all (``keep_present``: the model's
presence head, else its joints' confidences), so a photo of a cat or a landscape gets no skeleton (docs/usage.md,
"Photos of nobody"). ``tracking.find_poses`` runs it; ``python -m benchmarks.tracking`` measures it (docs/usage.md,
"Photos without person boxes").
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .presence import PRESENCE_KEY

__all__ = ["search_windows", "best_rows", "pick_persons", "presence", "person_presence", "keep_present",
           "min_presence_for", "head_min_presence", "DEFAULT_MIN_PRESENCE", "SEARCH_WINDOW", "SEARCH_OVERLAP",
           "SEARCH_CANDIDATES", "SEARCH_MAX_ACROSS", "PERSON_SCORE", "PRESENT_PERSON_SCORE", "PERSON_PRESENCE",
           "SHARED_JOINTS"]

# Chosen on 1,000 training persons (lspet_train1k.json), not on validation: windows of 0.4-0.6 of the long side,
# steps of 0.5-1 window and 2-5 refined windows scored PCK@0.2 0.786-0.811, this setting 0.811 (whole photo: 0.752).
SEARCH_WINDOW = 0.5  # window side, as a fraction of the photo's long side
SEARCH_OVERLAP = 0.5  # neighbouring windows overlap by this fraction of a side
# A photo more than 1 / SEARCH_WINDOW times as wide as tall (or tall as wide) gets windows of its short side, not
# half its long side: those stuck out of it, 3 whatever its length, each squeezing several persons into one crop
# (5 LSPET photos side by side: none found). A panorama's windows are still at least 1 / SEARCH_MAX_ACROSS of its
# long side (then taller than it): at most 2 x SEARCH_MAX_ACROSS - 1 windows at the default overlap.
SEARCH_MAX_ACROSS = 8
SEARCH_CANDIDATES = 3  # windows refined per person asked for (each up to REFINE_PASSES more model calls)
# Several persons (max_persons > 1): a further person needs a mean joint score of PERSON_SCORE, and fewer than
# SHARED_JOINTS of its confident joints (score >= SHARED_JOINT_SCORE) within SHARED_NEAR x a reported person's box
# diagonal of that person's joints (else it is that person seen again, or a pose made of its limbs). Looked at on
# 150 pairs of training photos side by side (lspet_train1k.json), 6 windows refined, all persons reported: a score
# of 0.2 / 0.3 found 1.40 / 1.35 of the 2 labelled persons per photo, with 0.57 / 0.44 others; shares of 0.2-0.5
# moved the others by 0.03 (0.4 with a box-overlap duplicate rule: 1.19 found, 0.28 others).
PERSON_SCORE = 0.3
# With a presence head, a further person needs a mean joint score of PRESENT_PERSON_SCORE and the head's chance
# PERSON_PRESENCE that a person is in its box instead: a waist-up person scores under PERSON_SCORE (half its joints
# are out of the crop; examples/astronaut.jpg twice side by side: 0.24 and 0.23, presence 0.99 and 0.98, so only one
# was reported). Chosen on 500 pairs of training photos side by side (lspet_train1k.json) among scores of 0-0.2 and
# chances of 0.3-0.95: up to 2 persons, 1.446 of 2 found with 0.436 others (mean score 0.3 alone: 1.426, 0.416),
# PCK@0.2 0.7427 against 0.7358; up to 5: 1.472 and 0.508 (1.448, 0.490). On the 500 validation pairs: 1.404 and
# 0.444 (1.344, 0.428), PCK@0.2 0.661 against 0.642; on the 1,000 validation photos (one labelled person each, often
# others) 0.307 others per photo against 0.291 (docs/usage.md, "Several persons").
PRESENT_PERSON_SCORE = 0.2
PERSON_PRESENCE = 0.9
# Without boxes, a model with a presence head reports a person only when the head gives it at least the chance its
# metadata block records (``presence.threshold``, the operating point it was fitted for: ``head_min_presence``); this
# value where it records none. Both bundled heads record 0.3. Measured (python -m benchmarks.person_presence,
# docs/usage.md, "Photos of nobody") with the search on 82 person-free pictures neither head was fitted on, 1,000
# validation persons and 325 waist-up close-ups: at 0.3 the default leaves a person on 5 of the 82 (0.5: 3) and drops 16
# persons (PCK@0.2 -0.0020) and 1 close-up; the fast model 5 of 82, 21 persons and 1 close-up (session 50's heads;
# session 47's: 9, 20 and 3; 7, 22 and 7). 0.3 rather than even odds: a person lost costs more than a guess left on an
# empty photo, which its presence value still flags.
DEFAULT_MIN_PRESENCE = 0.3
SHARED_JOINTS = 0.2
SHARED_JOINT_SCORE = 0.2
SHARED_NEAR = 0.1


def search_windows(shape, window: float = SEARCH_WINDOW, overlap: float = SEARCH_OVERLAP) -> np.ndarray:
    """The boxes a search runs: the whole photo first, then square windows of ``window`` x the long side (no more
    than the short side, unless that is under 1 / SEARCH_MAX_ACROSS of the long side) on a grid covering the photo,
    neighbours overlapping by ``overlap`` of a side (the last row and column flush with the photo's far edges). The
    photo's edges are at -0.5 and W - 0.5 (pixel centres at integers), as ``PosePredictor.predict``'s whole-photo
    box [-0.5, -0.5, W, H].

    shape: the photo's (H, W, ...). Returns boxes (M, 4) float32 [x, y, w, h], M = 1 + columns x rows.
    """
    h, w = float(shape[0]), float(shape[1])
    if not (0.0 < window <= 1.0) or not (0.0 <= overlap < 1.0):
        raise ValueError(f"window must be in (0, 1] and overlap in [0, 1), got {window} and {overlap}")
    # up to 1 / window times as wide as tall (or tall as wide): window x the long side, as chosen; wider, a row of
    # windows the photo's height along it, not 3 taller than the photo (a panorama's: 1 / SEARCH_MAX_ACROSS of it)
    side = min(window * max(h, w), max(min(h, w), max(h, w) / SEARCH_MAX_ACROSS))
    step = (1.0 - overlap) * side

    def starts(length: float) -> np.ndarray:
        count = int(np.ceil(max(length - side, 0.0) / step - 1e-9)) + 1
        return np.linspace(0.0, max(length - side, 0.0), count) - 0.5

    xs, ys = np.meshgrid(starts(w), starts(h))
    grid = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, side), np.full(xs.size, side)], axis=1)
    return np.concatenate([[[-0.5, -0.5, w, h]], grid]).astype(np.float32)


def best_rows(scores, count: int) -> np.ndarray:
    """Indices of the ``count`` persons with the highest mean joint score, best first. scores (N, K)."""
    mean = np.asarray(scores, np.float64).mean(axis=1)
    return np.argsort(-mean, kind="stable")[:max(int(count), 0)]


def presence(scores) -> np.ndarray:
    """How surely each person is there: the mean of the better half (K // 2, at least 1) of its joint values.
    scores (N, K) (raw scores or confidences). Returns (N,) float64."""
    sc = np.asarray(scores, np.float64)
    half = max(sc.shape[1] // 2, 1)
    return np.sort(sc, axis=1)[:, -half:].mean(axis=1)


def head_min_presence(predictor) -> float:
    """The chance ``predictor``'s presence head was fitted to call a person at: the ``threshold`` its metadata block
    records (``python -m export.presence_head --threshold``), DEFAULT_MIN_PRESENCE where it records none."""
    # the model's metadata checked its block on loading (presence.presence_problem): a threshold there is sound
    block = getattr(getattr(predictor, "metadata", None), "extra", {}).get(PRESENCE_KEY) or {}
    return float(block.get("threshold", DEFAULT_MIN_PRESENCE))


def min_presence_for(predictor, min_presence: Optional[float] = None) -> float:
    """``min_presence`` as given, or (None) the default for ``predictor``'s model: its head's own threshold
    (``head_min_presence``) when it has a presence head (``predictor.has_presence``), else 0, every guess (its joints
    alone would also drop persons seen from the waist up: docs/usage.md, "Photos of nobody")."""
    if min_presence is not None:
        value = float(min_presence)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"min_presence must be in [0, 1], got {min_presence!r}")
        return value
    return head_min_presence(predictor) if getattr(predictor, "has_presence", False) else 0.0


def person_presence(result) -> np.ndarray:
    """How surely each person of PoseResult ``result`` is there, (N,) float64 in [0, 1]: the model's presence head
    (``result.presence``, the chance a person is in the crop at all) when it has one; else ``presence`` of the
    joints' confidences when it has a score table (0.5: the better half of the joints at even odds of being
    right), else of the raw scores."""
    if result.presence is not None:
        return np.asarray(result.presence, np.float64)
    confidences = result.confidences
    return presence(result.scores if confidences is None else confidences)


def keep_present(result, min_presence: float = 0.0):
    """The persons of PoseResult ``result`` who are there: whose ``person_presence`` reaches ``min_presence``.
    0 keeps everyone. Returns a PoseResult (the same one when all stay). Measured on validation photos, close-ups
    and photos of nobody: ``python -m benchmarks.person_presence``."""
    if min_presence <= 0 or not len(result):
        return result
    keep = person_presence(result) >= min_presence
    return result if keep.all() else result.take(np.flatnonzero(keep))


def pick_persons(keypoints, scores, boxes, max_persons: int = 1, min_score: Optional[float] = None,
                 max_shared: float = SHARED_JOINTS, presence=None,
                 min_presence: float = PERSON_PRESENCE) -> np.ndarray:
    """Which of a search's refined candidates to report: the best (highest mean joint score) always, then, best
    first, up to ``max_persons`` - 1 more whose mean joint score is at least ``min_score`` (with ``presence``, the
    presence head's chances, also whose chance is at least ``min_presence``) and of whose confident joints fewer
    than ``max_shared`` lie near any one reported person's confident joints (within SHARED_NEAR x that person's box
    diagonal). ``min_score`` None: PRESENT_PERSON_SCORE with ``presence``, else PERSON_SCORE.

    keypoints (N, K, 2), scores (N, K), boxes (N, 4) [x, y, w, h], presence (N,) or None. Returns row indices (M,),
    best first.
    """
    kp, sc, bx = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64), np.asarray(boxes, np.float64)
    there = None if presence is None else np.asarray(presence, np.float64).reshape(-1)
    if there is not None and there.shape != (len(sc),):
        raise ValueError(f"presence has {there.size} values for {len(sc)} persons")
    if min_score is None:
        min_score = PERSON_SCORE if there is None else PRESENT_PERSON_SCORE
    mean = sc.mean(axis=1)
    order = np.argsort(-mean, kind="stable")  # as best_rows
    if not len(order) or max_persons < 1:
        return order[:0]
    kept = [int(order[0])]
    confident = sc >= SHARED_JOINT_SCORE
    for i in order[1:]:
        if len(kept) >= max_persons:
            break
        if mean[i] < min_score:
            break  # best first: no later one scores enough either
        if there is not None and not there[i] >= min_presence:  # (NaN: not there)
            continue
        mine = kp[i][confident[i]]  # (J, 2)
        if not len(mine):
            continue
        for j in kept:  # a few persons: a loop over them, the joints vectorised
            theirs = kp[j][confident[j]]
            if not len(theirs):
                continue
            nearest = np.linalg.norm(mine[:, None, :] - theirs[None, :, :], axis=2).min(axis=1)  # (J,)
            if np.mean(nearest < SHARED_NEAR * np.hypot(bx[j, 2], bx[j, 3])) >= max_shared:
                break
        else:
            kept.append(int(i))
    return np.array(kept, np.int64)
