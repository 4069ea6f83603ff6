"""Keypoint sets known to the project: names, skeleton (index pairs), flip pairs, OKS sigmas."""
from __future__ import annotations

import re
from typing import Any, Dict

import numpy as np

COCO17: Dict[str, Any] = {
    "keypoints": [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ],
    # COCO's own skeleton, converted from 1-based to 0-based indices.
    "skeleton": [
        [15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8],
        [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6],
    ],
    "flip_pairs": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]],
    # Per-keypoint OKS sigmas from the COCO keypoint evaluation.
    "sigmas": [
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
        0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ],
}

LSP14: Dict[str, Any] = {
    "keypoints": [
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top",
    ],
    "skeleton": [
        [0, 1], [1, 2], [5, 4], [4, 3], [2, 3], [2, 8], [3, 9], [8, 9],
        [6, 7], [7, 8], [11, 10], [10, 9], [8, 12], [9, 12], [12, 13],
    ],
    "flip_pairs": [[0, 5], [1, 4], [2, 3], [6, 11], [7, 10], [8, 9]],
    # COCO's sigmas for the shared joints. Neck: the shoulders' 0.079 (a torso joint annotated about as
    # loosely); head top: the ears' 0.035 (a head landmark, less sharply defined than the nose).
    "sigmas": [
        0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.062, 0.072, 0.079, 0.079, 0.072, 0.062, 0.079, 0.035,
    ],
}


TORSO_NAMES = "keypoints named left/right_shoulder and left/right_hip (or LShoulder/RShoulder and LHip/RHip)"


# A side at a name's start or end: left_hip, LeftHip, r.knee, hip_r, kneeRight; OpenPose's L<X>/R<X> (LShoulder)
_SIDE_FIRST = re.compile(r"^(left|right|l|r)[^a-z0-9](.+)$|^(left|right)(.+)$", re.IGNORECASE)
_SIDE_LAST = re.compile(r"^(.+)[^a-z0-9](left|right|l|r)$|^(.+?)(left|right)$", re.IGNORECASE)
_LR_CAPITAL = re.compile(r"^[LR][A-Z]|^[lr][A-Z]")  # LShoulder; lEye
_LR_CAMEL_LAST = re.compile(r"^(.*[a-z0-9])([LR])$")  # shoulderL


def side_and_joint(name: str):
    """("l" or "r", the joint's name without its side, in lower case and letters and digits only) for a name that
    says a side at its start or end (left_hip, LeftHip, r.knee, LShoulder, lEye, hip_r, kneeRight, shoulderL),
    else None."""
    m = _SIDE_FIRST.match(name)
    if m:
        side, rest = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    elif _LR_CAPITAL.match(name):
        side, rest = name[0], name[1:]
    elif _LR_CAMEL_LAST.match(name):
        rest, side = name[:-1], name[-1]
    else:
        m = _SIDE_LAST.match(name)
        if not m:
            return None
        rest, side = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    joint = "".join(c for c in rest.lower() if c.isalnum())
    return (side[0].lower(), joint) if joint else None


def torso_pairs(names):
    """Index pairs (left shoulder, right hip) and (right shoulder, left hip) for PCK's torso size, or None. The
    joints are found by name: left_shoulder, right_hip, ... or, when those are not all there, one spelling each of
    another common style (LShoulder, RHip; shoulder_l; Left Hip)."""
    idx = {n: i for i, n in enumerate(names)}
    try:
        return ((idx["left_shoulder"], idx["right_hip"]), (idx["right_shoulder"], idx["left_hip"]))
    except KeyError:
        pass
    found: dict = {}
    for i, n in enumerate(names):
        joint = side_and_joint(str(n))
        if joint is not None and joint[1] in ("shoulder", "hip"):
            found.setdefault(joint, []).append(i)
    want = [("l", "shoulder"), ("r", "hip"), ("r", "shoulder"), ("l", "hip")]
    if any(len(found.get(j, [])) != 1 for j in want):  # missing, or two spellings of one joint: no guess
        return None
    ls, rh, rs, lh = (found[j][0] for j in want)
    return (ls, rh), (rs, lh)


def flip_permutation(num_keypoints: int, flip_pairs):
    """(K,) int index array exchanging each left/right pair of ``flip_pairs`` ([[a, b], ...]); others map to
    themselves. ``x[:, perm]`` mirrors the sides of keypoints (N, K, 2) or heatmaps (N, K, h, w)."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm
