"""The export pipeline: load -> build -> export -> simplify -> [transforms] -> check -> metadata -> write temp
-> verify -> rename. Each stage is a function of its own module; this file only strings them together.

``transforms`` (ModelProto -> ModelProto, applied after simplification) and ``tolerance`` are the hooks for
later stages such as int8 quantisation.
"""
from __future__ import annotations

import copy
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import onnx
import onnxruntime
import onnxsim
import torch
from torch import nn

import fasterpose_rt
from fasterpose_rt.metadata import MetadataError, ModelMetadata

from .checkpoint import load_checkpoint
from .errors import ExportError, InputError
from .keypoints import resolve_keypoint_set
from models.complexity import count_complexity

from .metadata import build_metadata, embed_metadata, read_metadata
from .onnx_graph import MIN_OPSET, check_graph, simplify, torch_to_onnx
from .outputs import check_writable, same_file
from .spec import build_model, resolve_spec
from .verify import Parity, Tolerance, reference_batch, torch_outputs, verify_onnx

__all__ = ["ExportResult", "export_onnx", "export_from_args"]

Transform = Callable[[onnx.ModelProto], onnx.ModelProto]


@dataclass
class ExportResult:
    path: Path
    ops_before: int  # nodes straight out of torch.onnx.export
    ops_after: int  # nodes in the written file
    size_bytes: int
    parity: Parity
    metadata: ModelMetadata

    def summary(self) -> str:
        m = self.metadata
        return (f"{self.path}: {m.architecture} K={m.num_keypoints} {m.input_size[0]}x{m.input_size[1]} "
                f"{m.output}; ops {self.ops_before} -> {self.ops_after}; {self.size_bytes / 1e6:.1f} MB; "
                f"{self.parity.summary()}")


def _stamp(meta: ModelMetadata, opset: int) -> ModelMetadata:
    meta = copy.deepcopy(meta)
    meta.extra["exported_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta.extra["exporter"] = {
        "tool": "fasterpose export", "fasterpose": fasterpose_rt.__version__, "torch": torch.__version__,
        "onnx": onnx.__version__, "onnxsim": getattr(onnxsim, "__version__", "?"),
        "onnxruntime": onnxruntime.__version__, "opset": opset,
    }
    return meta


def export_onnx(model: nn.Module, meta: ModelMetadata, out_path, opset: int = MIN_OPSET,
                transforms: Sequence[Transform] = (), tolerance: Tolerance = Tolerance(),
                batch: int = 2, seed: int = 0) -> ExportResult:
    """Export ``model`` ((N, 3, H, W) -> (N, K, H/4, W/4), H, W from ``meta.input_size``) to ``out_path``.

    ``meta`` (its output kind, K and input size) describes the model; exporter versions and the date are added.
    The file appears at ``out_path`` only after the runtime-loaded ONNX matches PyTorch on ``batch`` random
    inputs; otherwise nothing is left behind. Raises InputError (bad arguments / input size), ExportError.
    """
    if opset < MIN_OPSET:
        raise InputError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if batch < 2:
        raise InputError(f"verification batch must be >= 2, got {batch}")
    check_writable(out_path)
    try:
        meta = _stamp(meta, opset)
        meta._validate()
    except MetadataError as e:
        raise InputError(str(e)) from None
    w, h = meta.input_size
    k = meta.num_keypoints
    if w % 4 or h % 4:
        raise InputError(f"input size {w}x{h} must be divisible by 4 (heatmaps are 1/4 of it; 32 always works)")
    model.eval()

    x = reference_batch((w, h), batch, seed)
    ref = torch_outputs(model, x)  # also a cheap shape check before the costly export
    if ref.shape != (batch, k, h // 4, w // 4):
        raise InputError(
            f"{meta.architecture or type(model).__name__} maps {w}x{h} inputs to heatmaps {tuple(ref.shape[1:])}, "
            f"expected ({k}, {h // 4}, {w // 4}): use an input size divisible by the network stride (32 always works)"
        )
    if not np.isfinite(ref).all():  # nothing to verify against; the weights themselves are broken
        raise InputError("the checkpoint's network outputs NaN/inf (diverged training?)")

    raw = torch_to_onnx(model, (w, h), opset)
    ops_before = len(raw.graph.node)
    onnx_model = simplify(raw)
    for transform in transforms:
        onnx_model = transform(onnx_model)
    check_graph(onnx_model, (w, h), k)
    embed_metadata(onnx_model, meta)
    try:
        onnx.checker.check_model(onnx_model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported model is not valid ONNX: {e}") from None
    if read_metadata(onnx_model).to_json() != meta.to_json():  # the runtime's class must read back what we wrote
        raise ExportError("metadata does not round-trip through ModelMetadata")

    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same directory: the final rename is atomic
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(onnx_model, str(tmp))
        parity = verify_onnx(tmp, x, ref, meta.output, tolerance)
        os.replace(tmp, out)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, ops_before, len(onnx_model.graph.node), out.stat().st_size, parity, meta)


def export_from_args(out_path, arch: Optional[str] = None, num_keypoints: Optional[int] = None,
                     checkpoint=None, input_size=None, keypoints_from=None, opset: int = MIN_OPSET,
                     box_padding: Optional[float] = None, output: Optional[str] = None,
                     model_options: Optional[dict] = None, **kwargs) -> ExportResult:
    """The whole command-line flow as a function. checkpoint None -> random weights. input_size (w, h).
    box_padding None -> the checkpoint's training padding (see build_metadata). model_options: see resolve_spec."""
    for what, source in (("--checkpoint", checkpoint), ("--keypoints-from file", keypoints_from)):
        if same_file(out_path, source):  # the ONNX file would replace it
            raise InputError(f"--out {out_path} is the {what}: writing the model there would destroy it")
    check_writable(out_path)
    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    spec = resolve_spec(arch, num_keypoints, input_size, output, ckpt.meta if ckpt else None, model_options)
    keypoints = resolve_keypoint_set(spec.num_keypoints, ckpt.meta if ckpt else None, keypoints_from)
    meta = build_metadata(spec, keypoints, ckpt, box_padding)
    model = build_model(spec, ckpt)
    # The runtime has no torch to count with: record the cost so `fasterpose bench` can report GFLOP/s.
    cost = count_complexity(model, spec.input_size)
    meta.extra.update(macs=int(cost["macs"]), params=int(cost["params"]))
    return export_onnx(model, meta, out_path, opset=opset, **kwargs)
