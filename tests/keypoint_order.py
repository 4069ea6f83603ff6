"""COCO keypoint files that list a model's keypoints in another order: the same labels, another layout, which the
tools reading ground truth must match by name (fasterpose_rt.evaluate.in_model_order)."""
import json
from pathlib import Path

import numpy as np


def reversed_keypoints(data: dict) -> dict:
    """A copy of COCO ``data`` with its keypoint category's names and every annotation's keypoints reversed together
    (skeleton, flip pairs and sigmas follow): a consistent file in another keypoint order."""
    out = json.loads(json.dumps(data))
    for cat in out["categories"]:
        if not cat.get("keypoints"):
            continue
        k = len(cat["keypoints"])
        cat["keypoints"] = cat["keypoints"][::-1]
        cat["skeleton"] = [[k + 1 - a, k + 1 - b] for a, b in cat.get("skeleton") or []]  # 1-based
        if "flip_pairs" in cat:
            cat["flip_pairs"] = [[k - 1 - a, k - 1 - b] for a, b in cat["flip_pairs"]]
        if "sigmas" in cat:
            cat["sigmas"] = cat["sigmas"][::-1]
    for a in out["annotations"]:
        if a.get("keypoints"):
            a["keypoints"] = np.reshape(a["keypoints"], (-1, 3))[::-1].reshape(-1).tolist()
    return out


def unreversed(keypoints) -> list:
    """A reversed file's flat keypoint list back in the original order."""
    return np.reshape(keypoints, (-1, 3))[::-1].reshape(-1).tolist()


def write_reversed(src: Path, dst: Path) -> Path:
    """``src`` (a COCO file) written to ``dst`` with its keypoints reversed (``reversed_keypoints``)."""
    dst.write_text(json.dumps(reversed_keypoints(json.loads(Path(src).read_text()))))
    return dst


def without_keypoint(data: dict, name: str) -> dict:
    """A copy of COCO ``data`` whose keypoint category no longer names ``name`` (its column cut from every
    annotation; flip pairs and sigmas dropped, skeleton cut)."""
    out = json.loads(json.dumps(data))
    for cat in out["categories"]:
        if not cat.get("keypoints"):
            continue
        j = cat["keypoints"].index(name)
        cat["keypoints"] = [n for n in cat["keypoints"] if n != name]
        cat["skeleton"] = [[a - (a > j + 1), b - (b > j + 1)] for a, b in cat.get("skeleton") or []
                           if j + 1 not in (a, b)]
        cat.pop("flip_pairs", None)
        cat.pop("sigmas", None)
    for a in out["annotations"]:
        if a.get("keypoints"):
            kp = np.delete(np.reshape(a["keypoints"], (-1, 3)), j, axis=0)
            a["keypoints"], a["num_keypoints"] = kp.reshape(-1).tolist(), int((kp[:, 2] > 0).sum())
    return out
