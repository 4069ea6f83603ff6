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
    """predictor: the PosePredictor used; data: the COCO file as read; labels (A, K, 3) x, y, v per annotation;
    pred (A, K, 2) photo px, NaN for persons not predicted; scores (A, K), 0 where not predicted; failed:
    "path: reason" for each photo that could not be read; model: {"file", "sha256"} of the model file."""

    predictor: object
    data: dict
    labels: np.ndarray
    pred: np.ndarray
    scores: np.ndarray
    failed: List[str]
    model: dict


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
    ``failed``, not raised. Raises EvalError (a bad file, or a keypoint count other than the model's),
    ModelError or OSError."""
    from tqdm import tqdm

    from export.checkpoint import file_provenance
    from fasterpose_rt import PosePredictor
    from fasterpose_rt.evaluate import EvalError, load_annotations, predict_annotations

    predictor = PosePredictor(model, flip_test=flip_test)
    data = load_annotations(ann)
    k = len(predictor.keypoint_names)
    if any(len(a.get("keypoints") or []) != 3 * k for a in data["annotations"]):
        raise EvalError(f"{ann}: every annotation needs {k} keypoints (x, y, v), as the model")
    failed: List[str] = []
    scores = np.zeros((len(data["annotations"]), k))
    _, _, pred = predict_annotations(predictor, data, images, 1, str(ann),
                                     on_fail=lambda p, why: failed.append(f"{p}: {why}"),
                                     wrap=lambda it: tqdm(list(it), desc="predicting", unit="photo"),
                                     scores=scores)
    labels = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in data["annotations"]]
                      ).reshape(-1, k, 3)
    return LabelledPredictions(predictor, data, labels, pred, scores, failed,
                               file_provenance(predictor.model_path))


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
