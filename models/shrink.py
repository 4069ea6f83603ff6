"""Start a shallower ResNet pose model from some of a deeper one's residual blocks (the inverse of ``--grow``).

    python -m models.shrink --checkpoint runs/default/last.pth --arch fasterpose_r18 \\
        --keep 0,1 0,3 0,5 --out runs/r18_from_default.pth [--ann val.json --images imgs/]
    python -m models.train ... --arch fasterpose_r18 --init runs/r18_from_default.pth --teacher runs/default/last.pth
    python -m models.shrink ... --arch fasterpose_r34 --blocks 1,2,6 --keep 0 0,1 0,1,2,3,4,5 ...  # any block counts
    python -m models.train ... --arch fasterpose_r34 --blocks 1,2,6 --init ...

Why: a residual block adds a correction to its input, so a ResNet keeps working, somewhat worse, when some of its
blocks are left out (Veit et al., 2016). A smaller, faster network that starts from the kept blocks of a trained one
(plus its stem and head) starts far ahead of a fresh one, and distillation from the deeper model closes the rest.
``--keep`` names, for each stage, the blocks that stay, in order; a stage's first block must stay wherever it
changes the width or the stride (it holds the downsample). With ``--ann`` the shrunk network is scored at once
(PCK@0.2, OKS AP on those persons, at the checkpoint's input size and box padding), which is how to choose what
to keep. The shrunk checkpoint keeps every metadata key of the source that still describes it (dataset: keypoint
names, skeleton, flip pairs, OKS sigmas; input size, loss, box padding, training recipe, a models.from_onnx
file's provenance); only the architecture, its options (block counts) and the scores change, and the recipe gains
``shrunk_from`` (source file, its architecture, the blocks kept), so an export or an ``--init`` run describes the
shrunk model rightly.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Sequence


from export.checkpoint import load_checkpoint, load_weights, save_checkpoint
from export.errors import CheckpointError, InputError
from export.metadata import checkpoint_box_padding
from fasterpose_rt.metadata import BOX_PADDING_RULE, is_box_padding

from .pose import PoseNet, build_model
from .train import parse_blocks
from .validate import checkpoint_scorer


class ShrinkError(ValueError):
    """The requested blocks cannot make the smaller model from the larger one."""


def _num_keypoints(state: dict, meta: dict, options: dict) -> int:
    """K from the checkpoint's metadata, else from its last layer: K·r² channels, r² those of a 1-keypoint build."""
    k = meta.get("num_keypoints") or len(meta.get("dataset", {}).get("keypoints", []))
    if k:
        return int(k)
    per_keypoint = build_model(meta["architecture"], 1, **options).head.final.out_channels
    return int(state["head.final.weight"].shape[0]) // per_keypoint


def shrink_state_dict(source: PoseNet, target: PoseNet, keep: Sequence[Sequence[int]]) -> dict:
    """A state dict for ``target`` made of ``source``'s stem, head and the blocks ``keep[s]`` of each stage s.

    ``keep`` has one list of source block indices per stage, as long as the target's stage, strictly increasing.
    Raises ShrinkError when the two networks differ in anything but the number of blocks per stage.
    """
    src_bb, dst_bb = source.backbone, target.backbone
    stages = dst_bb.num_stages
    if src_bb.num_stages != stages or type(src_bb.layer1[0]) is not type(dst_bb.layer1[0]):
        raise ShrinkError(f"{source.architecture} and {target.architecture} differ in block type or stage count")
    if len(keep) != stages:
        raise ShrinkError(f"--keep needs one list of blocks per stage ({stages}), got {len(keep)}")
    src_sd = source.state_dict()
    out = {k: v for k, v in src_sd.items() if not k.startswith("backbone.layer")}
    for s in range(stages):
        src_layer, dst_layer = getattr(src_bb, f"layer{s + 1}"), getattr(dst_bb, f"layer{s + 1}")
        blocks: List[int] = list(keep[s])
        if len(blocks) != len(dst_layer):
            raise ShrinkError(f"stage {s + 1}: {target.architecture} has {len(dst_layer)} blocks, --keep names {len(blocks)}")
        if any(b < 0 or b >= len(src_layer) for b in blocks) or sorted(set(blocks)) != blocks:
            raise ShrinkError(f"stage {s + 1}: blocks {blocks} must be increasing indices below {len(src_layer)}")
        if src_layer[0].downsample is not None and blocks[0] != 0:
            raise ShrinkError(f"stage {s + 1}: block 0 changes width or stride and must be kept")
        for new, old in enumerate(blocks):
            prefix = f"backbone.layer{s + 1}.{old}."
            out.update({f"backbone.layer{s + 1}.{new}.{k[len(prefix):]}": v
                        for k, v in src_sd.items() if k.startswith(prefix)})
    own = target.state_dict()
    wrong = sorted(k for k in own if k not in out or out[k].shape != own[k].shape)
    if wrong:
        raise ShrinkError(f"{target.architecture} does not fit {source.architecture}'s weights: {wrong[:5]}")
    return {k: out[k] for k in own}


def parse_keep(texts: Sequence[str]) -> List[List[int]]:
    try:
        return [[int(v) for v in t.split(",")] for t in texts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--keep takes comma-separated block indices per stage, got {texts}") from None


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m models.shrink", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="the deeper model (models.train, models.from_onnx)")
    ap.add_argument("--arch", required=True, help="the shallower registered model, e.g. fasterpose_r18")
    ap.add_argument("--blocks", type=parse_blocks, default=None, metavar="N,N,N",
                    help="with a FasterPose --arch: blocks per stage instead of its standard ones, e.g. 1,2,6")
    ap.add_argument("--keep", nargs="+", required=True, metavar="I,J,..",
                    help="per stage, the source blocks that stay, e.g. 0,1 0,3 0,5 (R34 -> R18)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ann", type=Path, help="score the shrunk model on these persons (COCO keypoint file)")
    ap.add_argument("--images", type=Path)
    ap.add_argument("--box-padding", type=float, default=None,
                    help="with --ann: crop padding to score at (default: the checkpoint's, as export takes it)")
    return ap


def load_source(path: Path) -> tuple:
    """-> (the trained model of a training checkpoint, built and loaded; the checkpoint; K). Raises ShrinkError."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        raise ShrinkError(str(e)) from None
    meta = ckpt.meta
    if "architecture" not in meta:
        raise ShrinkError(f"{path}: not a training checkpoint (no architecture in its meta)")
    options = meta.get("model_options", {})
    k = _num_keypoints(ckpt.state_dict, meta, options)
    source = build_model(meta["architecture"], k, **options)
    try:
        load_weights(source, ckpt.state_dict, source=str(path))
    except CheckpointError as e:
        raise ShrinkError(str(e)) from None
    return source, ckpt, k


# what describes the source's scores, not the shrunk model's: dropped (--ann scores the shrunk one)
_NOT_CARRIED = ("val", "validation", "edge_peaks")  # edge_peaks: measured on the source network's maps


def source_box_padding(meta: dict, source: str = "the checkpoint") -> float:
    """The padding a checkpoint's model crops at, as the exporter takes it: its own ``box_padding`` (models.from_onnx:
    its file's, calibrated maybe), else its recipe's, else DEFAULT_BOX_PADDING. Raises ShrinkError when malformed."""
    try:
        return checkpoint_box_padding(meta)
    except InputError as e:
        raise ShrinkError(f"{source}: {e}") from None


def shrunk_meta(meta: dict, arch: str, model_options: dict, num_keypoints: int, keep: Sequence[Sequence[int]],
                source: dict) -> dict:
    """The shrunk checkpoint's metadata: the source's ``meta`` with what changed set (architecture, model options),
    its scores dropped, and ``shrunk_from`` (``source``: file and sha256, plus the source's architecture, options and
    the kept blocks) recorded at the top and in the recipe, which export and ``--init`` provenance carry on."""
    note = {**source, "architecture": meta["architecture"], "model_options": meta.get("model_options", {}),
            "kept_blocks": [list(b) for b in keep]}
    if isinstance(meta.get("shrunk_from"), dict):  # shrunk twice: the earlier cut stays on record
        note["shrunk_from"] = meta["shrunk_from"]
    out = {key: value for key, value in meta.items() if key not in _NOT_CARRIED}
    recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    out.update(architecture=arch, model_options=model_options, num_keypoints=num_keypoints, shrunk_from=note,
               recipe={**recipe, "shrunk_from": note})
    return out


def _shrink(args) -> tuple:
    """-> (the shrunk model, its checkpoint metadata, the report to print); raises ShrinkError."""
    if args.box_padding is not None and not is_box_padding(args.box_padding):  # before any work: 0 cuts no crop,
        raise ShrinkError(f"--box-padding must be {BOX_PADDING_RULE}, got {args.box_padding!r}")  # < 0 a mirrored one
    keep = parse_keep(args.keep)
    source, ckpt, k = load_source(args.checkpoint)
    meta, options = ckpt.meta, ckpt.meta.get("model_options", {})
    padding = args.box_padding if args.box_padding is not None else source_box_padding(meta, str(args.checkpoint))
    # the source's other options (head width, ...) stay; its block counts are the source's depth, not the target's
    target_options = {key: value for key, value in options.items() if key != "blocks"}
    if args.blocks:
        target_options["blocks"] = args.blocks
    target = build_model(args.arch, k, **target_options)
    target.load_state_dict(shrink_state_dict(source, target, keep))
    out_meta = shrunk_meta(meta, args.arch, target_options, k, keep,
                           {"file": args.checkpoint.name, "sha256": ckpt.sha256})
    report = {"architecture": args.arch, "kept_blocks": keep}
    if args.ann:
        score, persons = checkpoint_scorer(meta, args.ann, args.images, padding, str(args.checkpoint))
        out_meta["val"] = score(target)
        report.update(persons=persons, box_padding=padding, **out_meta["val"])
    return target, out_meta, report


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        target, out_meta, report = _shrink(args)
    except (ValueError, OSError, RuntimeError, argparse.ArgumentTypeError) as e:  # ShrinkError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, target.state_dict(), out_meta)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
