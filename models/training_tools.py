"""One line, not a traceback, when a training-side command (``python -m models.train``, ``python -m export``, ...)
runs where only the runtime is installed: ``pip install .`` installs no torch, onnx or onnxsim."""
from __future__ import annotations

import sys

__all__ = ["explain_missing_tools", "TOOLS", "INSTALL_HINT"]

TOOLS = frozenset({"torch", "torchvision", "onnx", "onnxsim", "onnxscript", "scipy", "matplotlib", "pycocotools"})
INSTALL_HINT = 'pip install -e ".[dev]" in the checkout (torch==2.13.0, onnx, onnxsim, ...)'


def explain_missing_tools() -> None:
    """Make an uncaught ModuleNotFoundError for one of ``TOOLS`` print what to install (and exit 1, as Python does
    after any uncaught error); every other error keeps its traceback. Set once per process."""
    previous = sys.excepthook
    if getattr(previous, "explains_missing_tools", False):
        return

    def hook(kind, value, traceback):
        name = getattr(value, "name", None) or ""
        if isinstance(value, ModuleNotFoundError) and name.split(".")[0] in TOOLS:
            print(f"error: {name} is not installed; the training and export side needs it: {INSTALL_HINT}",
                  file=sys.stderr)
            return
        previous(kind, value, traceback)

    hook.explains_missing_tools = True  # type: ignore[attr-defined]
    sys.excepthook = hook
