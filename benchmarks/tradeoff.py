"""Which model for this CPU? Accuracy and single-thread latency of finished models, measured in one run.

``python -m benchmarks.tradeoff --models default fast [C.onnx ...] [--ann data/lspet_val.json] [--flip]``
-> ``benchmarks/results/tradeoff.{md,json}``.

Each model runs as users run it: ``PosePredictor`` with the model's own metadata (input size, box padding) on the
ground-truth tight boxes, every photo read once and shared. Reported per model: PCK@0.2 and the paired 95 %
bootstrap interval of its difference to the first model on the same persons; MACs per person; the time per person
of ``predict()`` (crop, network, decoding) on one thread at batch 1 and batch 8 on a 640×480 photo, timed in
interleaved rounds (the order rotated by one every round: no model is favoured by the machine's drift or its
position in the round), with the ratio to the first model (``common.paired_ratio``: per-round ratios averaged
geometrically over runs of consecutive rounds that give every model every position, the median of those). int8
speed depends on the CPU's instruction set (VNNI or not), so the results name its flags: read the table of the
machine you will run on.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio,  # noqa: E402
                               run_main, write_results)
from benchmarks.orientation import _shown, compare, load_persons_args, parse_model_comparison  # noqa: E402
from fasterpose_rt import PosePredictor  # noqa: E402
from fasterpose_rt.bench import model_macs, person_boxes, synthetic_photo  # noqa: E402
from fasterpose_rt.inputs import InputReadError, read_image  # noqa: E402

BATCHES = (1, 8)


def predict_persons(predictor, boxes: np.ndarray, files, photos: dict, images: Path) -> np.ndarray:
    """Keypoints (N, K, 2) in photo px of the N persons with boxes (N, 4) in photos ``files`` (N,): one ``predict``
    per photo with all its boxes. photos: {file name: image} cache, filled on first use, shared between models."""
    xy = np.full((len(files), predictor.metadata.num_keypoints, 2), np.nan)
    by_file: dict = {}
    for i, name in enumerate(files):
        by_file.setdefault(name, []).append(i)
    for name, idx in by_file.items():
        if name not in photos:
            try:
                photos[name] = read_image(images / name)
            except InputReadError as e:  # the runtime's message leaves the path to its caller
                raise SystemExit(f"error: {images / name}: {e} (wrong --images folder?)") from None
        xy[idx] = predictor.predict(photos[name], boxes[idx]).keypoints
    return xy


def main(argv=None):
    ap = BenchmarkParser("benchmarks.tradeoff", description=__doc__.split("\n")[0])
    a = parse_model_comparison(ap, argv, "ONNX models, or the bundled default and fast by name; differences and "
                               "ratios are to the first", 100, "timing rounds (one predict() per model and batch each)")
    names, gt, vis, boxes, files = load_persons_args(a)
    # One thread: the latency target is per person on one core, and the timings below use these predictors.
    preds = [PosePredictor(m, threads=1, flip_test=a.flip, batch_size=max(BATCHES)) for m in a.models]
    for p in preds:  # scored in the file's joint order: the same names in the same order, not only as many
        if list(p.metadata.keypoints) != list(names):
            raise SystemExit(f"error: {p.model_path}: its keypoints {p.metadata.keypoints} are not {a.ann.name}'s "
                             f"{list(names)}")
    shown = [f"{i + 1}: {_shown(Path(p.model_path))}" for i, p in enumerate(preds)]  # numbered: a file may repeat

    photos: dict = {}
    xys = [predict_persons(p, boxes, files, photos, a.images) for p in preds]
    rows, accuracy = [], {}
    for name, xy in zip(shown, xys):
        compare(name, xy, xys[0], gt, vis, names, rows, accuracy)

    photo = synthetic_photo()
    times = {}
    for b in BATCHES:
        bench_boxes = person_boxes(b, (photo.shape[1], photo.shape[0]))
        t = interleaved_times({n: (lambda p=p: p.predict(photo, bench_boxes)) for n, p in zip(shown, preds)},
                              a.rounds)
        times[b] = {n: {"ms_per_person": 1e3 * float(np.median(s)) / b, "ratio_to_first": paired_ratio(s, t[shown[0]])}
                    for n, s in t.items()}

    table, data = [], {"flip_test": a.flip, "persons": len(files), "rounds": a.rounds, "models": {}}
    for (name, p), row in zip(zip(shown, preds), rows):
        macs = model_macs(p)
        entry = {"architecture": p.metadata.architecture, "network": p.metadata.network,
                 "input_size": list(p.input_size), "box_padding": p.metadata.box_padding, "macs_per_person": macs,
                 **accuracy[name], **{f"batch_{b}": times[b][name] for b in BATCHES}}
        data["models"][name] = entry
        table.append([name, p.metadata.network, "{}×{}".format(*p.input_size), f"{p.metadata.box_padding:g}",
                      "n/a" if not macs else f"{macs / 1e9:.2f}", row[1], row[2],
                      *(f"{times[b][name]['ms_per_person']:.2f} ({times[b][name]['ratio_to_first']:.2f})"
                        for b in BATCHES)])
    body = [f"{len(files)} persons of `{a.ann.name}`, ground-truth tight boxes, each model with its own input size "
            f"and box padding{', every model flip-tested' if a.flip else ''}. PCK differences are against model 1 "
            "on the same persons, with the paired 95 % bootstrap interval. Time: `predict()` per person on 1 thread "
            f"(crop + network + decoding, 640×480 photo), median of {a.rounds} interleaved rounds; in brackets the "
            "ratio to model 1, paired round by round over position-balanced windows (`benchmarks.common.paired_ratio`).",
            "",
            markdown_table(["model", "architecture", "input w×h", "box padding", "G MACs/person", "PCK@0.2",
                            "vs model 1 (interval)", *(f"ms/person, batch {b} (ratio)" for b in BATCHES)], table)]
    path = write_results("tradeoff", "Accuracy and 1-thread latency of finished models, one run",
                         "\n".join(body), data, results_dir=a.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
