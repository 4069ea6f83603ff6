"""Camera-sized photos through ``fasterpose predict``: decoding them smaller and ahead of the model, what it saves and
what it costs in accuracy.

``python -m benchmarks.photo_reading [--ann data/lspet_val.json] [--photos 100] [--rounds 2] [--model M.onnx]``
-> ``benchmarks/results/photo_reading.{md,json}``.

The photos: the first ``--photos`` labelled persons' photos, each made a 4000 x 3000 JPEG (quality 92, about what a
phone writes; the labels moved with it) two ways:

- **large**: the photo scaled to fill the frame's height (grey at the sides); LSPET's persons then stand about
  half the frame's height;
- **small**: the photo scaled so its person's labelled box is 1/8 of the frame's height, at a random place on grey.

Upscaled photos hold no detail finer than their source's: this measures the pipeline (decoding, crops, mapping
back), not what a real 12 MP sensor adds.

Each set runs through the real CLI, as a subprocess, in three variants, alternating over ``--rounds`` rounds:
``--full-resolution --read-ahead 0`` (the CLI before session 45), ``--full-resolution`` (decoded ahead of the
model by a thread) and the default (decoded at 1/2, 1/4 or 1/8 while the long side stays >= 1280 px, ahead of the
model); both without boxes (the default search) and with the labelled tight boxes (``--boxes``, a COCO file).
Photos per second all-in (start-up included); the time ratio is the median over rounds of each variant's time to the
first's. PCK@0.2 of each variant's best-scoring person per photo, with the paired 95 % bootstrap interval of the
difference to the first variant.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results
from benchmarks.end_to_end import cli_command, time_cli
from benchmarks.frame_reading import place
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos, resolve_model
from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.metrics import pck, pck_interval

FRAME = (4000, 3000)  # (w, h) of a 12 MP camera photo
QUALITY = 92
SMALL_PERSON = 1 / 8  # the small set's person box height, as a fraction of the frame's
VARIANTS = {
    "whole photo, read between model calls (before)": ["--full-resolution", "--read-ahead", "0"],
    "whole photo, read ahead": ["--full-resolution"],
    "decoded smaller, read ahead (the default)": [],
}


def framed(photo, gt, box, small: bool, rng):
    """``photo`` placed in a FRAME-sized grey picture -> (picture, labels (K, 2), box (4,)) in its px."""
    if small:
        h, w = photo.shape[:2]
        s = SMALL_PERSON * FRAME[1] / max(box[3], 1.0)
        origin = (rng.uniform(0, max(FRAME[0] - s * w, 0.0)), rng.uniform(0, max(FRAME[1] - s * h, 0.0)))
        picture, m = place(photo, FRAME, s, origin)
    else:
        picture, m = place(photo, FRAME)  # fills the frame's height, centred
    corner = m[:, :2] @ np.asarray(box[:2]) + m[:, 2]  # an edge is a point like any other
    return picture, gt @ m[:, :2].T + m[:, 2], np.array([*corner, box[2] * m[0, 0], box[3] * m[1, 1]])


def write_set(folder: Path, photos, gt, boxes, small: bool, seed: int = 0):
    """The set's JPEGs in ``folder`` and a COCO boxes file beside them -> (labels (N, K, 2), boxes file)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels, images, anns = [], [], []
    for i, (photo, g, b) in enumerate(zip(photos, gt, boxes)):
        picture, label, box = framed(photo, g, b, small, rng)
        name = f"p{i:04d}.jpg"
        if not cv2.imwrite(str(folder / name), picture, [cv2.IMWRITE_JPEG_QUALITY, QUALITY]):
            raise SystemExit(f"cannot write {folder / name}")
        labels.append(label)
        images.append({"id": i + 1, "file_name": name, "width": FRAME[0], "height": FRAME[1]})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": box.tolist()})
    boxes_file = folder.parent / f"{folder.name}_boxes.json"
    boxes_file.write_text(json.dumps({"images": images, "annotations": anns,
                                      "categories": [{"id": 1, "name": "person"}]}))
    return np.stack(labels), boxes_file


def best_keypoints(results_file: Path, count: int, k: int) -> np.ndarray:
    """The best-scoring person's keypoints (count, K, 2) per photo (p0000.jpg ...) of a CLI results file; NaN where
    a photo has none."""
    out = np.full((count, k, 2), np.nan)
    best = np.full(count, -np.inf)
    for e in json.loads(results_file.read_text()):
        i = int(Path(e["file_name"]).stem[1:])
        if e["score"] > best[i]:
            best[i], out[i] = e["score"], np.reshape(e["keypoints"], (-1, 3))[:, :2]
    return out


def run_set(cmd, folder, boxes_file, model, labels, vis, names, rounds: int, tmp: Path):
    """Every variant without and with boxes over ``rounds`` rounds -> rows."""
    rows = []
    for boxed in (False, True):
        extra_common = ["--boxes", str(boxes_file)] if boxed else []
        seconds = {v: [] for v in VARIANTS}
        keypoints = {}
        for r in range(rounds):
            for v in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
                out = tmp / "out.json"
                seconds[v].append(time_cli(cmd, folder, model, out, None, len(labels),
                                           extra=[*VARIANTS[v], *extra_common]))
                keypoints[v] = best_keypoints(out, len(labels), len(names))
        first = list(VARIANTS)[0]
        for v in VARIANTS:
            score = pck(keypoints[v], labels, vis, names)[0]
            lo, hi = (pck_interval(keypoints[v], labels, vis, names, baseline=keypoints[first]) if v != first
                      else (0.0, 0.0))
            ratio = float(np.median(np.array(seconds[v]) / np.array(seconds[first])))
            rows.append({"boxes": boxed, "variant": v, "photos_per_s": len(labels) / float(np.median(seconds[v])),
                         "time_ratio": ratio, "seconds": seconds[v], "pck": float(score),
                         "pck_diff_interval": [float(lo), float(hi)]})
            print(f"{'boxes' if boxed else 'search'}, {v}: {rows[-1]['photos_per_s']:.2f} photos/s "
                  f"({ratio:.2f}x), PCK {score:.3f}", flush=True)
    return rows


def table(rows, first_pck) -> str:
    md = []
    for r in rows:
        diff = r["pck"] - first_pck[r["boxes"]]
        interval = "—" if r["variant"] == list(VARIANTS)[0] else (
            f"{diff:+.3f} ({r['pck_diff_interval'][0]:+.3f} to {r['pck_diff_interval'][1]:+.3f})")
        md.append(["tight boxes (`--boxes`)" if r["boxes"] else "none: the search", r["variant"],
                   f"{r['photos_per_s']:.2f}", f"{r['time_ratio']:.2f}×", f"{r['pck']:.3f}", interval])
    return markdown_table(["boxes", "decoding", "photos/s (all-in)", "time vs before", "PCK@0.2",
                           "vs before (95 % interval)"], md)


def main(argv=None):
    ap = BenchmarkParser("benchmarks.photo_reading", description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODELS["default"])
    add_persons_args(ap)
    ap.add_argument("--photos", type=positive_int, default=100, help="the first N persons' photos")
    ap.add_argument("--rounds", type=positive_int, default=2)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    a.model = resolve_model(str(a.model))  # a missing one refused by name before any photo is made
    names, gt, vis, boxes, files = load_persons_args(a)
    n = min(a.photos, len(files))
    photos = read_photos(a.images, files[:n])
    cmd, cmd_text = cli_command()
    data, parts = {}, []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for small in (False, True):
            key = "small" if small else "large"
            t0 = time.perf_counter()
            labels, boxes_file = write_set(tmp / key, photos, gt[:n], boxes[:n], small)
            print(f"{key}: {n} photos written in {time.perf_counter() - t0:.0f} s", flush=True)
            rows = run_set(cmd, tmp / key, boxes_file, a.model, labels, vis[:n], names, a.rounds, tmp)
            first = {r["boxes"]: r["pck"] for r in rows if r["variant"] == list(VARIANTS)[0]}
            data[key] = rows
            what = ("the photo fills the frame's height (its person about half of it)" if not small else
                    f"the person's box is {SMALL_PERSON:.3g} of the frame's height")
            parts += [f"## {key.capitalize()} persons: {what}", "", table(rows, first), ""]
    body = "\n".join([f"Model: `{_shown(a.model)}`; `{Path(cmd_text).name} predict FOLDER [variant] --quiet --out "
                      f"T.json` as a subprocess on {n} photos of `{a.ann.name}`, each a {FRAME[0]}×{FRAME[1]} JPEG "
                      f"(see the module's docstring); {a.rounds} rounds.", ""] + parts)
    write_results("photo_reading", "Camera-sized photos: decoding smaller and ahead of the model", body,
                  {"model": _shown(a.model), "photos": n, "frame": FRAME, "rounds": a.rounds, **data},
                  results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
