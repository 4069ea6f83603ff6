"""Exchange left and right in the labels of persons whose sides a model says are mirrored.

Crowd-sourced labels such as LSP Extended's (Amazon Mechanical Turk) mix up "the person's left" and "the left
of the photo": a person facing the camera then carries all left labels on their right side. A model trained
on the majority convention predicts such a person's sides the other way round. When the prediction, with
every left and right exchanged, hits clearly more labelled joints than as it is, this tool exchanges that
person's left and right labels (the coordinates stay; only which joint they belong to changes) and writes a
new COCO file. It is meant for *training* files only: a validation file must be scored as it was given.

    python -m models.data.fix_sides --ann data/lspet_train.json --images ../shared/datasets/lspet/images \\
        --out data/lspet_train_sides.json [--model M.onnx] [--margin 2] [--flip/--no-flip]

The output's ``info.fix_sides`` records the model (file, sha256), the rule and the ids of the persons changed.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import List, Optional

import numpy as np

from fasterpose_rt.metrics import mirror_hits
from fasterpose_rt.skeletons import flip_permutation

from .lsp_to_coco import out_path_problem, write_output
from .predicted_labels import add_label_tool_arguments, coco_keypoint_list

__all__ = ["mirrored_persons", "swap_sides", "main"]


def mirrored_persons(pred, gt, visible, names, flip_pairs, margin: int = 2, threshold: float = 0.2) -> np.ndarray:
    """Which persons' labels look left/right exchanged.

    pred, gt (N, K, 2) photo px (pred may hold NaN for persons not predicted: never chosen); visible (N, K) bool;
    flip_pairs [[left, right], ...]. A person is chosen when the mirrored prediction hits at least ``margin``
    more labelled joints (within ``threshold`` × torso) than the prediction as it is, *and* at least half of the
    person's counted joints: a model that is simply lost on a person says nothing about its labels.
    Returns (N,) bool.
    """
    pred = np.asarray(pred, dtype=np.float64)
    hit, mirrored, use = mirror_hits(pred, gt, visible, names, flip_pairs, threshold)
    h, m, n = hit.sum(axis=1), mirrored.sum(axis=1), use.sum(axis=1)
    return (m - h >= margin) & (2 * m >= n) & (n > 0) & np.isfinite(pred).all(axis=(1, 2))


def swap_sides(annotation: dict, perm: np.ndarray, columns: Optional[np.ndarray] = None) -> dict:
    """A copy of a COCO person annotation with keypoint k's (x, y, v) taken from keypoint perm[k].

    columns (K,): where the model's keypoint k is in the annotation (default: at k), perm being in the model's
    order; the annotation's other keypoints stay as they are."""
    out = copy.deepcopy(annotation)
    kp = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
    cols = np.arange(len(perm)) if columns is None else np.asarray(columns, np.int64)
    kp[cols] = kp[cols[np.asarray(perm)]]
    out["keypoints"] = coco_keypoint_list(kp)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.data.fix_sides", description=__doc__.split("\n")[0])
    add_label_tool_arguments(ap)
    ap.add_argument("--margin", type=int, default=2, help="extra joints the mirrored prediction must hit (default 2)")
    ap.add_argument("--threshold", type=float, default=0.2, help="PCK threshold, torso fraction (default 0.2)")
    ap.add_argument("--no-flip", action="store_true", help="predict without the flip test")
    args = ap.parse_args(argv)
    if args.margin < 1:
        ap.error("--margin must be at least 1")
    if not 0 < args.threshold <= 1:  # a torso fraction: beyond one torso every joint is a hit, both ways
        ap.error("--threshold must be in (0, 1] (a fraction of the torso)")

    problem = out_path_problem(args.out)  # told now, not after the whole prediction pass
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    from .predicted_labels import predict_or_explain

    found = predict_or_explain(args.ann, args.images, args.model, flip_test=not args.no_flip)
    if found is None:
        return 2

    predictor, data, kps, pred, failed = found.predictor, found.data, found.labels, found.pred, found.failed
    names = predictor.keypoint_names
    pairs = predictor.flip_pairs
    chosen = mirrored_persons(pred, kps[..., :2], kps[..., 2] > 0, names, pairs, args.margin, args.threshold)
    perm = flip_permutation(len(names), pairs)
    out = dict(data)
    out["annotations"] = [swap_sides(a, perm, found.columns) if c else a for a, c in zip(data["annotations"], chosen)]
    out["info"] = dict(data.get("info") or {})
    out["info"]["fix_sides"] = {
        "source": args.ann.name, "model": found.model,
        "rule": {"margin": args.margin, "threshold": args.threshold, "flip_test": not args.no_flip,
                 "min_mirrored_fraction": 0.5},
        "persons": len(chosen), "changed": [a.get("id") for a, c in zip(data["annotations"], chosen) if c],
    }
    try:
        write_output(args.out, json.dumps(out))
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: left and right exchanged for {int(chosen.sum())} of {len(chosen)} persons"
          + (f" ({len(failed)} photos unreadable, left as they were)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
