"""Top-down samples from any COCO-format keypoint file: one sample per person annotation with labelled joints.

The crop is computed with the runtime's own geometry (``fasterpose_rt/geometry.py``) and the targets with the
shared codec, so a model sees at training time exactly the pixels the runtime will feed it.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from fasterpose_rt.evaluate import keypoint_category, load_annotations, oks_sigmas_ok, other_categories_left_out
from fasterpose_rt.geometry import apply_affine, box_centers_and_sizes, crop_affine, turned_extent
from fasterpose_rt.annotated_photos import frame_warnings, listed_size, read_as_listed
from fasterpose_rt.inputs import InputReadError
from fasterpose_rt.metadata import DEFAULT_BOX_PADDING, IMAGENET_MEAN, IMAGENET_STD
from fasterpose_rt.skeletons import COCO17, flip_permutation, side_and_joint

from ..codec import HeatmapCodec


# Half-body augmentation's upper body: keypoints whose name contains one of these (any case)
UPPER_BODY_WORDS = ("nose", "eye", "ear", "shoulder", "elbow", "wrist", "neck", "head")

# OpenPose / Human3.6M / Vicon names: a capital L or R before a capital (LShoulder, RHip, LSHO); case-sensitive, so
# "lip" or "Ring" say no side
_LR_PREFIX = re.compile(r"^[LR][A-Z]")


def _other_side(name: str) -> str:
    """L<X> <-> R<X>."""
    return ("R" if name[0] == "L" else "L") + name[1:]


def derive_flip_pairs(names: List[str]) -> List[List[int]]:
    """Left/right pairs [left, right] from keypoint names, 0-based, sorted: the two names that say opposite sides of
    one joint as the runtime reads sides (``skeletons.side_and_joint``: ``left_hip``/``right_hip``,
    ``LShoulder``/``RShoulder``, ``LSHO``/``RSHO``, ``hip_l``/``hip_r``, ``LeftKnee``/``RightKnee``, ``lEye``/``rEye``,
    ``shoulderL``/``shoulderR``), where each side of that joint has one name (two spellings of a side: no guess)."""
    index = {n: i for i, n in enumerate(names)}
    pairs, used = [], set()
    for n, i in index.items():  # one spelling's own counterpart first (left_eye/right_eye beside LEye/REye)
        other = ("right_" + n[5:] if n.startswith("left_") else
                 "R" + n[1:] if n.startswith("L") and _LR_PREFIX.match(n) else None)
        j = index.get(other) if other is not None else None
        if j is not None and i not in used and j not in used:
            pairs.append([i, j])
            used.update((i, j))
    sides: dict = {}
    for i, n in enumerate(names):
        found = side_and_joint(str(n)) if i not in used else None
        if found is not None:
            sides.setdefault(found[1], {}).setdefault(found[0], []).append(i)
    pairs += [[s["l"][0], s["r"][0]] for s in sides.values() if len(s.get("l", ())) == len(s.get("r", ())) == 1]
    return sorted(pairs)


# A name that says a side: left/right as a word or word start (left_hip, hip-right, LeftHip, hipLeft), or a lone
# l/r before or after a separator (L_hip, r.knee, hip_l).
_SIDED = re.compile(r"(?:^|[^a-z])(?:left|right)|^[lr][^a-z0-9]|[^a-z0-9][lr]$", re.IGNORECASE)
# camelCase sides: kneeLeft, shoulderL / shoulderR, lEye / rEye (review s67: these trained with flipped crops
# keeping their sides)
_CAMEL_SIDED = re.compile(r"[a-z0-9](?:Left|Right)|[a-z0-9][LR]$|^[lr][A-Z]")
_LR_LOWER = re.compile(r"^[LR][a-z]")  # Lhip / Rhip, but also Lip, Rump: a side only beside its other side


def _lr_sided(name: str, present) -> bool:
    """L/R before a capital: CamelCase (LShoulder, RHip) says a side by itself; all capitals (LSHO, but also ROOT,
    LIP) and L/R before a lower-case letter (Lhip, but also Lip) only when the other side's name is there too."""
    if _LR_LOWER.match(name):
        return _other_side(name) in present
    return bool(_LR_PREFIX.match(name)) and (name[2:3].islower() or _other_side(name) in present)


def sided_names(names: List[str]) -> List[str]:
    """The names among ``names`` that look like one side of the body (see _SIDED, _LR_PREFIX)."""
    present = set(names)
    return [n for n in names if _SIDED.search(n) or _CAMEL_SIDED.search(n) or _lr_sided(n, present)]


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_category(category: dict, source) -> dict:
    """Keypoint names, 0-based skeleton, flip pairs and OKS sigmas as given (None if absent) of a COCO keypoint
    category, checked: the one reading of a category that training and the exporter share.

    The skeleton is 1-based as COCO writes it; ``flip_pairs`` (an extension COCO tools ignore) is 0-based, and
    without it pairs are derived from the names (:func:`derive_flip_pairs`). Raises ValueError naming ``source`` for
    malformed names, skeleton, flip pairs or sigmas, and for names that say a side (:func:`sided_names`) when no flip
    pair covers them (a mirrored crop would keep the labels of the sides it swapped: flip augmentation would teach
    left for right).
    """
    names = category.get("keypoints")
    if not (isinstance(names, (list, tuple)) and names and all(isinstance(n, str) and n for n in names)) \
            or len(set(names)) != len(names):
        raise ValueError(f"{source}: the category's keypoint names must be a list of distinct non-empty strings")
    k = len(names)
    skeleton = category.get("skeleton") or []  # null or absent: no limbs
    if not isinstance(skeleton, (list, tuple)):
        raise ValueError(f"{source}: the category's skeleton must be a list of keypoint number pairs, got {skeleton!r}")
    for pair in skeleton:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_index(i) and 1 <= i <= k for i in pair)):
            raise ValueError(f"{source}: skeleton entry {pair!r} is not a pair of keypoint numbers in [1, {k}] "
                             "(COCO skeletons count from 1)")
    flip_pairs = category.get("flip_pairs") or derive_flip_pairs(names)
    if not isinstance(flip_pairs, (list, tuple)):
        raise ValueError(f"{source}: the category's flip_pairs must be a list of index pairs, got {flip_pairs!r}")
    for pair in flip_pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_index(i) and 0 <= i < k for i in pair)):
            raise ValueError(f"{source}: flip_pairs entry {pair!r} is not a pair of keypoint indices in [0, {k}) "
                             "(flip_pairs count from 0)")
    for a, b in flip_pairs if category.get("flip_pairs") else ():  # derived pairs agree with the names
        sa, sb = side_and_joint(names[a]), side_and_joint(names[b])
        if sa is not None and sb is not None and (sa[0] == sb[0] or sa[1] != sb[1]):
            raise ValueError(f"{source}: flip_pairs entry {[a, b]} pairs {names[a]!r} with {names[b]!r}, which their "
                             "names say are not the two sides of one joint: pair each left keypoint with its right "
                             "(0-based keypoint indices)")
    flipped = [i for pair in flip_pairs for i in pair]
    if len(set(flipped)) != len(flipped):  # else mirroring is no permutation (the runtime refuses such a model)
        raise ValueError(f"{source}: flip_pairs must name each keypoint at most once, got {flip_pairs!r}")
    sided = sided_names(names)
    if sided and not flip_pairs:
        shown = ", ".join(sided[:4]) + (", ..." if len(sided) > 4 else "")
        raise ValueError(f"{source}: keypoint names look left/right ({shown}) but the category has no flip_pairs and "
                         "none pair up by name (left_x/right_x, LX/RX, x_l/x_r, one name per side of a joint), so mirrored crops (flip augmentation, flip "
                         'test) would swap the sides: add "flip_pairs": [[left, right], ...] (0-based keypoint '
                         "indices) to the category")
    unpaired = [n for i, n in enumerate(names) if n in sided and i not in flipped]
    if unpaired:  # a partial pairing: these would keep their labels on the swapped side of a mirrored crop
        shown = ", ".join(unpaired[:4]) + (", ..." if len(unpaired) > 4 else "")
        given = "the category's flip_pairs" if category.get("flip_pairs") else "the flip pairs derived from the names"
        raise ValueError(f"{source}: keypoint names look left/right ({shown}) but none of {given} covers them, so "
                         "mirrored crops (flip augmentation, flip test) would keep their sides swapped: pair each "
                         'with its other side in "flip_pairs" (0-based keypoint indices)')
    sigmas = category.get("sigmas")
    if sigmas is not None:
        if isinstance(sigmas, (list, tuple)) and len(sigmas) != k:
            raise ValueError(f"{source}: category has {k} keypoints but {len(sigmas)} sigmas")
        if not oks_sigmas_ok(sigmas):
            raise ValueError(f"{source}: the category's sigmas must be positive numbers, got {sigmas!r}")
    return {"keypoints": list(names), "skeleton": [[a - 1, b - 1] for a, b in skeleton],
            "flip_pairs": [list(p) for p in flip_pairs], "sigmas": None if sigmas is None else list(sigmas)}


def category_metadata(category: dict, source="category") -> dict:
    """Keypoint names, 0-based skeleton, flip pairs and OKS sigmas of a COCO category (if it gives none:
    COCO's for 17 keypoints, else None: no OKS AP; the rule of ``fasterpose eval``), checked by :func:`read_category` (ValueError naming ``source``)."""
    meta = read_category(category, source)
    k = len(meta["keypoints"])
    if meta["sigmas"] is None and k == len(COCO17["keypoints"]):
        meta["sigmas"] = list(COCO17["sigmas"])
    return meta


@dataclass
class PersonSample:
    image_path: Path
    image_id: int
    bbox: np.ndarray  # (4,) [x, y, w, h] photo px
    keypoints: np.ndarray  # (K, 2) photo px
    visible: np.ndarray  # (K,) bool: labelled (v > 0)
    area: float
    # (H, W) the file's images[] entry gives: the stored bitmap's, the frame of bbox and keypoints (None: not given)
    image_size: Optional[Tuple[int, int]] = None


def load_coco_keypoints(ann_file, images_dir, min_keypoints: int = 1):
    """Read a COCO keypoint file -> (samples, category metadata dict). A person whose ``bbox`` is missing or at most
    1 px wide or tall is cropped around its labelled joints (the box ``fasterpose eval`` runs a person on whose
    bbox has no size); one whose labelled joints lie within 1 px of each other as well is skipped.
    OKS sigmas as :func:`category_metadata` reads them. Each sample
    carries its photo's (H, W) as the file's ``images[]`` entry gives it (``image_size``; None without one).

    Raises ValueError naming the file for what is not a COCO keypoint file (not JSON, no ``images`` or
    ``annotations`` list, no category with keypoints, a malformed category (:func:`read_category`), an annotation
    of an image the file does not list) and for a file without one usable person."""
    coco = load_annotations(ann_file)  # the runtime's reader: `fasterpose eval` refuses the same files
    cats = [c for c in coco.get("categories") or [] if isinstance(c, dict) and c.get("keypoints")]
    if not cats:
        raise ValueError(f"{ann_file}: no category with keypoints")
    cat = keypoint_category(coco)  # the one `fasterpose eval` evaluates: "person", else the only one with keypoints
    if cat is None:  # several, as in AP-10K's one per species: the others' persons were left out unsaid
        listed = [c for c in coco["categories"] if isinstance(c, dict) and isinstance(c.get("keypoints"), list)]
        raise ValueError(f"{ann_file}: {len(listed)} categories with a keypoints list "
                         f"({', '.join(repr(c.get('name')) for c in listed[:5])}{', ...' if len(listed) > 5 else ''}) "
                         "and none named 'person': training reads one; merge them into one category")
    if not cat.get("keypoints"):
        raise ValueError(f"{ann_file}: its 'person' category lists no keypoints")
    left_out = other_categories_left_out(coco, cat)
    if left_out is not None:
        print(f"warning: {ann_file}: {left_out}", file=sys.stderr)
    meta = category_metadata(cat, ann_file)
    k = len(meta["keypoints"])
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    sizes = {im["id"]: listed_size(im) for im in coco["images"]}
    samples, persons, unlabelled = [], 0, 0
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("category_id") != cat.get("id"):  # none given: no person, as in eval
            continue
        persons += 1
        kps = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        if kps.shape[0] != k:
            raise ValueError(f"{ann_file}: annotation {ann.get('id')} has {kps.shape[0]} keypoints, expected {k}")
        vis = kps[:, 2] > 0
        bbox = np.asarray(ann.get("bbox") or [0, 0, 0, 0], dtype=np.float64)
        if bbox.shape != (4,):
            raise ValueError(f"{ann_file}: annotation {ann.get('id')} has bbox {ann.get('bbox')!r}, not [x, y, w, h]")
        if vis.sum() < min_keypoints:
            unlabelled += 1
            continue
        if bbox[2] <= 1 or bbox[3] <= 1:  # no usable bbox: the box around its labelled joints, as eval runs it
            lo, hi = kps[vis, :2].min(axis=0), kps[vis, :2].max(axis=0)
            if (hi - lo).max() <= 1:  # one point: nothing to crop around
                continue
            bbox = np.array([lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)])
        if ann.get("image_id") not in files:
            raise ValueError(f"{ann_file}: annotation {ann.get('id')} is of image {ann.get('image_id')}, which the "
                             "file's 'images' do not list")
        samples.append(
            PersonSample(Path(images_dir) / files[ann["image_id"]], ann["image_id"], bbox, kps[:, :2], vis,
                         float(ann.get("area", bbox[2] * bbox[3])), sizes[ann["image_id"]])
        )
    if not persons:
        anns = [a for a in coco["annotations"] if isinstance(a, dict)]
        crowds = sum(bool(a.get("iscrowd", 0)) for a in anns)
        unnamed = sum("category_id" not in a for a in anns)
        other = sum("category_id" in a and a["category_id"] != cat.get("id") for a in anns)
        why = [f"{n} {what}" for n, what in ((crowds, "are crowds"), (unnamed, "have no 'category_id'"),
                                             (other, f"are of another category than {cat.get('id')!r}")) if n]
        raise ValueError(f"{ann_file}: no annotation of its category {cat.get('name')!r} (id {cat.get('id')!r}) that "
                         f"is not a crowd: of its {len(anns)} annotations, {', '.join(why) or 'none is there'}")
    if not samples:  # up front: else a sampler's obscure error, or a validation failing after a whole epoch
        few = "no labelled keypoint" if min_keypoints <= 1 else f"fewer than {min_keypoints} labelled keypoints"
        raise ValueError(f"{ann_file}: no person with labelled keypoints and a usable bbox ({persons} person "
                         f"annotations: {unlabelled} with {few}, {persons - unlabelled} without a bbox over 1 px "
                         "wide and tall, nor labelled joints spread over more than 1 px)")
    return samples, meta


class TopDownDataset(Dataset):
    """Person crops and heatmap targets.

    Item: (image (3, H, W) float32 normalised RGB, targets (K, h, w) float32, weights (K,) float32, index).
    input_size (W, H). Augmentation (train=True): scale, rotation, flip with flip pairs, centre shift, colour
    jitter, optional half-body and occlusion (a rectangle of noise over the crop; the joints under it keep their
    targets, so the model learns to place hidden joints from context). ``rotation_fit``: a rotated crop's region is
    fitted around the person as it lies in the rotated frame (see :meth:`_fit_rotated`), as a tight box around a
    turned person would be at test time, instead of keeping the upright box's region, which a turned person
    overflows. ``cache=True`` decodes every photo once up
    front (small datasets).

    Photos that cannot be read (missing, empty, not decodable; with ``cache=False`` only missing ones, found up
    front, unless ``check_photos``: then each is decoded once up front and not kept) leave their persons out, with a
    warning naming them and why (``warn``); ``skipped`` maps each such photo's path to its reason. None readable at
    all raises ValueError.

    Photos are read in the frame of their samples' ``image_size`` (the stored bitmap's, where a COCO file's boxes
    and keypoints are): an EXIF orientation that would turn a photo away from it is ignored
    (:func:`fasterpose_rt.annotated_photos.read_as_listed`, as ``fasterpose eval`` reads them). Photos decoded up front
    (``cache`` or ``check_photos``) are counted: how many were read ignoring their EXIF orientation, and which are
    of another size either way, is said in one warning (``warn``).
    """

    def __init__(self, samples, meta, input_size, train: bool, codec: Optional[HeatmapCodec] = None,
                 box_padding: float = DEFAULT_BOX_PADDING, scale_range: float = 0.25, rotation: float = 30.0, rotation_prob: float = 0.6,
                 flip_prob: float = 0.5, shift: float = 0.05, color_jitter: float = 0.3, half_body_prob: float = 0.0,
                 occlusion_prob: float = 0.0, rotation_fit: bool = False, cache: bool = True, seed: int = 0,
                 warn: bool = True, check_photos: bool = False):
        self.samples = samples
        self.meta = meta
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.codec = codec or HeatmapCodec(self.input_size)
        self.train = train
        self.box_padding = box_padding
        self.scale_range, self.rotation, self.rotation_prob = scale_range, rotation, rotation_prob
        self.flip_prob, self.shift, self.color_jitter, self.half_body_prob = flip_prob, shift, color_jitter, half_body_prob
        self.occlusion_prob = occlusion_prob
        self.rotation_fit = rotation_fit
        k = len(meta["keypoints"])
        self.flip_index = flip_permutation(k, meta["flip_pairs"])
        names = meta["keypoints"]
        # any case: OpenPose / Human3.6M write Nose, LShoulder, REye
        self.upper = np.array([any(w in n.lower() for w in UPPER_BODY_WORDS) for n in names])
        if train and half_body_prob > 0:
            self._check_half_body(names)
        self.mean = np.array(IMAGENET_MEAN, np.float32)
        self.std = np.array(IMAGENET_STD, np.float32)
        self.seed = seed
        self._cache = {}
        self.skipped = {}
        self._sizes = {}  # {photo path: (H, W) listed}: the frame its samples' boxes and keypoints are in
        for s in samples:
            if s.image_size is not None:
                self._sizes.setdefault(s.image_path, tuple(s.image_size))
        paths = sorted({s.image_path for s in samples})
        as_stored, differ = 0, []  # photos read ignoring their orientation; (path, read (H, W), listed (H, W))
        if cache or check_photos:
            for p in tqdm(paths, desc="caching photos" if cache else "checking photos", leave=False, mininterval=2):
                try:
                    img, frame = self._read(p)
                except OSError as e:
                    self.skipped[p] = str(e)
                else:
                    as_stored += frame == "stored"
                    if frame == "neither":
                        differ.append((p, img.shape[:2], self._sizes[p]))
                    if cache:
                        self._cache[p] = img
        else:
            self.skipped = {p: "no such file" for p in paths if not p.is_file()}
        said = frame_warnings(as_stored, differ)
        if said and warn:  # once for the dataset: the crops are right, but the file or the photos may not be
            print(f"warning: {'; '.join(said)}", file=sys.stderr)
        if self.skipped:
            self._leave_out_unreadable(len(paths), warn)

    def _check_half_body(self, names) -> None:
        """A half-body crop is the box of a part's labelled joints, 3 or more, fewer than all: refuse (ValueError)
        when neither the upper body nor the rest can be one, else --half-body would silently never crop half a body."""
        k, up = len(names), int(self.upper.sum())
        if not (3 <= up < k or 3 <= k - up < k):
            found = ", ".join(n for n, u in zip(names, self.upper) if u) or "none"
            raise ValueError(f"--half-body: half-body crops need 3 or more keypoints named as upper-body joints (names "
                             f"containing {', '.join(UPPER_BODY_WORDS)}, any case) or 3 or more others, and some of "
                             f"each; of these {k} keypoints {up} are upper-body ones ({found}), so no crop would be of "
                             "half a body")

    def _leave_out_unreadable(self, photos: int, warn: bool) -> None:
        before = len(self.samples)
        self.samples = [s for s in self.samples if s.image_path not in self.skipped]
        named = ", ".join(f"{p} ({why})" for p, why in list(self.skipped.items())[:5])  # (its folder: which set)
        more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        if not self.samples:
            raise ValueError(f"none of the {photos} photos could be read: {named}{more}")
        if warn:
            print(f"warning: {len(self.skipped)} of {photos} photos could not be read, so their "
                  f"{before - len(self.samples)} persons are left out: {named}{more}", file=sys.stderr)

    def _read(self, path: Path) -> Tuple[np.ndarray, str]:
        """((H, W, 3) uint8 BGR, frame), decoded as the runtime decodes photos (gray, alpha and 16-bit converted) in
        the frame of the size its samples list (:func:`fasterpose_rt.annotated_photos.read_as_listed`: EXIF orientation
        applied unless that turns the photo away from it; frame "" / "stored" / "neither"). Raises OSError naming
        the reason."""
        try:
            return read_as_listed(path, self._sizes.get(path))
        except InputReadError as e:
            raise OSError(str(e)) from None

    def __len__(self):
        return len(self.samples)

    def _region(self, s: PersonSample, rng):
        """Crop region for a sample: centre (2,), size (2,), rotation (deg), flip (bool)."""
        bbox = s.bbox
        if self.train and self.half_body_prob > 0 and rng.random() < self.half_body_prob:
            part = self.upper if rng.random() < 0.5 else ~self.upper
            sel = s.visible & part
            if sel.sum() >= 3:
                lo, hi = s.keypoints[sel].min(0), s.keypoints[sel].max(0)
                bbox = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]) if (hi - lo).min() > 1 else bbox
        center, size = box_centers_and_sizes(bbox[None], self.input_size, self.box_padding)
        center, size = center[0], size[0]
        rot, flip = 0.0, False
        if self.train:
            jitter = np.clip(1 + rng.normal() * self.scale_range, 1 - self.scale_range, 1 + self.scale_range)
            shift = rng.uniform(-self.shift, self.shift, 2)
            if rng.random() < self.rotation_prob:
                rot = float(np.clip(rng.normal() * self.rotation, -2 * self.rotation, 2 * self.rotation))
                if self.rotation_fit:
                    center, size = self._fit_rotated(bbox, s, rot)
            size = size * jitter
            center = center + shift * size
            flip = rng.random() < self.flip_prob
        return center, size, rot, flip

    def _fit_rotated(self, bbox, s: PersonSample, rot: float):
        """Region (centre (2,), size (2,)) for a crop turned by ``rot`` degrees: the tight box of the person's
        labelled joints in the turned frame, grown by the margin ``bbox`` has over those joints upright (1 for
        LSP's tight boxes), then given the model's aspect and box padding, as the runtime treats a tight box.

        Fewer than 3 joints in the box, or joints spanning under a quarter of it on either axis (two eyes, a head
        and shoulders in a full-body box), say too little of the person's turned extent: the margin would be
        extrapolated many-fold (up to 50x), so such a person keeps the upright box's region, as without the fit."""
        pts = s.keypoints[s.visible]
        lo, hi = bbox[:2] - 1.0, bbox[:2] + bbox[2:] + 1.0
        pts = pts[((pts >= lo) & (pts <= hi)).all(axis=1)]  # a half-body box keeps its own joints
        upright = pts.max(0) - pts.min(0) if len(pts) else np.zeros(2)
        if len(pts) < 3 or (upright < bbox[2:] / 4).any():
            c, size = box_centers_and_sizes(bbox[None], self.input_size, self.box_padding)
            return c[0], size[0]
        upright = np.maximum(upright, 1.0)  # a line of joints in a box as thin (LSP's tight boxes)
        margin = max(1.0, float(np.sqrt(bbox[2] * bbox[3] / (upright[0] * upright[1]))))  # at most 4
        centers, sizes = turned_extent(pts[None], [rot])
        center, wh = centers[0], sizes[0] * margin
        c, size = box_centers_and_sizes(np.r_[center - wh / 2, wh][None], self.input_size, self.box_padding)
        return c[0], size[0]

    def crop_transform(self, index: int, rng=None):
        """The photo -> crop affine (2, 3) and flip flag of sample ``index`` (no augmentation when rng is None)."""
        s = self.samples[index]
        if rng is None:
            center, size = box_centers_and_sizes(s.bbox[None], self.input_size, self.box_padding)
            return crop_affine(center, size, self.input_size)[0], False
        center, size, rot, flip = self._region(s, rng)
        m = crop_affine(center[None], size[None], self.input_size, [rot])[0]
        if flip:  # mirror the crop: x -> W - 1 - x (exact under the pixel-centre convention)
            m = np.array([[-1.0, 0, self.input_size[0] - 1], [0, 1, 0]]) @ np.vstack([m, [0, 0, 1]])
        return m, flip

    @staticmethod
    def occlude(crop: np.ndarray, rng, area=(0.02, 0.2), aspect=(0.3, 3.3)) -> np.ndarray:
        """A copy of crop (H, W, 3) uint8 with one rectangle of uniform noise: ``area`` of the crop (fraction),
        aspect ratio (h/w) log-uniform in ``aspect``, placed uniformly inside the crop."""
        h, w = crop.shape[:2]
        a = rng.uniform(*area) * h * w
        r = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        rh, rw = min(h, max(1, int(round(np.sqrt(a * r))))), min(w, max(1, int(round(np.sqrt(a / r)))))
        y, x = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
        out = crop.copy()
        out[y:y + rh, x:x + rw] = rng.integers(0, 256, (rh, rw, crop.shape[2]), dtype=np.uint8)
        return out

    def __getitem__(self, item):
        # item: an index, or (index, draw) from EpochSampler, whose draw seeds the augmentation instead of the torch
        # RNG of whichever process runs this (persistent workers carry theirs over from epoch to epoch)
        index, draw = (int(item[0]), int(item[1])) if isinstance(item, tuple) else (int(item), None)
        if self.train and draw is None:
            draw = torch.randint(0, 2**31, ()).item()
        rng = np.random.default_rng((self.seed, index, draw)) if self.train else None
        s = self.samples[index]
        img = self._cache.get(s.image_path)
        if img is None:
            try:
                img = self._read(s.image_path)[0]
            except OSError as e:  # uncached: a photo that went bad after the up-front check
                raise OSError(f"{s.image_path}: {e}") from None
        m, flip = self.crop_transform(index, rng)
        w, h = self.input_size
        crop = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if self.train and self.occlusion_prob > 0 and rng.random() < self.occlusion_prob:
            crop = self.occlude(crop, rng)
        kp = apply_affine(s.keypoints[None], m[None])[0]
        vis = s.visible.copy()
        if flip:
            kp, vis = kp[self.flip_index], vis[self.flip_index]
        rgb = crop[:, :, ::-1].astype(np.float32)
        if self.train and self.color_jitter > 0:
            j = self.color_jitter
            gray = rgb.mean(axis=2, keepdims=True)
            rgb = gray + (rgb - gray) * rng.uniform(1 - j, 1 + j)  # saturation
            rgb = (rgb - rgb.mean()) * rng.uniform(1 - j, 1 + j) + rgb.mean()  # contrast
            rgb = np.clip(rgb * rng.uniform(1 - j, 1 + j), 0, 255)  # brightness
        x = ((rgb - self.mean) / self.std).transpose(2, 0, 1)
        targets, weights = self.codec.encode(kp, vis)
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(targets), torch.from_numpy(weights), index


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """A 32-bit seed for one process's epoch, from (seed, rank, epoch) alone."""
    return int(np.random.SeedSequence([seed % 2**64, rank, epoch]).generate_state(1)[0])


class EpochSampler(Sampler):
    """A training epoch's order and augmentation draws as a function of (seed, rank, epoch) alone, so a run resumed
    at epoch e draws exactly what an uninterrupted run draws in epoch e.

    Yields (index, draw) pairs for :class:`TopDownDataset`: the indices are DistributedSampler's (this process's
    shard of a permutation seeded by ``seed + epoch``; one process: ``num_replicas=1``), each draw a 31-bit int
    that seeds that sample's augmentation. The data loader's worker processes play no part: persistent workers keep
    their RNG state from one epoch to the next, but a resumed run's workers would start afresh. Call ``set_epoch``
    before every epoch.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        self.order = DistributedSampler(dataset, num_replicas, rank, shuffle=True, seed=seed)
        self.seed, self.rank, self.epoch = seed, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.order.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.rank, self.epoch))
        draws = torch.randint(0, 2**31, (len(self.order),), generator=g).tolist()
        return iter(list(zip(self.order, draws)))
