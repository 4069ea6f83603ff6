"""Does seeing each person at several sizes help? Multi-scale test-time augmentation on labelled persons.

``python -m benchmarks.scale_tta [--model M.onnx] [--ann data/lspet_val.json] [--images DIR]``
-> ``benchmarks/results/scale_tta.{md,json}``.

The box padding is calibrated per model (``python -m export.padding``): one region size per box. Multi-scale
testing, common in pose papers, asks whether several sizes at once do better than the best single one: every
person is also cropped with its region scaled by each of ``SCALES`` (same centre, same aspect; 0.9 = the person
fills more of the crop), each view flip-tested; the views' probability heatmaps are warped back into the
reference crop's heatmap frame (``benchmarks.orientation.Views``: one exact affine per view) and averaged, or
the view with the highest mean keypoint score is kept. Each variant is scored against the flip-tested model at
its own padding on the same persons (paired 95 % bootstrap interval of the PCK@0.2 difference). Run it on
training persons (``--ann data/lspet_train1k.json``) to choose a set and on validation to report it: a set
chosen on validation would flatter it. Every view is one more flip-tested network run per person.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkParser, run_main
from benchmarks.orientation import Views, _shown, compare, load_persons_args, parse_one_model_args, write_comparison
from fasterpose_rt import PosePredictor
from fasterpose_rt.geometry import box_centers_and_sizes, crop_affine

SCALES = (1.0, 0.9, 1.1, 0.8, 1.2)  # region size factors on top of the model's padding; 1.0 must come first
TTA_SETS = ((0.9, 1.0), (1.0, 1.1), (0.9, 1.0, 1.1), (0.8, 0.9, 1.0, 1.1, 1.2))


def main(argv=None):
    a = parse_one_model_args(BenchmarkParser("benchmarks.scale_tta", description=__doc__.split("\n")[0]), argv)
    names, gt, vis, boxes, files = load_persons_args(a)
    pred = PosePredictor(a.model, threads=a.threads, flip_test=True)
    meta = pred.metadata
    n, v = len(files), len(SCALES)
    centers, sizes = box_centers_and_sizes(boxes, meta.input_size, meta.box_padding)
    reference = crop_affine(centers, sizes, meta.input_size)
    scaled = crop_affine(np.repeat(centers, v, 0), np.repeat(sizes, v, 0) * np.tile(SCALES, n)[:, None],
                         meta.input_size).reshape(n, v, 2, 3)
    views = Views(pred, a.images, files)
    stack = views.heatmaps(scaled, reference)  # (V, N, K, h, w), all in the reference frame

    model_name = _shown(Path(pred.model_path))
    rows, data = [], {"model": model_name, "persons": n, "ann": a.ann.name, "box_padding": meta.box_padding,
                      "scales": list(SCALES)}
    base_xy, _ = views.keypoints(stack[0], reference)
    compare(f"flip test at the model's padding {meta.box_padding:g} (the baseline)", base_xy, base_xy, gt, vis,
            names, rows, data)
    single = [views.keypoints(stack[j], reference) for j in range(v)]
    for j in range(1, v):
        compare(f"one view, region x{SCALES[j]:g} (padding {meta.box_padding * SCALES[j]:.3g})", single[j][0],
                base_xy, gt, vis, names, rows, data)
    for scales in TTA_SETS:
        idx = [SCALES.index(s) for s in scales]
        xy, _ = views.keypoints(stack[idx].mean(axis=0), reference)
        compare(f"TTA mean of regions x{list(scales)}", xy, base_xy, gt, vis, names, rows, data)
    confidence = np.stack([scores.mean(axis=1) for _, scores in single])  # (V, N)
    xy = np.stack([keypoints for keypoints, _ in single])[confidence.argmax(axis=0), np.arange(n)]  # (N, K, 2)
    compare(f"TTA most confident of {v} regions", xy, base_xy, gt, vis, names, rows, data)

    intro = (f"Model: `{model_name}` ({n} persons of `{a.ann.name}`, ground-truth tight boxes, box padding "
             f"{meta.box_padding:g} from the model's metadata, every view flip-tested). A view's region is the "
             "model's region scaled about the box centre. Differences are against the first row on the same "
             "persons, with the paired 95 % bootstrap interval.")
    path = write_comparison("scale_tta", "Multi-scale test-time augmentation", intro, rows, data, a.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
