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

from .data.coco_keypoints import derive_flip_pairs
from .head_transfer import checkpoint_keypoints
from .pose import build_model
from .precision import autocast as autocast_context
from .validate import keypoint_order


class TeacherError(ValueError):
    """The teacher checkpoint cannot teach this student (unreadable, no architecture, other keypoints)."""


class Teacher(nn.Module):
    """A frozen pose network whose heatmap probabilities are soft targets.

    forward(x (N, 3, H, W) normalised crops) -> probabilities (N, K, H/4, W/4) in [0, 1]. With ``flip=True`` the
    mirrored crop is predicted too, mirrored back and averaged (heatmap column i <-> w - 1 - i is exact under the
    unbiased pixel-centre convention, just as crop column x <-> W - 1 - x). With ``input_size=(w, h)`` the teacher
    sees the crops resized to w x h (bilinear) and its maps are resized back to (H/4, W/4) (bilinear, antialiased
    when they shrink); mirroring commutes with both resizes, so the flip test is unchanged. ``flip_pairs`` are the
    teacher's own; ``order`` (the teacher's output channel of each of the student's keypoints) puts its maps in the
    student's keypoint order when the two list them differently. A network that returns more than (h/4, w/4) pixels
    at the size it runs at (stride 32 at a size that is no multiple of 32) has them cropped to that grid first.
    """

    def __init__(self, model: nn.Module, logits: bool, flip_pairs, num_keypoints: int, flip: bool = True,
                 autocast=None, input_size=None, order=None):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.logits, self.flip, self.autocast = logits, flip, autocast
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.register_buffer("perm", torch.as_tensor(flip_permutation(num_keypoints, flip_pairs)), persistent=False)
        self.register_buffer("order", None if order is None else torch.as_tensor(list(order), dtype=torch.long),
                             persistent=False)

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
        # A stride-32 net (SimpleBaseline, output_stride 32) returns 8 * ceil(size / 32) pixels: at a size that is no
        # multiple of 32, extra ones past the crop's bottom/right. Its own grid is the first size // 4 (pixel i at
        # crop 4i + 1.5); keep that, before any resize (which would squeeze the extras in) or mirroring.
        grid_h, grid_w = x.shape[2] // 4, x.shape[3] // 4
        probs = self._probs(x)[..., :grid_h, :grid_w]
        if self.flip:  # the mirrored crop's extras are at its map's right too: crop, then mirror back
            mirrored = self._probs(x.flip(3))[..., :grid_h, :grid_w].flip(3)[:, self.perm]
            probs = 0.5 * (probs + mirrored)
        if probs.shape[2:] != out_size:
            shrink = probs.shape[2] > out_size[0] or probs.shape[3] > out_size[1]
            probs = F.interpolate(probs, size=out_size, mode="bilinear", align_corners=False, antialias=shrink)
        return probs if self.order is None else probs[:, self.order]


def load_teacher(path: Path, num_keypoints: int, input_size, flip_pairs, flip: bool = True,
                 autocast=None, teacher_input_size=None, keypoints=None) -> tuple:
    """Teacher from a training checkpoint (``meta`` names its architecture) -> (Teacher, provenance dict).

    The teacher must predict the student's keypoints. It sees the crops at ``teacher_input_size`` (w, h), by
    default the student's ``input_size``; its maps come back on the student's heatmap grid either way.
    keypoints: the student's keypoint names. When given and the checkpoint names its own, they must be the same
    set (TeacherError otherwise); listed in another order, the teacher's maps are reordered to the student's (with
    a warning) and it is flip-tested with its own flip pairs. Without names on both sides only the count is
    checked and ``flip_pairs`` (the student's) are used.
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
    names, order = checkpoint_keypoints(meta), None
    if names is None and keypoints is not None:
        warnings.warn(f"--teacher {path} does not name its keypoints: they are taken to be the student's, in order")
    elif names is not None and keypoints is not None:
        try:
            order = keypoint_order(names, keypoints, f"--teacher {path}", "the student's data")
        except ValueError as e:
            raise TeacherError(str(e)) from None
        flip_pairs = _own_flip_pairs(meta, names)  # the file's pairs index the file's order, not the teacher's
        if order is not None:
            warnings.warn(f"--teacher {path} predicts the student's keypoints in another order: its maps are reordered "
                          "by name")
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
                      num_keypoints=num_keypoints, flip=flip, autocast=autocast, input_size=teacher_input_size,
                      order=order)
    return teacher, {"file": Path(path).name, "sha256": ckpt.sha256, "architecture": arch,
                     "input_size": list(runs_at), "val": meta.get("val") or meta.get("validation")}


def _own_flip_pairs(meta: dict, names) -> list:
    """A checkpoint's flip pairs in its own keypoint order: its dataset's, else those ``models.from_onnx`` records,
    else left_/right_ names paired."""
    dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    pairs = meta.get("flip_pairs") if meta.get("keypoints") else dataset.get("flip_pairs")  # as checkpoint_keypoints
    if pairs is None:
        return derive_flip_pairs(list(names))
    try:
        pairs = [[int(a), int(b)] for a, b in pairs]
    except (TypeError, ValueError):
        raise TeacherError(f"malformed flip_pairs in the teacher's meta: {pairs!r}") from None
    if any(not (0 <= i < len(names)) for pair in pairs for i in pair):
        raise TeacherError(f"the teacher's flip_pairs {pairs!r} are not indices of its {len(names)} keypoints")
    return pairs


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
