"""What to build: architecture, K, input size, output kind and model options, from flags and checkpoint meta."""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from torch import nn

import models

from .checkpoint import Checkpoint, load_weights
from .errors import InputError

__all__ = ["ModelSpec", "resolve_spec", "build_model", "DEFAULT_INPUT_SIZE", "LOSS_OUTPUT"]

DEFAULT_INPUT_SIZE = (192, 256)  # (w, h): the paper's COCO setting
LOSS_OUTPUT = {"rce": "logits", "mse": "probabilities"}  # what the heatmaps mean, by training loss


@dataclass
class ModelSpec:
    architecture: str
    num_keypoints: int
    input_size: Tuple[int, int]  # (w, h)
    output: str  # "logits" | "probabilities"
    loss: Optional[str] = None
    model_options: Dict[str, Any] = field(default_factory=dict)


def _whole(value) -> int:
    """An int from ints, numpy and 0-d tensor integers and whole floats; TypeError for anything else (a list, a
    string, a bool, 64.9: no checkpoint value to convert or round silently)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise TypeError(value)
    return int(value) if isinstance(value, float) else operator.index(value)


def _size(value, what) -> Tuple[int, int]:
    try:
        w, h = (_whole(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be [w, h] in whole pixels, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise InputError(f"{what} must be positive, got {w}x{h}")
    return w, h


def resolve_spec(arch: Optional[str] = None, num_keypoints: Optional[int] = None, input_size=None,
                 output: Optional[str] = None, meta: Optional[Dict[str, Any]] = None,
                 model_options: Optional[Dict[str, Any]] = None) -> ModelSpec:
    """Merge explicit arguments with a checkpoint's ``meta``; raise InputError on conflicts or gaps.

    ``arch`` and ``num_keypoints`` must agree with the meta when both are given; ``input_size`` (w, h) overrides
    the meta's; ``output`` is taken from the meta's loss (rce -> logits, mse -> probabilities), else the argument,
    else the meta's recorded ``output`` (models.from_onnx), else "logits"; ``model_options`` (e.g. {"head_width": 32, "blocks": [1, 2, 6]}: how a plain state dict was
    built, which it does not record) must agree with the meta's where both give one.
    """
    meta = meta or {}
    meta_arch = meta.get("architecture")
    if arch and meta_arch and arch != meta_arch:
        raise InputError(f"--arch {arch} does not match the checkpoint's architecture {meta_arch}")
    arch = arch or meta_arch
    if not arch:
        raise InputError("no architecture: pass --arch (the checkpoint does not record one)")
    if arch not in models.list_models():
        raise InputError(f"unknown architecture {arch!r}; registered: {', '.join(models.list_models())}")

    meta_k = meta.get("num_keypoints")
    if meta_k is not None:
        try:
            meta_k = _whole(meta_k)
        except TypeError:
            raise InputError(f"checkpoint meta num_keypoints must be an integer, got {meta_k!r}") from None
    else:  # models.from_onnx / models.soup checkpoints record the names, not the count
        dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
        names = meta.get("keypoints") or dataset.get("keypoints")
        meta_k = len(names) if isinstance(names, (list, tuple)) and names else None
    if num_keypoints is not None and meta_k is not None and meta_k != num_keypoints:
        raise InputError(f"--num-keypoints {num_keypoints} does not match the checkpoint's {meta_k}")
    k = num_keypoints if num_keypoints is not None else meta_k
    if k is None:
        raise InputError("no keypoint count: pass --num-keypoints (the checkpoint does not record one)")
    if int(k) < 1:
        raise InputError(f"num_keypoints must be >= 1, got {k}")

    if input_size is not None:
        size = _size(input_size, "input size")
    elif meta.get("input_size") is not None:
        size = _size(meta["input_size"], "checkpoint meta input_size")
    else:
        size = DEFAULT_INPUT_SIZE

    loss = meta.get("loss")
    if loss is not None and loss not in LOSS_OUTPUT:
        raise InputError(f"checkpoint records unknown loss {loss!r}; known: {', '.join(LOSS_OUTPUT)}")
    if output is not None and output not in ("logits", "probabilities"):
        raise InputError(f"output must be 'logits' or 'probabilities', got {output!r}")
    if loss is not None and output is not None and LOSS_OUTPUT[loss] != output:
        raise InputError(f"--output {output} contradicts the checkpoint's loss {loss!r} ({LOSS_OUTPUT[loss]})")
    recorded = meta.get("output")  # models.from_onnx keeps its source file's, which may record no loss
    if recorded is not None and recorded not in ("logits", "probabilities"):
        raise InputError(f"checkpoint records unknown output {recorded!r}; known: logits, probabilities")
    if loss is not None and recorded is not None and LOSS_OUTPUT[loss] != recorded:
        raise InputError(f"checkpoint records output {recorded!r} and loss {loss!r} ({LOSS_OUTPUT[loss]})")
    if recorded is not None and output is not None and output != recorded:
        raise InputError(f"--output {output} contradicts the checkpoint's recorded output {recorded!r}")
    out = LOSS_OUTPUT[loss] if loss is not None else (output or recorded or "logits")

    options = meta.get("model_options") or {}
    if not isinstance(options, dict):
        raise InputError(f"checkpoint meta model_options must be a dict, got {type(options).__name__}")
    given = {key: value for key, value in (model_options or {}).items() if value is not None}
    differ = [key for key in given if key in options and options[key] != given[key]]
    if differ:
        raise InputError("; ".join(f"--{key.replace('_', '-')} {given[key]} does not match the checkpoint's "
                                   f"{options[key]}" for key in differ))
    return ModelSpec(arch, int(k), size, out, loss, {**options, **given})


def build_model(spec: ModelSpec, checkpoint: Optional[Checkpoint] = None) -> nn.Module:
    """The registered model in eval mode, with the checkpoint's weights (strict) or random ones if None."""
    try:
        model = models.build_model(spec.architecture, spec.num_keypoints, **spec.model_options)
    except (TypeError, ValueError) as e:
        raise InputError(f"cannot build {spec.architecture} with options {spec.model_options}: {e}") from None
    if checkpoint is not None:
        load_weights(model, checkpoint.state_dict, source=str(checkpoint.path or "checkpoint"))
    return model.eval()
