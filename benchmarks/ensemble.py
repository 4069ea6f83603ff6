"""Is a heatmap-averaging ensemble worth its latency? Several models on the same crops, against the first alone.

``python -m benchmarks.ensemble --models A.onnx B.onnx [C.onnx ...] [--flip] [--ann data/lspet_val.json]``
-> ``benchmarks/results/ensemble.{md,json}``.

Every person is cropped once, with the first model's metadata (input size, box padding: the others' paddings are
not used, so give models calibrated to similar paddings); each model's probability heatmaps come from the
runtime's own session, sigmoid and flip test; the ensemble decodes their mean. Reported: PCK@0.2 of each model
and of the ensemble, with the paired 95 % bootstrap interval of the difference to the first model on the same
persons, and the single-thread batch-1 network time per person of each (interleaved rounds; the ensemble costs
their sum). All models must share keypoints, input size and heatmap size.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, interleaved_times, markdown_table, run_main, write_results  # noqa: E402
from benchmarks.orientation import Views, _shown, compare, load_persons_args, parse_model_comparison  # noqa: E402
from fasterpose_rt import PosePredictor  # noqa: E402
from fasterpose_rt.geometry import box_centers_and_sizes, crop_affine  # noqa: E402
from fasterpose_rt.preprocess import warp_crops  # noqa: E402


def check_compatible(predictors) -> None:
    """Raise SystemExit naming the first model whose keypoints or input size differ from the first model's."""
    first = predictors[0]
    for p in predictors[1:]:
        if p.keypoint_names != first.keypoint_names or p.input_size != first.input_size:
            raise SystemExit(f"error: {p.model_path}: keypoints or input size differ from {first.model_path}; "
                             "an ensemble averages heatmaps of the same crops")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.ensemble", description=__doc__.split("\n")[0])
    a = parse_model_comparison(ap, argv, "ONNX models; the first one sets the crops", 200,
                               "timing rounds (one batch-1 call per model each)")
    names, gt, vis, boxes, files = load_persons_args(a)
    # One thread: the latency budget is per person on one core, and the timings below use these sessions.
    preds = [PosePredictor(m, threads=1, flip_test=a.flip) for m in a.models]
    check_compatible(preds)
    meta = preds[0].metadata
    affines = crop_affine(*box_centers_and_sizes(boxes, meta.input_size, meta.box_padding), meta.input_size)
    photos: dict = {}
    views = [Views(p, a.images, files, photos) for p in preds]
    stacks = [v.heatmaps(affines[:, None], affines)[0] for v in views]  # each (N, K, h, w)
    if len({s.shape for s in stacks}) != 1:
        raise SystemExit(f"error: heatmap sizes differ: {[s.shape[2:] for s in stacks]}")
    paths = [_shown(Path(p.model_path)) for p in preds]
    shown = [f"{i + 1}: {path}" for i, path in enumerate(paths)]  # numbered: a file may repeat
    rows, data = [], {"models": paths, "flip_test": a.flip, "persons": len(files)}
    first_xy, _ = views[0].keypoints(stacks[0], affines)
    for name, view, stack in zip(shown, views, stacks):
        compare(name, view.keypoints(stack, affines)[0], first_xy, gt, vis, names, rows, data)
    ensemble_xy, _ = views[0].keypoints(np.mean(stacks, axis=0), affines)
    compare(f"ensemble: mean of {len(preds)} models' heatmaps", ensemble_xy, first_xy, gt, vis, names, rows, data)

    crop = preds[0]._normalize(warp_crops(views[0].photo(files[0]), affines[:1], meta.input_size))
    times = interleaved_times({n: (lambda p=p: p._infer(crop)[0]) for n, p in zip(shown, preds)}, a.rounds)
    ms = {n: 1e3 * float(np.median(t)) for n, t in times.items()}
    total = sum(ms.values())
    data["ms_per_person_1_thread_batch_1"] = {**ms, "ensemble": total}
    time_rows = [[n, f"{v:.2f}"] for n, v in ms.items()] + [["ensemble (sum)", f"{total:.2f}"]]

    body = [f"{len(files)} persons of `{a.ann.name}`, ground-truth tight boxes, crops of the first model's "
            f"metadata (box padding {meta.box_padding:g}){', every model flip-tested' if a.flip else ''}. "
            "Differences are against the first model on the same persons, with the paired 95 % bootstrap "
            "interval.", "",
            markdown_table(["model", "PCK@0.2", "difference (interval)"], rows), "",
            f"Network time per person, 1 thread, batch 1{' (two crops: flip test)' if a.flip else ''}, median "
            f"of {a.rounds} interleaved rounds (`session.run` + sigmoid + flip merge):", "",
            markdown_table(["model", "ms"], time_rows)]
    path = write_results("ensemble", "Heatmap-averaging ensemble vs its first model (LSPET val)",
                         "\n".join(body), data, results_dir=a.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
