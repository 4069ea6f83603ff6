"""Person boxes for the CLI: from a ``--boxes`` file (COCO annotations or a name -> boxes map) or OpenCV's HOG
people detector. Boxes are ``[x, y, w, h]`` photo px (geometry.py convention 2).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple

import cv2
import numpy as np

from .annotated_photos import listed_size
from .image import to_bgr_uint8
from .inputs import InputItem
from .jsonfile import finite_number, load_json
from .preprocess import BOX_LIMIT, MIN_BOX_SIDE

__all__ = [
    "BoxesFileError", "DetectorUnavailable", "ImageBoxes", "BoxLookup", "load_boxes_file", "person_category",
    "coco_person_boxes", "box_iou", "box_out_of_range", "BOX_RANGE", "nms", "HogPeopleDetector",
]


class BoxesFileError(ValueError):
    """The boxes file is unreadable or malformed; the message names the file and the offending entry."""


class DetectorUnavailable(RuntimeError):
    """The requested person detector does not exist in this OpenCV build."""


@dataclass
class ImageBoxes:
    """Boxes of one photo: boxes (N, 4) float64 [x, y, w, h]; image_id: the COCO id, or None for a plain map;
    ann_index (N,): index of each box's annotation in the file's ``annotations`` list (COCO files only);
    image_size (H, W): the photo's size as a COCO file lists it (the frame of its boxes), or None."""

    boxes: np.ndarray
    image_id: Optional[int] = None
    ann_index: Optional[np.ndarray] = None
    image_size: Optional[Tuple[int, int]] = None


def _norm_name(name: str) -> str:
    """File names compared as POSIX paths without a leading './'."""
    return PurePosixPath(name.replace("\\", "/")).as_posix().lstrip("/") if name else name


BOX_RANGE = f"values within +-{BOX_LIMIT:g} px, sides at least {MIN_BOX_SIDE:g} px"  # what box_out_of_range allows


def box_out_of_range(b: Sequence[float]) -> bool:
    """Whether a box [x, y, w, h] of 4 finite numbers holds a value no photo has, which preprocess.check_boxes
    refuses: one beyond +-BOX_LIMIT px, or w, h > 0 with a side under MIN_BOX_SIDE (a box with w or h <= 0 is no
    box, which callers leave out: only its values' size is checked)."""
    return any(abs(v) > BOX_LIMIT for v in b) or (b[2] > 0 and b[3] > 0 and min(b[2], b[3]) < MIN_BOX_SIDE)


def _valid_box(b) -> bool:
    return isinstance(b, (list, tuple)) and len(b) == 4 and all(finite_number(v) for v in b)


class BoxLookup:
    """Boxes by photo file name. ``find(path, rel)`` gives the entry naming the photo: the entry that is the path as
    given, the path inside its input folder (``rel``), or an end of the path (``val2017/a.jpg`` matches
    ``data/val2017/a.jpg``); of several, the longest (``x/a.jpg`` before ``a.jpg``; of two as long, the path as
    given's); None when the photo is not listed. ``conflict(items)`` says when one entry names several of a run's
    inputs; ``renumber_shared_ids(items)`` drops the ids a list's entries give several photos (a COCO file's ids
    are unique: :func:`coco_person_boxes` refuses a repeated one); ``largest_image_id(items)``: the largest id the
    file gives. category_id: the person category's id in a COCO file (its results carry it; 1 otherwise);
    keypoint_names: that category's keypoints, None when it lists none. given_ids: {entry name: the largest image
    id the file gives it, any of its entries or frames}, by default the entries' own ids."""

    def __init__(self, entries: Dict[str, ImageBoxes], source: str, category_id: int = 1,
                 keypoint_names: Optional[List[str]] = None, *,
                 given_ids: Optional[Dict[str, int]] = None):
        self.entries = entries
        self.source = source
        self.degenerate = 0  # a COCO file's persons without a box, or with w or h <= 0, left out (nobody to crop)
        self.category_id, self.keypoint_names = category_id, keypoint_names
        self.given_ids = given_ids if given_ids is not None else {
            k: e.image_id for k, e in entries.items() if e.image_id is not None}
        self._by_base: Dict[str, List[str]] = {}
        for key in entries:
            self._by_base.setdefault(PurePosixPath(key).name, []).append(key)

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, path: os.PathLike, rel: Optional[os.PathLike] = None, from_cwd: bool = False) -> Optional[str]:
        """The name of the entry :meth:`find` gives the photo at ``path`` (``rel``: its path inside its input
        folder), None when none names it. ``from_cwd``: ``path`` is a file from the current folder (an input), so
        an entry naming its absolute path names it too; not for names read from another file."""
        full = _norm_name(Path(path).as_posix())
        # and from the root: an absolute name (predict's results of $PWD/shoot) is the photo given as shoot/a.jpg
        rooted = _norm_name(Path(os.path.abspath(path)).as_posix()) if from_cwd else full
        # (length, from the path as given): the longest wins, the path as given's of two as long
        found = [(len(k), 1, k) for k in self._by_base.get(PurePosixPath(full).name, [])
                 if ("/" + full).endswith("/" + k) or ("/" + rooted).endswith("/" + k)]
        inside = _norm_name(Path(rel).as_posix()) if rel is not None else None
        if inside is not None and inside in self.entries:
            found.append((len(inside), 0, inside))
        return max(found)[2] if found else None

    def find(self, path: os.PathLike, rel: Optional[os.PathLike] = None,
             from_cwd: bool = False) -> Optional[ImageBoxes]:
        key = self.match(path, rel, from_cwd)
        return None if key is None else self.entries[key]

    def _whose(self, items: Iterable[InputItem]) -> Dict[str, List[InputItem]]:
        """{entry name: the inputs it is the entry of}, for the entries of any of ``items``."""
        whose: Dict[str, List[InputItem]] = {}
        for item in items:
            key = self.match(item.path, item.rel, from_cwd=True)
            if key is not None:
                whose.setdefault(key, []).append(item)
        return whose

    def _shared_ids(self, items: Iterable[InputItem]) -> List[Tuple[int, List[Tuple[str, InputItem]]]]:
        """[(image id, [(entry name, its photo), ...]), ...]: the ids the entries of several of the input photos
        give, in the order first given. A video's entry gives no id (its frames take ids of their own); an entry
        naming several inputs is :meth:`conflict`'s."""
        by_id: Dict[int, List[Tuple[str, InputItem]]] = {}
        for key, its in self._whose(items).items():
            image_id = self.entries[key].image_id
            if image_id is None or len(its) > 1 or its[0].kind != "image":
                continue
            by_id.setdefault(image_id, []).append((key, its[0]))
        return [(image_id, given) for image_id, given in by_id.items() if len(given) > 1]

    def largest_image_id(self, items: Iterable[InputItem]) -> int:
        """The largest image id the file gives, to any entry (a photo's, whether or not among ``items``, or any
        frame of a video's results) but the entries of the videos among ``items``: their frames take ids of their
        own, so predict run again on its own results of a video numbers the frames as before. 0 when none."""
        videos = {self.match(i.path, i.rel, from_cwd=True) for i in items if i.kind != "image"}
        return max((n for key, n in self.given_ids.items() if key not in videos), default=0)

    def renumber_shared_ids(self, items: Iterable[InputItem]) -> Optional[str]:
        """A detections or results list whose entries give several input photos one image id, as the results of
        two predict runs put in one list do (each run numbers from 1): those photos' ids are dropped, so they take
        running ids (after the file's largest, as a photo given no id does). Returns a warning naming them, None
        when no id is shared (never in a COCO file, whose images each have an id of their own)."""
        shared = self._shared_ids(items)
        for _, given in shared:
            for key, _ in given:
                self.entries[key] = replace(self.entries[key], image_id=None)
        if not shared:
            return None
        image_id, given = shared[0]
        more = ""
        if len(shared) > 1:
            more = (f" ({len(shared) - 1} other image {'id is' if len(shared) == 2 else 'ids are'} each given to "
                    f"several photos too, {sum(len(g) for _, g in shared)} photos in all)")
        return (f"warning: {self.source}: entries {_listed([repr(k) for k, _ in given])} "
                f"{_give_one_id(image_id, [i.label for _, i in given])}{more}; they get new image ids, numbered "
                f"after the largest the file gives ({self.largest_image_id(items)})")

    def conflict(self, items: Iterable[InputItem]) -> Optional[str]:
        """Why these inputs cannot take their boxes from this file, or None: an entry that is the longest match
        of several inputs (``a.jpg`` of ``x/a.jpg`` and ``y/a.jpg``: whose boxes and image id are they?). items:
        the run's inputs, each file once."""
        whose = self._whose(items)
        shared = [(key, its) for key, its in whose.items() if len(its) > 1]
        if shared:
            key, its = shared[0]
            paths = [_norm_name(Path(i.path).as_posix()) for i in its]
            ends = (_own_end(p, paths[:n] + paths[n + 1:]) for n, p in enumerate(paths))
            example = next((e for e in ends if e not in (None, key)), None)
            gives = "its boxes" + (" and image id" if self.entries[key].image_id is not None else "")
            more = (f" ({len(shared) - 1} other {'entry names' if len(shared) == 2 else 'entries name'} several "
                    f"inputs too)") if len(shared) > 1 else ""
            return (f"{self.source}: entry {key!r} names {len(its)} inputs, {_listed([i.label for i in its])}, and "
                    f"would give each {gives}; give each an entry naming more of its path"
                    + (f" (as {example!r})" if example is not None else "") + more)
        return None


def _listed(names: List[str], most: int = 3) -> str:
    """``a, b and c``; past ``most`` names, ``a, b, c and 4 more``."""
    if len(names) > most:
        return f"{', '.join(names[:most])} and {len(names) - most} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _give_one_id(image_id: int, photos: List[str]) -> str:
    """``both give image_id 1, to two photos, a and b`` (``all give ..., to 3 photos, ...``)."""
    many = "both" if len(photos) == 2 else "all"
    return (f"{many} give image_id {image_id}, to {'two' if len(photos) == 2 else len(photos)} photos, "
            f"{_listed(photos)}")


def _own_end(full: str, others: List[str]) -> Optional[str]:
    """The shortest end of the path ``full`` (whole folder names) that ends none of ``others``; None when every
    end of it ends one of them."""
    parts = full.split("/")
    for n in range(1, len(parts) + 1):
        end = "/".join(parts[-n:])
        if not any(("/" + o).endswith("/" + end) for o in others):
            return end
    return None


def _is_id(value) -> bool:
    """An id a COCO file may give: an integer (or a float holding one, as some writers store them)."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def person_category(data: dict) -> Optional[dict]:
    """The category whose boxes :func:`coco_person_boxes` takes: the one named "person", else the only one; None
    when neither."""
    cats = data.get("categories")
    cats = [c for c in cats if isinstance(c, dict)] if isinstance(cats, list) else []
    return next((c for c in cats if c.get("name") == "person"), cats[0] if len(cats) == 1 else None)


def coco_person_boxes(data: dict, source: str = "annotations", category_id: Optional[int] = None,
                      degenerate: Optional[List[int]] = None) -> Tuple[Dict[int, str], Dict[int, ImageBoxes]]:
    """COCO annotations -> ({image id: file_name}, {image id: ImageBoxes}) for every listed photo.

    Person boxes: annotations of ``category_id`` (None: of the category named "person", every category when none
    is), not crowd, with a bbox of 4 numbers and w, h > 0; persons without a bbox (none, null or empty) and with
    w or h <= 0 are skipped (their annotation indices appended to ``degenerate`` when given). Raises
    BoxesFileError for a malformed file.
    """
    def bad(msg) -> NoReturn:
        raise BoxesFileError(f"{source}: {msg}")

    images, anns = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list):
        bad("a COCO file needs 'images' and 'annotations' lists")
    names: Dict[int, str] = {}
    sizes: Dict[int, Optional[Tuple[int, int]]] = {}
    for i, im in enumerate(images):
        if not (isinstance(im, dict) and isinstance(im.get("id"), int) and isinstance(im.get("file_name"), str)):
            bad(f"images[{i}] needs an integer 'id' and a string 'file_name'")
        if im["id"] in names:  # the later record hid the earlier photo: its persons were silently dropped
            bad(f"images[{i}] has the id {im['id']} of another image; each photo needs an id of its own")
        names[im["id"]] = im["file_name"]
        sizes[im["id"]] = listed_size(im)
    cats = data.get("categories")
    cats = cats if isinstance(cats, list) else []
    for i, c in enumerate(cats):
        if isinstance(c, dict) and not _is_id(c.get("id")):
            bad(f"categories[{i}] needs an integer 'id', got {c.get('id')!r}")
    person = {c["id"] for c in cats if isinstance(c, dict) and c.get("name") == "person"}
    if category_id is not None:  # the caller's person category (eval's may be named otherwise): its boxes only
        person = {category_id}
    per_image: Dict[int, List[Tuple[int, list]]] = {i: [] for i in names}
    for j, a in enumerate(anns):
        if not isinstance(a, dict) or "image_id" not in a:
            bad(f"annotations[{j}] is not an object with an 'image_id'")
        if "category_id" in a and not _is_id(a["category_id"]):
            bad(f"annotations[{j}]: 'category_id' must be an integer, got {a['category_id']!r}")
        if a.get("iscrowd", 0) not in (0, 1, None):  # ("no" is true: the person was left out as a crowd)
            bad(f"annotations[{j}]: 'iscrowd' must be 0 or 1, got {a['iscrowd']!r}")
        if person and a.get("category_id") not in person:
            continue
        if a.get("iscrowd", 0):
            continue
        if not a.get("bbox"):  # none (or null, []): nobody to crop either
            if degenerate is not None:
                degenerate.append(j)
            continue
        b = a["bbox"]
        if not _valid_box(b):
            bad(f"annotations[{j}]: bbox must be [x, y, w, h] numbers, got {b!r}")
        if box_out_of_range(b):  # named as the file is read, not as a failure of the photo's crop
            bad(f"annotations[{j}]: bbox {b!r} is out of range ({BOX_RANGE})")
        if b[2] <= 0 or b[3] <= 0:  # degenerate box: nobody to crop
            if degenerate is not None:
                degenerate.append(j)
            continue
        if not isinstance(a["image_id"], int) or a["image_id"] not in per_image:
            bad(f"annotations[{j}] refers to image_id {a['image_id']!r}, which 'images' does not list")
        per_image[a["image_id"]].append((j, b))
    boxes = {
        i: ImageBoxes(np.array([b for _, b in lst], np.float64).reshape(-1, 4), i,
                      np.array([j for j, _ in lst], np.int64), sizes[i])
        for i, lst in per_image.items()
    }
    return names, boxes


def load_boxes_file(path: os.PathLike, min_score: float = 0.0) -> BoxLookup:
    """Read a ``--boxes`` file: COCO annotations (object with 'images' and 'annotations'; results carry the
    COCO image ids), an object mapping file name -> list of [x, y, w, h], or a list of detections or results each
    naming its photo, ``{"file_name", "bbox", "score"?, "image_id"?}`` (``fasterpose predict``'s own results, a
    detector's output; boxes scoring below ``min_score`` are left out; of a video's entries, its first frame's).
    Raises BoxesFileError."""
    src = str(path)
    data = load_json(path, BoxesFileError)
    if isinstance(data, list):
        listed, listed_ids = _detection_list(data, src, min_score)
        return BoxLookup(listed, src, given_ids=listed_ids)
    if not isinstance(data, dict):
        raise BoxesFileError(f"{src}: expected a JSON object (COCO annotations or file name -> boxes) or a list of "
                             f"detections, got a {type(data).__name__}")
    entries: Dict[str, ImageBoxes] = {}
    if "images" in data and "annotations" in data:
        degenerate: List[int] = []
        names, boxes = coco_person_boxes(data, src, degenerate=degenerate)
        given_ids: Dict[str, int] = {}
        for image_id, name in names.items():
            key = _norm_name(name)
            if key in given_ids:  # the later record hid the earlier one's persons, without a word
                raise BoxesFileError(f"{src}: images {given_ids[key]} and {image_id} both name the photo {name!r}; "
                                     "a photo needs one record (its persons all under its id)")
            entries[key], given_ids[key] = boxes[image_id], image_id
        cat = person_category(data) or {}
        cat_id, kp = cat.get("id"), cat.get("keypoints")
        # results carry the file's own person category id: COCOeval scores only the category it is told
        lookup = BoxLookup(entries, src, cat_id if isinstance(cat_id, int) and not isinstance(cat_id, bool) else 1,
                           [str(n) for n in kp] if isinstance(kp, list) else None, given_ids=given_ids)
        lookup.degenerate = len(degenerate)
        return lookup
    else:
        for name, lst in data.items():
            if not isinstance(lst, list) or not all(_valid_box(b) for b in lst):
                raise BoxesFileError(f"{src}: entry {name!r} must be a list of [x, y, w, h] boxes, got {lst!r}")
            far = next((b for b in lst if box_out_of_range(b)), None)
            if far is not None:
                raise BoxesFileError(f"{src}: entry {name!r}: box {far!r} is out of range ({BOX_RANGE})")
            arr = np.array(lst, np.float64).reshape(-1, 4)
            if arr.size and not ((arr[:, 2] > 0) & (arr[:, 3] > 0)).all():
                raise BoxesFileError(f"{src}: entry {name!r} has a box with width or height <= 0")
            key = _norm_name(name)
            if key in entries:  # "a.jpg" and "./a.jpg": the later hid the earlier's boxes
                twin = next(n for n in data if n != name and _norm_name(n) == key)
                raise BoxesFileError(f"{src}: entries {twin!r} and {name!r} name the same photo; give its boxes once")
            entries[key] = ImageBoxes(arr)
    return BoxLookup(entries, src)


def _detection_list(data: list, src: str, min_score: float) -> Tuple[Dict[str, ImageBoxes], Dict[str, int]]:
    """({file name: ImageBoxes}, {file name: the largest image_id of its entries, any frame or score}) of a list
    of {"file_name", "bbox", "score"?, "image_id"?, "frame"?} entries."""
    per_file: Dict[str, list] = {}
    ids: Dict[str, set] = {}
    largest: Dict[str, int] = {}
    first_frame: Dict[str, float] = {}
    for j, d in enumerate(data):
        if not isinstance(d, dict):
            raise BoxesFileError(f"{src}: entry {j} is not an object")
        name = d.get("file_name")
        if not isinstance(name, str) or not name:
            hint = (" (COCO detection results name photos by image_id only: give --boxes the COCO annotation file "
                    "of those photos, or add each photo's file_name)") if "image_id" in d else ""
            raise BoxesFileError(f"{src}: entry {j} needs a 'file_name'{hint}")
        b, score = d.get("bbox"), d.get("score", 1.0)
        if not _valid_box(b) or min(b[2:]) <= 0:  # type: ignore[index]
            raise BoxesFileError(f"{src}: entry {j}: 'bbox' must be [x, y, w, h] numbers with w, h > 0, got {b!r}")
        if box_out_of_range(b):  # type: ignore[arg-type]
            raise BoxesFileError(f"{src}: entry {j}: 'bbox' {b!r} is out of range ({BOX_RANGE})")
        if not finite_number(score):
            raise BoxesFileError(f"{src}: entry {j}: 'score' must be a number, got {score!r}")
        key = _norm_name(name)
        frame = d.get("frame", 0)
        if not finite_number(frame):
            raise BoxesFileError(f"{src}: entry {j}: 'frame' must be a number, got {frame!r}")
        if frame < first_frame.get(key, math.inf):  # a video's results: its first frame's boxes start the tracking
            first_frame[key], per_file[key], ids[key] = frame, [], set()
        image_id = d.get("image_id")
        image_id = image_id if isinstance(image_id, int) and not isinstance(image_id, bool) else None
        if image_id is not None:
            largest[key] = max(image_id, largest.get(key, image_id))
        if frame == first_frame[key] and score >= min_score:
            per_file[key].append(b)
            if image_id is not None:
                ids[key].add(image_id)
    return {key: ImageBoxes(np.array(lst, np.float64).reshape(-1, 4),
                            next(iter(ids[key])) if len(ids[key]) == 1 else None)
            for key, lst in per_file.items()}, largest


def box_iou(a, b) -> np.ndarray:
    """IoU of [x, y, w, h] boxes a and b (last axis), broadcast against each other: (...,) float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    return inter / np.maximum(a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression. boxes (N, 4) [x, y, w, h], scores (N,) -> kept indices (M,), best first."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[box_iou(b[i], b[rest]) <= iou_threshold]
    return np.array(keep, np.int64)


class HogPeopleDetector:
    """OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs 2005); its weights ship with OpenCV.

    Photos are resized so the long side is about ``long_side`` px (HOG sees people >= 128 px tall only, and
    its cost grows with the area). ``__call__(image)`` -> boxes (N, 4) float32 [x, y, w, h] photo px, scores (N,).
    Raises DetectorUnavailable when this OpenCV build has no HOG (OpenCV 5 moved it to opencv-contrib).
    """

    # The 64x128 detection window holds a person about 96 px tall with ~16 px margin on every side
    # (Dalal & Triggs); shrink the window to that person box so the pose crop is not twice too loose.
    _SHRINK = np.array([32.0 / 64.0, 96.0 / 128.0])
    _MIN_HW = (128 + 2 * 16, 64 + 2 * 16)  # the window and the padding detectMultiScale is given

    def __init__(self, long_side: int = 640, min_score: float = 0.0, iou_threshold: float = 0.45):
        hog_cls = getattr(cv2, "HOGDescriptor", None)
        people = getattr(cv2, "HOGDescriptor_getDefaultPeopleDetector", None) or getattr(
            hog_cls, "getDefaultPeopleDetector", None)
        if hog_cls is None or people is None:
            raise DetectorUnavailable(
                f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it to opencv-contrib); "
                "install opencv-python-headless<5, or give person boxes with --boxes"
            )
        self._hog = hog_cls()
        self._hog.setSVMDetector(people())
        self.long_side, self.min_score, self.iou_threshold = long_side, min_score, iou_threshold

    def __reduce__(self):
        # OpenCV's HOGDescriptor cannot be pickled: a copy (a process pool's, copy.deepcopy) builds its own.
        return type(self), (self.long_side, self.min_score, self.iou_threshold)

    def __call__(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        image = to_bgr_uint8(image)
        h, w = image.shape[:2]
        scale = float(np.clip(self.long_side / max(h, w), 0.25, 2.0))
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # OpenCV's HOG corrupts memory on a picture smaller than its padded window: pad below and to the right
        # (photo coordinates unchanged; nobody is found in the padding).
        short_h, short_w = max(0, self._MIN_HW[0] - small.shape[0]), max(0, self._MIN_HW[1] - small.shape[1])
        if short_h or short_w:
            small = cv2.copyMakeBorder(small, 0, short_h, 0, short_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        rects, weights = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.05)
        rects = np.asarray(rects, np.float64).reshape(-1, 4) / scale
        scores = np.asarray(weights, np.float64).reshape(-1)
        if rects.shape[0] != scores.shape[0]:  # some builds return no weights when nothing is found
            scores = np.ones(rects.shape[0])
        ok = scores > self.min_score
        rects, scores = rects[ok], scores[ok]
        keep = nms(rects, scores, self.iou_threshold)
        rects, scores = rects[keep], scores[keep]
        centers = rects[:, :2] + rects[:, 2:] / 2
        sizes = rects[:, 2:] * self._SHRINK
        return np.concatenate([centers - sizes / 2, sizes], axis=1).astype(np.float32), scores.astype(np.float32)
