"""Steadier keypoints in videos: the One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) on followed persons.

The model sees every frame afresh, so a joint that holds still still wobbles a little from frame to frame. The
One-Euro filter is an exponential low-pass filter whose cutoff frequency rises with the joint's speed: a slow
joint is smoothed hard (no wobble), a fast one hardly at all (little lag). Speed is counted in person-box sizes
per second, so one setting fits near and far persons. ``python -m benchmarks.smoothing`` measures both sides.
"""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from .predictor import PoseResult

__all__ = ["KeypointSmoother", "MIN_CUTOFF", "BETA"]

# Chosen on synthetic clips of 200 training photos (python -m benchmarks.smoothing --sweep --ann
# data/lspet_train1k.json), then measured on validation clips (python -m benchmarks.smoothing;
# docs/usage.md, "Videos: tracking and smoothing").
MIN_CUTOFF = 3.0  # Hz: the cutoff of a joint at rest (a still joint wobbles ~30 % less; lower gains nothing more)
BETA = 30.0  # Hz more cutoff per box size per second: 10 lags visibly on a moving camera, 90 smooths less
D_CUTOFF = 1.0  # Hz: the cutoff of the speed estimate itself (the paper's value)
DEFAULT_FPS = 30.0  # frame rate assumed when a video does not say


def _alpha(cutoff, dt):
    """Weight of the new sample in an exponential filter with ``cutoff`` Hz at time step ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))


class KeypointSmoother:
    """One-Euro filter over the keypoints of followed persons: one filter per person and joint (x and y share the
    cutoff, set by the joint's 2-D speed).

    ``smoother(result, t)``: result is a PoseResult with track_ids (a PoseTracker's: a person is known by its id);
    t the frame's time in seconds (None: 1/fps after the previous call's; NaN or infinite: ValueError). Returns a
    new PoseResult whose keypoints (N, K, 2) are filtered; scores, boxes and ids are unchanged. A person seen for
    the first time (or again after missing a frame that was filtered) starts from its raw keypoints. ``reset()``
    before an unrelated video.
    fps: frame rate for t=None (a video that does not say: 30). min_cutoff (Hz): the smoothing of a joint at rest,
    lower is steadier; beta: how fast the cutoff rises with speed (in box sizes per second), higher lags less;
    d_cutoff (Hz): the cutoff of the filter on the speed estimate itself (the One-Euro paper's 1 Hz).
    """

    def __init__(self, fps: Optional[float] = None, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
                 d_cutoff: float = D_CUTOFF):
        given = {"fps": fps, "min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff}
        wrong = [f"{k}={v!r}" for k, v in given.items() if v is not None and not _is_number(v)]
        if wrong:  # float("30") would take a string quietly
            raise TypeError(f"need numbers; got {', '.join(wrong)}")
        fps = DEFAULT_FPS if not fps else float(fps)
        if not (np.isfinite(fps) and fps > 0 and min_cutoff > 0 and beta >= 0 and d_cutoff > 0):
            raise ValueError(f"need fps > 0, min_cutoff > 0, beta >= 0 and d_cutoff > 0; got fps={fps}, "
                             f"min_cutoff={min_cutoff}, beta={beta}, d_cutoff={d_cutoff}")
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._ids = np.zeros(0, np.int64)  # followed persons, sorted by id
        self._x = np.zeros((0, 0, 2))  # (M, K, 2) filtered keypoints
        self._dx = np.zeros((0, 0, 2))  # (M, K, 2) filtered speed, px/s
        self._t: Optional[float] = None

    def __call__(self, result: PoseResult, t: Optional[float] = None) -> PoseResult:
        if result.track_ids is None:
            raise ValueError("smoothing needs track ids: give it the results of a PoseTracker")
        if t is not None and not _is_number(t):
            raise TypeError(f"need a frame time t in seconds, a number; got {t!r}")
        if t is not None and not np.isfinite(float(t)):  # kept, every later dt would be NaN: smoothing off
            raise ValueError(f"need a finite frame time t in seconds; got t={t}")
        t = (0.0 if self._t is None else self._t + 1.0 / self.fps) if t is None else float(t)
        dt = t - self._t if self._t is not None else 0.0
        ids = np.asarray(result.track_ids, np.int64)
        x = result.keypoints.astype(np.float64)
        known, slot = np.zeros(len(ids), bool), np.zeros(len(ids), np.int64)
        if len(self._ids) and dt > 0 and self._x.shape[1] == x.shape[1]:  # dt <= 0 (a time again) restarts
            slot = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
            known = self._ids[slot] == ids
        out, dx = x.copy(), np.zeros_like(x)
        if known.any():
            prev, prev_dx = self._x[slot[known]], self._dx[slot[known]]
            dx_raw = (x[known] - prev) / dt
            dx_k = prev_dx + _alpha(self.d_cutoff, dt) * (dx_raw - prev_dx)
            size = np.sqrt(np.maximum(result.boxes[known, 2] * result.boxes[known, 3], 1.0))  # (n,) box size px
            speed = np.linalg.norm(dx_k, axis=2) / size[:, None]  # (n, K) box sizes per second
            a = _alpha(self.min_cutoff + self.beta * speed, dt)[..., None]
            filtered = prev + a * (x[known] - prev)
            ok = np.isfinite(filtered).all(axis=2, keepdims=True) & np.isfinite(dx_k).all(axis=2, keepdims=True)
            out[known] = np.where(ok, filtered, x[known])  # a lost (non-finite) joint restarts from its raw value
            dx[known] = np.where(ok, dx_k, 0.0)
        order = np.argsort(ids, kind="stable")
        self._ids, self._x, self._dx, self._t = ids[order], out[order], dx[order], t
        return replace(result, keypoints=out.astype(np.float32))


def _is_number(value) -> bool:
    """A real number (numpy's too), not a bool or a string."""
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))
