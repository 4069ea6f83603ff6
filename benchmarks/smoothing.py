"""Does smoothing steady a video's keypoints, and what does it cost in lag? ``KeypointSmoother`` measured.

``python -m benchmarks.smoothing [--model M.onnx] [--ann data/lspet_val.json] [--images DIR] [--clips 200]``
-> ``benchmarks/results/smoothing.{md,json}``; ``--sweep`` (run it on training persons) -> ``smoothing_sweep``.

Clips of ``FRAMES`` frames made from each of the first ``--clips`` photos, followed by ``PoseTracker`` as the CLI
does, read at 30 fps:

- still camera: the photo in every frame, shifted by a random sub-pixel amount, with fresh sensor noise: what a
  filter is for (the person holds still, the keypoints should too);
- handheld camera: ``benchmarks.tracking``'s clips (one cycle of zoom, pan and roll per second), also played
  keeping every 2nd and every 4th frame at the same 30 fps: the camera moves 2x and 4x as far between frames,
  which is where a filter's lag shows.

Scored on the person with the highest mean score (a frame where the tracker reports nobody: every joint a miss,
and no jitter):

- PCK@0.2 over all frames (lag shows as a loss);
- jitter: how much the error changes from one frame to the next (mean distance between consecutive frames'
  prediction-minus-label vectors, % of the torso, labelled joints). 0: the prediction moves exactly as the
  joint does. Over all joints it is dominated by jumps (a joint lost, then found); "of found joints" counts
  only the joints the unsmoothed model placed within 0.2 torso in both frames: the wobble a filter is for.

Intervals are paired 95 % bootstrap intervals against the unsmoothed keypoints, resampling whole clips. The
persons hold still in the photos (only the camera moves): limbs moving faster than the camera are not tested.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos
from benchmarks.tracking import best_person, make_clips
from fasterpose_rt import PosePredictor
from fasterpose_rt.metrics import pck, pck_interval, torso_sizes
from fasterpose_rt.smoothing import BETA, MIN_CUTOFF, KeypointSmoother
from fasterpose_rt.tracking import PoseTracker

FPS = 30.0
STEPS = (1, 2, 4)  # keep every n-th frame of a clip: the camera moves n times as far between frames
SWEEP_MIN_CUTOFFS = (0.3, 1.0, 3.0, 10.0)
SWEEP_BETAS = (0.0, 3.0, 10.0, 30.0, 100.0)
REPS = 2000
SHAKE_PX, NOISE = 0.5, 4.0  # still clips: sub-pixel shake (px) and sensor noise (grey levels), per frame


def still_path(width: int, height: int, frames: int, rng) -> np.ndarray:
    """A camera on a tripod: affines (frames, 2, 3), each a random sub-pixel shift (SHAKE_PX standard deviation)."""
    out = np.zeros((frames, 2, 3))
    out[:, 0, 0] = out[:, 1, 1] = 1.0
    out[:, :, 2] = rng.normal(0.0, SHAKE_PX, (frames, 2))
    return out


def track_clips(pred, clips, step: int):
    """PoseTracker over every ``step``-th frame of each clip -> per clip, the PoseResult of each kept frame."""
    tracker = PoseTracker(pred, min_presence=0)  # every guess: the filter is measured, not who is there
    out = []
    for frames, _ in clips:
        tracker.reset()
        out.append([tracker(f) for f in frames[::step]])
    return out


def smoothed(tracked, smoother):
    """Each clip's results through ``smoother`` (None: as they are) -> keypoints (C, T, K, 2) of the best person per
    frame (highest mean score), and the smoother's seconds."""
    seconds, out = 0.0, []
    for results in tracked:
        clip = []
        if smoother is not None:
            smoother.reset()
        for r in results:
            if smoother is not None:
                t0 = time.perf_counter()
                r = smoother(r)
                seconds += time.perf_counter() - t0
            clip.append(best_person(r))
        out.append(clip)
    return np.asarray(out, np.float64), seconds


class ClipScores:
    """PCK and jitter of keypoints (C, T, K, 2) against clip labels (C, T, K, 2), visible (C, K)."""

    def __init__(self, names, gt, vis):
        self.names, self.gt = names, gt
        c, t = gt.shape[:2]
        self.vis = np.broadcast_to(vis[:, None, :], gt.shape[:3])
        self.torso = torso_sizes(gt.reshape(c * t, -1, 2), self.vis.reshape(c * t, -1), names).reshape(c, t)
        self.groups = np.repeat(np.arange(c), t)

    def _flat(self, xy):
        c, t, k = self.gt.shape[:3]
        return xy.reshape(c * t, k, 2), self.gt.reshape(c * t, k, 2), self.vis.reshape(c * t, k)

    def pck(self, xy) -> float:
        return pck(*self._flat(xy), self.names)[0]

    def pck_diff_interval(self, xy, base):
        return pck_interval(*self._flat(xy), self.names, baseline=base.reshape(xy.shape[0] * xy.shape[1], -1, 2),
                            groups=self.groups, reps=REPS)

    def _jitter_sums(self, xy, base):
        """Per clip: the summed jitter (torso units) and the joint pairs it counts, over all labelled joints and over
        the joints ``base`` found (within 0.2 torso in both frames). Returns four (C,) arrays."""
        err = (xy - self.gt) / self.torso[..., None, None]  # (C, T, K, 2)
        step = np.linalg.norm(err[:, 1:] - err[:, :-1], axis=3)  # (C, T-1, K)
        use = self.vis & np.isfinite(self.torso)[..., None] & np.isfinite(xy).all(axis=3)  # nobody found: no jitter
        use = use[:, 1:] & use[:, :-1]
        hit = np.linalg.norm((base - self.gt) / self.torso[..., None, None], axis=3) <= 0.2
        found = use & hit[:, 1:] & hit[:, :-1]
        return (np.where(use, step, 0).sum(axis=(1, 2)), use.sum(axis=(1, 2)),
                np.where(found, step, 0).sum(axis=(1, 2)), found.sum(axis=(1, 2)))

    def jitter(self, xy, base):
        """(jitter over all labelled joints, over the joints ``base`` found), % of the torso."""
        j, n, w, m = self._jitter_sums(xy, base)
        return 100 * j.sum() / n.sum(), 100 * w.sum() / m.sum()

    def jitter_diff_intervals(self, xy, base):
        """Paired clip-bootstrap 95 % intervals of both jitters of xy minus base's, % of the torso."""
        j, n, w, m = self._jitter_sums(xy, base)
        j0, _, w0, _ = self._jitter_sums(base, base)
        idx = np.random.default_rng(0).integers(0, len(n), (REPS, len(n)))
        out = []
        for a, b, count in ((j, j0, n), (w, w0, m)):
            diffs = 100 * (a[idx] - b[idx]).sum(axis=1) / count[idx].sum(axis=1)
            out.append(tuple(float(v) for v in np.percentile(diffs, [2.5, 97.5])))
        return out


def table(scores, tracked, settings, frames):
    """Rows: each (label, smoother or None) on the clips; differences against the first setting (None)."""
    base, _ = smoothed(tracked, None)
    b_pck, (b_jit, b_wob) = scores.pck(base), scores.jitter(base, base)
    rows, data = [], {}
    for label, smoother in settings:
        xy, seconds = smoothed(tracked, smoother)
        p, (jit, wob) = scores.pck(xy), scores.jitter(xy, base)
        if smoother is None:
            rows.append([label, f"{p:.3f}", "—", f"{jit:.2f}", "—", f"{wob:.2f}", "—", "—"])
            data[label] = {"pck@0.2": p, "jitter_pct_torso": jit, "jitter_found_pct_torso": wob}
            continue
        us = 1e6 * seconds / frames
        lo, hi = scores.pck_diff_interval(xy, base)
        (jlo, jhi), (wlo, whi) = scores.jitter_diff_intervals(xy, base)
        rows.append([label, f"{p:.3f}", f"{p - b_pck:+.3f} ({lo:+.3f} to {hi:+.3f})",
                     f"{jit:.2f}", f"{jit - b_jit:+.2f} ({jlo:+.2f} to {jhi:+.2f})",
                     f"{wob:.2f}", f"{wob - b_wob:+.2f} ({wlo:+.2f} to {whi:+.2f})", f"{us:.0f}"])
        data[label] = {"pck@0.2": p, "pck_diff_interval": [lo, hi], "jitter_pct_torso": jit,
                       "jitter_diff_interval": [jlo, jhi], "jitter_found_pct_torso": wob,
                       "jitter_found_diff_interval": [wlo, whi], "us_per_frame": us}
    header = ["keypoints", "PCK@0.2", "vs raw (95 % interval)", "jitter, % torso", "vs raw",
              "jitter of found joints", "vs raw", "µs per frame"]
    return markdown_table(header, rows), data


def _every(step: int) -> str:
    return "every frame" if step == 1 else f"every {step}{ {2: 'nd', 3: 'rd'}.get(step, 'th')} frame"


def setting(min_cutoff, beta):
    return f"One-Euro, min_cutoff {min_cutoff:g} Hz, beta {beta:g}", KeypointSmoother(FPS, min_cutoff, beta)


def main(argv=None):
    ap = BenchmarkParser("benchmarks.smoothing", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--clips", type=positive_int, default=200, help="clips made from the first N persons' photos")
    ap.add_argument("--sweep", action="store_true", help="every min_cutoff x beta of the grid (run it on training "
                                                         "persons) -> smoothing_sweep.{md,json}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, _, files = load_persons_args(a)
    c = min(a.clips, len(files))
    images = read_photos(a.images, files[:c])
    pred = PosePredictor(a.model, threads=a.threads)
    clips = make_clips(images, gt[:c])
    raw = ("raw (the model's keypoints)", None)
    if a.sweep:
        settings = [raw] + [setting(mc, b) for mc in SWEEP_MIN_CUTOFFS for b in SWEEP_BETAS]
    else:
        label, default = setting(MIN_CUTOFF, BETA)
        settings = [raw, (f"{label} (the CLI's default)", default), setting(MIN_CUTOFF / 3, BETA),
                    setting(MIN_CUTOFF * 3, BETA), setting(MIN_CUTOFF, BETA / 3), setting(MIN_CUTOFF, BETA * 3),
                    setting(MIN_CUTOFF, 0.0)]
    still = make_clips(images, gt[:c], path=still_path, noise=NOISE)
    scenarios = [("still", f"Still camera: every frame the same photo, shifted by a random sub-pixel amount "
                           f"({SHAKE_PX:g} px standard deviation) with fresh sensor noise ({NOISE:g} grey levels)",
                  still, 1)]
    scenarios += [(f"handheld_step_{step}", f"Handheld camera, {_every(step)}"
                   f": the camera moves {step}x as far between frames", clips, step) for step in STEPS]
    parts, data = [], {}
    for key, title, scenario_clips, step in scenarios:
        tracked = track_clips(pred, scenario_clips, step)
        labels = np.stack([g[::step] for _, g in scenario_clips])
        frames = sum(len(r) for r in tracked)
        md, rows = table(ClipScores(names, labels, vis[:c]), tracked, settings, frames)
        parts += [f"## {title} ({frames} frames)", "", md, ""]
        data[key] = rows
        print(f"{key} done", flush=True)
    model_name = _shown(Path(pred.model_path))
    body = "\n".join([f"Model: `{model_name}`, tracked as the CLI does; {c} clips of `{a.ann.name}` persons, "
                      f"{len(clips[0][0])} frames each, read at {FPS:g} fps.", ""] + parts)
    write_results("smoothing_sweep" if a.sweep else "smoothing",
                  "Keypoint smoothing on videos: steadier joints against lag", body,
                  {"model": model_name, "clips": c, "fps": FPS, **data}, results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
