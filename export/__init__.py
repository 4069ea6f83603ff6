"""Exporter: trained FasterPose weights -> simplified, self-describing ONNX, verified against PyTorch.

Run ``python -m export --help``. Python API, one stage per function (modular, so that e.g. int8 quantisation
can be added as a ``transforms`` step with its own ``tolerance``)::

    ckpt = load_checkpoint("last.pth")                       # weights_only, any layout
    spec = resolve_spec(meta=ckpt.meta)                      # arch, K, input size, output kind
    meta = build_metadata(spec, resolve_keypoint_set(spec.num_keypoints, ckpt.meta), ckpt)
    export_onnx(build_model(spec, ckpt), meta, "model.onnx")  # export, simplify, verify, atomic write

Used from a checkout (needs torch, onnx, onnxsim); never imported by the runtime.
"""
import os

from models.training_tools import explain_missing_tools

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as fasterpose_rt does: no telemetry from onnxruntime
explain_missing_tools()  # where only the runtime is installed: what to install, not a traceback

from .checkpoint import Checkpoint, extract_state_dict, file_sha256, load_checkpoint, load_weights
from .errors import CheckpointError, ExportError, InputError, KeypointSetError, VerificationError
from .keypoints import KeypointSet, keypoints_from_coco, resolve_keypoint_set
from .metadata import build_metadata, embed_metadata, read_metadata
from .onnx_graph import check_graph, simplify, torch_to_onnx
from .pipeline import ExportResult, export_from_args, export_onnx
from .spec import ModelSpec, build_model, resolve_spec
from .verify import Parity, Tolerance, verify_onnx

__all__ = [
    "Checkpoint", "load_checkpoint", "extract_state_dict", "load_weights", "file_sha256",
    "ExportError", "InputError", "CheckpointError", "KeypointSetError", "VerificationError",
    "KeypointSet", "keypoints_from_coco", "resolve_keypoint_set",
    "build_metadata", "embed_metadata", "read_metadata",
    "torch_to_onnx", "simplify", "check_graph",
    "ExportResult", "export_onnx", "export_from_args",
    "ModelSpec", "resolve_spec", "build_model",
    "Parity", "Tolerance", "verify_onnx",
]
