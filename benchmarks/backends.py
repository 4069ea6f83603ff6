"""onnxruntime against OpenVINO as the runtime's inference engine, in one run: time per person and per photo, and
the accuracy of each on the same persons.

``python -m benchmarks.backends [--models A.onnx B.onnx] [--ann data/lspet_val.json] [--images DIR] [--limit N]
[--rounds 30] [--photos 200]`` -> ``benchmarks/results/backends.{md,json}``.

For each model (both bundled ones by default), a ``PosePredictor`` on each backend:

1. ``predict`` time per person with tight boxes on a validation photo, threads 1 and 2, batch 1 and 8, the two
   backends timed in turns round by round (``benchmarks.common.interleaved_times``); the ratio is OpenVINO's time
   over onnxruntime's (below 1: OpenVINO is faster), ``common.paired_ratio``: the median over pairs of consecutive
   rounds (each backend once first) of the geometric mean of their ratios;
2. the photos without boxes: ``find_poses`` (the CLI's window search, refined) on the first ``--photos`` validation
   photos, one photo per call, the backends in turns photo by photo, 2 threads: ms per photo;
3. PCK@0.2 of every validation person in its tight box on each backend, with the paired 95 % interval of the
   difference, and how far the joints move between them.

OpenVINO compiles the network for each batch size the first time it meets it; the warm-up calls pay for that.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio, positive_int,
                               run_main, write_results)
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos, resolve_model
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses
from fasterpose_rt.metrics import pck, pck_interval

BACKENDS = ("onnxruntime", "openvino")


def per_person_times(model, photo, boxes, rounds: int) -> list:
    """Rows {"threads", "batch", "onnxruntime_ms", "openvino_ms", "ratio"}: predict's time per person."""
    rows = []
    for threads in (1, 2):
        preds = {b: PosePredictor(model, threads=threads, backend=b) for b in BACKENDS}
        for batch in (1, 8):
            chosen = np.repeat(boxes[:1], batch, axis=0)
            times = interleaved_times({b: (lambda p=p: p.predict(photo, chosen)) for b, p in preds.items()},
                                      rounds, warmup=3)
            rows.append({"threads": threads, "batch": batch,
                         **{f"{b}_ms": float(np.median(t)) * 1000 / batch for b, t in times.items()},
                         "ratio": paired_ratio(times["openvino"], times["onnxruntime"])})
    return rows


def search_times(model, photos) -> dict:
    """ms per photo of find_poses (the search) on each backend, 2 threads, photo by photo in turns."""
    preds = {b: PosePredictor(model, threads=2, backend=b) for b in BACKENDS}
    for p in preds.values():  # warm-up: OpenVINO compiles the batch sizes the search uses
        for photo in photos[:3]:
            find_poses(p, photo)
    times = {b: [] for b in BACKENDS}
    for i, photo in enumerate(photos):
        for b in (BACKENDS if i % 2 == 0 else BACKENDS[::-1]):
            t0 = time.perf_counter()
            find_poses(preds[b], photo)
            times[b].append(time.perf_counter() - t0)
    arrays = {b: np.array(t) for b, t in times.items()}
    return {**{f"{b}_ms": float(np.mean(t)) * 1000 for b, t in arrays.items()},
            "ratio": paired_ratio(arrays["openvino"], arrays["onnxruntime"])}


def accuracy(model, photos, boxes, names, gt, vis) -> dict:
    """PCK@0.2 of both backends in the tight boxes, the paired interval of the difference, joint shifts."""
    xy = {}
    for b in BACKENDS:
        res = PosePredictor(model, threads=2, backend=b).predict_batch(photos, [x[None] for x in boxes])
        xy[b] = np.concatenate([r.keypoints for r in res])
    low, high = pck_interval(xy["openvino"], gt, vis, names, baseline=xy["onnxruntime"])
    shift = np.linalg.norm(xy["openvino"] - xy["onnxruntime"], axis=2)
    return {**{f"{b}_pck": pck(xy[b], gt, vis, names)[0] for b in BACKENDS}, "difference_ci95": [low, high],
            "median_shift_px": float(np.median(shift)), "share_moved_over_5px": float((shift > 5).mean())}


def main(argv=None):
    ap = BenchmarkParser("benchmarks.backends", description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=[str(DEFAULT_MODELS["default"]), str(DEFAULT_MODELS["fast"])])
    add_persons_args(ap)
    ap.add_argument("--rounds", type=positive_int, default=30)
    ap.add_argument("--photos", type=positive_int, default=200, help="photos the search is timed on")
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    a.models = [str(resolve_model(m)) for m in a.models]  # a missing one refused by name before any work
    names, gt, vis, boxes, files = load_persons_args(a)
    photos = read_photos(a.images, files)
    results, speed_rows, search_rows, acc_rows = {}, [], [], []
    for model in a.models:
        name = _shown(Path(model))
        r = {"per_person": per_person_times(model, photos[0], boxes, a.rounds),
             "search": search_times(model, photos[:a.photos]),
             "accuracy": accuracy(model, photos, boxes, names, gt, vis)}
        results[name] = r
        speed_rows += [[name, x["threads"], x["batch"], f"{x['onnxruntime_ms']:.2f}", f"{x['openvino_ms']:.2f}",
                        f"{x['ratio']:.2f}×"] for x in r["per_person"]]
        s = r["search"]
        search_rows.append([name, f"{s['onnxruntime_ms']:.1f}", f"{s['openvino_ms']:.1f}", f"{s['ratio']:.2f}×"])
        acc = r["accuracy"]
        acc_rows.append([name, f"{acc['onnxruntime_pck']:.4f}", f"{acc['openvino_pck']:.4f}",
                         f"{acc['openvino_pck'] - acc['onnxruntime_pck']:+.4f} ({acc['difference_ci95'][0]:+.4f} to "
                         f"{acc['difference_ci95'][1]:+.4f})", f"{acc['median_shift_px']:.3f}",
                         f"{100 * acc['share_moved_over_5px']:.2f} %"])
    body = "\n\n".join([
        f"{len(files)} persons of `{a.ann.name}`. Ratios are OpenVINO's time over onnxruntime's, paired photo by "
        "photo (the median over pairs of consecutive photos, which hold both orders, of their geometric-mean "
        "ratio), both timed in turns in this one run.",
        "`predict` in tight boxes, ms per person:",
        markdown_table(["model", "threads", "batch", "onnxruntime", "OpenVINO", "ratio"], speed_rows),
        f"Photos without boxes (`find_poses`, the CLI's search), {min(a.photos, len(photos))} photos, 2 threads, ms "
        "per photo:",
        markdown_table(["model", "onnxruntime", "OpenVINO", "ratio"], search_rows),
        "PCK@0.2 in tight boxes (paired 95 % interval of OpenVINO minus onnxruntime), and how far joints move:",
        markdown_table(["model", "onnxruntime", "OpenVINO", "difference", "median shift (px)",
                        "joints moved > 5 px"], acc_rows),
    ])
    path = write_results("backends", "onnxruntime against OpenVINO", body,
                         {"ann": a.ann.name, "persons": len(files), "rounds": a.rounds, "models": results},
                         results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
