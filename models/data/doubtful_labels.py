"""Leave out the training labels that a model, confident, puts far from where they are.

LSP Extended's labels were crowd-sourced (Amazon Mechanical Turk), and besides mixing up the sides (see
``fix_sides``) some joints are simply put in the wrong place. A model that has learnt the majority of the labels
disagrees with those: when its prediction of a labelled joint lies more than ``--distance`` × torso from the
label while the model is confident there (its keypoint score at least ``--min-score``), this tool marks that
joint unlabelled (x = y = v = 0, ``num_keypoints`` updated) and writes a new COCO file. Training then gives the
joint no label; with ``--teacher`` it learns that joint from the teacher alone. Training files only: a
validation file must be scored as it was given.

    python -m models.data.doubtful_labels --ann data/lspet_train_sides6.json --images ../shared/datasets/lspet/images \\
        --out data/lspet_train_doubtful.json [--model M.onnx] [--distance 0.5] [--min-score 0.3] [--no-flip]

The output's ``info.doubtful_labels`` records the model (file, sha256), the rule and, per person changed, the
annotation id and the joints left out.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import List, Optional

import numpy as np

from fasterpose_rt.metrics import torso_sizes

from .lsp_to_coco import out_path_problem, write_output
from .predicted_labels import add_label_tool_arguments, coco_keypoint_list

__all__ = ["doubtful_joints", "unlabel", "main"]


def doubtful_joints(pred, scores, gt, visible, names, distance: float = 0.5, min_score: float = 0.3) -> np.ndarray:
    """Which labelled joints the model contradicts with confidence.

    pred, gt (N, K, 2) photo px (pred NaN for persons not predicted: never chosen); scores (N, K) keypoint
    scores in [0, 1]; visible (N, K) bool. A joint is chosen when it is labelled, its person has a torso (see
    ``torso_sizes``), the prediction lies more than ``distance`` × torso from the label and its score is at least
    ``min_score``. Returns (N, K) bool.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    visible = np.asarray(visible, bool)
    torso = torso_sizes(gt, visible, names)  # (N,), NaN where no torso diagonal is labelled
    with np.errstate(invalid="ignore"):
        far = np.linalg.norm(pred - gt, axis=-1) > distance * torso[:, None]
        sure = np.asarray(scores, np.float64) >= min_score
    return visible & far & sure & np.isfinite(pred).all(axis=-1)


def unlabel(annotation: dict, joints: np.ndarray, columns: Optional[np.ndarray] = None) -> dict:
    """A copy of a COCO person annotation with the joints where ``joints`` (K,) bool is set made unlabelled
    (x = y = v = 0) and ``num_keypoints`` recounted. columns (K,): where joint k is in the annotation (default:
    at k; a file may list the model's keypoints in another order). When the input ``bbox`` is the tight box of its
    labelled joints (within 1e-3, as ``lsp_to_coco`` writes it), ``bbox`` and ``area`` become the tight box of the
    joints still labelled; any other box (e.g. a person's drawn box) is left as it is."""
    out = copy.deepcopy(annotation)
    kp = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
    was_tight = _is_tight_box(annotation.get("bbox"), kp)
    joints = np.asarray(joints, bool)
    kp[np.flatnonzero(joints) if columns is None else np.asarray(columns, np.int64)[joints]] = 0.0
    out["keypoints"] = coco_keypoint_list(kp)
    out["num_keypoints"] = int((kp[:, 2] > 0).sum())
    if was_tight:
        box = _tight_box(kp)
        out["bbox"] = [round(float(v), 3) for v in box]
        out["area"] = round(float(box[2] * box[3]), 3)
    return out


def _tight_box(kp: np.ndarray) -> np.ndarray:
    """[x, y, w, h] around the labelled rows of kp (K, 3); zeros when none is labelled (as ``lsp_to_coco``)."""
    xy = kp[kp[:, 2] > 0, :2]
    if not len(xy):
        return np.zeros(4)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return np.r_[lo, hi - lo]


def _is_tight_box(bbox, kp: np.ndarray, tol: float = 1e-3) -> bool:
    try:
        box = np.asarray(bbox, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        return False
    return bool((kp[:, 2] > 0).any()) and bool(np.all(np.abs(box - _tight_box(kp)) <= tol + 1e-9))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.data.doubtful_labels", description=__doc__.split("\n")[0])
    add_label_tool_arguments(ap)
    ap.add_argument("--distance", type=float, default=0.5,
                    help="how far the prediction must lie from the label, torso fraction (default 0.5)")
    ap.add_argument("--min-score", type=float, default=0.3, help="the model's least keypoint score there (default 0.3)")
    ap.add_argument("--no-flip", action="store_true", help="predict without the flip test")
    args = ap.parse_args(argv)
    if not args.distance > 0:
        ap.error("--distance must be positive")
    if not 0 <= args.min_score <= 1:
        ap.error("--min-score must be in [0, 1]")

    problem = out_path_problem(args.out)  # told now, not after the whole prediction pass
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    from .predicted_labels import predict_or_explain

    found = predict_or_explain(args.ann, args.images, args.model, flip_test=not args.no_flip)
    if found is None:
        return 2

    data, kps, pred, scores, failed = found.data, found.labels, found.pred, found.scores, found.failed
    names = found.predictor.keypoint_names
    chosen = doubtful_joints(pred, scores, kps[..., :2], kps[..., 2] > 0, names, args.distance, args.min_score)
    out = dict(data)
    out["annotations"] = [unlabel(a, c, found.columns) if c.any() else a for a, c in zip(data["annotations"], chosen)]
    out["info"] = dict(data.get("info") or {})
    out["info"]["doubtful_labels"] = {
        "source": args.ann.name, "model": found.model,
        "rule": {"distance": args.distance, "min_score": args.min_score, "flip_test": not args.no_flip},
        "persons": len(chosen), "labelled_joints": int((kps[..., 2] > 0).sum()),
        "changed": [{"id": a.get("id"), "joints": [names[k] for k in np.flatnonzero(c)]}
                    for a, c in zip(data["annotations"], chosen) if c.any()],
    }
    try:
        write_output(args.out, json.dumps(out))
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {int(chosen.sum())} of {int((kps[..., 2] > 0).sum())} labelled joints left out, "
          f"in {int(chosen.any(axis=1).sum())} of {len(chosen)} persons"
          + (f" ({len(failed)} photos unreadable, left as they were)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
