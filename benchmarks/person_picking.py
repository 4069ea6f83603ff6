"""Which further persons the search reports: rules of ``search.pick_persons`` on the same refined candidates.

``python -m benchmarks.person_picking [--model M.onnx] [--ann data/lspet_val.json] [--max-persons 2] [--singles]``

Each photo (validation photos side by side in pairs, as ``benchmarks.tracking``'s two-person section; with
``--singles`` the photos one by one) is searched once for up to ``--max-persons`` persons, every refined candidate
kept (best mean joint score first). Each rule then picks among those candidates: the best always, then further
persons passing its mean-score and presence-head bars and the shared-joints rule (``pick_persons``); the model's
own presence threshold (the CLI's default, ``search.min_presence_for``) applies after it. Per rule: labelled persons
found per photo, other persons per photo, PCK@0.2 over every labelled person (one nobody was matched to: every joint
a miss). The rules differ only in what they report, so the search runs once and the comparison is exact. The
runtime's rule (``PRESENT_PERSON_SCORE`` and ``PERSON_PRESENCE`` with a presence head) was chosen with
``--ann data/lspet_train1k.json``, then measured on validation (docs/usage.md, "Several persons without a detector").
"""
from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
from tqdm import tqdm

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos
from benchmarks.tracking import match_persons, pair_photos
from fasterpose_rt import PosePredictor
from fasterpose_rt import tracking
from fasterpose_rt.metrics import pck
from fasterpose_rt.search import (PERSON_PRESENCE, PERSON_SCORE, PRESENT_PERSON_SCORE, min_presence_for,
                                  pick_persons)

SCORES = (0.0, 0.1, 0.15, 0.2, 0.3)
CHANCES = (None, 0.3, 0.5, 0.7, 0.9, 0.95)


def every_candidate(keypoints, scores, boxes, max_persons, *args, **kwargs) -> np.ndarray:
    """Stands in for ``pick_persons`` in the search: every refined candidate, best mean joint score first."""
    return np.argsort(-np.asarray(scores).mean(axis=1), kind="stable")


def candidates(pred, photos, max_persons: int) -> list:
    """Each photo's refined search candidates as one PoseResult (rows best first), every guess kept."""
    with mock.patch.object(tracking, "pick_persons", every_candidate):
        return [tracking.find_poses(pred, photo, None, max_persons=max_persons, min_presence=0)
                for photo, _, _ in tqdm(photos, desc="searching", unit="photo")]


def score_rule(found_by_photo, photos, names, max_persons: int, min_score: float, min_presence, threshold: float):
    """(labelled found per photo, others per photo, PCK@0.2) when the rule (``min_score``; ``min_presence`` None: no
    presence bar) picks from each photo's candidates, the presence ``threshold`` applied after it."""
    found = extra = 0
    xy, gt, vis = [], [], []
    for res, (_, labels, visible) in zip(found_by_photo, photos):
        there = res.presence if min_presence is not None else None
        rows = pick_persons(res.keypoints, res.scores, res.boxes, max_persons, min_score=min_score, presence=there,
                            min_presence=PERSON_PRESENCE if min_presence is None else min_presence)
        if res.presence is not None and threshold > 0:
            rows = rows[res.presence[rows] >= threshold]
        owner = match_persons(res.keypoints[rows], labels, visible, names)
        mine = np.full(labels.shape, np.nan)
        for person, q in enumerate(owner):
            if q >= 0:
                mine[q] = res.keypoints[rows[person]]
        found, extra = found + int((owner >= 0).sum()), extra + int((owner < 0).sum())
        xy.append(mine), gt.append(labels), vis.append(visible)
    n = len(photos)
    return found / n, extra / n, pck(np.concatenate(xy), np.concatenate(gt), np.concatenate(vis), names)[0]


def main(argv=None):
    ap = BenchmarkParser("benchmarks.person_picking", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--max-persons", type=positive_int, default=2)
    ap.add_argument("--singles", action="store_true", help="the photos one by one, not side by side in pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, _, files = load_persons_args(a)
    images = read_photos(a.images, files)
    pred = PosePredictor(a.model, threads=a.threads)
    if list(pred.keypoint_names) != list(names):
        raise SystemExit(f"error: {a.ann} does not label the model's keypoints in its order")
    photos = ([(im, g[None], v[None]) for im, g, v in zip(images, gt, vis)] if a.singles
              else pair_photos(images, gt, vis))
    found_by_photo = candidates(pred, photos, a.max_persons)
    threshold = min_presence_for(pred)
    chances = CHANCES if pred.has_presence else (None,)
    rows, data = [], []
    for min_score in SCORES:
        for chance in chances:
            f, e, v = score_rule(found_by_photo, photos, list(names), a.max_persons, min_score, chance, threshold)
            runtime = (min_score, chance) == ((PRESENT_PERSON_SCORE, PERSON_PRESENCE) if pred.has_presence
                                              else (PERSON_SCORE, None))
            label = f"{min_score:g}" + ("" if chance is None else f", presence >= {chance:g}")
            rows.append([label + (" (the runtime's)" if runtime else ""), f"{f:.3f}", f"{e:.3f}", f"{v:.4f}"])
            data.append({"min_score": min_score, "min_presence": chance, "runtime": runtime,
                         "labelled_found_per_photo": f, "extra_per_photo": e, "pck@0.2": v})
    per = 1 if a.singles else 2
    table = markdown_table(["further person: mean joint score >=", f"labelled found per photo (of {per})",
                            "others per photo", "PCK@0.2"], rows)
    body = (f"Model: `{_shown(Path(pred.model_path))}`; {len(photos)} photos of `{a.ann.name}` "
            f"({'one by one' if a.singles else 'side by side in pairs'}), up to {a.max_persons} persons, every "
            f"rule on the same refined candidates, the presence threshold {threshold:g} after it.\n\n{table}\n")
    print(body)
    name = "person_picking" + ("_singles" if a.singles else "")
    write_results(name, "Which further persons the search reports", body,
                  {"model": _shown(Path(pred.model_path)), "photos": len(photos), "max_persons": a.max_persons,
                   "presence_threshold": threshold, "rules": data}, results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
