"""Where keypoint names, skeleton and flip pairs come from: the checkpoint, a COCO annotation file, or COCO-17."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from fasterpose_rt.evaluate import keypoint_category
from fasterpose_rt.jsonfile import load_json
from fasterpose_rt.skeletons import COCO17
from models.data.coco_keypoints import derive_flip_pairs, read_category  # training's own reading

from .errors import KeypointSetError

__all__ = ["KeypointSet", "resolve_keypoint_set", "keypoints_from_coco", "keypoints_from_meta"]


@dataclass
class KeypointSet:
    """K keypoint names, 0-based skeleton and flip pairs ((E, 2) index lists), OKS sigmas (K,) if known."""

    keypoints: List[str]
    skeleton: List[List[int]]
    flip_pairs: List[List[int]]
    sigmas: Optional[List[float]] = None
    source: str = ""  # where the names came from, recorded in the metadata
    info: Dict[str, Any] = field(default_factory=dict)  # dataset name, file, citation when known

    def validate(self, num_keypoints: int) -> "KeypointSet":
        k = len(self.keypoints)
        if k != num_keypoints:
            raise KeypointSetError(f"{self.source} names {k} keypoints but the model has {num_keypoints}")
        if not all(isinstance(n, str) and n for n in self.keypoints) or len(set(self.keypoints)) != k:
            raise KeypointSetError(f"{self.source}: keypoint names must be distinct non-empty strings")
        for name in ("skeleton", "flip_pairs"):
            for pair in getattr(self, name):
                if not (len(pair) == 2 and all(isinstance(i, int) and 0 <= i < k for i in pair)):
                    raise KeypointSetError(f"{self.source}: {name} entry {pair} is not a pair of indices in [0, {k})")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise KeypointSetError(f"{self.source}: {len(self.sigmas)} sigmas for {k} keypoints")
        if self.sigmas is not None and not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                               and math.isfinite(s) and s > 0 for s in self.sigmas):
            raise KeypointSetError(f"{self.source}: sigmas must be positive numbers, got {self.sigmas!r}")
        return self


def _pairs(value) -> List[List[int]]:
    return [[int(a), int(b)] for a, b in value]


def keypoints_from_meta(dataset: Dict[str, Any], source: str = "checkpoint dataset metadata") -> KeypointSet:
    """From a training checkpoint's ``meta["dataset"]`` (skeleton already 0-based there), or from the top of the
    meta of a ``models.from_onnx`` / ``models.soup`` checkpoint, which records them as the ONNX file had them."""
    names = dataset["keypoints"]
    if not isinstance(names, (list, tuple)):  # a string would pass as one name per letter
        raise KeypointSetError(f"{source}: keypoints must be a list of names, got {type(names).__name__} {names!r}")
    names = list(names)
    try:
        skeleton = _pairs(dataset.get("skeleton") or [])
        flips = _pairs(dataset["flip_pairs"]) if dataset.get("flip_pairs") is not None else derive_flip_pairs(names)
    except (TypeError, ValueError) as e:
        raise KeypointSetError(f"{source}: malformed skeleton/flip_pairs ({e})") from None
    info = {k: dataset[k] for k in ("name", "train_file", "citation") if dataset.get(k) is not None}
    sigmas = dataset.get("sigmas")
    if sigmas is not None:
        try:  # tensors and numpy numbers become floats; strings are refused, not parsed
            if isinstance(sigmas, (str, bytes)) or any(isinstance(s, (str, bytes, bool)) for s in sigmas):
                raise TypeError
            sigmas = [float(s) for s in sigmas]
        except (TypeError, ValueError):
            raise KeypointSetError(f"{source}: sigmas must be a list of positive numbers, got {sigmas!r}") from None
    return KeypointSet(names, skeleton, flips, sigmas, source, info)


def keypoints_from_coco(path) -> KeypointSet:
    """From a COCO annotation file's keypoint category as training reads it (models.data.coco_keypoints.read_category):
    names, 1-based skeleton made 0-based, the category's flip_pairs or else left_/right_ ones."""
    p = Path(path)
    if not p.exists():
        raise KeypointSetError(f"annotation file not found: {p}")
    coco = load_json(p, KeypointSetError)  # (deep nesting, a 5000-digit integer: one line, no traceback: review s68)
    cats = [c for c in coco.get("categories", []) if isinstance(c, dict) and c.get("keypoints")] if isinstance(coco, dict) else []
    if not cats:
        raise KeypointSetError(f"{p}: no COCO category with 'keypoints' names")
    cat = keypoint_category(coco)  # the category training and `fasterpose eval` read
    if cat is None or not cat.get("keypoints"):
        raise KeypointSetError(f"{p}: {len(cats)} categories with keypoints and none named 'person': which one "
                               "names the model's keypoints is not known")
    try:  # training's reading of the category: its own flip_pairs first, the same checks
        read = read_category(cat, p)
    except ValueError as e:
        raise KeypointSetError(str(e)) from None
    sigmas = read["sigmas"]
    if sigmas is None and read["keypoints"] == COCO17["keypoints"]:
        sigmas = COCO17["sigmas"]
    info = {"name": cat.get("name", ""), "keypoints_file": str(p)}
    return KeypointSet(read["keypoints"], read["skeleton"], read["flip_pairs"], sigmas, f"annotation file {p.name}",
                       info)


def resolve_keypoint_set(num_keypoints: int, checkpoint_meta: Optional[Dict[str, Any]] = None,
                         keypoints_from=None) -> KeypointSet:
    """Checkpoint metadata (its top-level keypoints, else its dataset's), else ``keypoints_from`` (COCO
    annotations), else COCO-17 when K = 17.

    Raises KeypointSetError when nothing names the K keypoints or the names found do not number K.
    """
    meta = checkpoint_meta or {}
    dataset = meta.get("dataset")
    if meta.get("keypoints"):  # models.from_onnx / models.soup: at the top, as models/head_transfer.py reads them
        ks = keypoints_from_meta(meta, "checkpoint metadata")
    elif isinstance(dataset, dict) and dataset.get("keypoints"):
        ks = keypoints_from_meta(dataset)
    elif keypoints_from is not None:
        ks = keypoints_from_coco(keypoints_from)
        keypoints_from = None  # read: nothing left to compare
    elif num_keypoints == 17:
        ks = KeypointSet(list(COCO17["keypoints"]), _pairs(COCO17["skeleton"]), _pairs(COCO17["flip_pairs"]),
                         list(COCO17["sigmas"]), "COCO-17 defaults")
    else:
        raise KeypointSetError(
            f"no keypoint names for K={num_keypoints}: pass --keypoints-from ANNOTATIONS.json (a COCO keypoint "
            "file) or a checkpoint that stores its dataset metadata (COCO-17 names are only assumed for K=17)"
        )
    if keypoints_from is not None:  # the checkpoint names them: a file naming others is a mistake, not a no-op
        theirs = keypoints_from_coco(keypoints_from).keypoints
        if set(theirs) != set(ks.keypoints):  # another order of the same names is matched by name
            raise KeypointSetError(f"--keypoints-from {keypoints_from} names {len(theirs)} keypoints "
                                   f"({', '.join(theirs[:3])}, ...), the checkpoint {len(ks.keypoints)} others "
                                   f"({', '.join(ks.keypoints[:3])}, ...): drop --keypoints-from (the checkpoint's are "
                                   "used)")
    return ks.validate(num_keypoints)
