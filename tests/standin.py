"""Stand-in FasterPose ONNX models whose heatmaps are known functions of their input, and photos to match.

The stand-in undoes the runtime's normalisation, takes one colour channel per keypoint, average-pools it
4x4 (so heatmap pixel i averages crop pixels 4i..4i+3, centred at crop x = 4i + 1.5 = (i + 0.5)·4 - 0.5,
exactly the unbiased convention) and outputs the result as probabilities or as logits (log v - log(1 - v)).
A photo with a bright Gaussian blob of that colour at point p therefore yields a heatmap peak whose decoded
position maps back to p, but only if colour order, normalisation, box -> crop geometry, heatmap stride offset
and the inverse affine are all right.

Keypoints (K = 4): "red"; "green_left" and "green_right" see green only in the left / right half of the crop
(a flip pair, so a mirrored crop swaps them as a real model swaps left and right limbs); "blue".
Uses onnx (a dev dependency), never imported by the runtime.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fasterpose_rt.metadata import METADATA_KEY, ModelMetadata

KEYPOINTS = ["red", "green_left", "green_right", "blue"]
CHANNEL = ["R", "G", "G", "B"]  # colour each keypoint's heatmap reads
HALF = [None, "left", "right", None]  # part of the crop where the keypoint may be seen
SKELETON = [[0, 1], [0, 2], [1, 3], [2, 3]]
FLIP_PAIRS = [[1, 2]]
BGR = {"R": (0, 0, 255), "G": (0, 255, 0), "B": (255, 0, 0)}
COLORS_BGR = [BGR[c] for c in CHANNEL]  # paint keypoint k with COLORS_BGR[k]
EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS] before logits are taken


def standin_metadata(input_size=(64, 96), color="RGB", output="logits", box_padding=1.25,
                     mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)) -> ModelMetadata:
    """The ``fasterpose`` metadata of a stand-in model (mean/std in the model's channel order ``color``)."""
    return ModelMetadata(
        input_size=tuple(input_size), keypoints=list(KEYPOINTS), skeleton=[list(p) for p in SKELETON],
        flip_pairs=[list(p) for p in FLIP_PAIRS], color=color, mean=list(mean), std=list(std),
        output=output, box_padding=box_padding, architecture="standin",
    )


def standin_model(meta: ModelMetadata, batch="N") -> onnx.ModelProto:
    """ONNX graph (N, 3, H, W) normalised input -> (N, 4, H/4, W/4) heatmaps as described in the module doc.

    batch: the batch axis, a name (dynamic, the default) or a fixed size.
    """
    w, h = meta.input_size
    if w % 4 or h % 4:
        raise ValueError("stand-in input size must be divisible by 4")
    k, hw, hh = len(KEYPOINTS), w // 4, h // 4
    order = "RGB" if meta.color == "RGB" else "BGR"
    mean, std = np.asarray(meta.mean, np.float64), np.asarray(meta.std, np.float64)
    # 1x1 conv: v_k = (x_c * std_c + mean_c) / 255 for the tensor channel c holding keypoint k's colour.
    weight = np.zeros((k, 3, 1, 1), np.float32)
    bias = np.zeros(k, np.float32)
    for i, ch in enumerate(CHANNEL):
        c = order.index(ch)
        weight[i, c, 0, 0] = std[c] / 255.0
        bias[i] = mean[c] / 255.0
    mask = np.ones((1, k, hh, hw), np.float32)
    for i, half in enumerate(HALF):
        if half == "left":
            mask[0, i, :, hw // 2:] = 0
        elif half == "right":
            mask[0, i, :, : hw // 2] = 0
    inits = [
        numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(np.array(EPS, np.float32), "lo"),
        numpy_helper.from_array(np.array(1 - EPS, np.float32), "hi"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["v"]),
        helper.make_node("AveragePool", ["v"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Clip", ["pooled", "lo", "hi"], ["p"]),
    ]
    if meta.output == "probabilities":
        inits.append(numpy_helper.from_array(mask, "mask"))
        nodes.append(helper.make_node("Mul", ["p", "mask"], ["heatmaps"]))
    else:  # logit(p) = log p - log(1 - p); masked-out parts get logit - 30 (probability ~1e-17)
        inits.append(numpy_helper.from_array((mask - 1.0) * 30.0, "mask_bias"))
        nodes += [
            helper.make_node("Log", ["p"], ["log_p"]),
            helper.make_node("Sub", ["one", "p"], ["q"]),
            helper.make_node("Log", ["q"], ["log_q"]),
            helper.make_node("Sub", ["log_p", "log_q"], ["logit"]),
            helper.make_node("Add", ["logit", "mask_bias"], ["heatmaps"]),
        ]
    graph = helper.make_graph(
        nodes, "standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, h, w])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [batch, k, hh, hw])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def set_metadata(model: onnx.ModelProto, text) -> onnx.ModelProto:
    """Put ``text`` (a JSON string, a dict, a ModelMetadata, or None to remove) under the ``fasterpose`` key."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    if text is not None:
        if isinstance(text, ModelMetadata):
            text = text.to_json()
        elif isinstance(text, dict):
            text = json.dumps(text)
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, text
    return model


def write_standin(path, meta: ModelMetadata = None, metadata_text="same", batch="N", **meta_kwargs) -> Path:
    """Build a stand-in model and save it to ``path``.

    meta: the metadata the graph is built for (default: ``standin_metadata(**meta_kwargs)``).
    metadata_text: what to store under the ``fasterpose`` key: "same" (meta itself), None (nothing), or
    any JSON string / dict, to make broken models. batch: see :func:`standin_model`.
    """
    meta = meta or standin_metadata(**meta_kwargs)
    model = standin_model(meta, batch)
    set_metadata(model, meta if isinstance(metadata_text, str) and metadata_text == "same" else metadata_text)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def paint_blobs(shape_hw, points, colors_bgr=None, sigma=4.0, amplitude=1.0) -> np.ndarray:
    """A black (H, W, 3) uint8 BGR photo with Gaussian blobs.

    points (K, 2) photo px (x, y), one per keypoint; colors_bgr (K, 3) (default :data:`COLORS_BGR`);
    sigma in photo px (scalar or (K,)); amplitude in (0, 1]. Blobs of one channel are combined by max.
    """
    h, w = shape_hw
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    colors = np.asarray(COLORS_BGR if colors_bgr is None else colors_bgr, np.float64).reshape(-1, 3)
    sig = np.broadcast_to(np.asarray(sigma, np.float64), (pts.shape[0],))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3), np.float64)
    for (x, y), col, s in zip(pts, colors, sig):
        g = amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))
        img = np.maximum(img, g[:, :, None] * col[None, None, :])
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


STANDIN_POINTS = [[40, 30], [30, 60], [50, 60], [40, 90]]  # a stand-in person in an 80x120 photo


def write_video(path, frames=5, size=(80, 120), head_y=lambda i: 30 + 2 * i, fps=10):
    """A video (mp4v) of the stand-in person at STANDIN_POINTS, its first joint at y = head_y(frame index).
    size (w, h). Returns path."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    for i in range(frames):
        w.write(paint_blobs(size[::-1], [[40, head_y(i)]] + STANDIN_POINTS[1:]))
    w.release()
    return path


def read_video(path):
    """A video file's frames, (H, W, 3) uint8 BGR each, read as OpenCV reads them."""
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            cap.release()
            return frames
        frames.append(frame)
