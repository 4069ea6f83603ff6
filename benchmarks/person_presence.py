"""Is anybody there? Photos without boxes: what ``--min-presence`` costs on photos of persons, full-body and from
the waist up, and how many photos of nobody it leaves without a person.

``python -m benchmarks.person_presence [--models A.onnx ...] [--ann data/lspet_val.json] [--negatives DIR_OR_ZIP
[--exclude a.png b.png]]`` -> ``benchmarks/results/person_presence.{md,json}``.

Without boxes the runtime finds a person by the window search (or on the whole photo, ``--no-search``) and, asked
to (``--min-presence``, off by default), reports it only when its better half of joints average at least that
confidence (``search.keep_present``; raw scores for a model without a score table). Every photo of ``--ann``
holds one labelled person, and so does each close-up cut from them (the upper body of each upright person, as a
webcam frames it: ``benchmarks.tracking.close_up_crops``): a photo where nobody is reported counts its person's
joints as missed, so PCK@0.2 is against every guess (the default), with a paired 95 % interval, and the guesses
left out are scored too. ``--negatives`` holds photos with nobody in them, a folder or a zip file (e.g. the
scikit-image wheel, whose sample pictures are person-free but for astronaut.png and camera.png: README); for each
threshold, how many of them still get a person, and which. One model run per photo and way; the thresholds are
applied to its result.
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import markdown_table, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos
from benchmarks.tracking import close_up_crops
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.inputs import IMAGE_EXTENSIONS, InputReadError, read_image
from fasterpose_rt.metrics import pck, pck_interval
from fasterpose_rt.search import presence

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6)  # --min-presence: 0 (the default) reports every guess
BATCH = 16


def guesses(pred, photos, search: bool):
    """The best guess of each photo (``min_presence=0``): keypoints (P, K, 2), presence (P,) as
    ``search.keep_present`` reads it (on confidences when the model has a score table, else on raw scores)."""
    xy, there = [], []
    for s in range(0, len(photos), BATCH):
        for r in find_poses_batch(pred, photos[s:s + BATCH], search=search, min_presence=0):
            xy.append(r.keypoints[0])
            there.append(presence(r.scores if r.confidences is None else r.confidences)[0])
    return np.array(xy).reshape(-1, pred.metadata.num_keypoints, 2), np.array(there)


def read_negatives(source: Path, exclude) -> tuple:
    """(names, photos) of the readable photos in ``source``: a folder (not recursive) or a zip file such as a wheel
    (every photo inside it, e.g. scikit-image's sample photos in ``skimage/data``); those named in ``exclude``
    left out, files that are not photos (or smaller than 32 px) skipped."""
    found = []
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for name in sorted(archive.namelist()):
                base = name.rsplit("/", 1)[-1]
                if base not in exclude and Path(base).suffix.lower() in IMAGE_EXTENSIONS:
                    data = np.frombuffer(archive.read(name), np.uint8)
                    found.append((base, cv2.imdecode(data, cv2.IMREAD_COLOR)))
    else:
        for path in sorted(Path(source).iterdir()):
            if path.name not in exclude and path.suffix.lower() in IMAGE_EXTENSIONS:
                try:
                    found.append((path.name, read_image(path)))
                except InputReadError:
                    continue
    found = [(n, im) for n, im in found if im is not None and min(im.shape[:2]) >= 32]
    return [n for n, _ in found], [im for _, im in found]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=[str(DEFAULT_MODELS["default"]), str(DEFAULT_MODELS["fast"])])
    add_persons_args(ap)
    ap.add_argument("--negatives", type=Path, default=None,
                    help="photos with nobody in them: a folder, or a zip / wheel holding them")
    ap.add_argument("--exclude", nargs="*", default=[], help="file names in --negatives to leave out")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, _, files = load_persons_args(a)
    photos = read_photos(a.images, files)
    crops, c_gt, c_vis, c_torso, _ = close_up_crops(photos, names, gt, vis)
    sets = (("photos of one person", photos, gt, vis, None), ("close-ups (waist up)", crops, c_gt, c_vis, c_torso))
    neg_names, negatives = read_negatives(a.negatives, set(a.exclude)) if a.negatives else ([], [])
    rows, data = [], {"ann": a.ann.name, "persons": len(files), "close_ups": len(crops), "negatives": neg_names,
                      "models": {}}
    for model in a.models:
        pred = PosePredictor(model, threads=a.threads)
        shown = _shown(Path(model))
        data["models"][shown] = {}
        for search in (True, False):
            way = "search" if search else "whole photo (--no-search)"
            neg_presence = guesses(pred, negatives, search)[1] if negatives else np.zeros(0)
            found = {}
            for label, images, g, v, torso in sets:
                xy, there = guesses(pred, images, search)
                found[label] = (xy, there, g, v, torso, pck(xy, g, v, names, torso=torso)[0])
            results = []
            for t in THRESHOLDS:
                entry = {"min_presence": t, "negatives_with_a_person": [n for n, p in zip(neg_names, neg_presence)
                                                                       if p >= t]}
                cells = []
                for label, (xy, there, g, v, torso, every) in found.items():
                    keep = there >= t
                    ours = np.where(keep[:, None, None], xy, np.inf)  # nobody reported: every joint missed
                    value = pck(ours, g, v, names, torso=torso)[0]
                    low, high = pck_interval(ours, g, v, names, baseline=xy, torso=torso)
                    # how well the model saw the persons left out: their guesses' PCK (None: nobody left out)
                    left_out = pck(xy[~keep], g[~keep], v[~keep], names, torso=None if torso is None else
                                   torso[~keep])[0] if (~keep).any() else None
                    entry[label] = {"reported": int(keep.sum()), "of": len(keep), "pck": value, "change": value - every,
                                    "change_ci95": [low, high], "pck_of_left_out": left_out}
                    cells.append(f"{int(keep.sum())} / {len(keep)}: {value:.3f} ({value - every:+.4f}, "
                                 f"{low:+.4f} to {high:+.4f})")
                results.append(entry)
                rows.append([shown, way, f"{t:g}" + (" (the default: every guess)" if t == 0 else ""), *cells,
                             f"{len(entry['negatives_with_a_person'])} / {len(neg_names)}" if neg_names
                             else "not measured"])
            data["models"][shown][way] = {"presence_of_negatives": dict(zip(neg_names, neg_presence.tolist())),
                                          "thresholds": results}
    body = "\n\n".join([
        f"{len(files)} photos of `{a.ann.name}`, one labelled person each, and {len(crops)} close-ups cut from them "
        "(each upright person's upper body), found without boxes; a photo where nobody is reported counts its "
        "person's joints as missed. Photos of nobody: "
        + (f"{len(neg_names)} from `{a.negatives}` ({', '.join(neg_names)})." if neg_names else "none given."),
        "Min presence: the confidence the better half of a person's joints must average (raw scores for a model "
        "without a score table). Cells: persons reported: PCK@0.2 (change against every guess, paired 95 % "
        "interval).",
        markdown_table(["model", "persons found by", "min presence", *[label for label, *_ in sets],
                        "photos of nobody with a person"], rows),
    ])
    path = write_results("person_presence", "Is anybody there? --min-presence on photos without boxes", body, data,
                         results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    main()
