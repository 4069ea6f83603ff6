"""What a joint's score means: the model's measured map from heatmap peak to the chance the joint is right.

A sigmoid heatmap's peak is not a probability of anything a user can check. For the bundled default, joints
scored 0.4-0.5 land within 0.2 torso of their labels 76 % of the time, and the fast model's joints at the same
score more often: the raw scores of two models do not mean the same thing. A model may carry, in its metadata
key ``score_calibration``, a monotone table measured on labelled persons new to it (``python -m
export.score_calibration``): at peak ``scores[i]``, the share ``chances[i]`` of joints within ``within`` torso
of their labels (PCK's rule). ``PoseResult.confidences`` reads a score through it.

Tables are kept for plain and flip-tested runs (the flip test's averaged heatmaps peak lower), each for persons in
given boxes (measured with the tight boxes the models are calibrated for; refining them changes nothing
measurable) and for persons the search picked: the search keeps the best-scoring of several windows, and a
maximum of several scores is higher than the score of the one person the caller boxed (for the default, read
through the boxes' table, searched persons' joints average a confidence of 0.767 against 0.724 right:
``python -m benchmarks.score_meaning``).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["ScoreCalibration", "CALIBRATION_KEY", "DEFAULT_BINS", "fit_isotonic", "cross_fitted", "table_problem"]

CALIBRATION_KEY = "score_calibration"  # in the model's ``fasterpose`` metadata
# tables: persons in given boxes, plain and flip-tested; persons the search picked, likewise
_MODES = ("plain", "flip", "searched", "searched_flip")
DEFAULT_BINS = 20  # equal-count score bins a fit starts from


@dataclass(frozen=True, eq=False)
class ScoreCalibration:
    """A monotone map from heatmap peak to the chance the joint is within ``within`` torso of its label.

    scores (T,) increasing peaks; chances (T,) non-decreasing, in [0, 1]; between knots the map is linear,
    outside them it holds the end values. ``source``: what it was measured on (for a model card).
    """

    scores: np.ndarray
    chances: np.ndarray
    within: float = 0.2
    source: str = ""

    def __post_init__(self):
        # One table serves every result of a predictor: read-only copies, so changing one result's cannot
        # change the others' (or the predictor's own).
        for name in ("scores", "chances"):
            table = np.array(getattr(self, name), np.float64)
            table.flags.writeable = False
            object.__setattr__(self, name, table)

    def __reduce__(self):
        # through the constructor, so a copy's tables are read-only too (unpickling would skip __post_init__)
        return type(self), (self.scores, self.chances, self.within, self.source)

    def __call__(self, scores) -> np.ndarray:
        """scores (...) raw heatmap peaks -> (...) float32 chances in [0, 1]."""
        return np.interp(np.asarray(scores, np.float64), self.scores, self.chances).astype(np.float32)

    @classmethod
    def from_metadata(cls, extra: dict, flip_test: bool, searched: bool = False) -> Optional["ScoreCalibration"]:
        """The table for plain or flip-tested runs, of persons in given boxes or (``searched``) picked by the
        search, in a model's metadata ``extra``; a searched person without its own table takes the boxes' one;
        None when the model has no table for such runs."""
        block = extra.get(CALIBRATION_KEY)
        if not isinstance(block, dict):
            return None
        keys = ["searched_flip" if flip_test else "searched"] if searched else []
        keys.append("flip" if flip_test else "plain")
        table = next((block[k] for k in keys if isinstance(block.get(k), dict)), None)
        if table is None:
            return None
        return cls(np.asarray(table["scores"], np.float64), np.asarray(table["chances"], np.float64),
                   float(block.get("within", 0.2)), str(block.get("source", "")))


def _number(value: Any) -> bool:
    """A real number, numpy's scalars too (float32, int64...): not a bool (numpy's bool is no numbers.Real) nor a
    string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """A ``_number`` that float64 holds: not NaN, an infinity, or a JSON integer too large for a float."""
    try:
        return _number(value) and math.isfinite(value)
    except OverflowError:
        return False


def table_problem(block: Any) -> Optional[str]:
    """Why a ``score_calibration`` metadata block is unusable, or None when it is sound: {"within": w > 0,
    "plain": table, and optionally "flip", "searched", "searched_flip" tables, ...provenance}, each table
    {"scores": increasing numbers in [0, 1], "chances": as many non-decreasing numbers in [0, 1]}."""
    if not isinstance(block, dict):
        return f"{CALIBRATION_KEY} must be an object"
    within = block.get("within", 0.2)
    if not (_finite(within) and within > 0):
        return f"{CALIBRATION_KEY}.within must be a positive number, got {within!r}"
    if "plain" not in block:
        return f"{CALIBRATION_KEY} lacks its 'plain' table"
    for mode in _MODES:
        if mode not in block:
            continue
        table = block[mode]
        if not isinstance(table, dict):
            return f"{CALIBRATION_KEY}.{mode} must be an object"
        xs, ys = table.get("scores"), table.get("chances")
        if not (isinstance(xs, list) and isinstance(ys, list) and xs and len(xs) == len(ys)
                and all(_number(v) for v in xs + ys)):
            return f"{CALIBRATION_KEY}.{mode} needs 'scores' and 'chances': two lists of as many numbers"
        if not all(_finite(v) for v in xs + ys):
            return f"{CALIBRATION_KEY}.{mode}: scores and chances must lie in [0, 1]"
        x, y = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        if not ((x >= 0).all() and (x <= 1).all() and (y >= 0).all() and (y <= 1).all()):
            return f"{CALIBRATION_KEY}.{mode}: scores and chances must lie in [0, 1]"
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
            return f"{CALIBRATION_KEY}.{mode}: scores must increase and chances must not decrease"
    return None


def fit_isotonic(scores, hits, bins: int = DEFAULT_BINS) -> Tuple[np.ndarray, np.ndarray]:
    """The non-decreasing chance of a hit as a function of score, as a knot table.

    scores (M,) floats; hits (M,) bools. The joints are sorted by score and cut into ``bins`` equal-count bins;
    pool-adjacent-violators merges neighbouring bins until their hit rates never fall. Returns (knots (T,)
    strictly increasing mean scores of the merged bins, chances (T,) their hit rates), T <= bins.
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    h = np.asarray(hits, np.float64).reshape(-1)
    if s.size == 0 or s.size != h.size:
        raise ValueError(f"need as many scores as hits, at least one; got {s.size} and {h.size}")
    order = np.argsort(s, kind="stable")
    parts = [p for p in np.array_split(order, min(bins, s.size)) if p.size]
    # Each block: [sum of hits, joints, sum of scores]; merged while a block's rate is not below the next one's
    # (chances rise strictly) or their mean scores meet (bins of one repeated score: knots rise strictly).
    blocks: list = []
    for p in parts:
        blocks.append([h[p].sum(), float(p.size), s[p].sum()])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]
                                   or blocks[-2][2] / blocks[-2][1] >= blocks[-1][2] / blocks[-1][1]):
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    arr = np.asarray(blocks)
    return arr[:, 2] / arr[:, 1], arr[:, 0] / arr[:, 1]


def cross_fitted(fit_scores, fit_hits, fit_use, scores, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Two-fold cross-fitting: each person's ``scores`` read through the table fitted (``fit_isotonic``) on the
    other half of the persons (even rows against odd rows), so no joint is read through a table fitted on it.

    fit_scores (N, K), fit_hits (N, K) bool, fit_use (N, K) bool: the joints to fit on (the same persons, possibly
    run another way); scores (N, K) to read. Returns (N, K) float64 chances, NaN where ``scores`` is not finite.
    """
    scores = np.asarray(scores, np.float64)
    half = (np.arange(len(scores)) % 2 == 0)[:, None]
    out = np.full(scores.shape, np.nan)
    for fit_on in (half, ~half):
        knots, chances = fit_isotonic(fit_scores[fit_use & fit_on], fit_hits[fit_use & fit_on], bins)
        out = np.where(~fit_on, np.interp(np.nan_to_num(scores), knots, chances), out)
    return np.where(np.isfinite(scores), out, np.nan)
