"""Convert Leeds Sports Pose (Extended) ``joints.mat`` into a standard COCO keypoint annotation file.

    python -m models.data.lsp_to_coco --joints joints.mat --images DIR --out ann.json [--range 1:8000]

LSP joints (14, 3, N) are x, y, flag per joint per photo, in the photo's pixel coordinates (taken as they are,
i.e. as OpenCV pixel-centre coordinates). Flag 1 -> v = 2 (labelled); flag 0 -> v = 0 with x = y = 0.
``bbox`` is the tightest box around the labelled joints (no margin: runtime users pass such boxes).
Dataset: Johnson & Everingham, "Learning Effective Human Pose Estimation from Inaccurate Annotation", CVPR 2011.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from fasterpose_rt.skeletons import LSP14

CITATION = (
    "Johnson & Everingham, 'Learning Effective Human Pose Estimation from Inaccurate Annotation', CVPR 2011"
)


def lsp_category():
    """The COCO category for LSP's 14 joints (skeleton 1-based as COCO writes it; flip pairs and sigmas added)."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(LSP14["keypoints"]),
        "skeleton": [[a + 1, b + 1] for a, b in LSP14["skeleton"]],
        "flip_pairs": [list(p) for p in LSP14["flip_pairs"]],  # 0-based, an extension COCO tools ignore
        "sigmas": list(LSP14["sigmas"]),
    }


def _image_size(path: Path):
    """(width, height) of a photo; raises OSError naming the file when it cannot be read."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return int(img.shape[1]), int(img.shape[0])


def convert(joints: np.ndarray, images_dir: Path, first: int, last: int, image_sizes: bool = True):
    """joints (14, 3, M) LSP array; photos im{first:05d}.jpg .. im{last:05d}.jpg (1-based, inclusive) -> COCO dict."""
    if joints.ndim != 3 or joints.shape[0] != 14 or joints.shape[1] != 3:
        raise ValueError(f"expected LSP joints of shape (14, 3, N), got {joints.shape}")
    if not 1 <= first <= last <= joints.shape[2]:
        raise ValueError(f"range {first}:{last} outside 1:{joints.shape[2]}")
    images, annotations = [], []
    for idx in range(first, last + 1):
        jt = joints[:, :, idx - 1]
        name = f"im{idx:05d}.jpg"
        labelled = jt[:, 2] > 0.5
        xy = np.where(labelled[:, None], jt[:, :2], 0.0)
        image = {"id": idx, "file_name": name}
        if image_sizes:
            image["width"], image["height"] = _image_size(images_dir / name)
        images.append(image)
        if labelled.any():
            lo, hi = xy[labelled].min(axis=0), xy[labelled].max(axis=0)
            bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        else:
            bbox = [0.0, 0.0, 0.0, 0.0]
        kps = np.concatenate([xy, np.where(labelled, 2, 0)[:, None]], axis=1)
        annotations.append(
            {
                "id": idx,
                "image_id": idx,
                "category_id": 1,
                "bbox": [round(v, 3) for v in bbox],
                "area": round(bbox[2] * bbox[3], 3),
                "iscrowd": 0,
                "num_keypoints": int(labelled.sum()),
                "keypoints": [round(float(v), 3) if i % 3 != 2 else int(v) for i, v in enumerate(kps.ravel())],
            }
        )
    return {
        "info": {"description": "LSP Extended converted to COCO keypoints", "citation": CITATION},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [lsp_category()],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m models.data.lsp_to_coco", description=__doc__.split("\n")[0])
    ap.add_argument("--joints", required=True, type=Path, help="LSP joints.mat")
    ap.add_argument("--images", required=True, type=Path, help="folder with im00001.jpg ...")
    ap.add_argument("--out", required=True, type=Path, help="COCO annotation file to write")
    ap.add_argument("--range", default=None, help="1-based inclusive photo range, e.g. 1:8000 (default: all)")
    args = ap.parse_args(argv)
    try:
        from scipy.io import loadmat

        joints = np.asarray(loadmat(str(args.joints))["joints"], dtype=np.float64)
        if joints.shape[:2] == (3, 14):  # the original LSP release stores (3, 14, N)
            joints = np.transpose(joints, (1, 0, 2))
        first, last = 1, joints.shape[2]
        if args.range:
            first, last = (int(v) for v in args.range.split(":"))
        coco = convert(joints, args.images, first, last)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(coco))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} persons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
