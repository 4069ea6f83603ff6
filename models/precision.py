"""Mixed precision for training: which autocast dtype a device gets, and the loss scaling fp16 needs.

bf16 keeps float32's exponent range, so it needs no loss scaling: the choice on CPUs with native bf16 (AVX-512
BF16, AMX: about 2-3x faster here) and on GPUs that have it (Ampere and newer). GPUs without bf16 (T4, V100) run
fp16 on their tensor cores instead; fp16's narrow range makes small gradients underflow, so its loss is scaled up
before ``backward`` and the gradients scaled back before the step (``torch.amp.GradScaler``), which also skips a
step whose gradients overflowed.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Union

import torch

__all__ = ["AMP_MODES", "amp_dtype", "amp_name", "autocast", "bf16_supported", "grad_scaler"]

AMP_MODES = ("auto", "bf16", "fp16", "off")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively (elsewhere bf16 autocast only emulates it, slower than float32)."""
    if device.type == "cuda":  # not emulation: a T4 or V100 creates bf16 tensors, but runs them slowly
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(mode: str, device: torch.device, bf16_native: Optional[bool] = None) -> Optional[torch.dtype]:
    """The autocast dtype for ``--amp mode`` on ``device`` (None: float32 throughout).

    auto: bf16 where it is native; else fp16 on a GPU (tensor cores; loss-scaled); else float32. bf16 asked for on
    a GPU without it raises ValueError (it would fail in the first step). bf16_native: override the probe (tests).
    """
    if mode not in AMP_MODES:
        raise ValueError(f"--amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    native = bf16_supported(device) if bf16_native is None else bf16_native
    if mode == "auto":
        return torch.bfloat16 if native else (torch.float16 if device.type == "cuda" else None)
    if mode == "bf16" and device.type == "cuda" and not native:
        raise ValueError("--amp bf16: this GPU has no bf16; use --amp fp16 (or auto)")
    return _DTYPES[mode]


def amp_name(dtype: Optional[torch.dtype]) -> str:
    """How a checkpoint's recipe records the precision: 'bf16', 'fp16' or 'off'."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "off")


def autocast(device: Union[str, torch.device], dtype: Optional[torch.dtype]):
    """A context running ``device``'s ops in ``dtype`` (None: float32, a no-op)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> "torch.amp.GradScaler":
    """Loss scaling for fp16; a pass-through (``enabled=False``) for bf16 and float32, so one code path serves all."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
