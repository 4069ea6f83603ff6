"""PyTorch side of FasterPose: architectures, losses, heatmap codec, datasets and training.

Used from a checkout (``python -m models.train ...``); never installed into site-packages. The names below are
imported on first use, so the converters in ``models.data`` (numpy and scipy only) work where torch is absent.
"""
import importlib
import os

from .training_tools import explain_missing_tools

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as fasterpose_rt does: no telemetry from onnxruntime
explain_missing_tools()  # where only the runtime is installed: what to install, not a traceback

_LAZY = {"ResNet": ".backbones", "PoseNet": ".pose", "build_model": ".pose", "list_models": ".pose",
         "register": ".pose"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
