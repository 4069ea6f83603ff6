"""Checkpoint loading and saving: find the state dict in any supported layout, never execute code, never load
partially; write whole files or nothing.

Layouts: a plain state dict; a dict holding it under ``state_dict`` or ``model`` (this project's training
checkpoints, which add ``optimizer``, ``scheduler``, ``epoch`` and ``meta``); keys prefixed ``module.`` (DDP)
or ``_orig_mod.`` (torch.compile).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from .errors import CheckpointError

__all__ = ["Checkpoint", "load_checkpoint", "read_checkpoint", "extract_state_dict", "load_weights", "file_sha256",
           "file_provenance", "save_checkpoint"]

_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 25  # keys listed per category in a mismatch error; the count is always given


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors by parameter name, the training ``meta`` dict ({} if absent), provenance."""

    state_dict: Dict[str, torch.Tensor]
    meta: Dict[str, Any] = field(default_factory=dict)
    epoch: Optional[int] = None
    sha256: str = ""
    path: Optional[Path] = None


def save_checkpoint(path, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """Write ``{"model": state_dict, "meta": meta}`` to ``path`` atomically (a partial file never takes its place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_atomically({"model": dict(state_dict), "meta": dict(meta)}, path)


def save_atomically(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file beside it, which takes its place once whole and is
    removed otherwise. Raises OSError naming ``path`` when it cannot be written: torch.save raises a RuntimeError
    ("unexpected pos ...") where the disk fills up, which reached users as a traceback (review s67)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two writers never share one
    try:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # the writer's own error for a failed write
            free = shutil.disk_usage(path.parent).free if path.parent.exists() else None
            full = " (the disk is full)" if free is not None and free < (1 << 20) else ""
            lines = str(e).strip().splitlines()
            raise OSError(f"cannot write {path}{full}: {lines[-1] if lines else type(e).__name__}") from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_provenance(path) -> Dict[str, str]:
    """``{"file": name, "sha256": digest}``: how metadata and recipes name a file they were made from."""
    path = Path(path)
    return {"file": path.name, "sha256": file_sha256(path)}


def read_checkpoint(path) -> Any:
    """The object pickled in ``path``, read with ``torch.load(weights_only=True)`` (pickled code is refused): for
    callers that need more of a checkpoint than its weights (models.train --resume: optimizer, schedule, epoch).

    Raises CheckpointError for a missing, unreadable or refused file.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint is not a file: {p}")
    if p.suffix.lower() == ".onnx":  # torch.load's "Unsupported operand 8" would not say so
        raise CheckpointError(f"{p} is an ONNX model, not a PyTorch checkpoint: python -m models.from_onnx turns "
                              "a FasterPose ONNX model back into one")
    try:
        with warnings.catch_warnings():  # a bare pickle (not torch.save's zip): torch's warning of its protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # came before the refusal below
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        refused = next((line for line in lines if "GLOBAL" in line), None)
        if refused:  # weights_only blocks every global outside torch's allow-list: unpickling it could run code
            raise CheckpointError(
                f"refused to load {p}: it pickles objects that weights_only loading does not allow (only tensors "
                f"and plain Python values are accepted; loading it could execute code): {refused}"
            ) from None
        detail = next((line for line in lines[1:] if "WeightsUnpickler" not in line and "Check the doc" not in line),
                      lines[0] if lines else "unpickling failed")
        raise CheckpointError(f"{p} is not a readable PyTorch checkpoint: {detail}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {p}: {e.strerror or e}") from None
    except Exception as e:  # torch raises RuntimeError/EOFError/ValueError... for files that are not checkpoints
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if not any(c.isalpha() for c in msg):  # a text file gives KeyError 101: what torch says means nothing here
            msg = "it is neither a zip archive nor a pickle (a text file, or a checkpoint cut short?)"
        raise CheckpointError(f"{p} is not a readable PyTorch checkpoint: {msg}") from None


def load_checkpoint(path) -> Checkpoint:
    """Read ``path`` with ``torch.load(weights_only=True)`` (pickled code is refused) and find its state dict.

    Raises CheckpointError for a missing, unreadable or refused file and for a layout without a state dict.
    """
    p = Path(path)
    obj = read_checkpoint(p)
    try:
        digest = file_sha256(p)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {p}: {e.strerror or e}") from None
    state = extract_state_dict(obj, p)
    meta = obj.get("meta") if isinstance(obj, dict) and isinstance(obj.get("meta"), dict) else {}
    epoch = obj.get("epoch") if isinstance(obj, dict) and isinstance(obj.get("epoch"), int) else None
    return Checkpoint(state_dict=state, meta=meta, epoch=epoch, sha256=digest, path=p)


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def extract_state_dict(obj, source="checkpoint") -> Dict[str, torch.Tensor]:
    """The ``{name: tensor}`` dict inside a loaded checkpoint object, with DDP/compile prefixes removed."""
    if _is_state_dict(obj):
        state = obj
    elif isinstance(obj, Mapping) and _is_state_dict(obj.get("state_dict")):
        state = obj["state_dict"]
    elif isinstance(obj, Mapping) and _is_state_dict(obj.get("model")):
        state = obj["model"]
    else:
        what = f"a dict with keys {sorted(map(str, obj))[:10]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{source}: no state dict found (expected a {{name: tensor}} dict, or one under 'state_dict' or "
            f"'model'); got {what}"
        )
    out = {}
    for k, v in state.items():
        for prefix in _PREFIXES:  # wrappers may nest (DDP around a compiled module)
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def _listing(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source="checkpoint") -> None:
    """Copy ``state_dict`` into ``model``; every key must match by name and shape.

    Raises CheckpointError listing missing, unexpected and wrongly shaped keys (no partial load happens).
    BatchNorm ``num_batches_tracked`` counters may be absent: they play no part in eval mode.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} (model {tuple(v.shape)})"
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} with the wrong shape: {_listing(shapes)}")
        arch = getattr(model, "architecture", type(model).__name__)
        raise CheckpointError(f"{source} does not fit {arch}: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=False)  # keys verified above; strict=False only for num_batches_tracked
