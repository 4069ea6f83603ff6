"""PyTorch -> ONNX graph: export with a dynamic batch axis, simplify with onnxsim, check the result's contract.

Contract of the final graph: one float32 input ``input`` (N, 3, H, W), one output ``heatmaps`` (N, K, H/4, W/4),
N symbolic, default-domain opset >= 17, no ``BatchNormalization`` (folded into the convolutions).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections import Counter
from typing import Tuple

import onnx
import onnxsim
import torch
from torch import nn

from .errors import ExportError

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "MIN_OPSET", "torch_to_onnx", "simplify", "check_graph", "opset_of", "op_counts"]

INPUT_NAME, OUTPUT_NAME = "input", "heatmaps"
MIN_OPSET = 17
_BATCH = "batch"


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def _quiet_descriptors():
    """stdout and stderr, at the file descriptors (C++ writes there too), sent to the null device meanwhile."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()
    kept = []
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                kept.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            except OSError:  # that descriptor is closed: nothing to quieten
                pass
        yield
    finally:
        for fd, copy in kept:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def _torchscript_export(model: nn.Module, x: torch.Tensor, opset: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    # (for an opset it lacks it prints the Torch IR on stdout, from C++, and the error is ours to report)
    with warnings.catch_warnings(), _quiet_descriptors():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated; its warning is not for users
        torch.onnx.export(
            model, (x,), buf, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: _BATCH}, OUTPUT_NAME: {0: _BATCH}}, opset_version=opset,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def _dynamo_export(model: nn.Module, x: torch.Tensor, opset: int) -> onnx.ModelProto:
    # The dynamo exporter reports progress on stdout and through torch's loggers; failures still raise.
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (x,), None, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim(_BATCH)},), opset_version=opset, verbose=False,
            )
    finally:
        log.setLevel(level)
    return program.model_proto


def torch_to_onnx(model: nn.Module, input_size: Tuple[int, int], opset: int = MIN_OPSET) -> onnx.ModelProto:
    """Export ``model`` (eval mode) for (N, 3, H, W) inputs, input_size (W, H), N dynamic.

    The TorchScript exporter is tried first (fast, exact opset, names kept); if this torch no longer has it or it
    fails, the dynamo exporter with a dynamic batch dimension. Raises ExportError if both fail.
    """
    w, h = input_size
    x = torch.zeros(2, 3, h, w)  # batch 2: a size-1 example could be specialised as a constant by tracing
    model.eval()
    errors = []
    for name, fn in (("torchscript", _torchscript_export), ("dynamo", _dynamo_export)):
        try:
            with torch.no_grad():
                exported = fn(model, x, opset)
        except Exception as e:  # exporter internals raise many types; report them all if nothing works
            errors.append(f"{name}: {_first_line(e)}")
            continue
        written = opset_of(exported)
        if written != opset:  # (the dynamo exporter falls back to the opset it has, and the metadata said ours)
            errors.append(f"{name}: wrote opset {written}, not {opset}")
            continue
        return exported
    raise ExportError("torch.onnx.export failed: " + "; ".join(errors))


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxsim without input-shape overwrites (so the batch axis stays symbolic): folds BN and constants."""
    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception as e:  # onnxsim raises RuntimeError/ValueError/its own types
        raise ExportError(f"onnxsim failed: {_first_line(e)}") from None
    if not ok:
        raise ExportError("onnxsim could not validate the simplified model")
    # onnxsim logs its work (removed node lists...) into metadata_props; the file should carry only ours.
    keep = [p for p in simplified.metadata_props if not p.key.startswith("onnxsim.")]
    del simplified.metadata_props[:]
    simplified.metadata_props.extend(keep)
    return simplified


def opset_of(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def op_counts(model: onnx.ModelProto) -> Counter:
    """Node count per op type of the main graph."""
    return Counter(n.op_type for n in model.graph.node)


def _dims(value_info):
    return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


def check_graph(model: onnx.ModelProto, input_size: Tuple[int, int], num_keypoints: int) -> None:
    """Raise ExportError naming every way ``model`` breaks the contract above. input_size (W, H)."""
    w, h = input_size
    problems = []
    if opset_of(model) < MIN_OPSET:
        problems.append(f"opset {opset_of(model)} < {MIN_OPSET}")
    ins, outs = list(model.graph.input), list(model.graph.output)
    if [i.name for i in ins] != [INPUT_NAME] or [o.name for o in outs] != [OUTPUT_NAME]:
        problems.append(f"inputs {[i.name for i in ins]} / outputs {[o.name for o in outs]}, "
                        f"expected ['{INPUT_NAME}'] / ['{OUTPUT_NAME}']")
    else:
        if ins[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            problems.append("input is not float32")
        for vi, want in ((ins[0], [3, h, w]), (outs[0], [num_keypoints, h // 4, w // 4])):
            dims = _dims(vi)
            if len(dims) != 4 or dims[1:] != want:
                problems.append(f"'{vi.name}' has shape {dims}, expected [N, {', '.join(map(str, want))}]")
            elif not isinstance(dims[0], str) or not dims[0]:
                problems.append(f"'{vi.name}' batch axis is fixed ({dims[0]}), expected symbolic")
    n_bn = op_counts(model).get("BatchNormalization", 0)
    if n_bn:
        problems.append(f"{n_bn} BatchNormalization nodes left (not folded)")
    if problems:
        raise ExportError("exported graph is wrong: " + "; ".join(problems))
