"""Validation of a PyTorch pose model on a TopDownDataset: PCK@0.2 and COCO OKS AP (pycocotools)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch

from fasterpose_rt.geometry import apply_affine, invert_affine
from fasterpose_rt.metrics import pck

from .data.coco_keypoints import TopDownDataset, load_coco_keypoints
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
    """COCO keypoint AP/AR of predictions (N, K, 2)/(N, K) for samples, with the category's sigmas. None without pycocotools."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    k = len(meta["keypoints"])
    images, anns, results = [], [], []
    for i, s in enumerate(samples):
        images.append({"id": i + 1})
        gt = np.concatenate([s.keypoints, np.where(s.visible, 2, 0)[:, None]], axis=1)
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [float(v) for v in s.bbox],
                     "area": float(max(s.area, 1.0)), "iscrowd": 0, "num_keypoints": int(s.visible.sum()),
                     "keypoints": gt.ravel().tolist()})
        res = np.concatenate([keypoints[i], scores[i][:, None]], axis=1)
        results.append({"image_id": i + 1, "category_id": 1, "keypoints": res.ravel().tolist(),
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


def validate(model, dataset, device="cpu", logits=True, autocast=None):
    """-> {"pck@0.2", "pck_per_keypoint", "oks_ap", ...} on the dataset's samples (photo coordinates)."""
    kps, scores = predict_dataset(model, dataset, device=device, logits=logits, autocast=autocast)
    gt = np.stack([s.keypoints for s in dataset.samples])
    vis = np.stack([s.visible for s in dataset.samples])
    overall, per_kp, n = pck(kps, gt, vis, dataset.meta["keypoints"], 0.2)
    out = {"pck@0.2": overall, "pck_per_keypoint": [None if np.isnan(v) else round(float(v), 4) for v in per_kp],
           "pck_joints": n}
    ap = oks_ap(dataset.samples, dataset.meta, kps, scores)
    if ap is not None:
        out.update({"oks_ap": ap["AP"], "oks_ap50": ap["AP50"], "oks_ar": ap["AR"]})
    return out


def checkpoint_scorer(meta: dict, ann, images, box_padding: float, source: str = "the checkpoint") -> tuple:
    """-> (score, persons): ``score(model)`` gives validate's figures but the per-keypoint PCK, for models built from
    a training checkpoint's ``meta`` (its input size and loss), on the persons of the COCO keypoint file ``ann``
    (photos under ``images``, default its folder); ``persons`` is their count. Raises ValueError without an input size.
    """
    if "input_size" not in meta:
        raise ValueError(f"{source}: no input_size in its meta to score at")
    samples, data_meta = load_coco_keypoints(ann, images or Path(ann).parent)
    dataset = TopDownDataset(samples, data_meta, tuple(meta["input_size"]), train=False, box_padding=box_padding)

    def score(model) -> dict:
        result = validate(model.to(memory_format=torch.channels_last), dataset, logits=meta.get("loss") != "mse")
        return {k: v for k, v in result.items() if k != "pck_per_keypoint"}

    return score, len(dataset)
