"""Knowledge distillation: a frozen teacher's heatmaps as soft targets for RCE.

RCE is cross-entropy for continuous targets in [0, 1], so a teacher's sigmoid probabilities are targets it takes
as they are. The student learns from ``(1 - alpha) · ground truth + alpha · teacher`` on labelled joints, and from
the teacher alone, with weight ``alpha``, on joints the annotation leaves unlabelled. Two reasons:
- a bigger or flip-tested teacher carries what a single pass of the student cannot (the usual distillation);
- crowd-sourced labels are noisy (LSPET's paper is titled "... from Inaccurate Annotation"): mixing in the
  teacher's belief softens a wrong label instead of forcing the student onto it (Reed et al. 2014,
  "bootstrapping"), and unlabelled joints get a signal instead of none.

    python -m models.train ... --teacher teacher.pth [--distill-alpha 0.5] [--no-teacher-flip]
                               [--teacher-input-size WxH]

A teacher may see the crops at a larger size than the student (``--teacher-input-size``, e.g. a 96x128 student
taught by a model trained at 128x176): the crop is resized for the teacher and its maps resized back to the
student's heatmap grid. Both resizes are pure scalings with pixel centres aligned (``align_corners=False``), so
under the unbiased convention a teacher's heatmap pixel lands exactly where it belongs on the student's grid.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from export.checkpoint import load_checkpoint, load_weights
from export.errors import CheckpointError
from fasterpose_rt.skeletons import flip_permutation

from .pose import build_model
from .precision import autocast as autocast_context


class TeacherError(ValueError):
    """The teacher checkpoint cannot teach this student (unreadable, no architecture, other keypoints)."""


class Teacher(nn.Module):
    """A frozen pose network whose heatmap probabilities are soft targets.

    forward(x (N, 3, H, W) normalised crops) -> probabilities (N, K, H/4, W/4) in [0, 1]. With ``flip=True`` the
    mirrored crop is predicted too, mirrored back and averaged (heatmap column i <-> w - 1 - i is exact under the
    unbiased pixel-centre convention, just as crop column x <-> W - 1 - x). With ``input_size=(w, h)`` the teacher
    sees the crops resized to w x h (bilinear) and its maps are resized back to (H/4, W/4) (bilinear, antialiased
    when they shrink); mirroring commutes with both resizes, so the flip test is unchanged.
    """

    def __init__(self, model: nn.Module, logits: bool, flip_pairs, num_keypoints: int, flip: bool = True,
                 autocast=None, input_size=None):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.logits, self.flip, self.autocast = logits, flip, autocast
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.register_buffer("perm", torch.as_tensor(flip_permutation(num_keypoints, flip_pairs)), persistent=False)

    def train(self, mode: bool = True):  # a teacher stays in eval mode (BatchNorm running statistics)
        return super().train(False)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        with autocast_context(x.device, self.autocast):
            out = self.model(x)
        out = out.float()
        return torch.sigmoid(out) if self.logits else out.clamp(0.0, 1.0)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_size = (x.shape[2] // 4, x.shape[3] // 4)
        if self.input_size is not None and (x.shape[3], x.shape[2]) != self.input_size:
            w, h = self.input_size
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        probs = self._probs(x)
        if self.flip:
            mirrored = self._probs(x.flip(3)).flip(3)[:, self.perm]
            probs = 0.5 * (probs + mirrored)
        if probs.shape[2:] != out_size:
            shrink = probs.shape[2] > out_size[0] or probs.shape[3] > out_size[1]
            probs = F.interpolate(probs, size=out_size, mode="bilinear", align_corners=False, antialias=shrink)
        return probs


def load_teacher(path: Path, num_keypoints: int, input_size, flip_pairs, flip: bool = True,
                 autocast=None, teacher_input_size=None) -> tuple:
    """Teacher from a training checkpoint (``meta`` names its architecture) -> (Teacher, provenance dict).

    The teacher must predict the student's keypoints. It sees the crops at ``teacher_input_size`` (w, h), by
    default the student's ``input_size``; its maps come back on the student's heatmap grid either way.
    """
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        raise TeacherError(f"--teacher: {e}") from None
    meta = ckpt.meta
    arch = meta.get("architecture")
    if not arch:
        raise TeacherError(f"--teacher {path}: no 'meta.architecture' (use a checkpoint written by models.train "
                           "or models.from_onnx)")
    k = int(meta.get("num_keypoints") or len(meta.get("dataset", {}).get("keypoints", [])) or num_keypoints)
    if k != num_keypoints:
        raise TeacherError(f"--teacher {path} predicts {k} keypoints, the student {num_keypoints}")
    runs_at = tuple(teacher_input_size or input_size)
    size = meta.get("input_size")
    if size and tuple(size) != runs_at:
        # Fully convolutional, so it runs; but a teacher run at another scale than it was trained at is a worse
        # teacher: say so (--teacher-input-size runs it at its own size).
        warnings.warn(f"teacher trained at input {size[0]}x{size[1]}, run at {runs_at[0]}x{runs_at[1]}")
    model = build_model(arch, num_keypoints, **(meta.get("model_options") or {}))
    try:
        load_weights(model, ckpt.state_dict, source=str(path))
    except CheckpointError as e:
        raise TeacherError(f"--teacher: {e}") from None
    teacher = Teacher(model, logits=meta.get("loss", "rce") == "rce", flip_pairs=flip_pairs,
                      num_keypoints=num_keypoints, flip=flip, autocast=autocast, input_size=teacher_input_size)
    return teacher, {"file": Path(path).name, "sha256": ckpt.sha256, "architecture": arch,
                     "input_size": list(runs_at), "val": meta.get("val") or meta.get("validation")}


def distillation_targets(targets: torch.Tensor, weights: torch.Tensor, teacher_probs: torch.Tensor,
                         alpha: float) -> tuple:
    """Mix ground truth and teacher.

    targets (N, K, h, w) in [0, 1], weights (N, K) in {0, 1}, teacher_probs (N, K, h, w) -> (targets, weights):
    labelled joints (weight 1): ``(1 - alpha) · targets + alpha · teacher``, weight 1; the others: the teacher's
    map, weight ``alpha``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation alpha must be in [0, 1], got {alpha}")
    share = (1.0 - alpha) * weights.to(teacher_probs.dtype)[:, :, None, None]  # the label's share of the target
    mixed = torch.lerp(teacher_probs, targets.to(teacher_probs.dtype), share)
    new_weights = weights + (1.0 - weights) * alpha
    return mixed, new_weights
