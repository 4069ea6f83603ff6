"""A pose model's predictions for every person of a COCO training file, beside the file's labels: what the
label-repair tools (``fix_sides``, ``doubtful_labels``) compare the labels with."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

__all__ = ["LabelledPredictions", "predict_labelled_persons", "predict_or_explain"]


@dataclass
class LabelledPredictions:
    """predictor: the PosePredictor used; data: the COCO file as read; labels (A, K, 3) x, y, v per annotation,
    in the model's keypoint order; pred (A, K, 2) photo px, NaN for persons not predicted; scores (A, K), 0 where
    not predicted; failed: "path: reason" for each photo that could not be read; model: {"file", "sha256"} of the
    model file; columns (K,): where each of the model's keypoints is in the file's annotations (a file may list
    them in another order, or more of them: a tool writes its changes there)."""

    predictor: object
    data: dict
    labels: np.ndarray
    pred: np.ndarray
    scores: np.ndarray
    failed: List[str]
    model: dict
    columns: np.ndarray


def add_label_tool_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every label-repair tool takes: --ann, --images, --out, --model."""
    ap.add_argument("--ann", required=True, type=Path, help="COCO keypoint file (a training split)")
    ap.add_argument("--images", required=True, type=Path, help="its photo folder")
    ap.add_argument("--out", required=True, type=Path, help="COCO file to write")
    ap.add_argument("--model", default=None, help="ONNX pose model (default: the bundled default)")


def coco_keypoint_list(kp: np.ndarray) -> list:
    """kp (K, 3) -> COCO's flat [x, y, v] * K list, whole numbers written as ints (as the source file had them)."""
    return [int(v) if float(v).is_integer() else float(v) for v in np.asarray(kp).reshape(-1)]


def predict_labelled_persons(ann: Path, images: Path, model: Optional[str] = None,
                             flip_test: bool = True) -> LabelledPredictions:
    """Predict every annotation's ground-truth box (progress bar on stderr). Unreadable photos are listed in
    ``failed``, not raised. The labels are matched to the model's keypoints by name
    (``fasterpose_rt.evaluate.in_model_order``, its warnings on stderr). Raises EvalError (a bad file, or one that
    does not name the model's keypoints), ModelError or OSError."""
    from tqdm import tqdm

    from export.checkpoint import file_provenance
    from fasterpose_rt import PosePredictor
    from fasterpose_rt.evaluate import EvalError, in_model_order, load_annotations, match_keypoints, predict_annotations

    predictor = PosePredictor(model, flip_test=flip_test)
    data = load_annotations(ann)
    names = list(predictor.keypoint_names)
    k = len(names)
    ordered = in_model_order(data, names, str(ann))
    bad = next((a for a in ordered["annotations"] if len(a.get("keypoints") or []) != 3 * k), None)
    if bad is not None:  # e.g. of another category: these tools read every annotation as a labelled person
        raise EvalError(f"{ann}: annotation {bad.get('id')} has no keypoints of the person category (x, y, v each)")
    columns = match_keypoints(data, names, str(ann), need_sigmas=False).file_columns  # silent: warned above
    failed: List[str] = []
    scores = np.zeros((len(data["annotations"]), k))
    _, _, pred = predict_annotations(predictor, ordered, images, 1, str(ann),
                                     on_fail=lambda p, why: failed.append(f"{p}: {why}"),
                                     wrap=lambda it: tqdm(list(it), desc="predicting", unit="photo"),
                                     scores=scores)
    labels = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in ordered["annotations"]]
                      ).reshape(-1, k, 3)
    return LabelledPredictions(predictor, data, labels, pred, scores, failed,
                               file_provenance(predictor.model_path), np.asarray(columns, np.int64))


def predict_or_explain(ann: Path, images: Path, model: Optional[str] = None,
                       flip_test: bool = True) -> Optional[LabelledPredictions]:
    """``predict_labelled_persons`` for a command line: an expected error is printed ("error: ...") and gives
    None; each unreadable photo is named ("skipped ...") on stderr."""
    from fasterpose_rt.evaluate import EvalError
    from fasterpose_rt.session import ModelError

    try:
        found = predict_labelled_persons(ann, images, model, flip_test)
    except (EvalError, ModelError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    for f in found.failed:
        print(f"skipped {f}", file=sys.stderr)
    return found
