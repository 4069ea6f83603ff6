"""Give a model a presence head: is a person in the crop at all?

Why: without boxes the runtime searches the photo and always finds a best guess, so a photo of a landscape gets
a skeleton. The joint scores cannot tell nobody from somebody seen from the waist up: both leave half the joints
low (docs/usage.md, "Photos of nobody"). A presence head reads more of what the network saw. It is one logistic unit
on the features the heatmaps are made from (the input of the network's last convolution, mean- and max-pooled over
the crop: 2C numbers), on an earlier, finer layer's features pooled the same way (the input of the last strided
convolution before them, stride 8 in a FasterPose-R34: 2C' numbers; textures and edges the last layer has already
turned into joints) and on the K joint peaks, sorted: a second graph output ``presence`` (N,) logits, computed in
the same ``session.run`` for a few thousand multiply-adds. The network's weights and its heatmaps are untouched.
The earlier layer was added in session 50: fitted on the same crops, the default model's head then dropped fewer
held-out persons and close-ups and left a person on fewer held-out pictures of nobody at every threshold from 0.1
to 0.6 (docs/usage.md, "Photos of nobody").

What it is fitted on, crops as the runtime makes them (``PosePredictor`` at the file's own box padding):

- persons: of the annotation file's photos that hold one annotated person, the person the search finds (when it
  found the labelled one: half its labelled joints within 0.2 torso), the person in its labelled box (refined,
  as ``fasterpose predict --boxes`` runs it), and the person's upper body cut out as a close-up (searched);
- nobody: the ``--negatives`` photos (folders or zip files of photos with nobody in them, e.g. desktop
  wallpapers unpacked from Debian packages: README), each whole and ``cuts`` random cuts of it, searched as
  ``fasterpose predict`` searches a photo of nobody, so the head sees the crops the search settles on.

Not the strips of the persons' own photos beside their person: LSPET's photos often hold people nobody labelled
(other athletes, spectators), and of the strips a first head called persons most showed somebody.

Each group counts equally and persons as much as nobody (weights), the features are standardised, and the fit is
Newton's method on the L2-penalised logistic loss, folded into one MatMul and Add. How well it holds on crops it
has not seen is measured by two-fold cross-fitting, the folds split by photo, and recorded in the metadata block
(``fasterpose_rt.presence.PRESENCE_KEY``) with the counts and sources. Fit it on photos the model trained on if
you like (the head is new to all of them); measure it on others (``python -m benchmarks.person_presence``).

Python API::

    result = fit_presence_head("model.onnx", "lspet_train.json", "lspet/images", negatives=["walls/"],
                               out_path="with_presence.onnx")
    print(result.summary())

Command line: ``python -m export.presence_head --help``.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from fasterpose_rt.evaluate import EvalError, in_model_order, load_annotations
from fasterpose_rt.annotated_photos import frame_warnings, listed_size, read_as_listed
from fasterpose_rt.inputs import InputReadError
from fasterpose_rt.metrics import _hits
from fasterpose_rt.photo_sets import PhotoSetError, read_photo_set
from fasterpose_rt.predictor import PosePredictor
from fasterpose_rt.search import DEFAULT_MIN_PRESENCE
from fasterpose_rt.preprocess import crop_transforms, warp_crops
from fasterpose_rt.presence import PRESENCE_KEY, PRESENCE_OUTPUT
from fasterpose_rt.tracking import find_poses_batch

from .errors import ExportError, InputError
from .metadata import read_metadata, save_with_metadata
from .outputs import check_writable

__all__ = ["PresenceHeadResult", "fit_presence_head", "feature_tensor", "earlier_tensor", "with_features",
           "with_head", "without_head", "fit_logistic", "main"]

FEATURES = "presence_features"  # the pooled features (N, 2C + 2C' + K), an output only while fitting
PREFIX = "/presence/"  # names of the head's nodes and tensors, so it can be found and taken out again
HIT_SHARE = 0.5  # a searched person counts as the labelled one when half its labelled joints are within 0.2 torso
MIN_SIDE = 48  # cuts and close-ups smaller than this (px) are not used
NEGATIVE_SIDE = 640  # negative photos are scaled to this long side before they are cut
CLOSE_UP_CUT, CLOSE_UP_MARGIN = 0.6, 0.25  # close-ups: head to 60 % of the way neck -> hips, 25 % margin
GROUPS = ("searched persons", "persons in their boxes", "close-ups", "photos of nobody")
PERSON_GROUPS = GROUPS[:3]
BATCH = 16


@dataclass
class PresenceHeadResult:
    """path written; block: the metadata block written (counts, cross-fitted shares)."""

    path: Path
    block: dict

    def summary(self) -> str:
        shares = "; ".join(f"{g}: {v['called_a_person']:.3f} of {v.get('counted', v['crops'])}"
                           if v["called_a_person"] is not None else f"{g}: not measured"
                           for g, v in self.block["cross_fitted"].items())
        return (f"{self.path}: presence head fitted on {sum(self.block['crops'].values())} crops; called a person "
                f"at {self.block['threshold']:g} (cross-fitted by photo): {shares}")


# -- the graph ---------------------------------------------------------------------------------------------------

def _conv_input_back_from(model: onnx.ModelProto, name: str, strided: bool) -> Optional[str]:
    """The input of the first convolution (``strided``: with a stride above 1) met walking back from tensor
    ``name`` through each node's first input, or None when the walk reaches the graph's input first."""
    producer = {out: node for node in model.graph.node for out in node.output}
    while name in producer:
        node = producer[name]
        if node.op_type == "Conv" and (not strided or any(a.name == "strides" and max(a.ints, default=1) > 1
                                                          for a in node.attribute)):
            return node.input[0]
        name = node.input[0]
    return None


def feature_tensor(model: onnx.ModelProto) -> str:
    """The tensor the heatmaps are made from: the input of the last convolution before the first graph output
    (any ops after it, e.g. DepthToSpace, followed back through their first input)."""
    name = _conv_input_back_from(model, model.graph.output[0].name, strided=False)
    if name is None:
        raise ExportError("no convolution makes the heatmaps: not a FasterPose graph")
    return name


def earlier_tensor(model: onnx.ModelProto) -> Optional[str]:
    """A finer layer's features: the input of the last strided convolution on the way back from
    ``feature_tensor`` along first inputs (in a ResNet trunk, the output of the stage before the last), or None when
    that way has no strided convolution."""
    return _conv_input_back_from(model, feature_tensor(model), strided=True)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _reduce(op: str, source: str, out: str, opset: int, inits: list) -> onnx.NodeProto:
    """``op`` over axes 2, 3 without keeping them; from opset 18 the axes are an input, before it an attribute."""
    if opset >= 18:
        axes = f"{PREFIX}axes"
        if not any(t.name == axes for t in inits):
            inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes))
        return helper.make_node(op, [source, axes], [out], name=out, keepdims=0)
    return helper.make_node(op, [source], [out], name=out, axes=[2, 3], keepdims=0)


def _feature_nodes(model: onnx.ModelProto, logits: bool, k: int):
    """Nodes and initialisers computing FEATURES (N, 2C + 2C' + K): the feature tensor mean- and max-pooled, the
    earlier tensor (``earlier_tensor``; C' = 0 without one) mean- and max-pooled, and the heatmaps' peaks (as
    probabilities) sorted from highest to lowest."""
    opset, inits = _opset(model), []
    feature, earlier, heatmaps = feature_tensor(model), earlier_tensor(model), model.graph.output[0].name
    peak = f"{PREFIX}peak_logit" if logits else f"{PREFIX}peak"
    nodes = [_reduce("ReduceMean", feature, f"{PREFIX}mean", opset, inits),
             _reduce("ReduceMax", feature, f"{PREFIX}max", opset, inits),
             _reduce("ReduceMax", heatmaps, peak, opset, inits)]
    pooled = [f"{PREFIX}mean", f"{PREFIX}max"]
    if earlier is not None:
        nodes += [_reduce("ReduceMean", earlier, f"{PREFIX}earlier_mean", opset, inits),
                  _reduce("ReduceMax", earlier, f"{PREFIX}earlier_max", opset, inits)]
        pooled += [f"{PREFIX}earlier_mean", f"{PREFIX}earlier_max"]
    if logits:
        nodes.append(helper.make_node("Sigmoid", [peak], [f"{PREFIX}peak"], name=f"{PREFIX}peak"))
    inits.append(numpy_helper.from_array(np.array([k], np.int64), f"{PREFIX}k"))
    nodes += [helper.make_node("TopK", [f"{PREFIX}peak", f"{PREFIX}k"], [f"{PREFIX}sorted", f"{PREFIX}order"],
                               name=f"{PREFIX}sorted", axis=1, largest=1, sorted=1),
              helper.make_node("Concat", pooled + [f"{PREFIX}sorted"], [FEATURES],
                               name=FEATURES, axis=1)]
    return nodes, inits


def without_head(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without a presence head (its nodes, weights and outputs), unchanged if it has none."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    ours = {t for node in out.graph.node if node.name.startswith(PREFIX) or FEATURES in node.output
            for t in node.output} | {FEATURES, PRESENCE_OUTPUT}
    keep_nodes = [n for n in out.graph.node if not (n.name.startswith(PREFIX) or set(n.output) & ours)]
    keep_inits = [t for t in out.graph.initializer if not t.name.startswith(PREFIX)]
    keep_outputs = [o for o in out.graph.output if o.name not in ours]
    for field_, kept in ((out.graph.node, keep_nodes), (out.graph.initializer, keep_inits),
                         (out.graph.output, keep_outputs)):
        del field_[:]
        field_.extend(kept)
    return out


def with_features(model: onnx.ModelProto, logits: bool, k: int) -> onnx.ModelProto:
    """``model`` (without a head) plus the output FEATURES (N, 2C + 2C' + K), for fitting."""
    out = without_head(model)
    nodes, inits = _feature_nodes(out, logits, k)
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    out.graph.output.append(helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, ["batch", None]))
    return out


def with_head(model: onnx.ModelProto, weight, bias: float, logits: bool, k: int) -> onnx.ModelProto:
    """``model`` (any head it had taken out) plus the presence head: output ``presence`` (N,) logits =
    FEATURES (N, D) @ weight (D,) + bias."""
    out = without_head(model)
    nodes, inits = _feature_nodes(out, logits, k)
    w = np.asarray(weight, np.float32).reshape(-1, 1)
    inits += [numpy_helper.from_array(w, f"{PREFIX}weight"),
              numpy_helper.from_array(np.array([bias], np.float32), f"{PREFIX}bias"),
              numpy_helper.from_array(np.array([-1], np.int64), f"{PREFIX}flat")]
    nodes += [helper.make_node("MatMul", [FEATURES, f"{PREFIX}weight"], [f"{PREFIX}dot"], name=f"{PREFIX}dot"),
              helper.make_node("Add", [f"{PREFIX}dot", f"{PREFIX}bias"], [f"{PREFIX}logit"], name=f"{PREFIX}logit"),
              helper.make_node("Reshape", [f"{PREFIX}logit", f"{PREFIX}flat"], [PRESENCE_OUTPUT],
                               name=f"{PREFIX}output")]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    out.graph.output.append(helper.make_tensor_value_info(PRESENCE_OUTPUT, onnx.TensorProto.FLOAT, ["batch"]))
    onnx.checker.check_model(out)
    return out


# -- the fit -----------------------------------------------------------------------------------------------------

def fit_logistic(x, y, weights, l2: float = 10.0, iterations: int = 50):
    """Weighted logistic regression with an L2 penalty on the coefficients (not the bias), by Newton's method.

    x (M, D) features, standardised (the penalty treats every feature alike); y (M,) 0/1; weights (M,).
    Returns (coef (D,), bias)."""
    x = np.asarray(x, np.float64)
    design = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], float(l2))
    penalty[-1] = 0.0
    y, w = np.asarray(y, np.float64), np.asarray(weights, np.float64)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (design @ beta)))  # the logistic function without overflow
        gradient = design.T @ (w * (p - y)) + penalty * beta
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta[:-1], float(beta[-1])


def _fit(features: Dict[str, np.ndarray], l2: float):
    """A head on the FEATURES of each group: standardised, each group weighing alike within its class and both
    classes alike. Returns (weight (D,), bias) acting on unstandardised features."""
    x = np.concatenate([features[g] for g in GROUPS if len(features[g])])
    y = np.concatenate([np.full(len(features[g]), g in PERSON_GROUPS, np.float64) for g in GROUPS
                        if len(features[g])])
    in_class = {c: sum(1 for g in GROUPS if len(features[g]) and (g in PERSON_GROUPS) == c) for c in (True, False)}
    w = np.concatenate([np.full(len(features[g]), 1.0 / (len(features[g]) * in_class[g in PERSON_GROUPS]))
                        for g in GROUPS if len(features[g])]) * len(x) / 2
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    coef, bias = fit_logistic((x - mean) / std, y, w, l2)
    return coef / std, bias - float((coef * mean / std).sum())


def _called(features: np.ndarray, weight, bias, threshold: float) -> np.ndarray:
    """Which rows of ``features`` (M, D) the head calls a person: logit >= logit(threshold)."""
    return features.astype(np.float64) @ weight + bias >= np.log(threshold / (1 - threshold))


def _cross_fitted(features: Dict[str, np.ndarray], photos: Dict[str, np.ndarray], l2: float, threshold: float,
                  log) -> dict:
    """Two-fold cross-fitting by photo: the crops of photos of even number (``photos[g]``: each row's photo, a
    person's or a picture of nobody's) read by the head fitted on the odd ones, and the other way round.
    -> {group: {"crops", "counted", "called_a_person"}}: the share is over the rows counted. A fold whose other
    half holds no crop of a group that has some is not fitted (a head that never saw that group): its rows are
    not counted, and ``log`` says so; a group with none counted gets None."""
    called = {g: np.zeros(len(photos[g]), bool) for g in GROUPS}
    counted = {g: np.zeros(len(photos[g]), bool) for g in GROUPS}
    for fold, name, other in ((0, "even", "odd"), (1, "odd", "even")):
        train = {g: features[g][photos[g] % 2 != fold] for g in GROUPS}
        lacking = [g for g in GROUPS if len(photos[g]) and not len(train[g])]
        if lacking:  # counting its rows as "not a person" would pull the persons' shares down
            log(f"warning: cross-fitting: no {', '.join(lacking)} among the photos of {other} number, so the crops "
                f"of the photos of {name} number are not counted in the cross-fitted shares")
            continue
        weight, bias = _fit(train, l2)
        for g in GROUPS:
            rows = photos[g] % 2 == fold
            called[g][rows] = _called(features[g][rows], weight, bias, threshold)
            counted[g][rows] = True
    return {g: {"crops": len(photos[g]), "counted": int(counted[g].sum()),
                "called_a_person": round(float(called[g][counted[g]].mean()), 4) if counted[g].any() else None}
            for g in GROUPS}


# -- the crops ---------------------------------------------------------------------------------------------------

def _alone(data: dict, images: Path, limit: int, seed: int):
    """(photo path, annotation, (H, W) the file lists or None) of up to ``limit`` photos holding exactly one
    annotated person with labelled keypoints (a random choice when there are more; ``seed``), in file order."""
    by_photo: Dict[int, list] = {}
    for ann in data["annotations"]:
        by_photo.setdefault(ann.get("image_id"), []).append(ann)
    files = {im["id"]: im["file_name"] for im in data["images"]}
    sizes = {im["id"]: listed_size(im) for im in data["images"]}
    alone = [(images / files[i], a[0], sizes[i]) for i, a in by_photo.items()
             if len(a) == 1 and i in files and a[0].get("num_keypoints", 1) > 0 and not a[0].get("iscrowd")]
    if limit and len(alone) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(alone), limit, replace=False))
        alone = [alone[i] for i in pick]
    return alone


def _close_up(image: np.ndarray, keypoints: np.ndarray, labelled: np.ndarray, names: Sequence[str]):
    """The upper body of an upright person (head down to CLOSE_UP_CUT of the way from the neck to the hips) cut out
    of ``image``, or None when the person is not upright or its torso is not labelled. keypoints (K, 2)."""
    idx = {n: i for i, n in enumerate(names)}
    need = ("neck", "left_hip", "right_hip")
    if not all(n in idx and labelled[idx[n]] for n in need):
        return None
    hip_y = keypoints[[idx["left_hip"], idx["right_hip"]], 1].mean()
    neck_y = keypoints[idx["neck"], 1]
    if neck_y >= hip_y:
        return None
    upper = [i for i, n in enumerate(names) if labelled[i] and not any(w in n for w in ("hip", "knee", "ankle"))]
    pts = keypoints[upper]
    cut = neck_y + CLOSE_UP_CUT * (hip_y - neck_y)
    (x0, y0), x1 = pts.min(axis=0), pts[:, 0].max()
    mx, my = CLOSE_UP_MARGIN * (x1 - x0), CLOSE_UP_MARGIN * (cut - y0)
    x0, x1 = int(max(0, x0 - mx)), int(min(image.shape[1], x1 + mx))
    y0, y1 = int(max(0, y0 - my)), int(min(image.shape[0], cut))
    if x1 - x0 < MIN_SIDE // 2 or y1 - y0 < MIN_SIDE // 2:
        return None
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def _negative_photos(sources: Sequence[Path], log) -> List[np.ndarray]:
    """The distinct photos of ``sources`` (``fasterpose_rt.photo_sets.read_photo_set``), each scaled to
    NEGATIVE_SIDE on its long side; what was skipped is told through ``log``."""
    try:
        _, photos, counts = read_photo_set(sources, min_side=MIN_SIDE)
    except PhotoSetError as e:
        raise InputError(f"--negatives {e}") from None
    log(f"photos of nobody: {len(photos)} of {counts['files']} files ({counts['unreadable']} unreadable, "
        f"{counts['too_small']} too small, {counts['repeats']} repeats)")
    return [to_long_side(im) for im in photos]


def to_long_side(photo: np.ndarray, side: int = NEGATIVE_SIDE) -> np.ndarray:
    """``photo`` (H, W, 3) scaled to ``side`` px on its long side (area-averaged when it shrinks)."""
    scale = side / max(photo.shape[:2])
    return cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _cuts(photo: np.ndarray, count: int, rng) -> List[np.ndarray]:
    """The photo whole and ``count`` random cuts of it (0.25-1 of its height, 0.5-1 as wide as high relative to
    the photo's aspect), each at least MIN_SIDE."""
    h, w = photo.shape[:2]
    out = [photo]
    for _ in range(count):
        side = rng.uniform(0.25, 1.0)
        ch, cw = int(h * side), int(w * side * rng.uniform(0.5, 1.0))
        if min(ch, cw) < MIN_SIDE:
            continue
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(np.ascontiguousarray(photo[y0:y0 + ch, x0:x0 + cw]))
    return out


class _Features:
    """The FEATURES of the crops the runtime makes for the persons it finds (their final, refined boxes)."""

    def __init__(self, path: Path, threads: Optional[int]):
        self.pred = PosePredictor(path, threads=threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.pred.threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def of(self, images: Sequence[np.ndarray], results) -> np.ndarray:
        rows = []
        for image, result in zip(images, results):
            if not len(result):
                continue
            affines = crop_transforms(result.boxes.astype(np.float64), self.pred.metadata)
            crops = warp_crops([image], affines, self.pred.metadata.input_size, np.zeros(len(affines), np.int64))
            rows.append(self.session.run([FEATURES], {self.input: self.pred._normalize(crops)})[0])
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)

    def found(self, images: Sequence[np.ndarray], boxes=None, progress=None):
        """(features (M, D), results): the persons the runtime finds in ``images`` (searched, or in ``boxes``,
        refined), in batches."""
        feats, results = [], []
        for s in range(0, len(images), BATCH):
            group = list(images[s:s + BATCH])
            found = find_poses_batch(self.pred, group, None if boxes is None else boxes[s:s + BATCH], min_presence=0)
            feats.append(self.of(group, found))
            results += found
            if progress is not None:
                progress.update(len(group))
        feats = [f for f in feats if f.size]
        return (np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)), results


def fit_presence_head(model_path, annotations, images=None, negatives: Sequence = (), out_path=None,
                      photos: int = 2000, cuts: int = 12, l2: float = 10.0, threshold: float = DEFAULT_MIN_PRESENCE,
                      threads: Optional[int] = None, seed: int = 0, log=lambda msg: None,
                      progress: bool = False) -> PresenceHeadResult:
    """Fit the presence head of ``model_path`` (see the module's docstring) on up to ``photos`` photos of one
    annotated person of the COCO keypoint file ``annotations`` (photos in ``images``, default ``images/`` beside
    it) and on the photos of nobody in ``negatives`` (folders or zip files), and write the model with it to
    ``out_path`` (default: in place; atomically). A head the model had is replaced. Raises InputError for bad
    arguments or data (nothing written)."""
    model_path = Path(model_path)
    out = check_writable(out_path if out_path is not None else model_path,  # before the crops and the fit
                         [("the --ann file", annotations)] + [("a --negatives source", n) for n in negatives])
    if not 0 < threshold < 1:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    if l2 <= 0:
        raise InputError(f"l2 must be positive, got {l2}")
    if not negatives:
        raise InputError("give --negatives: folders or zip files of photos with nobody in them")
    images = Path(images) if images is not None else Path(annotations).parent / "images"
    try:
        model = onnx.load(str(model_path))
    except OSError as e:
        raise InputError(f"{model_path}: {e.strerror or e}") from None
    except Exception as e:  # protobuf's DecodeError for a file that is not ONNX
        raise InputError(f"{model_path}: not a loadable ONNX model ({type(e).__name__})") from None
    try:
        meta = read_metadata(model)
        data = in_model_order(load_annotations(annotations), list(meta.keypoints), str(annotations),
                              lambda w: log(f"warning: {w}"))
    except EvalError as e:
        raise InputError(str(e)) from None
    except (ExportError, ValueError) as e:  # ValueError: metadata the runtime refuses
        raise InputError(f"{model_path}: {e}") from None
    names, k = list(meta.keypoints), meta.num_keypoints
    logits = meta.output == "logits"
    alone = _alone(data, images, photos, seed)
    if len(alone) < 20:
        raise InputError(f"{annotations}: {len(alone)} photos hold one annotated person; the head needs at least 20")
    negative_photos = _negative_photos([Path(n) for n in negatives], log)
    base = replace(meta, extra={key: v for key, v in meta.extra.items() if key != PRESENCE_KEY})
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "features.onnx"
        try:
            save_with_metadata(with_features(model, logits, k), base, probe)
        except OSError as e:  # e.g. a full disk under the temporary folder
            raise ExportError(f"cannot write a temporary file in {tmp}: {e.strerror or e}") from None
        features = _Features(probe, threads)
        read, as_stored, differ = [], 0, []  # differ: (path, read (H, W), listed (H, W))
        try:  # in the frame of the file's width and height, where its keypoints and boxes are
            for path, ann, size in alone:
                image, frame = read_as_listed(path, size)
                as_stored += frame == "stored"
                if frame == "neither":
                    differ.append((path, image.shape[:2], size))
                read.append((image, ann))
        except InputReadError as e:
            raise InputError(str(e)) from None
        for message in frame_warnings(as_stored, differ):
            log(f"warning: {message}")
        person_photos = [im for im, _ in read]
        gt = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for _, a in read])
        labelled, gt = gt[:, :, 2] > 0, gt[:, :, :2]
        ups = [(i, _close_up(im, g, v, names)) for i, (im, g, v) in enumerate(zip(person_photos, gt, labelled))]
        ups = [(i, c) for i, c in ups if c is not None]
        cut_photos, owner = [], []
        for j, photo in enumerate(negative_photos):
            pieces = _cuts(photo, cuts, rng)
            cut_photos += pieces
            owner += [j] * len(pieces)
        groups: Dict[str, tuple] = {}
        bar = _bar(progress, 2 * len(person_photos) + len(ups) + len(cut_photos))
        try:
            x, found = features.found(person_photos, progress=bar)
            hit, use = _hits(np.array([r.keypoints[0] for r in found]), gt, labelled, names, 0.2)
            keep = hit.sum(axis=1) >= HIT_SHARE * np.maximum(use.sum(axis=1), 1)
            groups["searched persons"] = (x[keep], np.flatnonzero(keep))
            boxes = [np.asarray(a["bbox"], np.float64)[None] for _, a in read]
            x, _ = features.found(person_photos, boxes, progress=bar)
            groups["persons in their boxes"] = (x, np.arange(len(person_photos)))
            x, _ = features.found([c for _, c in ups], progress=bar)
            groups["close-ups"] = (x, np.array([i for i, _ in ups], np.int64))
            x, _ = features.found(cut_photos, progress=bar)
            groups["photos of nobody"] = (x, np.array(owner, np.int64))
        finally:
            if bar is not None:
                bar.close()
    counts = {g: int(len(groups[g][1])) for g in GROUPS}
    if not counts["searched persons"] and not counts["persons in their boxes"]:
        raise InputError("no person crops to fit on")
    if not counts["photos of nobody"]:
        raise InputError("no crops of nobody: give --negatives (folders or zip files of photos with nobody in them)")
    dims = {groups[g][0].shape[1] for g in GROUPS if counts[g]}
    feats = {g: (groups[g][0] if counts[g] else np.zeros((0, max(dims)), np.float32)) for g in GROUPS}
    crossed = _cross_fitted(feats, {g: groups[g][1] for g in GROUPS}, l2, threshold, log)
    weight, bias = _fit(feats, l2)
    log("cross-fitted, called a person: " + "; ".join(f"{g} {v['called_a_person']}" for g, v in crossed.items()))
    block = {"output": PRESENCE_OUTPUT, "kind": "logits", "threshold": threshold,
             "features": _described(model, k),
             "l2": l2, "source": Path(annotations).name, "photos": len(person_photos),
             "negatives": [Path(n).name for n in negatives], "negative_photos": len(negative_photos),
             "crops": counts, "cross_fitted": crossed, "box_padding": meta.box_padding,
             "fitted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    new_meta = replace(base, extra={**base.extra, PRESENCE_KEY: block})
    tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_with_metadata(with_head(model, weight, bias, logits, k), new_meta, tmp_out)
        PosePredictor(tmp_out, threads=1)  # the runtime opens it, presence output and all
        os.replace(tmp_out, out)
    except OSError as e:  # after the fit: one line, not a traceback
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp_out.unlink(missing_ok=True)
    return PresenceHeadResult(out, block)


def _described(model: onnx.ModelProto, k: int) -> str:
    """What the head reads, for its metadata block."""
    earlier = earlier_tensor(model)
    return (f"mean- and max-pooled '{feature_tensor(model)}'"
            + (f", mean- and max-pooled '{earlier}'" if earlier is not None else "")
            + f", and the {k} joint peaks sorted")


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="photo", desc="crops", leave=False)


def main(argv=None) -> None:
    """``python -m export.presence_head`` (click is imported here only)."""
    import click

    from .quantize import model_and_persons_options, run_cli

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @model_and_persons_options(click, "COCO keypoint file: its photos of one annotated person give the persons "
                                      "(whole, in their boxes, waist up).")
    @click.option("--negatives", multiple=True, required=True, type=click.Path(exists=True), metavar="DIR_OR_ZIP",
                  help="Photos with nobody in them: a folder (searched recursively) or a zip file; repeatable.")
    @click.option("--photos", type=click.IntRange(min=20), default=2000, show_default=True,
                  help="At most this many photos of --ann (a random choice).")
    @click.option("--cuts", type=click.IntRange(min=0), default=12, show_default=True,
                  help="Random cuts of each photo of nobody, besides the whole photo.")
    @click.option("--l2", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
                  help="Penalty on the head's standardised weights.")
    @click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                  default=DEFAULT_MIN_PRESENCE, show_default=True,
                  help="The chance the cross-fitted shares are counted at (recorded; the runtime's default "
                       "--min-presence).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--threads", type=click.IntRange(min=1), help="Inference threads (default: physical cores).")
    def cli(model, ann, images, out, negatives, photos, cuts, l2, threshold, seed, threads):
        """Fit a presence head (is a person in the crop at all?) and write the model with it.

        Exit codes: 0 written; 1 writing failed; 2 bad input (nothing written).
        """
        sys.exit(run_cli(lambda: fit_presence_head(model, ann, images, negatives, out, photos, cuts, l2, threshold,
                                                   threads, seed, log=lambda m: click.echo(m, err=True),
                                                   progress=True), click.echo))

    cli.main(args=argv, prog_name="python -m export.presence_head")


if __name__ == "__main__":
    main()
