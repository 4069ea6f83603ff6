"""PosePredictor: photo + person boxes -> keypoints in photo pixels, with one ONNX session per predictor.

Pipeline per call: boxes -> affine crops (preprocess.py) -> batched ``session.run`` -> sigmoid (for logit
models) -> optional flip-test merge -> DARK decoding (decode.py) -> heatmap px -> crop px -> photo px through
the exact inverse affine (geometry.py).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .confidence import ScoreCalibration
from .decode import decode_heatmaps
from .draw import draw_poses
from .geometry import apply_affine, heatmap_to_crop, invert_affine, rescale_boxes, rescale_points
from .image import to_bgr_uint8
from .metadata import BOX_PADDING_RULE, is_box_padding
from .preprocess import Normalizer, check_boxes, crop_transforms, warp_crops
from .presence import PRESENCE_KEY, presence_output
from .session import ModelError, ModelNotFoundError, open_session
from .skeletons import flip_permutation

__all__ = ["PosePredictor", "PoseResult", "DEFAULT_MODELS", "DEFAULT_VARIANT"]

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODELS = {  # variant -> bundled model; see PosePredictor for what each one is
    "default": ASSETS / "fasterpose_default_int8.onnx",
    "fast": ASSETS / "fasterpose_fast_int8.onnx",
}
DEFAULT_VARIANT = "default"  # PosePredictor() and the CLI without --model / --fast
# Callers that gather photos for predict_batch (the CLI, eval) stop a group at this many decoded bytes (3-4 12-MP
# photos), so a folder of large photos is never all in memory at once.
PHOTO_GROUP_BYTES = 128_000_000


def person_rows(rows, n: int, what: str) -> np.ndarray:
    """(M,) int64 indices in [0, n) of the persons ``rows`` names among n: indices (negative ones from the end) or
    an (n,) bool mask. Raises ValueError naming ``what`` for anything else: a mask taken as indices would pick
    persons 0 and 1, and an index past the end would be another photo's person in refine_batch."""
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"{what} as a bool mask must hold one value per person ({n}), got shape {r.shape}")
        return np.flatnonzero(r)
    r = r.reshape(-1)
    if r.size and r.dtype.kind not in "iu":
        raise ValueError(f"{what} must be person indices or a bool mask, got values of dtype {r.dtype}")
    r = r.astype(np.int64)
    outside = (r < -n) | (r >= n)
    if outside.any():
        raise ValueError(f"{what} names persons {r[outside].tolist()}, but the result has {n} persons")
    return np.where(r < 0, r + n, r)


@dataclass(eq=False)  # identity equality and hashing: fields are numpy arrays, whose == is element-wise
class PoseResult:
    """Poses of N persons with K keypoints each.

    keypoints (N, K, 2) float32 photo px (x, y); scores (N, K) float32 in [0, 1]; boxes (N, 4) float32, the
    [x, y, w, h] boxes used; keypoint_names: the K names; track_ids (N,) int64 or None: which followed person
    each one is (set by PoseTracker; an id is never given to another person of the same video); calibration: the
    model's map from score to the chance a joint is right (``confidences``), None when the model has none;
    presence (N,) float32 in [0, 1] or None: the model's presence head's chance that a person is in each crop at
    all (``presence.py``; None for a model without one).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    keypoint_names: List[str] = field(default_factory=list)
    track_ids: Optional[np.ndarray] = None
    calibration: Optional[ScoreCalibration] = None
    presence: Optional[np.ndarray] = None

    @property
    def confidences(self) -> Optional[np.ndarray]:
        """(N, K) float32: for each joint, the measured chance that it lies within 0.2 torso of where a person
        would label it (``calibration.within``; on labelled persons new to the model, see
        ``fasterpose_rt.confidence``); None when the model carries no calibration."""
        return None if self.calibration is None else self.calibration(self.scores)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def take(self, rows) -> "PoseResult":
        """The persons at ``rows`` (indices, negative ones from the end; one index; a slice; or a (N,) bool mask),
        in that order, as a new PoseResult. Raises ValueError for rows that name no person."""
        if not isinstance(rows, slice):
            rows = person_rows(rows, len(self), "rows")  # a tuple too is indices, not one index per axis
        ids = None if self.track_ids is None else self.track_ids[rows]
        there = None if self.presence is None else self.presence[rows]
        return replace(self, keypoints=self.keypoints[rows], scores=self.scores[rows], boxes=self.boxes[rows],
                       track_ids=ids, presence=there)

    def rescaled(self, factor: Union[float, Tuple[float, float]]) -> "PoseResult":
        """The same persons in the px of a photo ``factor`` times as large (geometry convention 5): the poses of
        a photo decoded at 1/f size, in the full photo's px. ``factor`` (fx, fy): each axis its own (an
        anamorphic video's frame shown with square pixels: ``VideoPoses.square_factors``)."""
        parts = factor if isinstance(factor, (tuple, list)) and len(factor) == 2 else (factor,)
        if not all(not isinstance(f, bool) and isinstance(f, numbers.Real) and np.isfinite(f) and f > 0
                   for f in parts):
            raise ValueError(f"factor must be a finite number > 0, or two of them (fx, fy), got {factor!r}")
        return replace(self, keypoints=rescale_points(self.keypoints, factor).astype(np.float32),
                       boxes=rescale_boxes(self.boxes, factor).astype(np.float32))

    def to_coco(self, image_id, category_id: int = 1) -> List[dict]:
        """COCO keypoint results, one dict per person: image_id, category_id, bbox [x, y, w, h],
        keypoints [x1, y1, s1, x2, ...] (s = keypoint score), score = mean keypoint score, track_id when the
        persons have track ids, keypoint_confidences [c1, c2, ...] (``confidences``) when the model has a
        calibration, and presence (the chance a person is there) when it has a presence head. Plain Python
        numbers."""
        out = []
        for kp, sc, box in zip(self.keypoints, self.scores, self.boxes):
            flat = np.concatenate([kp.astype(np.float64), sc.astype(np.float64)[:, None]], axis=1).ravel()
            out.append({
                "image_id": image_id.item() if isinstance(image_id, np.generic) else image_id,
                "category_id": int(category_id),
                "bbox": [float(v) for v in box],
                "keypoints": flat.tolist(),
                "score": float(sc.mean()) if sc.size else 0.0,
            })
        if self.track_ids is not None:
            for entry, track_id in zip(out, self.track_ids):
                entry["track_id"] = int(track_id)
        confidences = self.confidences
        if confidences is not None:
            for entry, conf in zip(out, confidences.astype(np.float64)):
                entry["keypoint_confidences"] = conf.tolist()
        if self.presence is not None:
            for entry, there in zip(out, self.presence):
                entry["presence"] = float(there)
        return out


class PosePredictor:
    """Top-down pose estimation on CPU with a FasterPose ONNX model.

    model: path of an ONNX file carrying ``fasterpose`` metadata; None -> a bundled model, ``variant``
    "default" (FasterPose-R34 in int8, input 128x176: the most accurate) or "fast" (the same network in int8 at
    96x128, fine-tuned there and taught by the default: about 0.56-0.6x the time, for CPUs without VNNI, where
    the default takes ~20 ms).
    threads: intra-op threads (None -> physical cores; ``.threads`` is 0 where they cannot be counted, i.e.
    outside Linux, and onnxruntime then picks its default).
    flip_test: also run mirrored crops and average the flipped-back heatmaps. batch_size: most crops per
    ``session.run`` (a flip-tested person takes two). box_padding: context around each box (1.1 = the crop covers
    the box enlarged 1.1x) instead of the padding the model's metadata records (calibrated for tight boxes
    around the person; looser boxes, e.g. a detector's, may want less). backend: "onnxruntime" (the default), or
    "openvino" (optional, ``pip install "openvino>=2024.0"``: 0.37-0.74x the time on a CPU with AMX;
    docs/performance.md, "Backends"; BackendUnavailable, an ImportError, where it is not installed). ``predict``
    may be called from several threads at once; a predictor pickles (multiprocessing, ``copy.deepcopy``) as its
    model file's path and options, and the copy opens that file again. A model with a presence head (both bundled
    models; ``has_presence``) also gives each person the chance that somebody is in its crop at all
    (``PoseResult.presence``).
    search_with: a faster PosePredictor of the same keypoints (e.g. ``PosePredictor(variant="fast")``) that runs
    the search's windows (``find_poses`` without boxes, the tracker when it searches again); this model then runs
    every person the windows found at least once, so each pose reported is its own (docs/usage.md, "Photos
    without person boxes": the search at about 0.8x the time, as accurate).
    Raises ModelNotFoundError / ModelError (a ValueError) naming the problem with the model file.
    """

    def __init__(self, model=None, threads: Optional[int] = None, flip_test: bool = False,
                 batch_size: int = 16, variant: Optional[str] = None, box_padding: Optional[float] = None,
                 backend: str = "onnxruntime", search_with: Optional["PosePredictor"] = None):
        if variant is not None and variant not in DEFAULT_MODELS:
            raise ValueError(f"variant must be one of {sorted(DEFAULT_MODELS)}, got {variant!r}")
        _check_batch_size(batch_size)
        if box_padding is not None and not is_box_padding(box_padding):
            raise ValueError(f"box_padding must be {BOX_PADDING_RULE}, got {box_padding!r}")
        if model is None:
            variant = variant or DEFAULT_VARIANT
            path = DEFAULT_MODELS[variant]
            if not path.is_file():
                raise ModelNotFoundError(
                    f"the bundled {variant} model is not present in this installation ({path}); "
                    "pass a model file: PosePredictor(model='path/to/model.onnx') in Python, "
                    "--model path/to/model.onnx on the command line"
                )
        else:
            if variant is not None:
                raise ValueError("variant= selects a bundled model; with model= give the file itself")
            path = Path(model)
        self._session, self.metadata = open_session(path, threads, backend)
        self.backend = backend
        if box_padding is not None:  # the crops follow the metadata: override it for this predictor only
            self.metadata = self.metadata.chosen(box_padding=float(box_padding))  # the caller's, not a default
        self.model_path = str(path)
        self._threads_asked, self._box_padding_asked = threads, box_padding  # what a copy is made with
        self._threads = self._session.get_session_options().intra_op_num_threads
        if search_with is not None and not isinstance(search_with, PosePredictor):
            raise TypeError(f"search_with must be a PosePredictor (e.g. PosePredictor(variant='fast')), "
                            f"got {type(search_with).__name__}")
        if search_with is not None and search_with.keypoint_names != self.keypoint_names:
            raise ValueError("search_with must name the same keypoints as the model: "
                             f"{', '.join(search_with.keypoint_names[:3])}, ... against "
                             f"{', '.join(self.keypoint_names[:3])}, ...")
        self.search_with = search_with
        self.flip_test = flip_test
        inp = self._session.get_inputs()[0]
        self._batch_fixed = isinstance(inp.shape[0], int)  # a fixed batch axis: only batch 1 serves any count
        if self._batch_fixed and inp.shape[0] != 1:
            raise ModelError(f"{path}: input batch axis is fixed at {inp.shape[0]}; export it dynamic (or 1)")
        self._batch_size = 1 if self._batch_fixed else int(batch_size)  # a numpy integer too
        self._input_name, self._output_name = inp.name, self._session.get_outputs()[0].name
        # The presence head's output (open_session checked that the graph has it), run beside the heatmaps.
        self._presence_name = presence_output(self.metadata.extra, [o.name for o in self._session.get_outputs()])
        self._output_names = [self._output_name] + ([self._presence_name] if self._presence_name else [])
        self._presence_logits = bool(self._presence_name) and \
            self.metadata.extra[PRESENCE_KEY].get("kind", "logits") == "logits"
        self._normalize = Normalizer(self.metadata)
        # Channel k of a mirrored crop's heatmaps belongs to keypoint flip_perm[k] (left <-> right).
        self._flip_perm = flip_permutation(self.metadata.num_keypoints, self.metadata.flip_pairs)

    def __reduce__(self):
        # An onnxruntime session cannot be pickled: a copy opens the same model file with the same options (as
        # they are now: flip_test and batch_size may have been set since).
        return type(self), (self.model_path, self._threads_asked, self.flip_test, self.batch_size, None,
                            self._box_padding_asked, self.backend, self.search_with)

    @property
    def threads(self) -> int:
        """The session's intra-op threads (0: onnxruntime's own choice); fixed once the session is open."""
        return self._threads

    @property
    def flip_test(self) -> bool:
        """Whether mirrored crops are run too; may be set at any time (a call in flight finishes as it began)."""
        return self._mode[0]

    @flip_test.setter
    def flip_test(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_, int, np.integer)) or value not in (0, 1):  # bool("no") is True
            raise ValueError(f"flip_test must be True or False, got {value!r}")
        flip = bool(value)
        # What a score means for this model run this way (plain or flip-tested), for persons in given boxes and
        # for persons the search picked (tracking.py hands those this one); None when it was not measured. Set
        # together in one assignment, so a call reads a flip and the tables that go with it.
        self._mode = (flip, ScoreCalibration.from_metadata(self.metadata.extra, flip),
                      ScoreCalibration.from_metadata(self.metadata.extra, flip, searched=True))

    @property
    def calibration(self) -> Optional[ScoreCalibration]:
        """The score table of persons in given boxes, for the current ``flip_test``; None when not measured."""
        return self._mode[1]

    @property
    def searched_calibration(self) -> Optional[ScoreCalibration]:
        """The score table of persons the search picked, for the current ``flip_test``; None when not measured."""
        return self._mode[2]

    @property
    def batch_size(self) -> int:
        """Most crops per ``session.run`` (a flip-tested person takes two); may be set at any time."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        _check_batch_size(value)
        if self._batch_fixed and value != 1:
            raise ValueError(f"{self.model_path}: the model's batch axis is fixed at 1, so batch_size stays 1")
        self._batch_size = int(value)

    @property
    def has_presence(self) -> bool:
        """Whether the model carries a presence head (``PoseResult.presence`` is then set)."""
        return self._presence_name is not None

    @property
    def keypoint_names(self) -> List[str]:
        return list(self.metadata.keypoints)

    @property
    def skeleton(self) -> List[List[int]]:
        return [list(p) for p in self.metadata.skeleton]

    @property
    def flip_pairs(self) -> List[List[int]]:
        return [list(p) for p in self.metadata.flip_pairs]

    @property
    def box_padding(self) -> float:
        """Context around each person box: the crop covers the box enlarged this many times."""
        return float(self.metadata.box_padding)

    @property
    def input_size(self) -> Tuple[int, int]:
        """(w, h) of the model input in pixels."""
        w, h = self.metadata.input_size
        return int(w), int(h)

    def __repr__(self) -> str:
        return (f"PosePredictor(model={self.model_path!r}, input_size={self.input_size}, "
                f"keypoints={self.metadata.num_keypoints}, box_padding={self.box_padding:g}, threads={self.threads}, "
                f"flip_test={self.flip_test}" + ("" if self.backend == "onnxruntime" else f", backend={self.backend!r}")
                + ")")

    def predict(self, image, boxes=None) -> PoseResult:
        """Keypoints of the persons in ``boxes``.

        image: (H, W, 3) uint8 BGR as cv2.imread gives; gray, BGRA, 16-bit and float photos are converted.
        boxes: (N, 4) [x, y, w, h] photo px; None -> one box covering the whole photo. Boxes may reach outside
        the photo (zero padding). Raises ValueError naming a box with w <= 0, h <= 0 or a non-finite value.
        Returns a PoseResult: keypoints (N, K, 2), scores (N, K), boxes (N, 4).
        """
        return self.predict_batch([image], [boxes])[0]

    def predict_batch(self, images: Sequence, boxes: Optional[Sequence] = None) -> List[PoseResult]:
        """``predict`` for several photos at once: their persons share the network's batches (one call for many
        small photos instead of one each). images: P photos; boxes: P entries, each (N_p, 4) or None (the whole
        photo), or None for the whole of every photo. Returns P PoseResults, in order."""
        if isinstance(images, np.ndarray) and images.ndim < 4:  # one photo: its rows would pass for gray photos
            raise TypeError("predict_batch takes a sequence of photos; use predict(image) for one")
        imgs = [to_bgr_uint8(im) for im in images]
        per_photo = [None] * len(imgs) if boxes is None else list(boxes)
        if len(per_photo) != len(imgs):
            raise ValueError(f"{len(imgs)} photos but {len(per_photo)} box lists")
        checked = [check_boxes(b, im.shape) for b, im in zip(per_photo, imgs)]
        counts = [len(b) for b in checked]
        b = np.concatenate(checked) if checked else np.zeros((0, 4))
        owners = np.repeat(np.arange(len(imgs)), counts)
        n, k = b.shape[0], self.metadata.num_keypoints
        xy = np.zeros((n, k, 2), np.float64)
        scores = np.zeros((n, k), np.float32)
        there = np.zeros(n, np.float32) if self.has_presence else None
        (flip, calibration, _), batch = self._mode, self._batch_size  # read once: other threads may set them
        if n:
            affines = crop_transforms(b, self.metadata)
            per_chunk = max(1, batch // 2) if flip else batch
            for s in range(0, n, per_chunk):
                crops = warp_crops(imgs, affines[s:s + per_chunk], self.metadata.input_size, owners[s:s + per_chunk])
                heatmaps, presence = self._infer(self._normalize(crops), flip, batch)
                hm_xy, hm_scores = decode_heatmaps(heatmaps, edge_peaks=self.metadata.edge_peaks)
                scores[s:s + per_chunk] = hm_scores
                if there is not None:
                    there[s:s + per_chunk] = presence
                stride = (self.input_size[0] / heatmaps.shape[3], self.input_size[1] / heatmaps.shape[2])
                xy[s:s + per_chunk] = heatmap_to_crop(hm_xy, stride)
            xy = apply_affine(xy, invert_affine(affines))
        xy32, b32, ends = xy.astype(np.float32), b.astype(np.float32), np.cumsum(counts)
        return [PoseResult(xy32[e - c:e], scores[e - c:e], b32[e - c:e], self.keypoint_names,
                           calibration=calibration, presence=None if there is None else there[e - c:e])
                for c, e in zip(counts, ends)]

    def draw(self, image, result: PoseResult, threshold: float = 0.3, note: str = "") -> np.ndarray:
        """A copy of ``image`` (H, W, 3) uint8 BGR with ``result``'s skeletons drawn (joints scoring below
        ``threshold`` hidden), each person's box, and its track id (#1, #2, ...) when it has one; ``note`` written
        in the top left corner when ``result`` holds nobody (the CLI's --vis: "nobody found")."""
        if not isinstance(result, PoseResult):
            raise TypeError(f"draw takes one PoseResult (a photo's or frame's), got {type(result).__name__}")
        labels = None if result.track_ids is None else [f"#{i}" for i in result.track_ids]
        return draw_poses(to_bgr_uint8(image), result.keypoints, result.scores, self.skeleton, self.keypoint_names,
                          threshold, boxes=result.boxes, labels=labels, note=note)

    def _infer(self, x: np.ndarray, flip: Optional[bool] = None, batch: Optional[int] = None):
        """Model input (n, 3, H, W) -> (probability heatmaps (n, K, h, w) float32, presence (n,) float32 in [0, 1]
        or None without a presence head), each flip-test merged if ``flip`` (presence: the two views' mean), run in
        ``batch``-sized pieces; both default to the predictor's ``flip_test`` and ``batch_size``."""
        n = x.shape[0]
        flip = self.flip_test if flip is None else flip
        batch = self._batch_size if batch is None else batch
        if flip:
            x = np.concatenate([x, x[:, :, :, ::-1]])  # crop x -> W-1-x exactly (pixel centres)
        try:
            runs = [self._session.run(self._output_names, {self._input_name: x[s:s + batch]})
                    for s in range(0, x.shape[0], batch)]
        except Exception as e:  # the engine's own types (onnxruntime's Fail, OpenVINO's RuntimeError): a model fault
            lines = str(e).strip().splitlines()
            raise ModelError(f"{self.model_path}: the model failed to run on {min(batch, x.shape[0])} crops at once: "
                             f"{lines[0] if lines else type(e).__name__}") from None
        out = runs[0][0] if len(runs) == 1 else np.concatenate([r[0] for r in runs])
        presence = None
        if self._presence_name is not None:
            presence = np.concatenate([np.asarray(r[1], np.float32).reshape(-1) for r in runs])
            if presence.shape[0] != x.shape[0]:
                raise ModelError(f"{self.model_path}: presence output has {presence.shape[0]} values for "
                                 f"{x.shape[0]} crops")
            if self._presence_logits:
                presence = _sigmoid(presence)
            if flip:
                presence = 0.5 * (presence[:n] + presence[n:])
        if out.ndim != 4 or out.shape[:2] != (x.shape[0], self.metadata.num_keypoints):
            raise ModelError(f"{self.model_path}: output shape {out.shape}, expected "
                             f"({x.shape[0]}, {self.metadata.num_keypoints}, h, w)")
        out = np.asarray(out, dtype=np.float32)
        if self.metadata.output == "logits":
            out = _sigmoid(out)
        else:  # a model trained with MSE overshoots 1 near its peaks; validation (models/validate.py) clips too
            out = np.clip(out, 0.0, 1.0)
        return (merge_flipped(out, n, self._flip_perm) if flip else out), presence


def _check_batch_size(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, numbers.Integral)) or value < 1:
        raise ValueError(f"batch_size must be a positive integer, got {value!r}")


def merge_flipped(heatmaps: np.ndarray, n: int, flip_perm: np.ndarray) -> np.ndarray:
    """Average the first n heatmaps (n, K, h, w) with the mirrored crops' heatmaps that follow them.

    The mirrored maps are flipped back in x and their left/right channels swapped (channel k <- flip_perm[k]).
    Under the unbiased convention heatmap x -> w-1-x is exactly the crop's x -> W-1-x: no shift is needed.
    """
    return 0.5 * (heatmaps[:n] + heatmaps[n:, flip_perm, :, ::-1])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function of float32 logits (any shape) into a new array; very negative logits give exactly 0."""
    y = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1.0
    return np.reciprocal(y, out=y)

