"""The search with the fast model's windows (``fasterpose predict --fast-search``) against the search itself and
the fast model's own search: accuracy and time per photo on the same photos, in one run.

``python -m benchmarks.fast_search [--ann data/lspet_val.json] [--images DIR] [--limit N] [--threads 2]``
-> ``benchmarks/results/fast_search.{md,json}``.

Photos without boxes, one person each, as ``fasterpose predict`` finds it (``find_poses``: the whole photo and a
grid of windows, the best 3 refined, the best kept, the presence rule of the CLI), three ways, photo by photo in
turns (the order alternating): the default model alone (the CLI's default), the default with the bundled fast model
running the windows (``PosePredictor(search_with=...)``; the default then runs every person they find at least
once), and the fast model alone (``--fast``). PCK@0.2 of each (a photo where nobody is reported scores as misses)
with the paired 95 % interval of its difference to the default's search; ms per photo and the ratio of times to
the default's search (``common.paired_ratio``: the median over pairs of consecutive photos, the order reversed
between them, of the geometric mean of their per-photo ratios).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, paired_ratio, run_main, write_results
from benchmarks.orientation import add_persons_args, load_persons_args, read_photos
from fasterpose_rt import PosePredictor, find_poses
from fasterpose_rt.metrics import pck, pck_interval

WAYS = ("the search (the CLI's default)", "--fast-search (the fast model's windows)", "--fast (the fast model alone)")


def first_pose(result, k: int) -> np.ndarray:
    """(K, 2) the reported person's joints, or inf (every joint a miss) where nobody is reported."""
    return result.keypoints[0] if len(result) else np.full((k, 2), np.inf, np.float32)


def run(photos, k: int, threads: int) -> dict:
    """{way: (xy (N, K, 2), seconds (N,))} of each way on each photo, the ways in turns photo by photo."""
    default = PosePredictor(threads=threads)
    fast = PosePredictor(variant="fast", threads=threads)
    predictors = dict(zip(WAYS, (default, PosePredictor(threads=threads, search_with=fast), fast)))
    for p in predictors.values():  # warm-up
        find_poses(p, photos[0])
    xy, seconds = {w: [] for w in WAYS}, {w: [] for w in WAYS}
    for i, photo in enumerate(photos):
        for w in (WAYS if i % 2 == 0 else WAYS[::-1]):
            t0 = time.perf_counter()
            result = find_poses(predictors[w], photo)
            seconds[w].append(time.perf_counter() - t0)
            xy[w].append(first_pose(result, k))
    return {w: (np.stack(xy[w]), np.array(seconds[w])) for w in WAYS}


def main(argv=None):
    ap = BenchmarkParser("benchmarks.fast_search", description=__doc__.split("\n")[0])
    add_persons_args(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, _, files = load_persons_args(a)
    photos = read_photos(a.images, files)
    out = run(photos, gt.shape[1], a.threads)
    base_xy, base_t = out[WAYS[0]]
    base_pck = pck(base_xy, gt, vis, names)[0]
    rows, data = [], {}
    for w, (xy, t) in out.items():
        score = pck(xy, gt, vis, names)[0]
        low, high = (0.0, 0.0) if w == WAYS[0] else pck_interval(xy, gt, vis, names, baseline=base_xy)
        ratio = 1.0 if w == WAYS[0] else paired_ratio(t, base_t)
        data[w] = {"pck@0.2": score, "difference_ci95": [low, high], "ms_per_photo": float(t.mean()) * 1000,
                   "time_ratio": ratio, "found": float(np.isfinite(xy).all(axis=(1, 2)).mean())}
        rows.append([w, f"{score:.4f}", "—" if w == WAYS[0] else f"{score - base_pck:+.4f} "
                     f"({low:+.4f} to {high:+.4f})", f"{100 * data[w]['found']:.1f} %",
                     f"{data[w]['ms_per_photo']:.1f}", f"{ratio:.2f}×"])
    body = "\n\n".join([
        f"{len(files)} persons of `{a.ann.name}`, one photo each, no boxes; {a.threads} threads; the three ways in "
        "turns photo by photo. Time ratio: to the search's time, paired photo by photo (the median over pairs of "
        "consecutive photos, which hold both orders, of their geometric-mean ratio).",
        markdown_table(["way", "PCK@0.2", "vs the search (95 % interval)", "person reported", "ms per photo",
                        "time ratio"], rows)])
    path = write_results("fast_search", "The search with the fast model's windows", body,
                         {"ann": a.ann.name, "persons": len(files), "threads": a.threads, "ways": data},
                         results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
