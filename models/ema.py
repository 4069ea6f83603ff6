"""Exponential moving average (EMA) of a model's weights: validated, kept as ``best.pth`` and exported instead of the
raw weights when training with ``--ema``. Averaging the last few thousand steps smooths the noise of small batches.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """ema ← d·ema + (1 − d)·model after every optimizer step, for every floating-point parameter and buffer
    (BatchNorm running statistics included); integer buffers are copied.

    The decay ramps up as ``d = decay·(1 − exp(−updates / ramp))`` so that the first, fast-changing weights of a run
    are not frozen into the average.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, ramp: float = 2000.0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.ramp, self.updates = decay, ramp, 0
        state = self.module.state_dict()
        self._floats = [k for k, v in state.items() if v.dtype.is_floating_point]
        self._others = [k for k, v in state.items() if not v.dtype.is_floating_point]

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        ema_state, state = self.module.state_dict(), model.state_dict()
        torch._foreach_lerp_([ema_state[k] for k in self._floats], [state[k].detach() for k in self._floats], 1.0 - d)
        for k in self._others:
            ema_state[k].copy_(state[k])

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict, updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = int(updates)
