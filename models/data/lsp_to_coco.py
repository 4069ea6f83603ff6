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
from typing import Optional

import numpy as np

from fasterpose_rt.results import atomic_write_text, written_in_place
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
    if first > last:
        raise ValueError(f"range {first}:{last} is reversed: give FIRST:LAST with FIRST <= LAST (e.g. {last}:{first})")
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


RANGE_FORM = "expected FIRST:LAST (1-based, inclusive)"


def parse_range(text: str):
    """``--range`` "FIRST:LAST" (or a single "N", meaning N:N) -> (first, last); ValueError saying the form."""
    parts = text.split(":")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        first, last = (int(v) for v in (parts * 2)[:2])
    except ValueError:
        raise ValueError(f"--range {text!r}: {RANGE_FORM}") from None
    return first, last


def read_joints(path: Path) -> np.ndarray:
    """LSP Extended ``joints`` (14, 3, N) from a MATLAB file; a (14, 3) array (MATLAB drops a single photo's
    trailing 1) is one photo. OSError / ValueError with a one-line reason for anything else."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except OSError:
        raise
    except NotImplementedError:  # scipy's word for a MATLAB -v7.3 (HDF5) file
        raise ValueError(f"{path}: a MATLAB -v7.3 (HDF5) file cannot be read; save it with -v7 or older") from None
    except Exception as e:  # MatReadError, and the ValueError / TypeError of a damaged file
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    if "joints" not in mat:
        raise ValueError(f"{path} holds no 'joints' variable")
    try:
        joints = np.asarray(mat["joints"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: 'joints' is not a numeric array") from None
    if joints.shape[:2] == (3, 14):
        raise ValueError(f"{path}: 'joints' has shape {joints.shape}: this tool converts LSP Extended (14, 3, N); "
                         "the original LSP release is not supported")
    if joints.shape == (14, 3):
        joints = joints[:, :, None]
    if joints.ndim != 3 or joints.shape[:2] != (14, 3):
        raise ValueError(f"{path}: expected LSP joints of shape (14, 3, N), got {joints.shape}")
    return joints


def out_path_problem(out: Path) -> Optional[str]:
    """Why ``out`` cannot be written as a new file (None when it can): a folder, a path under a file, or a folder
    that cannot be made or written. Checked before long work, so that such a mistake is told at once."""
    if out.is_dir():
        return f"--out {out} is a folder; name a file"
    if out.exists() and written_in_place(out):  # a device or pipe (/dev/null, /dev/stdout): written as it is
        return None if os.access(out, os.W_OK) else f"--out {out} is not writable"
    folder = Path(os.path.realpath(out)).parent
    while not folder.exists():  # the nearest folder that exists: the rest will be made in it
        folder = folder.parent
    if not folder.is_dir():
        return f"--out {out}: {folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"--out {out}: cannot write in {folder}"
    return None


def write_output(out: Path, text: str) -> None:
    """Make ``out``'s folder and write ``text`` there atomically (``atomic_write_text``); OSError on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m models.data.lsp_to_coco", description=__doc__.split("\n")[0])
    ap.add_argument("--joints", required=True, type=Path, help="LSP Extended joints.mat (14, 3, N)")
    ap.add_argument("--images", required=True, type=Path, help="folder with im00001.jpg ...")
    ap.add_argument("--out", required=True, type=Path, help="COCO annotation file to write")
    ap.add_argument("--range", default=None,
                    help="1-based inclusive photo range, e.g. 1:8000, or N for one photo (default: all)")
    args = ap.parse_args(argv)
    problem = out_path_problem(args.out)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        joints = read_joints(args.joints)
        first, last = 1, joints.shape[2]
        if args.range:
            first, last = parse_range(args.range)
        coco = convert(joints, args.images, first, last)
        write_output(args.out, json.dumps(coco))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} persons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
