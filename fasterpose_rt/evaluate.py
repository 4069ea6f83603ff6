"""``fasterpose eval``: predict with a COCO file's person boxes, then COCO keypoint AP/AR and PCK@0.2.

pycocotools is optional and imported only inside :func:`coco_ap`; PCK (fasterpose_rt.metrics) needs numpy only.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .boxes import BoxesFileError, coco_person_boxes
from .detections import OKS_NMS, keep_poses, match_poses
from .inputs import InputReadError, read_image
from .jsonfile import load_json
from .metrics import left_right_confusions, pck, pck_by_orientation, pck_interval, score_reliability
from .predictor import PHOTO_GROUP_BYTES
from .prefetch import READ_AHEAD, prefetch
from .results import coco_entries
from .skeletons import COCO17
from .tracking import refine_batch

__all__ = ["EvalError", "MissingExtra", "load_annotations", "KeypointMatch", "match_keypoints", "predict_annotations",
           "predict_detections", "matched_persons",
           "coco_ap", "pck_report", "COCO_STAT_NAMES"]

PCK_CURVE = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # thresholds of pck_report's "by_threshold" (torso fractions)
COCO_STAT_NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
EXTRA_HINT = 'pip install "fasterpose[eval]"'


class EvalError(ValueError):
    """The annotation file cannot be evaluated against this model (malformed, or keypoints do not match)."""


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def load_annotations(path: os.PathLike) -> dict:
    """Read a COCO keypoint annotation file; raise EvalError naming the problem."""
    data = load_json(path, EvalError)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise EvalError(f"{path}: not a COCO annotation file (needs 'images' and 'annotations' lists)")
    return data


MIN_SHARED = 4  # fewer keypoint names in common than this: the file is for another kind of model


@dataclass
class KeypointMatch:
    """How a COCO file's keypoints meet the model's: which are evaluated, and where each one is on either side.

    category: the file's person category; names (M,): the evaluated keypoints; model_columns (M,): their indices
    in the model's output; file_columns (M,): in the file's annotations; sigmas (M,): their OKS sigmas;
    flip_pairs: the model's flip pairs among the M (indices into them); partial: the file's annotations and the
    model's output must be cut down or reordered (``restrict``, predict_annotations' ``columns``) to meet;
    warnings: what a user should know (e.g. the keypoints left out).
    """

    category: dict
    names: List[str]
    model_columns: np.ndarray
    file_columns: np.ndarray
    sigmas: np.ndarray
    flip_pairs: List[List[int]]
    partial: bool
    warnings: List[str]

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
        cat.update(keypoints=list(self.names), skeleton=skeleton, sigmas=self.sigmas.tolist())
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
                    model_flip_pairs: Sequence[Sequence[int]] = ()) -> KeypointMatch:
    """Find the person category and match its keypoints with the model's.

    The category named "person", else the only one with keypoints. Keypoints are matched by name: the ones both
    name are evaluated (at least MIN_SHARED; a COCO-17 file and the bundled 14-joint LSP models share 12), the
    others are left out with a warning. With fewer names in common but as many keypoints as the model, they are
    compared by position (with a warning). Sigmas: the category's ``sigmas`` field when present, else COCO's when
    the file has 17 keypoints; otherwise EvalError.
    """
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    cat = next((c for c in cats if c.get("name") == "person"), None)
    with_kp = [c for c in cats if isinstance(c.get("keypoints"), list)]
    if cat is None and len(with_kp) == 1:
        cat = with_kp[0]
    if cat is None or not isinstance(cat.get("keypoints"), list):
        raise EvalError(f"{source}: no 'person' category with a 'keypoints' list")
    names, model_names, warnings = [str(n) for n in cat["keypoints"]], [str(n) for n in model_keypoints], []
    sigmas: Any = cat.get("sigmas")
    if sigmas is not None:
        if not (isinstance(sigmas, list) and len(sigmas) == len(names)
                and all(isinstance(s, (int, float)) and s > 0 for s in sigmas)):
            raise EvalError(f"{source}: the category's 'sigmas' must be {len(names)} positive numbers")
    elif len(names) == len(COCO17["sigmas"]):
        sigmas = COCO17["sigmas"]
    else:
        raise EvalError(f"{source}: {len(names)} keypoints and no per-keypoint 'sigmas' in the category; "
                        "OKS needs them (COCO's are only known for its 17 keypoints)")
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
                         flips, not identity, warnings)


def predict_annotations(predictor, data: dict, images_dir: os.PathLike, category_id: int, source: str,
                        on_fail: Callable[[Path, str], None], wrap: Callable[[Iterable], Iterable] = iter,
                        scores: Optional[np.ndarray] = None, columns: Optional[np.ndarray] = None,
                        refine_passes: int = 0):
    """Predict every photo's person boxes, photos grouped so their persons share the model's batches (up to the
    predictor's batch_size persons, or PHOTO_GROUP_BYTES of decoded photos, per group).

    Returns (results: COCO result dicts, processed image ids, pred (A, K, 2) with NaN where not predicted, A =
    number of annotations). A photo that is missing or unreadable is reported through on_fail(path, reason)
    and left out of the processed ids (so it does not count as missed persons). ``scores``, if given, an (A, K)
    array that receives the keypoint scores of the persons predicted (the others are left as they were).
    columns: the model's keypoints to keep, in that order (KeypointMatch.model_columns; None: all, K = the model's).
    refine_passes: each person run again up to this many times on the box around its joints (``tracking.refine``).
    """
    try:
        names, boxes = coco_person_boxes(data, source)
    except BoxesFileError as e:
        raise EvalError(str(e)) from None
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
                           take, columns, refine_passes)
    return results, done, pred


def predict_detections(predictor, data: dict, images_dir: os.PathLike, category_id: int, source: str,
                       detections, sigmas: np.ndarray, on_fail: Callable[[Path, str], None],
                       wrap: Callable[[Iterable], Iterable] = iter, scores: Optional[np.ndarray] = None,
                       columns: Optional[np.ndarray] = None, refine_passes: int = 0,
                       nms_threshold: float = OKS_NMS):
    """``predict_annotations`` on a detector's boxes instead of the file's own (COCO's top-down protocol,
    ``detections.py``): every box of ``detections`` ({image id: (boxes (M, 4), box scores (M,))}) is a person; a
    pose's score is ``detections.rescore`` of its box's and joints' scores; poses of a photo overlapping by OKS >
    ``nms_threshold`` are one (``oks_nms``; 1: keep all). Each labelled person (keypoints listed and labelled) is
    then matched to one pose (``match_poses``): ``pred`` and ``scores`` hold that pose's joints; a person no pose
    matches gets ``inf`` coordinates (PCK counts its joints as misses) where the photo was processed.
    sigmas (K,): the OKS sigmas of the evaluated keypoints. Returns (results, processed image ids, pred (A, K, 2)).
    """
    try:
        names, _ = coco_person_boxes(data, source)
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
                           take, columns, refine_passes)
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
                    take: Callable[[int, Any], None], columns: Optional[np.ndarray], refine_passes: int) -> List[int]:
    """Run every photo of ``names`` ({image id: file name}) on its ``boxes`` ((N, 4) each), photos grouped so their
    persons share the model's batches, refined ``refine_passes`` times; ``take(image_id, PoseResult)`` receives each
    photo's poses (cut to ``columns``). Photos without boxes are done without being read; a missing or unreadable
    one goes to ``on_fail`` and is left out. Returns the processed image ids, sorted."""
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

    # photos are decoded by a thread, a few ahead of the model
    decoded = prefetch(lambda image_id: read_image(path_of(image_id)),
                       [i for i in sorted(names) if boxes[i].shape[0]], READ_AHEAD)
    try:
        for image_id in wrap(sorted(names)):
            if boxes[image_id].shape[0] == 0:
                done.append(image_id)  # nobody to find: nothing to read
                continue
            _, photo = next(decoded)
            try:
                image = photo.result()
            except InputReadError as e:
                path = path_of(image_id)
                on_fail(path, str(e) if path.exists() else "file not found")
                continue
            group.append((image_id, image, boxes[image_id]))
            if sum(len(g[2]) for g in group) >= predictor.batch_size \
                    or sum(g[1].size for g in group) >= PHOTO_GROUP_BYTES:
                run_group()
        run_group()
    finally:
        decoded.close()
    return sorted(done)


def coco_ap(data: dict, results: List[dict], image_ids: List[int], category_id: int,
            sigmas: np.ndarray) -> Dict[str, Optional[float]]:
    """COCO keypoint AP/AR over ``image_ids`` -> {name: value} for :data:`COCO_STAT_NAMES`; None where
    pycocotools says -1 (no ground truth in that area range).

    Raises MissingExtra without pycocotools. pycocotools' own console output is swallowed.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingExtra(f"pycocotools is not installed, so COCO AP is not computed; install it with: "
                           f"{EXTRA_HINT}") from None
    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}  # loadRes cannot take an empty list
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(image_ids)
        ev.params.catIds = [category_id]
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
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
