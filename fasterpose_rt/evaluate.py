"""``fasterpose eval``: predict with a COCO file's person boxes, then COCO keypoint AP/AR and PCK@0.2.

pycocotools is optional and imported only inside :func:`coco_ap`; PCK (fasterpose_rt.metrics) needs numpy only.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .boxes import BoxesFileError, coco_person_boxes
from .detections import BOX_RANGE, OKS_NMS, box_out_of_range, keep_poses, match_poses
from .annotated_photos import frame_warnings, listed_size, read_as_listed
from .decoder_messages import collect_decoder_messages, damage_said, decoder_words
from .inputs import InputReadError
from .jsonfile import finite_number, finite_numbers, load_json
from .metrics import left_right_confusions, pck, pck_by_orientation, pck_interval, score_reliability
from .predictor import PHOTO_GROUP_BYTES
from .prefetch import READ_AHEAD, prefetch
from .results import coco_entries
from .skeletons import COCO17
from .tracking import refine_batch

__all__ = ["EvalError", "MissingExtra", "NotComputed", "load_annotations", "check_annotations", "persons_to_evaluate",
           "KeypointMatch", "match_keypoints", "in_model_order", "predict_annotations", "predict_detections",
           "matched_persons", "coco_ap", "pck_report", "COCO_STAT_NAMES"]

PCK_CURVE = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # thresholds of pck_report's "by_threshold" (torso fractions)
COCO_STAT_NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
EXTRA_HINT = 'pip install "fasterpose[eval]"'


class EvalError(ValueError):
    """The annotation file cannot be evaluated against this model (malformed, or keypoints do not match)."""


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class NotComputed(ValueError):
    """A figure cannot be computed from what was evaluated (no photo read, no labelled person); the message says
    why."""


def load_annotations(path: os.PathLike, warnings: Optional[List[str]] = None) -> dict:
    """Read a COCO keypoint annotation file and check it (:func:`check_annotations`: the person annotations' fields,
    COCO's defaults filled in); raise EvalError naming the problem. ``warnings``, if given, receives what a user
    should know about the defaults."""
    data = load_json(path, EvalError)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise EvalError(f"{path}: not a COCO annotation file (needs 'images' and 'annotations' lists)")
    return check_annotations(data, str(path), warnings)


def _short(v: Any, limit: int = 60) -> str:
    """``repr(v)`` cut to ``limit`` characters: an error line names a value, not a whole list."""
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def keypoint_category(data: dict) -> Optional[dict]:
    """The category whose keypoints are evaluated (and trained on): the one named "person", else the only one with
    a keypoints list; None when neither. (A boxes file's category, which needs no keypoints, is
    :func:`boxes.person_category`'s.)"""
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    cat = next((c for c in cats if c.get("name") == "person"), None)
    with_kp = [c for c in cats if isinstance(c.get("keypoints"), list)]
    return cat if cat is not None or len(with_kp) != 1 else with_kp[0]


def oks_sigmas_ok(sigmas) -> bool:
    """Whether a category's ``sigmas`` are per-keypoint OKS sigmas: a list of finite positive numbers (JSON's true is
    no sigma; training and evaluation read a category by this one rule)."""
    return isinstance(sigmas, (list, tuple)) and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in sigmas)


def other_categories_left_out(data: dict, cat: Optional[dict]) -> Optional[str]:
    """A warning naming the annotations of other categories with keypoints, or also named "person", than ``cat``
    (:func:`keypoint_category`'s): they are left out (review s67: a second "person" category's persons and a hand
    category's were dropped in silence), or None."""
    if cat is None:
        return None
    others = {c["id"]: c.get("name") for c in data.get("categories") or [] if isinstance(c, dict) and c is not cat
              and (isinstance(c.get("keypoints"), list) or c.get("name") == "person")
              and isinstance(c.get("id"), int) and c["id"] != cat.get("id")}
    count = sum(1 for a in data.get("annotations") or []
                if isinstance(a, dict) and isinstance(a.get("category_id"), int) and a["category_id"] in others
                and not a.get("iscrowd"))
    if not count:
        return None
    names = ", ".join(f"{n!r} (id {i})" for i, n in list(others.items())[:3]) + (", ..." if len(others) > 3 else "")
    return (f"{count} annotation{'s' * (count != 1)} of other categories ({names}) left out: only the category "
            f"{cat.get('name')!r} (id {cat.get('id')}) is read; merge them into it to use them")


def check_annotations(data: dict, source: str, warnings: Optional[List[str]] = None) -> dict:
    """Check what evaluating a COCO keypoint file needs, and fill in COCO's defaults where pycocotools needs a field
    a file may leave out. ``data`` is not changed: the result shares its unchanged parts, changed annotations are
    copies.

    Raises EvalError naming the first offender: an image without an integer 'id' and a string 'file_name' or
    whose id another image has, an annotation that is not an object, or a person annotation (of the person
    category, :func:`match_keypoints`') without an integer 'image_id' that 'images' lists, a 'keypoints' list of 3
    numbers per keypoint of its category (x, y, v), a 'bbox' of 4 numbers [x, y, w, h] when given (a missing,
    null or empty one being no box; one the model cannot crop, ``detections.box_out_of_range``, is an error) or a
    numeric 'area' when present. Defaults (COCO's conventions): 'bbox' where there is none, the tightest box
    around the labelled keypoints (noted in ``warnings``; the model is run on it, as training crops such a person;
    at least 1 px a side, where training leaves out a person whose labelled keypoints span 1 px or less), or a box
    of no size for a person with none; 'iscrowd' 0; 'num_keypoints' the labelled ones (v > 0), also in place of a
    count that says otherwise (noted in ``warnings``: pycocotools leaves out a person whose count is 0); 'area' the
    bbox's w·h (noted in ``warnings``: COCO's own areas are the segmentation's, smaller), or, for a bbox with w or
    h <= 0, that of the box around the labelled keypoints (``_labelled_box``: the box such a person is run on), also
    for an 'area' of 0 (noted in ``warnings``: OKS divides by it); 'id', where missing, not an integer, 0 (pycocotools'
    "no match") or repeated, a running id past the largest (pycocotools indexes every annotation by it).
    Annotations without a 'category_id' are no person.
    """
    listed: Dict[int, int] = {}  # image id -> its index in 'images'
    for i, im in enumerate(data["images"]):
        if not (isinstance(im, dict) and isinstance(im.get("id"), int) and not isinstance(im["id"], bool)
                and isinstance(im.get("file_name"), str)):
            raise EvalError(f"{source}: images[{i}] needs an integer 'id' and a string 'file_name'")
        if im["id"] in listed:  # annotations name photos by id: one of the two would get the other's persons
            raise EvalError(f"{source}: images[{i}] has the id {im['id']} of images[{listed[im['id']]}]; "
                            "each photo needs an id of its own")
        listed[im["id"]] = i
    cat = keypoint_category(data)
    person = cat.get("id") if cat is not None else None
    k = len(cat["keypoints"]) if cat is not None and isinstance(cat.get("keypoints"), list) else None
    left_out = other_categories_left_out(data, cat)
    if left_out is not None and warnings is not None:
        warnings.append(f"{source}: {left_out}")
    anns = data["annotations"]
    ids = [a.get("id") for a in anns if isinstance(a, dict)]
    next_id = max([i for i in ids if isinstance(i, int) and not isinstance(i, bool)], default=0) + 1
    seen: set = set()
    out, areas_filled, areas_zero, boxes_filled, counts_fixed = [], 0, 0, 0, 0
    for j, a in enumerate(anns):
        if not isinstance(a, dict):
            raise EvalError(f"{source}: annotations[{j}] is not an object")
        fill: Dict[str, Any] = {}
        if person is not None and "category_id" in a and a["category_id"] == person:
            _check_person(a, f"{source}: annotations[{j}]", listed, k)
            if "iscrowd" not in a:
                fill["iscrowd"] = 0
            labelled_count = sum(1 for v in a["keypoints"][2::3] if v > 0)
            if a.get("num_keypoints") != labelled_count:  # pycocotools leaves out a person whose count is 0
                counts_fixed += "num_keypoints" in a  # (training recounts them too)
                fill["num_keypoints"] = labelled_count
            if not a.get("bbox"):  # null or [] too: COCO files' "no box"; pycocotools reads one for every person
                kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
                # run on the box around its labelled keypoints, as training crops it (none: a box of no size,
                # and with no labelled keypoint the person is not scored)
                labelled = bool((kp[:, 2] > 0).any())
                fill["bbox"] = [float(v) for v in _labelled_box(a, kp)] if labelled else [0.0, 0.0, 0.0, 0.0]
                boxes_filled += labelled
            if a.get("area", 0) == 0 and (a.get("bbox") or "bbox" in fill):  # none, or 0: every OKS would be 0
                area = _filled_area(dict(a, **fill))
                if "area" not in a or area > 0:
                    fill["area"] = area
                    areas_zero += "area" in a
                    areas_filled += "area" not in a
        ann_id = a.get("id")
        # (0 too: pycocotools' matches hold the matched person's id, 0 for "none", so a person of id 0 is never
        # matched: each detection of it a false positive)
        if not isinstance(ann_id, int) or isinstance(ann_id, bool) or ann_id == 0 or ann_id in seen:
            fill["id"], next_id = next_id, next_id + 1
        seen.add(fill.get("id", ann_id))
        out.append(dict(a, **fill) if fill else a)
    if counts_fixed and warnings is not None:
        warnings.append(f"{source}: {counts_fixed} of the persons have a 'num_keypoints' other than their labelled "
                        "keypoints (v > 0); each is counted from its keypoints, as training counts them")
    if boxes_filled and warnings is not None:
        warnings.append(f"{source}: {boxes_filled} of the persons have no 'bbox'; each is run on the tightest box "
                        "around its labelled keypoints (as training crops them)")
    if areas_zero and warnings is not None:
        warnings.append(f"{source}: {areas_zero} of the persons have an 'area' of 0, which would make every OKS 0; "
                        "COCO AP takes their box's w x h instead")
    if areas_filled and warnings is not None:
        warnings.append(f"{source}: {areas_filled} of the persons have no 'area'; COCO AP takes their box's w x h "
                        "(COCO's own areas, the segmentation's, are smaller and give a lower AP)")
    return dict(data, annotations=out)


def _filled_area(a: dict) -> float:
    """COCO's default 'area' of a checked person annotation with a bbox: its w·h, or, when w or h <= 0, that of the
    box around its labelled keypoints (the box it is run on), so OKS scales by a real size."""
    b = a["bbox"]
    kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
    if (b[2] > 0 and b[3] > 0) or not (kp[:, 2] > 0).any():
        return float(b[2]) * float(b[3])
    box = _labelled_box(a, kp)
    return float(box[2]) * float(box[3])


def _check_person(a: dict, where: str, listed: Dict[int, int], k: Optional[int]) -> None:
    """EvalError unless the person annotation ``a`` has what evaluating it needs (see check_annotations)."""
    if "id" in a:
        where += f" (id {_short(a['id'], 20)})"
    image_id = a.get("image_id")
    if image_id is None:
        raise EvalError(f"{where} has no 'image_id'")
    if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in listed:
        raise EvalError(f"{where} refers to image_id {_short(image_id)}, which 'images' does not list")
    kp = a.get("keypoints")
    if kp is None:
        raise EvalError(f"{where} has no 'keypoints'")
    if not (isinstance(kp, list) and (len(kp) == 3 * k if k is not None else len(kp) % 3 == 0)
            and finite_numbers(kp)):
        size = f"3 x {k} = {3 * k}" if k is not None else "3 per keypoint"
        raise EvalError(f"{where}: 'keypoints' must be a list of {size} numbers (x, y, v each), got {_short(kp)}")
    b = a.get("bbox")
    if b and not (isinstance(b, list) and len(b) == 4 and all(finite_number(v) for v in b)):
        raise EvalError(f"{where}: 'bbox' must be [x, y, w, h] numbers, got {_short(b)}")
    if b and box_out_of_range(b):  # the model could not crop it: named here, not as a crash mid-run
        raise EvalError(f"{where}: 'bbox' {_short(b)} is out of range ({BOX_RANGE})")
    if "area" in a and not (finite_number(a["area"]) and a["area"] >= 0):  # COCOeval's area ranges read it
        raise EvalError(f"{where}: 'area' must be a number >= 0, got {_short(a['area'])}")


def persons_to_evaluate(data: dict, category_id: int, source: str) -> int:
    """How many annotations of checked ``data`` (:func:`check_annotations`: every person has a bbox then) are
    persons evaluation can score: of ``category_id``, not a crowd, with a labelled keypoint (v > 0). Raises
    EvalError saying why when there is none (a run would report nothing)."""
    anns = data["annotations"]
    if not anns:
        raise EvalError(f"{source}: no person to evaluate: its 'annotations' list is empty")
    why = {"have no 'category_id'": 0, f"are of another category than the person category ({category_id})": 0,
           "are crowds": 0, "have no labelled keypoint": 0}
    no_category, other_category, crowd, unlabelled = why
    usable = 0
    for a in anns:
        kp = a.get("keypoints")
        if "category_id" not in a:
            why[no_category] += 1
        elif a["category_id"] != category_id:
            why[other_category] += 1
        elif a.get("iscrowd", 0):
            why[crowd] += 1
        elif not (isinstance(kp, list) and any(v > 0 for v in kp[2::3])):
            why[unlabelled] += 1
        else:
            usable += 1
    if not usable:
        raise EvalError(f"{source}: no person to evaluate: of its {len(anns)} annotations, "
                        + ", ".join(f"{n} {what}" for what, n in why.items() if n))
    return usable


MIN_SHARED = 4  # fewer keypoint names in common than this: the file is for another kind of model


@dataclass
class KeypointMatch:
    """How a COCO file's keypoints meet the model's: which are evaluated, and where each one is on either side.

    category: the file's person category; names (M,): the evaluated keypoints; model_columns (M,): their indices
    in the model's output; file_columns (M,): in the file's annotations; sigmas (M,): their OKS sigmas;
    flip_pairs: the model's flip pairs among the M (indices into them); partial: the file's annotations and the
    model's output must be cut down or reordered (``restrict``, predict_annotations' ``columns``) to meet;
    warnings: what a user should know (e.g. the keypoints left out); no_sigmas: why OKS (COCO AP) cannot be
    computed, the file giving no sigmas (``sigmas`` are then placeholders), None when it can.
    """

    category: dict
    names: List[str]
    model_columns: np.ndarray
    file_columns: np.ndarray
    sigmas: np.ndarray
    flip_pairs: List[List[int]]
    partial: bool
    warnings: List[str]
    no_sigmas: Optional[str] = None

    def restrict(self, data: dict) -> dict:
        """``data`` with the person category and its annotations cut down to the evaluated keypoints, in the
        model's order (num_keypoints recounted, so pycocotools ignores persons left with no labelled one);
        ``data`` itself when nothing is cut. ``data`` is not changed."""
        if not self.partial:
            return data
        cid, cols, k = self.category.get("id"), self.file_columns, len(self.category["keypoints"])
        where = {int(old): new for new, old in enumerate(cols)}
        skeleton = [[where[a - 1] + 1, where[b - 1] + 1] for a, b in self.category.get("skeleton") or []
                    if a - 1 in where and b - 1 in where]  # COCO skeletons count from 1
        cat = {key: v for key, v in self.category.items() if key != "flip_pairs"}  # its indices would be stale
        cat.update(keypoints=list(self.names), skeleton=skeleton)
        if self.no_sigmas is None:  # placeholders are no sigmas of the file's
            cat["sigmas"] = self.sigmas.tolist()
        anns = []
        for a in data["annotations"]:
            kp = a.get("keypoints")
            if a.get("category_id") == cid and isinstance(kp, list) and len(kp) == 3 * k:
                kp = np.asarray(kp, np.float64).reshape(k, 3)[cols]
                a = dict(a, keypoints=kp.ravel().tolist(), num_keypoints=int((kp[:, 2] > 0).sum()))
            anns.append(a)
        cats = [cat if c is self.category else c for c in data.get("categories") or []]
        return dict(data, annotations=anns, categories=cats)


def match_keypoints(data: dict, model_keypoints: List[str], source: str,
                    model_flip_pairs: Sequence[Sequence[int]] = (), need_sigmas: bool = True) -> KeypointMatch:
    """Find the person category and match its keypoints with the model's.

    The category named "person", else the only one with keypoints. Keypoints are matched by name: the ones both
    name are evaluated (at least MIN_SHARED; a COCO-17 file and the bundled 14-joint LSP models share 12), the
    others are left out with a warning. With fewer names in common but as many keypoints as the model, they are
    compared by position (with a warning). Sigmas: the category's ``sigmas`` field when present, else COCO's when
    the file has 17 keypoints; otherwise EvalError, or, when not ``need_sigmas`` (a caller that computes OKS only
    if it can, e.g. COCO AP beside PCK), 1.0 each with the reason in ``no_sigmas``.
    """
    cat = keypoint_category(data)
    if cat is None or not isinstance(cat.get("keypoints"), list):
        raise EvalError(f"{source}: no 'person' category with a 'keypoints' list")
    if not isinstance(cat.get("id"), int) or isinstance(cat["id"], bool):
        raise EvalError(f"{source}: the '{cat.get('name')}' category needs an integer 'id'")  # annotations name it
    names, model_names, warnings = [str(n) for n in cat["keypoints"]], [str(n) for n in model_keypoints], []
    sigmas: Any = cat.get("sigmas")
    no_sigmas = None
    if sigmas is not None:
        if not (isinstance(sigmas, list) and len(sigmas) == len(names) and oks_sigmas_ok(sigmas)):
            raise EvalError(f"{source}: the category's 'sigmas' must be {len(names)} positive numbers")
    elif len(names) == len(COCO17["sigmas"]):
        sigmas = COCO17["sigmas"]
    else:
        no_sigmas = (f"{source}: {len(names)} keypoints and no per-keypoint 'sigmas' in the category; OKS needs them "
                     "(COCO's are only known for its 17 keypoints)")
        if need_sigmas:
            raise EvalError(no_sigmas)
        sigmas = [1.0] * len(names)  # a placeholder: the caller computes no OKS
    shared = [n for n in model_names if n in names]
    if names == model_names or (len(shared) < MIN_SHARED and len(names) == len(model_names)):
        model_cols = file_cols = np.arange(len(names))
        evaluated = names
        if names != model_names:
            warnings.append(f"keypoint names differ between the model ({', '.join(model_names[:3])}, ...) and "
                            f"{source} ({', '.join(names[:3])}, ...); they are compared by position")
    elif len(shared) >= MIN_SHARED:
        model_cols = np.array([model_names.index(n) for n in shared], np.int64)
        file_cols = np.array([names.index(n) for n in shared], np.int64)
        evaluated = shared
        left_out = [n for n in names if n not in shared] + [n for n in model_names if n not in shared]
        warnings.append(f"the model ({len(model_names)} keypoints) and {source} ({len(names)}) share "
                        f"{len(shared)} keypoint names; only those are evaluated (left out: {', '.join(left_out)})"
                        if left_out else f"{source} lists the model's keypoints in another order; matched by name")
    else:
        raise EvalError(f"the model predicts {len(model_names)} keypoints but {source}'s category "
                        f"'{cat.get('name')}' has {len(names)}, and they share {len(shared)} keypoint "
                        f"names (at least {MIN_SHARED} needed): evaluate a model trained for this keypoint set")
    where = {int(m): j for j, m in enumerate(model_cols)}
    flips = [[where[a], where[b]] for a, b in model_flip_pairs if a in where and b in where]
    identity = len(file_cols) == len(names) == len(model_names) and bool((file_cols == model_cols).all())
    return KeypointMatch(cat, list(evaluated), model_cols, file_cols, np.asarray(sigmas, np.float64)[file_cols],
                         flips, not identity, warnings, no_sigmas)


def in_model_order(data: dict, model_keypoints: Sequence[str], source: str,
                   warn: Optional[Callable[[str], None]] = None) -> dict:
    """``data`` with its person annotations' keypoints in the model's order, for tools that read ground truth by
    position (:func:`match_keypoints` without sigmas, then :meth:`KeypointMatch.restrict`; ``data`` is not changed).

    The file may list the model's keypoints in any order, and more (left out). EvalError when it does not name all
    of the model's, naming the missing ones; but names that differ altogether, as many as the model's, are compared
    by position as ``match_keypoints`` does. The match's warnings go to ``warn`` (default: stderr).
    """
    model_names = [str(n) for n in model_keypoints]
    cat = keypoint_category(data)
    if cat is not None and isinstance(cat.get("keypoints"), list):
        listed = {str(n) for n in cat["keypoints"]}
        missing = [n for n in model_names if n not in listed]
        by_position = len(cat["keypoints"]) == len(model_names) and len(model_names) - len(missing) < MIN_SHARED
        if missing and not by_position:  # a cut-down match would leave the model's other joints unlabelled
            raise EvalError(f"{source}: its category '{cat.get('name')}' does not name {len(missing)} of the "
                            f"model's {len(model_names)} keypoints ({', '.join(missing)}); give a file labelled "
                            "with the model's keypoints")
    match = match_keypoints(data, model_names, source, need_sigmas=False)
    for w in match.warnings:
        if warn is None:
            print(f"warning: {w}", file=sys.stderr)
        else:
            warn(w)
    return match.restrict(data)


def predict_annotations(predictor, data: dict, images_dir: os.PathLike, category_id: int, source: str,
                        on_fail: Callable[[Path, str], None], wrap: Callable[[Iterable], Iterable] = iter,
                        scores: Optional[np.ndarray] = None, columns: Optional[np.ndarray] = None,
                        refine_passes: int = 0, warn: Optional[Callable[[str], None]] = None,
                        decoder_lines: bool = False):
    """Predict every photo's person boxes, photos grouped so their persons share the model's batches (up to the
    predictor's batch_size persons, or PHOTO_GROUP_BYTES of decoded photos, per group). A labelled person whose
    bbox has w or h <= 0 is run on the box around its labelled keypoints (``_labelled_box``, as predict_detections
    matches it), so PCK and AP both see it; ``warn`` (default: stderr) is told how many, and of photos read in
    another frame than the file's width and height say (``_predict_photos``).

    Returns (results: COCO result dicts, processed image ids, pred (A, K, 2) with NaN where not predicted, A =
    number of annotations). A photo that is missing or unreadable is reported through on_fail(path, reason)
    and left out of the processed ids (so it does not count as missed persons). ``scores``, if given, an (A, K)
    array that receives the keypoint scores of the persons predicted (the others are left as they were).
    columns: the model's keypoints to keep, in that order (KeypointMatch.model_columns; None: all, K = the model's).
    refine_passes: each person run again up to this many times on the box around its joints (``tracking.refine``).
    """
    warn = warn or _stderr_warning
    try:
        names, boxes = coco_person_boxes(data, source, category_id)
    except BoxesFileError as e:
        raise EvalError(str(e)) from None
    added = _add_keypoint_boxes(data, category_id, boxes, source)
    if added:
        warn(f"{source}: {added} labelled person{'s have' if added > 1 else ' has'} a 'bbox' with w or h <= 0; run "
             "on the box around the labelled keypoints instead")
    k = predictor.metadata.num_keypoints if columns is None else len(columns)
    pred = np.full((len(data["annotations"]), k, 2), np.nan)
    results: List[dict] = []

    def take(image_id, res):
        entry = boxes[image_id]
        pred[entry.ann_index] = res.keypoints
        if scores is not None:
            scores[entry.ann_index] = res.scores
        results.extend(coco_entries(res, image_id, names[image_id], category_id=category_id))

    done = _predict_photos(predictor, names, {i: b.boxes for i, b in boxes.items()}, images_dir, on_fail, wrap,
                           take, columns, refine_passes, _image_sizes(data), warn, decoder_lines)
    return results, done, pred


def _add_keypoint_boxes(data: dict, category_id: int, boxes: Dict[int, Any], source: str) -> int:
    """Add to ``boxes`` ({image id: ImageBoxes}, coco_person_boxes') the box around the labelled keypoints of each
    person of ``category_id``, not a crowd, whose bbox has w or h <= 0 (coco_person_boxes leaves those out).
    Returns how many were added; EvalError when such a box is beyond what the model can crop."""
    added = 0
    for j, a in enumerate(data["annotations"]):  # one pass over the annotations, as check_annotations'
        b, kp = a.get("bbox"), a.get("keypoints")
        if a.get("category_id") != category_id or a.get("iscrowd", 0) or a.get("image_id") not in boxes \
                or not (isinstance(b, list) and len(b) == 4) or (b[2] > 0 and b[3] > 0) \
                or not (isinstance(kp, list) and len(kp) % 3 == 0 and any(v > 0 for v in kp[2::3])):
            continue
        box = _labelled_box(a, np.asarray(kp, np.float64).reshape(-1, 3))
        if box_out_of_range(box):
            raise EvalError(f"{source}: annotations[{j}]: its 'bbox' has w or h <= 0 and the box around its labelled "
                            f"keypoints, {_short(box)}, is out of range ({BOX_RANGE})")
        entry = boxes[a["image_id"]]
        entry.boxes = np.concatenate([entry.boxes, np.asarray([box], np.float64)])
        entry.ann_index = np.append(entry.ann_index, j)
        added += 1
    return added


def _image_sizes(data: dict) -> Dict[int, tuple]:
    """{image id: (height, width)} of the images whose entry gives both as positive integers."""
    sizes = {im["id"]: listed_size(im) for im in data["images"]}
    return {i: size for i, size in sizes.items() if size is not None}


def _stderr_warning(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def predict_detections(predictor, data: dict, images_dir: os.PathLike, category_id: int, source: str,
                       detections, sigmas: np.ndarray, on_fail: Callable[[Path, str], None],
                       wrap: Callable[[Iterable], Iterable] = iter, scores: Optional[np.ndarray] = None,
                       columns: Optional[np.ndarray] = None, refine_passes: int = 0,
                       nms_threshold: float = OKS_NMS, warn: Optional[Callable[[str], None]] = None,
                       decoder_lines: bool = False):
    """``predict_annotations`` on a detector's boxes instead of the file's own (COCO's top-down protocol,
    ``detections.py``): every box of ``detections`` ({image id: (boxes (M, 4), box scores (M,))}) is a person; a
    pose's score is ``detections.rescore`` of its box's and joints' scores; poses of a photo overlapping by OKS >
    ``nms_threshold`` are one (``oks_nms``; 1: keep all). Each labelled person (keypoints listed and labelled) is
    then matched to one pose (``match_poses``): ``pred`` and ``scores`` hold that pose's joints; a person no pose
    matches gets ``inf`` coordinates (PCK counts its joints as misses) where the photo was processed.
    sigmas (K,): the OKS sigmas of the evaluated keypoints. ``warn`` (default: stderr): as predict_annotations'.
    Returns (results, processed image ids, pred (A, K, 2)).
    """
    try:
        names, _ = coco_person_boxes(data, source, category_id)
    except BoxesFileError as e:
        raise EvalError(str(e)) from None
    k = predictor.metadata.num_keypoints if columns is None else len(columns)
    anns = data["annotations"]
    pred = np.full((len(anns), k, 2), np.nan)
    labelled: Dict[int, List[int]] = {}  # image id -> indices of its annotations with labelled keypoints
    for j, a in enumerate(anns):
        kp = a.get("keypoints") if isinstance(a, dict) else None
        if a.get("category_id") == category_id and not a.get("iscrowd", 0) and isinstance(kp, list) \
                and len(kp) == 3 * k and any(v > 0 for v in kp[2::3]):
            labelled.setdefault(a.get("image_id"), []).append(j)
    results: List[dict] = []

    def take(image_id, res):
        if len(res):
            keep, final = keep_poses(res.keypoints, res.scores, detections[image_id][1], res.boxes, sigmas,
                                     nms_threshold)
            res = res.take(keep)
            entries = coco_entries(res, image_id, names[image_id], category_id=category_id)
            for entry, value in zip(entries, final):
                entry["score"] = round(float(value), 4)
            results.extend(entries)
        rows = labelled.get(image_id, [])
        if not rows:
            return
        gt = np.array([anns[j]["keypoints"] for j in rows], np.float64).reshape(len(rows), k, 3)
        gt_boxes = np.array([_labelled_box(anns[j], gt[i]) for i, j in enumerate(rows)], np.float64)
        areas = np.array([anns[j].get("area") or gt_boxes[i, 2] * gt_boxes[i, 3] for i, j in enumerate(rows)],
                         np.float64)
        match = match_poses(res.keypoints, res.boxes, gt[..., :2], gt[..., 2] > 0, gt_boxes, areas, sigmas)
        found = match >= 0
        rows_arr = np.asarray(rows, np.int64)
        pred[rows_arr[found]] = res.keypoints[match[found]]
        if scores is not None:
            scores[rows_arr[found]] = res.scores[match[found]]

    done = _predict_photos(predictor, names, {i: detections[i][0] for i in names}, images_dir, on_fail, wrap,
                           take, columns, refine_passes, _image_sizes(data), warn or _stderr_warning, decoder_lines)
    for image_id in done:  # a processed photo's labelled persons that no pose matched (or that had no box)
        rows_arr = np.asarray(labelled.get(image_id, []), np.int64)
        pred[rows_arr[np.isnan(pred[rows_arr]).any(axis=(1, 2))]] = np.inf
    return results, done, pred


def matched_persons(pred: np.ndarray):
    """(matched, labelled) counts of ``predict_detections``' pred (A, K, 2): persons a pose matched (finite), and
    those plus the ones none matched (inf); not-predicted rows (NaN) count in neither."""
    matched = np.isfinite(pred).all(axis=(1, 2))
    return int(matched.sum()), int((matched | np.isinf(pred).any(axis=(1, 2))).sum())


def _labelled_box(annotation: dict, keypoints: np.ndarray) -> List[float]:
    """A labelled person's box: its ``bbox``, else the tightest box around its labelled keypoints (K, 3)."""
    b = annotation.get("bbox")
    if isinstance(b, list) and len(b) == 4 and b[2] > 0 and b[3] > 0:
        return [float(v) for v in b]
    xy = keypoints[keypoints[:, 2] > 0, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return [lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)]


def _predict_photos(predictor, names: Dict[int, str], boxes: Dict[int, np.ndarray], images_dir: os.PathLike,
                    on_fail: Callable[[Path, str], None], wrap: Callable[[Iterable], Iterable],
                    take: Callable[[int, Any], None], columns: Optional[np.ndarray], refine_passes: int,
                    sizes: Optional[Dict[int, tuple]] = None, warn: Callable[[str], None] = _stderr_warning,
                    decoder_lines: bool = False) -> List[int]:
    """Run every photo of ``names`` ({image id: file name}) on its ``boxes`` ((N, 4) each), photos grouped so their
    persons share the model's batches, refined ``refine_passes`` times; ``take(image_id, PoseResult)`` receives each
    photo's poses (cut to ``columns``). Photos without boxes are done without being read; a missing or unreadable
    one goes to ``on_fail`` and is left out. ``sizes`` ({image id: (H, W)}, the file's): a photo is read in the
    frame they say (:func:`~fasterpose_rt.annotated_photos.read_as_listed`), ``warn`` told once how many were read
    ignoring their EXIF orientation, and which disagree either way. ``decoder_lines``: ``warn`` is also told of
    each photo whose decoder printed lines (libjpeg's on damaged data), with its name (``decoder_messages``: for a
    program whose every decode runs so, as the CLI's). Returns the processed image ids, sorted."""
    done: List[int] = []
    group: list = []  # (image id, photo, its boxes): photos whose persons share the model's batches

    def run_group():
        images = [g[1] for g in group]
        found = predictor.predict_batch(images, [g[2] for g in group])
        if refine_passes:
            found = refine_batch(predictor, images, found, refine_passes)
        for (image_id, _, _), res in zip(group, found):
            if columns is not None:
                res = replace(res, keypoints=res.keypoints[:, columns], scores=res.scores[:, columns],
                              keypoint_names=[res.keypoint_names[c] for c in columns])
            take(image_id, res)
            done.append(image_id)
        group.clear()

    def path_of(image_id) -> Path:
        return Path(images_dir) / names[image_id]

    sizes = sizes or {}
    as_stored, differ = 0, []  # photos read ignoring their orientation; (path, read (H, W), listed (H, W))
    # photos are decoded by a thread, a few ahead of the model

    def read(image_id):  # -> (image, frame, what its decoder printed: libjpeg's lines on damaged data)
        collecting: ContextManager[List[str]] = (collect_decoder_messages() if decoder_lines
                                                 else contextlib.nullcontext([]))
        with collecting as said:
            try:
                return (*read_as_listed(path_of(image_id), sizes.get(image_id)), said)
            except InputReadError as e:
                raise InputReadError(f"{e}: {decoder_words(said)}" if said else str(e)) from None

    decoded = prefetch(read, [i for i in sorted(names) if boxes[i].shape[0]], READ_AHEAD)
    try:
        for image_id in wrap(sorted(names)):
            if boxes[image_id].shape[0] == 0:
                done.append(image_id)  # nobody to find: nothing to read
                continue
            _, photo = next(decoded)
            try:
                image, frame, said = photo.result()
            except InputReadError as e:
                path = path_of(image_id)
                on_fail(path, str(e) if path.exists() else "file not found")
                continue
            if said:
                warn(f"{path_of(image_id)}: {damage_said(said)}")
            as_stored += frame == "stored"
            if frame == "neither":
                differ.append((path_of(image_id), image.shape[:2], sizes[image_id]))
            group.append((image_id, image, boxes[image_id]))
            if sum(len(g[2]) for g in group) >= predictor.batch_size \
                    or sum(g[1].size for g in group) >= PHOTO_GROUP_BYTES:
                run_group()
        run_group()
    finally:
        decoded.close()
    for message in frame_warnings(as_stored, differ):
        warn(message)
    return sorted(done)


def coco_ap(data: dict, results: List[dict], image_ids: List[int], category_id: int,
            sigmas: np.ndarray) -> Dict[str, Optional[float]]:
    """COCO keypoint AP/AR over ``image_ids`` -> {name: value} for :data:`COCO_STAT_NAMES`; None where
    pycocotools says -1 (no ground truth in that area range). sigmas (K,): the OKS sigmas of the K keypoints.

    No results on photos with labelled persons is AP 0 (all missed), computed as such. Raises NotComputed saying
    why when nothing can be scored (no photo, a person without the 'bbox' or 'area' pycocotools needs, no labelled
    person on the photos), MissingExtra without pycocotools. pycocotools' own console output is swallowed, and
    neither ``data`` nor ``results`` is changed (it marks what it is given).
    A result's ``bbox`` (the box it was run on) is left out: pycocotools would take a pose's area from it, where COCO
    takes it from the pose's joints (its APm / APl moved by up to 0.03 with it: review s68).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingExtra(f"pycocotools is not installed, so COCO AP is not computed; install it with: "
                           f"{EXTRA_HINT}") from None
    if not image_ids:
        raise NotComputed("no photo was read")
    keep = set(image_ids)
    for j, a in enumerate(data["annotations"]):
        if a.get("category_id") == category_id and a.get("image_id") in keep:
            missing = [f for f, given in (("bbox", bool(a.get("bbox"))), ("area", a.get("area") is not None))
                       if not given]
            if missing:
                raise NotComputed(f"annotations[{j}] has no {' or '.join(repr(f) for f in missing)}: pycocotools "
                                  "needs every person's box and area")
    # copies: pycocotools writes into them; without a category_id an annotation is nobody and breaks its index
    gts = [dict(a) for a in data["annotations"] if "category_id" in a]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(data, annotations=gts)
        gt.createIndex()
        if results:
            dt = gt.loadRes([{k: v for k, v in r.items() if k != "bbox"} for r in results])
        else:  # loadRes cannot take an empty list: an empty result set, scored as such
            dt = COCO()
            dt.dataset = {"images": list(data["images"]), "categories": list(data.get("categories") or []),
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(image_ids)
        ev.params.catIds = [category_id]
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if (np.asarray(ev.stats) < 0).all():
        raise NotComputed(f"no labelled person on the {len(keep)} photo{'' if len(keep) == 1 else 's'} read")
    return {name: (float(v) if v >= 0 else None) for name, v in zip(COCO_STAT_NAMES, ev.stats)}


def pck_report(data: dict, pred: np.ndarray, names: List[str], image_ids: List[int], threshold: float = 0.2,
               flip_pairs: Optional[List[List[int]]] = None, baseline: Optional[np.ndarray] = None,
               scores: Optional[np.ndarray] = None, confidences: Optional[np.ndarray] = None) -> dict:
    """PCK@threshold over the annotations of the processed photos that were predicted.

    pred (A, K, 2) photo px, NaN for annotations without a prediction. Returns {"pck", "per_keypoint": {name:
    value or None}, "joints": counted joints, "by_threshold": {"0.1": PCK@0.1, ...} at PCK_CURVE and threshold,
    "ci95": bootstrap 95 % interval over persons
    (:func:`~fasterpose_rt.metrics.pck_interval`), and with flip_pairs "left_right": see
    :func:`~fasterpose_rt.metrics.left_right_confusions`}, "by_orientation": see
    :func:`~fasterpose_rt.metrics.pck_by_orientation`, and with baseline (another model's pred (A, K, 2))
    "vs_baseline": {"pck", "difference", "ci95" (paired)}, and with scores / confidences ((A, K) raw joint scores /
    the model's calibrated chances) "by_score" / "by_confidence": see :func:`~fasterpose_rt.metrics.score_reliability`;
    or {"pck": None, "reason"} when PCK cannot be computed.
    """
    keep_ids = set(image_ids)
    if not keep_ids:
        return {"pck": None, "reason": "no photo was read"}
    anns = data["annotations"]
    k = pred.shape[1]
    # NaN: not predicted (left out); inf: a person no detected pose matched (every joint a miss)
    both = ~np.isnan(pred).any(axis=(1, 2)) & (baseline is None or ~np.isnan(baseline).any(axis=(1, 2)))
    sel = [j for j, a in enumerate(anns) if a.get("image_id") in keep_ids and both[j]
           and isinstance(a.get("keypoints"), list) and len(a["keypoints"]) == 3 * k]
    if not sel:
        return {"pck": None, "reason": "no annotated person was predicted"}
    gt = np.array([anns[j]["keypoints"] for j in sel], np.float64).reshape(-1, k, 3)
    gt_xy, labelled, ours = gt[:, :, :2], gt[:, :, 2] > 0, pred[sel]
    try:
        overall, per_kp, joints = pck(ours, gt_xy, labelled, names, threshold)
    except ValueError as e:
        return {"pck": None, "reason": str(e)}
    if joints == 0:
        return {"pck": None, "reason": "no labelled joint on a person with a measurable torso"}
    per = {n: (None if not np.isfinite(v) else float(v)) for n, v in zip(names, per_kp)}
    low, high = pck_interval(ours, gt_xy, labelled, names, threshold)
    # The curve around the threshold: near misses (just past it) are localisation, far ones are wrong joints.
    curve = {f"{t:g}": pck(ours, gt_xy, labelled, names, t)[0] for t in sorted(set(PCK_CURVE) | {threshold})}
    report = {"pck": overall, "ci95": [low, high], "per_keypoint": per, "joints": joints, "by_threshold": curve,
              "by_orientation": pck_by_orientation(ours, gt_xy, labelled, names, threshold)}
    if baseline is not None:
        other, _, _ = pck(baseline[sel], gt_xy, labelled, names, threshold)
        low, high = pck_interval(ours, gt_xy, labelled, names, threshold, baseline=baseline[sel])
        report["vs_baseline"] = {"pck": other, "difference": overall - other, "ci95": [low, high]}
    for key, values in (("by_score", scores), ("by_confidence", confidences)):
        if values is not None:
            report[key] = score_reliability(ours, gt_xy, labelled, names, np.asarray(values)[sel], threshold)
    if flip_pairs:
        report["left_right"] = left_right_confusions(ours, gt_xy, labelled, names, flip_pairs, threshold)
    return report
