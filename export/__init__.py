"""Exporter: trained FasterPose weights -> simplified, self-describing ONNX, verified against PyTorch.

Run ``python -m export --help``. Python API, one stage per function (modular, so that e.g. int8 quantisation
can be added as a ``transforms`` step with its own ``tolerance``)::

    ckpt = load_checkpoint("last.pth")                       # weights_only, any layout
    spec = resolve_spec(meta=ckpt.meta)                      # arch, K, input size, output kind
    meta = build_metadata(spec, resolve_keypoint_set(spec.num_keypoints, ckpt.meta), ckpt)
    export_onnx(build_model(spec, ckpt), meta, "model.onnx")  # export, simplify, verify, atomic write

Used from a checkout (needs torch, onnx, onnxsim); never imported by the runtime.
"""
import importlib
import os

from models.training_tools import explain_missing_tools

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as fasterpose_rt does: no telemetry from onnxruntime
explain_missing_tools()  # where only the runtime is installed: what to install, not a traceback

import torch  # noqa: E402,F401  (every stage needs it; first, so a runtime-only install is told of torch, not onnxsim)

# Imported on first use: models.train reads checkpoints through export.checkpoint, and onnx and onnxsim, which the
# other stages import, took 2.2 of the 6.3 s `python -m models.train --help` took before anything ran.
_LAZY = {
    ".checkpoint": ["Checkpoint", "load_checkpoint", "extract_state_dict", "load_weights", "file_sha256"],
    ".errors": ["ExportError", "InputError", "CheckpointError", "KeypointSetError", "VerificationError"],
    ".keypoints": ["KeypointSet", "keypoints_from_coco", "resolve_keypoint_set"],
    ".metadata": ["build_metadata", "embed_metadata", "read_metadata"],
    ".onnx_graph": ["torch_to_onnx", "simplify", "check_graph"],
    ".pipeline": ["ExportResult", "export_onnx", "export_from_args"],
    ".spec": ["ModelSpec", "resolve_spec", "build_model"],
    ".verify": ["Parity", "Tolerance", "verify_onnx"],
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = list(_HOME)


def __dir__():
    return sorted(set(globals()) | set(_HOME))


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name], __name__), name)
