"""Poses on a person detector's boxes, scored as COCO's top-down protocol scores them (``fasterpose eval
--detections``): a detection results file read, each pose rescored by its box and its joints, duplicates removed by
OKS non-maximum suppression, and poses matched to the labelled persons for PCK.

This is the protocol behind the COCO figures of SimpleBaseline (Xiao et al., 2018), FasterPose and mmpose's
top-down models: every detected box scoring at least a threshold (0 by default) is a person crop; a pose's score is
its box's score times the mean of its joint scores above 0.2; of poses overlapping by OKS > 0.9 the best-scored
stays. AP then counts wrong and missed persons, where the annotation file's own boxes hide both.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .boxes import BOX_RANGE, BoxLookup, ImageBoxes, _listed, _norm_name, _own_end, box_iou, box_out_of_range
from .jsonfile import finite_number, load_json
from .metrics import oks

__all__ = ["DetectionsError", "Detections", "load_detections", "rescore", "oks_nms", "keep_poses", "match_poses",
           "box_out_of_range", "BOX_RANGE", "DET_SCORE", "JOINT_SCORE", "OKS_NMS"]

DET_SCORE = 0.0  # boxes scoring below this are left out (mmpose's det_bbox_thr; detection files are cut already)
JOINT_SCORE = 0.2  # joints scoring above this make a pose's score (mmpose's and SimpleBaseline's 0.2)
OKS_NMS = 0.9  # poses overlapping a better one by more OKS than this are that person again (their 0.9)


class DetectionsError(ValueError):
    """The detections file is unreadable or malformed; the message names the file and the offending entry."""


Detections = Dict[int, Tuple[np.ndarray, np.ndarray]]  # image id -> (boxes (M, 4) [x, y, w, h], scores (M,))

def load_detections(path, image_ids: Iterable[int], category_id: Optional[int] = None,
                    file_names: Optional[Dict[int, str]] = None) -> Tuple[Detections, dict]:
    """Read a COCO detection results file: a JSON list of {"image_id", "bbox": [x, y, w, h], "score",
    "category_id"} (a detector's output; ``fasterpose predict`` results qualify too).

    With ``file_names`` ({image id: file_name} of the annotation file), an entry with a "file_name" is the photo
    of that name, whatever its image_id (predict numbers the photos of a folder 1..N, not by the annotation
    file's ids): names are compared as POSIX paths, and a name ends in the file's (``/data/val2017/a.jpg`` is
    ``val2017/a.jpg``; boxes.BoxLookup's rule: of the file's names ending a path, the longest); entries without
    one are placed by image_id, as is an entry whose name the annotation file lists under several ids (its
    image_id must be one of them: an error otherwise). Two names placed on one photo of the file are two photos
    whose detections would be scored as one, an error whatever their category (``x/a.jpg`` and ``y/a.jpg`` on
    its ``a.jpg``; so are ``a.jpg`` and ``x/a.jpg``, two photos of one folder), unless one is an absolute path the
    other ends in (``val/a.jpg`` and ``/data/val/a.jpg``: one photo spelled two ways).
    Entries of another category than ``category_id`` (when both name one) and boxes with w or h <= 0 are left
    out; so are entries whose image is not among ``image_ids`` or whose file name names none of ``file_names``
    (counted: a file for other photos is an error); a box the model cannot crop (``box_out_of_range``) is an error.
    Returns ({image id: (boxes (M, 4) float64, scores (M,) float64)} for every id of ``image_ids``, counts
    {"entries", "used", "other_category", "other_images", "other_files", "empty_boxes", "remapped": entries placed
    by file name on another photo than their image_id says, "other_file_example": the first file name matching no
    photo, or None}). Raises DetectionsError.
    """
    src = str(path)
    data = load_json(path, DetectionsError)
    if not isinstance(data, list):
        raise DetectionsError(f"{src}: a detections file is a JSON list of {{image_id, bbox, score}} objects "
                              f"(COCO's detection results format), got a {type(data).__name__}")
    ids = {int(i) for i in image_ids}
    lookup = None if file_names is None else BoxLookup(
        {_norm_name(name): ImageBoxes(np.zeros((0, 4)), int(i)) for i, name in file_names.items()}, src)
    listed = file_names or {}
    ids_of_name: Dict[str, List[int]] = {}  # a name the file lists under several ids: which photo is ambiguous
    for i, listed_name in listed.items():
        ids_of_name.setdefault(_norm_name(listed_name), []).append(int(i))
    boxes: Dict[int, List[list]] = {i: [] for i in ids}
    named: Dict[int, Dict[str, Tuple[int, str]]] = {}  # image id -> {name placed on it: (first entry, as given)}
    scores: Dict[int, List[float]] = {i: [] for i in ids}
    counts: Dict[str, Any] = {"entries": len(data), "used": 0, "other_category": 0, "other_images": 0,
                              "other_files": 0, "empty_boxes": 0, "remapped": 0, "other_file_example": None}
    for j, d in enumerate(data):
        name = d.get("file_name") if isinstance(d, dict) and lookup is not None else None
        if name is not None and not (isinstance(name, str) and name):
            raise DetectionsError(f"{src}: entry {j}: 'file_name' must be a photo's file name, got {name!r}")
        number = d.get("image_id") if isinstance(d, dict) else None
        number = number if isinstance(number, int) and not isinstance(number, bool) else None
        if name is None and number is None:
            raise DetectionsError(f"{src}: entry {j} needs an integer 'image_id'"
                                  + (" or a 'file_name'" if lookup is not None else ""))
        b, s = d.get("bbox"), d.get("score", 1.0)
        if not (isinstance(b, list) and len(b) == 4 and all(finite_number(v) for v in b)):
            raise DetectionsError(f"{src}: entry {j}: 'bbox' must be [x, y, w, h] numbers, got {b!r}")
        if box_out_of_range(b):  # the model could not crop it: named here, not as a crash of the run
            raise DetectionsError(f"{src}: entry {j}: 'bbox' {b!r} is out of range ({BOX_RANGE})")
        if not finite_number(s):
            raise DetectionsError(f"{src}: entry {j}: 'score' must be a number, got {s!r}")
        image_id = number
        if name is not None:  # the name says which photo; an image_id may be another numbering's
            found = lookup.find(Path(name)) if lookup is not None else None  # (a name comes with a lookup)
            image_id = None if found is None else found.image_id
            same = ids_of_name[_norm_name(listed[image_id])] if image_id is not None else []
            if len(same) > 1:  # its image_id, if one of them, says which; else the boxes have no one photo
                if number not in same:
                    raise DetectionsError(_listed_twice(src, j, name, listed[same[0]], same, number))
                image_id = number
            if image_id is not None:
                named.setdefault(image_id, {}).setdefault(_norm_name(Path(name).as_posix()), (j, name))
        if category_id is not None and d.get("category_id", category_id) != category_id:
            counts["other_category"] += 1
        elif name is not None and image_id is None:
            counts["other_files"] += 1
            counts["other_file_example"] = counts["other_file_example"] or name
        elif image_id not in ids:
            counts["other_images"] += 1
        elif b[2] <= 0 or b[3] <= 0:
            counts["empty_boxes"] += 1
        else:
            boxes[image_id].append(b)
            scores[image_id].append(float(s))
            counts["used"] += 1
            counts["remapped"] += int(number is not None and number != image_id)
    merged = [(i, names) for i, names in named.items() if len(names) > 1 and not _one_photo(names)]
    if merged:
        raise DetectionsError(_merged_photos(src, merged, file_names or {}))
    if data and not counts["used"]:
        why = (f"{counts['other_files']} name files the annotation file does not list (e.g. "
               f"{counts['other_file_example']!r})" if counts["other_files"]
               else f"{counts['other_images']} name photos the annotation file does not list"
               if counts["other_images"] else f"{counts['other_category']} are of another category than the "
               f"person category ({category_id})" if counts["other_category"] else "all boxes are empty")
        raise DetectionsError(f"{src}: none of its {len(data)} detections can be used: {why}")
    out = {i: (np.asarray(boxes[i], np.float64).reshape(-1, 4), np.asarray(scores[i], np.float64)) for i in ids}
    return out, counts


_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:/)")  # a POSIX path from the root, or a Windows one from a drive


def _one_photo(names: Dict[str, Tuple[int, str]]) -> bool:
    """Whether these names (normalized: (first entry, as given)) may all be one photo: each pair one absolute path
    and a relative one ending it (``/data/val/a.jpg``, ``val/a.jpg``). Two relative names, or two absolute ones,
    that differ are two photos (``a.jpg`` and ``x/a.jpg`` of a folder's predict results)."""
    rooted = {k: bool(_ABSOLUTE.match(given.replace("\\", "/"))) for k, (_, given) in names.items()}
    keys = list(names)
    for n, a in enumerate(keys):
        for b in keys[n + 1:]:
            if rooted[a] == rooted[b]:
                return False
            full, end = (a, b) if rooted[a] else (b, a)
            if not ("/" + full).endswith("/" + end):
                return False
    return True


def _merged_photos(src: str, merged: List[Tuple[int, Dict[str, Tuple[int, str]]]],
                   file_names: Dict[int, str]) -> str:
    """The error of detections naming several photos that one photo of the annotation file is (``merged``: (image
    id, {name: (first entry, as given)}) of each such photo, in entry order): the first named, the others counted."""
    image_id, names = merged[0]
    paths = list(names)
    entries, given = [str(j) for j, _ in names.values()], [repr(g) for _, g in names.values()]
    ends = (_own_end(p, paths[:n] + paths[n + 1:]) for n, p in enumerate(paths))
    example = next((e for e in ends if e is not None), None)
    more = (f" ({len(merged) - 1} other {'photo' if len(merged) == 2 else 'photos'} of the annotation file "
            f"{'is' if len(merged) == 2 else 'are'} named so too)") if len(merged) > 1 else ""
    return (f"{src}: entries {_listed(entries)} name {len(paths)} photos, {_listed(given)}, "
            f"placed by name on one photo of the annotation file, {_norm_name(file_names.get(image_id, '?'))!r} "
            f"(image_id {image_id}): their detections would be scored as one photo's; keep only that photo's "
            f"detections, or list each photo in the annotation file by more of its path"
            + (f" (as {example!r})" if example else "") + more)


def _listed_twice(src: str, entry: int, name: str, listed: str, ids: List[int], number: Optional[int]) -> str:
    """The error of an entry placed by name on a file name the annotation file lists under several ``ids``."""
    told = "has no image_id" if number is None else f"its image_id {number} is none of them"
    return (f"{src}: entry {entry}: 'file_name' {name!r} is the annotation file's {_norm_name(listed)!r}, which it "
            f"lists under image ids {_listed([str(i) for i in sorted(ids)])}, and the entry {told}: give it the "
            f"image_id of its photo")


def rescore(box_scores, joint_scores, joint_score: float = JOINT_SCORE) -> np.ndarray:
    """A pose's score: its box's score times the mean of its joint scores above ``joint_score`` (0 when none is).

    box_scores (N,), joint_scores (N, K). Returns (N,) float64."""
    sc = np.asarray(joint_scores, np.float64)
    sure = sc > joint_score
    mean = np.where(sure, sc, 0.0).sum(axis=1) / np.maximum(sure.sum(axis=1), 1)
    return np.asarray(box_scores, np.float64).reshape(-1) * mean


def oks_nms(keypoints, scores, areas, sigmas, threshold: float = OKS_NMS) -> np.ndarray:
    """Greedy non-maximum suppression by OKS: best first, a pose whose OKS with a kept one exceeds ``threshold``
    is dropped. The OKS of two poses counts all their joints, with the mean of their areas (mmpose's ``oks_nms``).

    keypoints (N, K, 2), scores (N,), areas (N,) (their boxes' w·h), sigmas (K,). Returns kept indices (M,),
    best first."""
    kp, area = np.asarray(keypoints, np.float64), np.asarray(areas, np.float64)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        similar = oks(kp[rest], kp[i][None], np.ones(kp.shape[:2], bool)[rest], (area[i] + area[rest]) / 2, sigmas)
        order = rest[similar <= threshold]
    return np.array(keep, np.int64)


def keep_poses(keypoints, joint_scores, box_scores, boxes, sigmas, threshold: float = OKS_NMS):
    """The protocol's step for one photo's poses: each rescored (``rescore``), then OKS-NMS (``oks_nms``) with the
    areas of the boxes they were found in. keypoints (N, K, 2), joint_scores (N, K), box_scores (N,), boxes (N, 4).
    Returns (kept indices (M,), best first; their scores (M,))."""
    final = rescore(box_scores, joint_scores)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    keep = oks_nms(keypoints, final, b[:, 2] * b[:, 3], sigmas, threshold)
    return keep, final[keep]


def match_poses(keypoints, boxes, gt, visible, gt_boxes, areas, sigmas) -> np.ndarray:
    """Which pose each labelled person is scored on: one pose per person, greedily from the pair of highest OKS
    (``metrics.oks``), and only a pose whose box overlaps the person's box (a pose on somebody else is not theirs).

    keypoints (N, K, 2), boxes (N, 4) [x, y, w, h]: the poses and the boxes they were found in; gt (M, K, 2),
    visible (M, K), gt_boxes (M, 4), areas (M,): the labelled persons; sigmas (K,). Returns (M,) int64: the
    matched pose's index, -1 where no pose is left whose box overlaps the person's."""
    n, m = len(keypoints), len(gt)
    out = np.full(m, -1, np.int64)
    if not n or not m:
        return out
    sim = oks(np.asarray(keypoints, np.float64)[:, None], np.asarray(gt, np.float64)[None],
              np.asarray(visible, bool)[None], np.asarray(areas, np.float64)[None], sigmas)  # (N, M)
    sim = np.where(box_iou(np.asarray(boxes, np.float64)[:, None], np.asarray(gt_boxes, np.float64)[None]) > 0,
                   sim, -1.0)
    taken = np.zeros(n, bool)
    for flat in np.argsort(-sim, axis=None, kind="stable"):  # at most N·M pairs of a photo's few persons
        i, j = divmod(int(flat), m)
        if sim[i, j] < 0:
            break
        if out[j] < 0 and not taken[i]:
            out[j], taken[i] = i, True
    return out
