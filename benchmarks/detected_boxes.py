"""COCO's top-down protocol on detected boxes: what AP, AR and PCK become when the person boxes come from a detector.

``python -m benchmarks.detected_boxes [--ann data/lspet_val.json] [--images DIR] [--model M.onnx] [--limit N]``
-> ``benchmarks/results/detected_boxes.{md,json}``.

``fasterpose eval`` scores a model on the annotation file's own boxes, which hide wrong and missed persons;
published COCO figures run the model on a person detector's boxes instead (``fasterpose eval --detections``:
each pose scored box score x mean joint score above 0.2, OKS-NMS 0.9, PCK counting unmatched persons' joints as
misses). This runs that protocol with the boxes a user of this runtime has without a detector of their own:

1. the file's boxes (the tight box around each person's labelled joints; the upper bound);
2. OpenCV's HOG people detector (``fasterpose_rt.boxes.HogPeopleDetector``, as ``predict --detector hog``;
   its SVM margin is the score), as given and refined (``--refine 4``: each person run again on the box
   around its joints);
3. the runtime's own search (``find_poses_batch``, as ``fasterpose predict`` without boxes: one person per
   photo, the presence head's value as the score), its poses' boxes as the detections.

Each detection file is written as COCO detection results beside the report when ``--keep DIR`` is given.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import BenchmarkParser, markdown_table, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, read_photos
from fasterpose_rt import PosePredictor
from fasterpose_rt.boxes import HogPeopleDetector
from fasterpose_rt.detections import load_detections
from fasterpose_rt.evaluate import (coco_ap, load_annotations, match_keypoints, matched_persons, pck_report,
                                    predict_annotations, predict_detections)
from fasterpose_rt.search import person_presence
from fasterpose_rt.tracking import REFINE_PASSES, find_poses_batch


def hog_detections(photos, ids) -> list:
    """COCO detection results of OpenCV's HOG people detector on ``photos`` (their COCO ``ids``)."""
    detector, out = HogPeopleDetector(), []
    for image_id, photo in zip(ids, photos):
        boxes, scores = detector(photo)
        out += [{"image_id": int(image_id), "category_id": 1, "bbox": [round(float(v), 2) for v in b],
                 "score": round(float(s), 4)} for b, s in zip(boxes, scores)]
    return out


def search_detections(predictor, photos, ids) -> list:
    """The runtime's search (one person per photo, every guess kept) as detections: its poses' boxes, scored by
    ``search.person_presence`` (the presence head)."""
    out = []
    for start in range(0, len(photos), 16):
        found = find_poses_batch(predictor, photos[start:start + 16], min_presence=0)
        for image_id, res in zip(ids[start:start + 16], found):
            out += [{"image_id": int(image_id), "category_id": 1, "bbox": [round(float(v), 2) for v in b],
                     "score": round(float(s), 4)} for b, s in zip(res.boxes, person_presence(res))]
    return out


def evaluate(predictor, data, images, detections_file=None, refine_passes: int = 0) -> dict:
    """``fasterpose eval``'s figures for one way of boxing: {"AP", "AR", "pck", "ci95", "matched", "labelled",
    "poses"}."""
    match = match_keypoints(data, predictor.keypoint_names, "annotations", predictor.flip_pairs)
    data, cat = match.restrict(data), match.category
    columns = match.model_columns if match.partial else None

    def fail(path, reason):
        raise SystemExit(f"error: {path}: {reason}")

    if detections_file is None:
        results, done, kp = predict_annotations(predictor, data, images, cat["id"], "annotations", fail,
                                                columns=columns, refine_passes=refine_passes)
    else:
        ids = [im["id"] for im in data["images"]]
        found, _ = load_detections(detections_file, ids, cat["id"])
        results, done, kp = predict_detections(predictor, data, images, cat["id"], "annotations", found,
                                               match.sigmas, fail, columns=columns, refine_passes=refine_passes)
    coco = coco_ap(data, results, done, cat["id"], match.sigmas)
    report = pck_report(data, kp, match.names, done)
    matched, labelled = matched_persons(kp)
    return {"AP": coco["AP"], "AR": coco["AR"], "pck": report["pck"], "ci95": report["ci95"],
            "matched": matched, "labelled": labelled, "poses": len(results)}


def main(argv=None):
    ap = BenchmarkParser("benchmarks.detected_boxes", description=__doc__.split("\n")[0])
    add_persons_args(ap)
    ap.add_argument("--model", default=None, help="ONNX model (default: the bundled default)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="also write the detection files here")
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    if not a.ann.is_file():
        raise SystemExit(f"error: {a.ann} not found: make it with python -m models.data.lsp_to_coco (see README)")
    data = load_annotations(a.ann)
    if a.limit:
        data = dict(data, images=data["images"][:a.limit])
        keep = {im["id"] for im in data["images"]}
        data["annotations"] = [x for x in data["annotations"] if x["image_id"] in keep]
    ids = [im["id"] for im in data["images"]]
    photos = read_photos(a.images, [im["file_name"] for im in data["images"]])
    predictor = PosePredictor(a.model, threads=a.threads)
    folder = a.keep or Path(tempfile.mkdtemp(prefix="detected_boxes_"))
    folder.mkdir(parents=True, exist_ok=True)
    made, seconds = {}, {}
    for name, make in (("hog", lambda: hog_detections(photos, ids)),
                       ("search", lambda: search_detections(predictor, photos, ids))):
        t0 = time.perf_counter()
        dets = make()
        seconds[name] = (time.perf_counter() - t0) / len(photos)
        made[name] = folder / f"detections_{name}.json"
        made[name].write_text(json.dumps(dets))
    ways = [("the file's boxes (tight around the labelled joints)", None, 0),
            ("HOG people detector", made["hog"], 0),
            (f"HOG people detector, refined (--refine {REFINE_PASSES})", made["hog"], REFINE_PASSES),
            ("the runtime's search (predict without boxes)", made["search"], 0)]
    results, rows = {}, []
    for label, path, passes in ways:
        r = evaluate(predictor, data, a.images, path, passes)
        results[label] = r
        rows.append([label, f"{r['AP']:.3f}", f"{r['AR']:.3f}", f"{r['pck']:.3f} ({r['ci95'][0]:.3f}-{r['ci95'][1]:.3f})",
                     f"{r['matched']} of {r['labelled']}", r["poses"]])
    body = "\n\n".join([
        f"Model `{_shown(Path(predictor.model_path))}`; {len(ids)} photos of `{a.ann.name}`. Boxes from a detector go "
        "through `fasterpose eval --detections` (each pose scored box score x mean joint score above 0.2, OKS-NMS "
        "0.9); PCK counts every labelled joint of a person no pose matched as a miss. Seconds per photo to make the "
        f"detections: HOG {seconds['hog']:.4f}, the search {seconds['search']:.4f}.",
        markdown_table(["person boxes", "OKS AP", "OKS AR", "PCK@0.2 (95 % interval)", "labelled persons matched",
                        "poses"], rows),
    ])
    path = write_results("detected_boxes", "COCO's top-down protocol on detected boxes", body,
                         {"ann": a.ann.name, "photos": len(ids), "model": _shown(Path(predictor.model_path)),
                          "seconds_per_photo_detecting": seconds, "ways": results}, results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
