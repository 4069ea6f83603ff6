"""Heatmap decoders compared: accuracy on synthetic Gaussians and time for one frame's worth of persons.

``python -m benchmarks.decoding [--rounds 30] [--results-dir D]`` -> ``benchmarks/results/decoding.{md,json}`` (or D).

Decoders (all return (N, K, 2) heatmap px):
  argmax      integer peak only;
  quarter     SimpleBaseline's step: 0.25 px from the peak towards the higher neighbour, per axis;
  DARK        ``fasterpose_rt.decode.decode_heatmaps`` (default modulation, sigma 2 at 48 px wide);
  DARK σ=0    the same without modulation (blur_sigma=0);
  DARK loop   the same maths as DARK, one keypoint at a time in Python (the baseline for the speed-up).
Maps are 64×48 (h×w), Gaussians of sigma 1.5 / 2 / 3 with uniformly random sub-pixel centres, clean or with
3 % multiplicative noise (map · (1 + 0.03·n), n ~ N(0, 1)).
Time: every decoder once per round, in turns (the order rotated by one every round), ``--rounds`` rounds; a
decoder's time relative to the loop is ``common.paired_ratio``: the median, over every run of as many consecutive
rounds as decoders (each decoder once in every position), of the geometric mean of its per-round ratios.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fasterpose_rt.decode import argmax_heatmaps, decode_heatmaps, default_blur_sigma

from .common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio, positive_int, run_main,
                     write_results)

H, W = 64, 48
PERSONS, KEYPOINTS = 16, 17
SIGMAS = (1.5, 2.0, 3.0)
NOISE = (0.0, 0.03)
BATCHES = 8  # accuracy: 8 × 16 × 17 = 2176 maps per setting
MARGIN = 4.0  # centres keep this far from the border (decoders fall back to argmax on the border)
ROUNDS = 30  # timing rounds, each decoder once per round


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
    "DARK loop": decode_dark_loop,
}


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


def timing(rng, rounds: int = ROUNDS):
    """{decoder: (rounds,) seconds per call} on one (16, 17, 64, 48) float32 batch, the decoders timed in turns
    round by round (``common.interleaved_times``: the order rotates), so their per-round ratios share the
    machine's state."""
    hm, _ = gaussians(rng, PERSONS, KEYPOINTS, 2.0, 0.03)
    return interleaved_times({name: (lambda fn=fn: fn(hm)) for name, fn in DECODERS.items()}, rounds)


def run(rounds: int = ROUNDS, results_dir=None):
    rng = np.random.default_rng(0)
    acc, loop_gap = accuracy(rng)
    rounds_s = timing(rng, rounds)
    times = {name: float(np.median(t)) for name, t in rounds_s.items()}
    vs_loop = {name: paired_ratio(t, rounds_s["DARK loop"]) for name, t in rounds_s.items()}
    names = list(DECODERS)
    acc_rows = [
        [f"{s:g}", "clean" if nz == 0 else f"{nz:.0%} noise"] + [f"{acc[(s, nz)][n][0]:.4f} / {acc[(s, nz)][n][1]:.3f}" for n in names]
        for s in SIGMAS
        for nz in NOISE
    ]
    time_rows = [[n, f"{times[n] * 1e3:.3f}", f"{vs_loop[n]:.4f}"] for n in names]
    ratio = vs_loop["DARK"]
    body = "\n\n".join([
        f"## Accuracy\n\nError = distance to the true centre in heatmap px, mean / max over "
        f"{BATCHES * PERSONS * KEYPOINTS} maps per row ({H}×{W} maps, centres ≥ {MARGIN:g} px from the border).",
        markdown_table(["sigma", "maps"] + names, acc_rows),
        f"Largest |DARK − DARK loop| over all rows: {loop_gap:.2e} px (same maths, vectorised vs loop).",
        f"## Time\n\nOne batch of {PERSONS} persons × {KEYPOINTS} keypoints, {H}×{W} maps (sigma 2, 3 % noise); "
        f"median of {rounds} rounds, every decoder once per round in turns (the order rotated by one every round); "
        "time / DARK loop is the median, over every window of consecutive rounds in which each decoder held every "
        "position once, of the window's geometric-mean ratio. Measured on a shared machine (see the load "
        "average above): absolute times are indicative, the ratios are the point.",
        markdown_table(["decoder", "ms / batch", "time / DARK loop"], time_rows),
        f"Vectorised DARK takes {ratio:.3f} of the loop's time ({1 / ratio:.0f}× faster); target ≤ 0.25: "
        f"{'met' if ratio <= 0.25 else 'NOT met'}.",
    ])
    data = {
        "heatmap_hw": [H, W], "persons": PERSONS, "keypoints": KEYPOINTS, "margin_px": MARGIN,
        "accuracy": [
            {"sigma": s, "noise": nz, "errors_px": {n: {"mean": m, "max": x} for n, (m, x) in acc[(s, nz)].items()}}
            for (s, nz) in acc
        ],
        "max_abs_dark_vs_loop_px": loop_gap,
        "rounds": rounds,
        "median_seconds": times,
        "time_over_loop": vs_loop,
        "vectorised_over_loop_time": ratio,
    }
    path = write_results("decoding", "Heatmap decoding: accuracy and speed", body, data, results_dir=results_dir)
    print(markdown_table(["sigma", "maps"] + names, acc_rows))
    print(markdown_table(["decoder", "ms / batch", "time / DARK loop"], time_rows))
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.decoding", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=positive_int, default=ROUNDS,
                    help=f"timing rounds, every decoder once per round (default {ROUNDS})")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where to write decoding.{md,json} (default benchmarks/results)")
    a = ap.parse_args(argv)
    run(a.rounds, a.results_dir)


if __name__ == "__main__":
    run_main(main)
