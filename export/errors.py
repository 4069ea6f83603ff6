"""Exceptions of the exporter. The CLI maps InputError to exit code 2 and any other ExportError to 1."""
from __future__ import annotations


class ExportError(Exception):
    """The export could not be completed (conversion, simplification or verification failed)."""


class InputError(ExportError):
    """Bad input from the user: arguments, checkpoint file, annotation file. CLI exit code 2."""


class CheckpointError(InputError):
    """The checkpoint is missing, unreadable, refused by ``weights_only`` or does not fit the model."""


class KeypointSetError(InputError):
    """Keypoint names / skeleton / flip pairs are missing, malformed or do not match the model's K."""


class VerificationError(ExportError):
    """The ONNX model does not reproduce the PyTorch model within tolerance."""
