"""Parity of the written ONNX file (onnxruntime CPU, opened the runtime's way) against the PyTorch model.

Figures, over a random batch of N >= 2 normalised inputs:
- max_abs: max |onnx - torch| of the raw outputs (logits or probabilities);
- max_rel: max_abs / max |torch|, one scale for the whole batch, so near-zero entries cannot blow it up;
- keypoint_px: max distance, in heatmap pixels, between keypoints decoded (DARK, ``decode_heatmaps``) from
  both outputs (after the sigmoid for logits).
Keypoints are judged only where decoding is well-conditioned at float32 precision. Skipped (and counted):
flat maps, whose peak contrast (max - median probability) is below ``FLAT_RATIO`` x the numeric noise
(max |onnx - torch| of the probabilities), where DARK's sub-pixel step divides noise by a near-zero curvature
(random weights give such maps: contrast ~1e-5); and tied maps, where the two sides pick different peaks that
torch rates equal within the noise. Trained models' maps have contrast ~1e6 x the noise and are all judged.
Also checks the dynamic batch: batch 1 must reproduce the first sample of the batch-N run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fasterpose_rt.decode import argmax_heatmaps, decode_heatmaps
from fasterpose_rt.session import ModelError, open_session

from .errors import ExportError, VerificationError

FLAT_RATIO = 1e4  # contrast/noise below which DARK positions are noise-dominated

__all__ = ["Tolerance", "Parity", "reference_batch", "torch_outputs", "verify_onnx"]


@dataclass(frozen=True)
class Tolerance:
    max_rel: float = 1e-4
    keypoint_px: float = 0.01


@dataclass
class Parity:
    max_abs: float
    max_rel: float
    keypoint_px: float  # over judged keypoints; 0.0 if none was judged
    judged: int  # keypoints (person x joint) whose decoding was compared
    total: int
    batch: int

    def summary(self) -> str:
        if self.judged:
            skipped = f", {self.total - self.judged} flat/tied maps skipped" if self.judged < self.total else ""
            kp = f"keypoints {self.keypoint_px:.4f} hm px ({self.judged}/{self.total} judged{skipped})"
        else:
            kp = f"keypoints not judged (all {self.total} maps flat or tied, as with random weights)"
        return (f"parity (batch {self.batch}): max abs {self.max_abs:.2e}, max rel {self.max_rel:.2e} "
                f"(max|onnx-torch|/max|torch|), {kp}")


def reference_batch(input_size, batch: int = 2, seed: int = 0) -> np.ndarray:
    """(batch, 3, H, W) float32 standard-normal inputs (the scale of ImageNet-normalised crops). input_size (W, H)."""
    w, h = input_size
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)


def torch_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Eval-mode model outputs (N, K, h, w) float32 for inputs x (N, 3, H, W)."""
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _probabilities(out: np.ndarray, output: str) -> np.ndarray:
    if output == "logits":
        return 1.0 / (1.0 + np.exp(-out.astype(np.float64)))
    return out.astype(np.float64)


def compare(ref: np.ndarray, got: np.ndarray, output: str) -> Parity:
    """Parity figures of ``got`` against ``ref``, both (N, K, h, w), output "logits" | "probabilities"."""
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max())
    max_rel = max_abs / max(float(np.abs(ref).max()), 1e-12)
    p_ref, p_got = _probabilities(ref, output), _probabilities(got, output)
    xy_ref, _ = decode_heatmaps(p_ref)
    xy_got, _ = decode_heatmaps(p_got)
    dist = np.linalg.norm(xy_ref - xy_got, axis=2)  # (N, K)

    n, k, h, w = ref.shape
    flat_ref = p_ref.reshape(n, k, h * w)
    peak_ref, top_ref = argmax_heatmaps(p_ref)
    peak_got, _ = argmax_heatmaps(p_got)
    noise = float(np.abs(p_got - p_ref).max())
    contrast = top_ref - np.median(flat_ref, axis=2)
    flat = contrast <= FLAT_RATIO * noise
    moved = np.any(peak_ref != peak_got, axis=2)
    at_got = np.take_along_axis(flat_ref, (peak_got[..., 1] * w + peak_got[..., 0])[..., None], axis=2)[..., 0]
    tie = moved & (top_ref - at_got <= 4.0 * noise)
    judged = ~(flat | tie)
    kp = float(dist[judged].max()) if judged.any() else 0.0
    return Parity(max_abs, max_rel, kp, int(judged.sum()), n * k, n)


def verify_onnx(path, x: np.ndarray, ref: np.ndarray, output: str, tolerance: Tolerance = Tolerance()) -> Parity:
    """Run the ONNX file at ``path`` on x (N, 3, H, W) and compare with ref (N, K, h, w) = torch outputs.

    The file is opened with the runtime's own loader (metadata and graph checks included).
    Raises VerificationError when a tolerance is exceeded or batch 1 disagrees with batch N.
    """
    try:
        session, _ = open_session(path)
    except ModelError as e:
        raise ExportError(f"the runtime refuses the exported file: {e}") from None
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x})[0]
    if got.shape != ref.shape:
        raise VerificationError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
    parity = compare(ref, got, output)
    problems = []
    if not parity.max_rel <= tolerance.max_rel:  # `not <=` also catches NaN
        problems.append(f"relative difference {parity.max_rel:.2e} > {tolerance.max_rel:g}")
    if not parity.keypoint_px <= tolerance.keypoint_px:
        problems.append(f"keypoints differ by {parity.keypoint_px:.4f} > {tolerance.keypoint_px:g} heatmap px")
    single = session.run(None, {name: x[:1]})[0]
    if single.shape != got[:1].shape or not np.allclose(single, got[:1], rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(got).max()))):
        problems.append("batch 1 does not reproduce the first sample of the batch run (dynamic batch broken)")
    if problems:
        raise VerificationError("ONNX/PyTorch parity failed: " + "; ".join(problems) + f" [{parity.summary()}]")
    return parity
