"""Person crops for int8 calibration, verification and box-padding calibration, made by the runtime's own
preprocessing, and their keypoints decoded as the runtime decodes them.

Sources: a folder of photos (one whole-photo box each, as ``PosePredictor.predict(image)`` uses) or a COCO
keypoint file (its person boxes; ground-truth keypoints, matched to the model's by name, when it names them all).
Crops are warped with ``fasterpose_rt.preprocess`` (``check_boxes`` -> ``crop_transforms`` -> ``warp_crops``) and
normalised with its ``Normalizer``, so the int8 model is calibrated and judged on exactly the tensors it will see at
run time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from fasterpose_rt.boxes import BoxesFileError, coco_person_boxes
from fasterpose_rt.decode import decode_heatmaps
from fasterpose_rt.evaluate import EvalError, in_model_order, load_annotations
from fasterpose_rt.geometry import apply_affine, heatmap_to_crop, invert_affine
from fasterpose_rt.annotated_photos import listed_size, read_as_listed
from fasterpose_rt.inputs import InputReadError, expand_inputs
from fasterpose_rt.metadata import ModelMetadata
from fasterpose_rt.preprocess import Normalizer, check_boxes, crop_transforms, warp_crops

from .errors import InputError

__all__ = ["Persons", "CropSet", "list_persons", "load_crops", "crop_keypoints"]


@dataclass
class Persons:
    """P persons of a source: photo paths (P,), boxes (P, 4) [x, y, w, h] photo px (NaN rows = whole photo),
    keypoints (P, K, 3) ground truth [x, y, v] in the model's keypoint order, or None when the source has none (or
    does not name the model's keypoints); sizes (P,): each photo's (H, W) as a COCO file lists it (the frame of its
    boxes and keypoints; None where not given), or None for a photo folder."""

    paths: List[Path]
    boxes: np.ndarray
    keypoints: Optional[np.ndarray]
    source: str
    note: str = ""  # why there is no ground truth, when there could have been
    sizes: Optional[List[Optional[Tuple[int, int]]]] = None

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class CropSet:
    """N crops: crops (N, h, w, 3) uint8 BGR as the runtime warps them; affines (N, 2, 3) photo -> crop;
    keypoints (N, K, 2) photo px and visible (N, K) bool ground truth, or None; skipped: unreadable photos."""

    crops: np.ndarray
    affines: np.ndarray
    keypoints: Optional[np.ndarray]
    visible: Optional[np.ndarray]
    source: str
    skipped: int = 0

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def batches(self, meta: ModelMetadata, size: int = 16) -> Iterator[np.ndarray]:
        """Normalised model inputs (n <= size, 3, H, W) float32, in order (normalised lazily: uint8 is 4x smaller)."""
        normalize = Normalizer(meta)
        for s in range(0, len(self), size):
            yield normalize(self.crops[s:s + size])

    def to_photo(self, xy, heatmap_shape, meta: ModelMetadata) -> np.ndarray:
        """Heatmap px (N, K, 2) of these crops, heatmaps of ``heatmap_shape`` (h, w) -> photo px (N, K, 2) float64."""
        stride = (meta.input_size[0] / heatmap_shape[1], meta.input_size[1] / heatmap_shape[0])
        return apply_affine(heatmap_to_crop(xy, stride), invert_affine(self.affines))


def crop_keypoints(session, crops: CropSet, meta: ModelMetadata, batch: int = 16) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Keypoints of ``crops`` decoded as the runtime does (sigmoid for logit models, DARK, the model's
    ``edge_peaks``): (N, K, 2) heatmap px, and the heatmap size (h, w). session: an onnxruntime session of a model
    described by ``meta``."""
    decoded, shape = crop_keypoints_each(session, crops, meta, [meta.edge_peaks], batch)
    return decoded[meta.edge_peaks], shape


def crop_keypoints_each(session, crops: CropSet, meta: ModelMetadata, edge_peaks: Sequence[str],
                        batch: int = 16) -> Tuple[Dict[str, np.ndarray], Tuple[int, int]]:
    """``crop_keypoints`` for each way of refining peaks next to the map's edge (``fasterpose_rt.decode.EDGE_PEAKS``)
    from one run of the model: ({choice: (N, K, 2) heatmap px}, the heatmap size (h, w))."""
    name = session.get_inputs()[0].name
    out: Dict[str, list] = {choice: [] for choice in edge_peaks}
    shape = None
    for x in crops.batches(meta, batch):
        hm = session.run(None, {name: x})[0].astype(np.float32)
        if meta.output == "logits":
            hm = 1.0 / (1.0 + np.exp(-hm))
        else:  # as the runtime does: a model trained with MSE overshoots 1 near its peaks
            hm = np.clip(hm, 0.0, 1.0)
        for choice in edge_peaks:
            out[choice].append(decode_heatmaps(hm, edge_peaks=choice)[0])
        shape = hm.shape[2:]
    return {choice: np.concatenate(xy) for choice, xy in out.items()}, shape


def _coco_persons(path: Path, images_dir: Optional[Path], keypoints: Sequence[str],
                  warn: Optional[Callable[[str], None]]) -> Persons:
    try:
        data = load_annotations(path)
        names, boxes = coco_person_boxes(data, str(path))
    except (EvalError, BoxesFileError) as e:
        raise InputError(str(e)) from None
    root = Path(images_dir) if images_dir is not None else path.parent / "images"
    if not root.is_dir():
        raise InputError(f"images folder of {path} not found: {root} (pass the folder holding its photos)")
    listed = {im["id"]: listed_size(im) for im in data["images"]}
    paths, sizes, rows, anns = [], [], [], []
    for image_id in sorted(names):
        entry = boxes[image_id]
        paths += [root / names[image_id]] * entry.boxes.shape[0]
        sizes += [listed.get(image_id)] * entry.boxes.shape[0]
        rows.append(entry.boxes)
        anns.extend(int(j) for j in entry.ann_index)
    if not paths:
        raise InputError(f"{path}: no person boxes")
    note = ""
    try:  # by name: a file may list the model's keypoints in another order
        data = in_model_order(data, keypoints, str(path), warn)
    except EvalError as e:
        note = str(e)
    k = len(keypoints)
    kps = [data["annotations"][j].get("keypoints") for j in anns]
    gt = None
    if not note and all(isinstance(kp, list) and len(kp) == 3 * k for kp in kps):
        gt = np.asarray(kps, np.float64).reshape(len(kps), k, 3)
    elif not note:
        note = f"its annotations do not all carry {k} keypoints (the model's K)"
    return Persons(paths, np.concatenate(rows), gt, str(path), note, sizes)


def list_persons(source, keypoints: Sequence[str], images_dir=None,
                 warn: Optional[Callable[[str], None]] = None) -> Persons:
    """Persons of a photo folder (whole-photo boxes) or a COCO keypoint file (person boxes, ground truth).

    keypoints: the model's keypoint names: a COCO file's ground truth is matched to them by name
    (``fasterpose_rt.evaluate.in_model_order``; its warnings go to ``warn``, default stderr). images_dir: the COCO
    file's photo folder
    (default: ``images/`` beside the file). Raises InputError.
    """
    p = Path(source)
    if p.is_dir():
        items, problems = expand_inputs([p])
        if problems:
            raise InputError(f"{problems[0][0]}: {problems[0][1]}")  # (an unreadable subfolder: that one)
        paths = [it.path for it in items]
        return Persons(paths, np.full((len(paths), 4), np.nan), None, str(p), "a photo folder has no keypoints")
    if p.is_file():
        return _coco_persons(p, images_dir, keypoints, warn)
    raise InputError(f"calibration/evaluation source not found: {p} (a photo folder or a COCO keypoint file)")


def load_crops(persons: Persons, index: Sequence[int], meta: ModelMetadata) -> CropSet:
    """Crops of ``persons[index]`` (index (N,) ints, in that order), each photo decoded once, a COCO file's in the
    frame of the size it lists (:func:`fasterpose_rt.annotated_photos.read_as_listed`: an EXIF orientation that would turn
    the photo away from its boxes' frame is ignored).

    Unreadable photos are skipped and counted; raises InputError when none can be read.
    """
    index = np.asarray(index, np.int64)
    w, h = meta.input_size
    crops = np.empty((len(index), h, w, 3), np.uint8)
    affines = np.empty((len(index), 2, 3))
    ok = np.zeros(len(index), bool)
    by_photo = {}
    for slot, i in enumerate(index):
        by_photo.setdefault(persons.paths[i], []).append(slot)
    for path, slots in by_photo.items():
        try:
            image = read_as_listed(path, persons.sizes[index[slots[0]]] if persons.sizes is not None else None)[0]
        except InputReadError:
            continue
        rows = persons.boxes[index[slots]]
        if np.isnan(rows).all():  # photo-folder persons: the whole photo, as predict(image) without boxes
            rows = np.repeat(check_boxes(None, image.shape), len(slots), axis=0)
        m = crop_transforms(check_boxes(rows, image.shape), meta)
        crops[slots] = warp_crops(image, m, meta.input_size)
        affines[slots] = m
        ok[slots] = True
    if not ok.any():
        raise InputError(f"{persons.source}: none of the {len(by_photo)} selected photos could be read "
                         f"(first: {next(iter(by_photo), '?')})")
    kp = vis = None
    if persons.keypoints is not None:
        gt = persons.keypoints[index[ok]]
        kp, vis = gt[:, :, :2], gt[:, :, 2] > 0
    return CropSet(crops[ok], affines[ok], kp, vis, persons.source, skipped=int((~ok).sum()))
