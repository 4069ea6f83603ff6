"""Start a model for one keypoint set from a model trained on another: the keypoints both name keep their head.

Every layer but the head's last one is the same whatever the keypoints. That last 1x1 convolution holds a block
of output channels per keypoint: r² channels for FasterPose's LR head (channel k·r² + i feeds keypoint k through
PixelShuffle(r)), one for SimpleBaseline's. Copying the blocks of the keypoints both sets name (matched by name,
e.g. the 12 joints COCO-17 and LSP-14 share) makes the new model predict those keypoints exactly as the old one
did from its first step; the others keep their fresh initialisation.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ["FINAL_LAYER", "checkpoint_keypoints", "transfer_head"]

FINAL_LAYER = ("head.final.weight", "head.final.bias")


def checkpoint_keypoints(meta: dict) -> Optional[List[str]]:
    """The keypoint names a checkpoint's model predicts: a training checkpoint's dataset's, or the ones
    ``models.from_onnx`` records; None when the checkpoint does not say."""
    names = meta.get("keypoints") or (meta.get("dataset") or {}).get("keypoints")
    return [str(n) for n in names] if names else None


def transfer_head(state: Dict[str, torch.Tensor], model: torch.nn.Module, source_keypoints: Sequence[str],
                  keypoints: Sequence[str]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``state`` (a checkpoint's state dict for ``source_keypoints``) made to fit ``model`` (for ``keypoints``).

    The final layer's blocks of the keypoints both name are copied; the other keypoints' blocks are ``model``'s
    own (fresh) values. Returns (a new state dict, the shared names in ``keypoints`` order). Raises ValueError
    when the final layers do not have one block of channels per keypoint of the same size on both sides.
    """
    own = model.state_dict()
    out, shared = dict(state), [n for n in keypoints if n in source_keypoints]
    for name in FINAL_LAYER:
        if name not in state or name not in own:
            raise ValueError(f"no {name} on both sides: cannot match the heads' keypoints")
        src, dst = state[name], own[name].clone()
        if src.shape[0] % len(source_keypoints) or dst.shape[0] % len(keypoints):
            raise ValueError(f"{name}: {src.shape[0]} and {dst.shape[0]} output channels are not blocks of "
                             f"{len(source_keypoints)} and {len(keypoints)} keypoints")
        block = src.shape[0] // len(source_keypoints)
        if dst.shape[0] // len(keypoints) != block or src.shape[1:] != dst.shape[1:]:
            raise ValueError(f"{name}: {tuple(src.shape)} cannot give {tuple(dst.shape)} (another head layout)")
        for j, n in enumerate(keypoints):
            if n in shared:
                i = list(source_keypoints).index(n)
                dst[j * block:(j + 1) * block] = src[i * block:(i + 1) * block]
        out[name] = dst
    return out, shared
