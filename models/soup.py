"""Average the weights of several rounds that started from one model (a "model soup", Wortsman et al., ICML 2022).

    python -m models.soup --checkpoints runs/default/last.pth runs/a/last.pth runs/b/last.pth \\
        --out runs/soup/last.pth [--weights 1 1 2] [--ann val.json --images imgs/]
    python -m export --checkpoint runs/soup/last.pth --out soup.onnx

Why: rounds fine-tuned from the same weights stay in one basin of the loss, so the average of their weights is a
network of the same size and speed that often scores like their ensemble, which would cost one pass per round.
Rounds from different starting points do not average into anything useful; the ingredients must share the
architecture, its options and the input size (checked). Every floating-point tensor is averaged, BatchNorm
running statistics included (for close rounds they are close); integer counters come from the first ingredient.
With ``--ann`` the ingredients and the soup are all scored on those persons (PCK@0.2, OKS AP at the checkpoint's
input size) in one run, so the soup is judged against what it is made of.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from export.checkpoint import save_checkpoint
from export.errors import CheckpointError, InputError
from export.outputs import check_writable
from fasterpose_rt.metadata import BOX_PADDING_RULE, is_box_padding

from .data.coco_keypoints import DEFAULT_BOX_PADDING
from .shrink import ShrinkError, load_source
from .validate import checkpoint_scorer

# what must agree for weights to be averaged: the network built and the crops it was trained on
_SAME = ("architecture", "model_options", "input_size", "loss")


class SoupError(ValueError):
    """The checkpoints cannot be averaged into one network."""


def average_state_dicts(states: Sequence[dict], weights: Optional[Sequence[float]] = None) -> dict:
    """The weighted mean of ``states`` (each name -> tensor, same names and shapes), in the first's dtypes.

    ``weights`` (one per state, positive; default equal) are normalised to sum to 1. Non-floating tensors
    (BatchNorm's ``num_batches_tracked``) are taken from the first state. Raises SoupError on any mismatch.
    """
    if len(states) < 2:
        raise SoupError(f"a soup needs 2 or more checkpoints, got {len(states)}")
    w = [1.0] * len(states) if weights is None else [float(x) for x in weights]
    if len(w) != len(states) or any(not x > 0 for x in w):
        raise SoupError(f"--weights needs one positive number per checkpoint ({len(states)}), got {list(weights)}")
    total = sum(w)
    first = states[0]
    for i, state in enumerate(states[1:], start=2):
        if set(state) != set(first):
            diff = sorted(set(state) ^ set(first))
            raise SoupError(f"checkpoint {i} holds other tensors than checkpoint 1: {diff[:5]}")
        wrong = [k for k in first if tuple(state[k].shape) != tuple(first[k].shape)]
        if wrong:
            raise SoupError(f"checkpoint {i} differs from checkpoint 1 in shape: {wrong[:5]}")
    out = {}
    for name, ref in first.items():
        if not ref.is_floating_point():
            out[name] = ref.clone()
            continue
        acc = torch.zeros(ref.shape, dtype=torch.float64)  # float64: exact enough that 1 soup of N copies is the copy
        for weight, state in zip(w, states):
            acc += state[name].to(torch.float64) * (weight / total)
        out[name] = acc.to(ref.dtype)
    return out


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m models.soup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=Path, nargs="+", required=True,
                    help="2 or more training checkpoints (models.train, models.from_onnx) of one architecture")
    ap.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ann", type=Path, help="score the ingredients and the soup on these persons (COCO keypoints)")
    ap.add_argument("--images", type=Path)
    ap.add_argument("--box-padding", type=float, default=DEFAULT_BOX_PADDING)
    return ap


def make_soup(paths: Sequence[Path], weights=None, ann=None, images=None, box_padding=DEFAULT_BOX_PADDING) -> tuple:
    """-> (the soup model, its checkpoint metadata, the report to print). Raises SoupError."""
    if not is_box_padding(box_padding):  # before any work: 0 cuts no crop, below 0 a mirrored one
        raise SoupError(f"--box-padding must be {BOX_PADDING_RULE}, got {box_padding!r}")
    loaded = []
    for path in paths:
        try:
            loaded.append(load_source(path))
        except ShrinkError as e:
            raise SoupError(str(e)) from None
    ckpts = [ckpt for _, ckpt, _ in loaded]
    first = ckpts[0].meta
    for path, ckpt in zip(paths[1:], ckpts[1:]):
        differ = [key for key in _SAME if ckpt.meta.get(key) != first.get(key)]
        if differ:
            raise SoupError(f"{path} differs from {paths[0]} in {', '.join(differ)}: "
                            + "; ".join(f"{k} {ckpt.meta.get(k)} vs {first.get(k)}" for k in differ))
    soup = copy.deepcopy(loaded[0][0])  # a model of its own: the ingredients are scored below as they were
    soup.load_state_dict(average_state_dicts([m.state_dict() for m, _, _ in loaded], weights))
    norm = [1.0 / len(paths)] * len(paths) if weights is None else [x / sum(weights) for x in weights]
    meta = {key: first[key] for key in _SAME if key in first}
    meta["num_keypoints"] = loaded[0][2]
    dataset = next((c.meta["dataset"] for c in ckpts if c.meta.get("dataset")), None)
    if dataset is not None:  # keypoint names, skeleton, flip pairs: what the exporter writes into the model
        meta["dataset"] = dataset
    # models.from_onnx records them at the top: kept, so the soup's keypoints can still be matched by name, and
    # its file's box padding, which the exporter prefers to the recipe's
    meta.update({key: first[key] for key in ("keypoints", "skeleton", "flip_pairs", "sigmas", "box_padding")
                 if key in first})
    paddings = [(c.meta.get("recipe") or {}).get("box_padding") for c in ckpts]
    meta["recipe"] = {"soup": True, "box_padding": next((p for p in paddings if p), None)}  # the exporter's default
    meta["souped_from"] = [{"file": str(p), "sha256": c.sha256, "weight": round(w, 6)} for p, c, w in
                           zip(paths, ckpts, norm)]
    report: dict = {"checkpoints": [str(p) for p in paths], "weights": [round(w, 6) for w in norm]}
    if ann:
        score, persons = checkpoint_scorer(first, ann, images, box_padding, str(paths[0]))
        ingredients = [score(m) for m, _, _ in loaded]
        meta["val"] = score(soup)
        figures = [meta["val"]["pck@0.2"]] + [s["pck@0.2"] for s in ingredients]  # None: no torso to measure by
        gain = None if None in figures else round(figures[0] - max(figures[1:]), 6)
        report.update(persons=persons, ingredients=ingredients, soup=meta["val"], soup_minus_best_ingredient=gain)
    return soup, meta, report


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_writable(args.out, [(f"the checkpoint {c}", c) for c in args.checkpoints]
                       + [("the --ann file", args.ann)])
        soup, meta, report = make_soup(args.checkpoints, args.weights, args.ann, args.images, args.box_padding)
    except (ValueError, OSError, RuntimeError, CheckpointError, InputError) as e:  # SoupError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, soup.state_dict(), meta)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
