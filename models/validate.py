"""Validation of a PyTorch pose model on a TopDownDataset: PCK@0.2 and COCO OKS AP (pycocotools)."""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from fasterpose_rt.annotated_photos import listed_size
from fasterpose_rt.detections import OKS_NMS, keep_poses, load_detections
from fasterpose_rt.evaluate import MissingExtra, coco_ap, load_annotations, keypoint_category
from fasterpose_rt.geometry import apply_affine, invert_affine
from fasterpose_rt.metadata import BOX_PADDING_RULE, is_box_padding
from fasterpose_rt.metrics import pck
from fasterpose_rt.skeletons import torso_pairs

from .data.coco_keypoints import PersonSample, TopDownDataset, load_coco_keypoints
from .head_transfer import checkpoint_keypoints
from .precision import autocast as autocast_context


@torch.no_grad()
def predict_dataset(model, dataset, batch_size=64, device="cpu", logits=True, autocast=None):
    """Photo-coordinate predictions for every sample (no augmentation): keypoints (N, K, 2), scores (N, K)."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    kps, scores = [], []
    for x, _, _, idx in loader:
        with autocast_context(device, autocast):
            out = model(x.to(device).contiguous(memory_format=torch.channels_last))
        out = out.float()
        probs = torch.sigmoid(out) if logits else out.clamp(0, 1)
        crop_xy, sc = dataset.codec.decode(probs.cpu().numpy())
        m = np.stack([dataset.crop_transform(int(i))[0] for i in idx])
        kps.append(apply_affine(crop_xy, invert_affine(m)))
        scores.append(sc)
    return np.concatenate(kps).astype(np.float32), np.concatenate(scores)


def oks_ap(samples, meta, keypoints, scores):
    """COCO keypoint AP/AR of predictions (N, K, 2)/(N, K) for samples, with the category's sigmas, photo by photo as
    ``fasterpose eval`` scores them (a pose may match any labelled person of its photo; before session 68 each person
    was a photo of its own). None without pycocotools, or when the category gives no sigmas (what OKS needs)."""
    if meta.get("sigmas") is None:
        return None
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    k = len(meta["keypoints"])
    images, anns, results = [{"id": int(i)} for i in dict.fromkeys(s.image_id for s in samples)], [], []
    for i, s in enumerate(samples):
        gt = np.concatenate([s.keypoints, np.where(s.visible, 2, 0)[:, None]], axis=1)
        anns.append({"id": i + 1, "image_id": int(s.image_id), "category_id": 1, "bbox": [float(v) for v in s.bbox],
                     "area": float(max(s.area, 1.0)), "iscrowd": 0, "num_keypoints": int(s.visible.sum()),
                     "keypoints": gt.ravel().tolist()})
        res = np.concatenate([keypoints[i], scores[i][:, None]], axis=1)
        results.append({"image_id": int(s.image_id), "category_id": 1, "keypoints": res.ravel().tolist(),
                        "score": float(scores[i].mean())})
    gt_coco = COCO()
    gt_coco.dataset = {"images": images, "annotations": anns,
                       "categories": [{"id": 1, "name": "person", "keypoints": meta["keypoints"], "skeleton": []}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_coco.createIndex()
        dt = gt_coco.loadRes(results)
        ev = COCOeval(gt_coco, dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(meta["sigmas"], dtype=np.float64)[:k]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AR": float(ev.stats[5])}


def validate(model, dataset, device="cpu", logits=True, autocast=None, pck_optional=False):
    """-> {"pck@0.2", "pck_per_keypoint", "oks_ap", ...} on the dataset's samples (photo coordinates).

    PCK needs keypoints named left/right_shoulder and left/right_hip (the torso): without them ValueError, or with
    ``pck_optional`` None for the PCK figures (OKS AP needs no torso)."""
    kps, scores = predict_dataset(model, dataset, device=device, logits=logits, autocast=autocast)
    gt = np.stack([s.keypoints for s in dataset.samples])
    vis = np.stack([s.visible for s in dataset.samples])
    if pck_optional and torso_pairs(dataset.meta["keypoints"]) is None:
        out = {"pck@0.2": None, "pck_per_keypoint": None, "pck_joints": None}
    else:
        overall, per_kp, n = pck(kps, gt, vis, dataset.meta["keypoints"], 0.2)
        # None when no joint is counted (no person with a measurable torso): NaN is not JSON, 0.0 is a false score
        out = {"pck@0.2": overall if n else None,
               "pck_per_keypoint": [None if np.isnan(v) else round(float(v), 4) for v in per_kp], "pck_joints": n}
    ap = oks_ap(dataset.samples, dataset.meta, kps, scores)
    if ap is not None:
        out.update({"oks_ap": ap["AP"], "oks_ap50": ap["AP50"], "oks_ar": ap["AR"]})
    return out


class DetectionValidation:
    """Validation on a person detector's boxes (COCO's top-down protocol, as ``fasterpose eval --detections``): every
    detected box scoring at least ``min_score`` is a crop; each pose is scored box score x mean joint score above 0.2
    (``fasterpose_rt.detections.rescore``); poses of a photo overlapping by OKS > ``nms_threshold`` are one; COCO
    keypoint AP/AR against every labelled person of the validation file's photos (pycocotools).

    ann: the validation COCO keypoint file; detections: COCO detection results for its photos; image_ids: the photos
    to score (None: all of the file's; those of photos that cannot be read are left out); meta: the category's metadata (keypoints, sigmas); input_size,
    box_padding, cache, check_photos: as the validation TopDownDataset's. ``len()``: the boxes run.
    """

    def __init__(self, ann, images, detections, meta, input_size, box_padding: float, min_score: float = 0.0,
                 nms_threshold: float = OKS_NMS, image_ids=None, cache: bool = True, warn: bool = True,
                 check_photos: bool = False):
        self.data = load_annotations(ann)
        cat = keypoint_category(self.data)  # the category training and `fasterpose eval` read
        self.category_id = cat.get("id") if cat is not None else None
        files = {im["id"]: im["file_name"] for im in self.data["images"]}
        sizes = {im["id"]: listed_size(im) for im in self.data["images"]}  # read in its keypoints' frame
        self.image_ids = sorted(files if image_ids is None else set(image_ids))
        found, self.counts = load_detections(detections, self.image_ids, self.category_id)
        k = len(meta["keypoints"])
        samples, scores = [], []
        for image_id in self.image_ids:
            boxes, box_scores = found[image_id]
            for box, score in zip(boxes, box_scores):
                if score >= min_score:
                    samples.append(PersonSample(Path(images) / files[image_id], image_id, box, np.zeros((k, 2)),
                                                np.zeros(k, bool), float(box[2] * box[3]), sizes[image_id]))
                    scores.append(score)
        self.sigmas = np.asarray(meta["sigmas"], np.float64)
        self.nms_threshold = nms_threshold
        self.dataset = TopDownDataset(samples, meta, input_size, train=False, cache=cache, box_padding=box_padding,
                                      warn=warn, check_photos=check_photos) if samples else None
        skipped = getattr(self.dataset, "skipped", None) or {}  # unreadable photos: their boxes are left out
        self.box_scores = np.asarray([sc for s, sc in zip(samples, scores) if s.image_path not in skipped], np.float64)
        # and so are their persons, as fasterpose eval leaves them out (else scored as missed: AP biased low)
        self.image_ids = [i for i in self.image_ids if Path(images) / files[i] not in skipped]

    def __len__(self) -> int:
        return 0 if self.dataset is None else len(self.dataset)

    def __call__(self, model, device="cpu", logits=True, autocast=None) -> dict:
        """-> {"det_ap", "det_ap50", "det_ar", "det_poses"}; {"det_poses"} alone without pycocotools."""
        results = []
        if self.dataset is not None:
            kps, scores = predict_dataset(model, self.dataset, device=device, logits=logits, autocast=autocast)
            image_ids = np.array([s.image_id for s in self.dataset.samples])
            boxes = np.stack([s.bbox for s in self.dataset.samples])
            order = np.argsort(image_ids, kind="stable")  # each photo's boxes one slice: no scan per photo
            starts = np.flatnonzero(np.r_[True, np.diff(image_ids[order]) != 0])
            for rows in np.split(order, starts[1:]):
                keep, final = keep_poses(kps[rows], scores[rows], self.box_scores[rows], boxes[rows], self.sigmas,
                                         self.nms_threshold)
                results += [{"image_id": int(image_ids[r]), "category_id": self.category_id, "score": float(f),
                             "keypoints": np.concatenate([kps[r], scores[r][:, None]], axis=1).ravel().tolist()}
                            for r, f in zip(rows[keep], final)]
        out = {"det_poses": len(results)}
        try:
            ap = coco_ap(self.data, results, self.image_ids, self.category_id, self.sigmas)
        except MissingExtra:
            return out
        out.update({"det_ap": ap["AP"], "det_ap50": ap["AP50"], "det_ar": ap["AR"]})
        return out


def keypoint_order(model_keypoints: Optional[Sequence[str]], file_keypoints: Sequence[str], model_source: str,
                   file_source, num_keypoints: Optional[int] = None) -> Optional[List[int]]:
    """Where each of a COCO file's keypoints is in a checkpoint's output: None when they are in the same order;
    else the output channel of each of the file's keypoints, matched by name (the output is reordered to the file's
    order, so the file's own names, skeleton and sigmas hold). model_keypoints: the checkpoint's names
    (``head_transfer.checkpoint_keypoints``); None when it records none: then only its ``num_keypoints``, if known,
    is compared with the file's count. Raises ValueError when the names differ as sets (or the counts differ)."""
    theirs = [str(n) for n in file_keypoints]
    if model_keypoints is None:
        if num_keypoints is not None and int(num_keypoints) != len(theirs):
            raise ValueError(f"{model_source} predicts {num_keypoints} keypoints, {file_source} has {len(theirs)}")
        return None
    names = [str(n) for n in model_keypoints]
    if len(names) != len(theirs) or set(names) != set(theirs):
        lacking = [n for n in names if n not in theirs]
        extra = [n for n in theirs if n not in names]
        parts = ([f"not in the file: {', '.join(lacking)}"] if lacking else []) \
            + ([f"not predicted: {', '.join(extra)}"] if extra else [])
        raise ValueError(f"{file_source} does not label the keypoints {model_source} predicts ("
                         f"{'; '.join(parts) or f'{len(names)} names, the file {len(theirs)}'})")
    return None if names == theirs else [names.index(n) for n in theirs]


class InFileOrder(torch.nn.Module):
    """``model`` with its output channels (N, K, h, w) taken in ``order`` (``keypoint_order``): a file's keypoints."""

    def __init__(self, model: torch.nn.Module, order: Sequence[int]):
        super().__init__()
        self.model = model
        self.register_buffer("order", torch.as_tensor(list(order), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.order]


def checkpoint_scorer(meta: dict, ann, images, box_padding: float, source: str = "the checkpoint") -> tuple:
    """-> (score, persons): ``score(model)`` gives validate's figures but the per-keypoint PCK, for models built from
    a training checkpoint's ``meta`` (its input size and loss), on the persons of the COCO keypoint file ``ann``
    (photos under ``images``, default its folder); ``persons`` is their count. A file listing the checkpoint's
    keypoints in another order is matched by name (``keypoint_order``; said on stderr). Raises ValueError without
    an input size, for a box padding that is not a positive number, or keypoints other than the checkpoint's.
    """
    if "input_size" not in meta:
        raise ValueError(f"{source}: no input_size in its meta to score at")
    if not is_box_padding(box_padding):  # 0 cuts no crop; below 0 it is mirrored
        raise ValueError(f"box padding must be {BOX_PADDING_RULE}, got {box_padding!r}")
    samples, data_meta = load_coco_keypoints(ann, images or Path(ann).parent)
    names = checkpoint_keypoints(meta)
    order = keypoint_order(names, data_meta["keypoints"], source, ann, meta.get("num_keypoints"))
    if names is None:  # e.g. shrunk by an older models.shrink: nothing to match by
        print(f"warning: {source} does not name its keypoints: {ann}'s are taken in the order it lists them",
              file=sys.stderr)
    elif order is not None:
        print(f"warning: {ann} lists {source}'s keypoints in another order; matched by name", file=sys.stderr)
    dataset = TopDownDataset(samples, data_meta, tuple(meta["input_size"]), train=False, box_padding=box_padding)

    def score(model) -> dict:
        model = model.to(memory_format=torch.channels_last)
        result = validate(model if order is None else InFileOrder(model, order), dataset,
                          logits=meta.get("loss") != "mse")
        return {k: v for k, v in result.items() if k != "pck_per_keypoint"}

    return score, len(dataset)
