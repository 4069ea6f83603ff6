"""How good is a teacher where the student learns? Its score on validation crops at the student's input size.

A teacher's targets are only as good as what it predicts on the crops the student sees, which may be smaller than
the crops it was trained on. This scores exactly those targets: the teacher's probability maps on the student's
heatmap grid (``--teacher-input-size`` and ``--flip`` as in ``models.train``), decoded and scored like training-time
validation (PCK@0.2, OKS AP).

    python -m models.teacher_check --teacher runs/default/last.pth --ann data/lspet_val.json \\
        --images ../shared/datasets/lspet/images --input-size 96x128 --teacher-input-size 128x176 --flip
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

from fasterpose_rt.metadata import BOX_PADDING_RULE, is_box_padding

from .data.coco_keypoints import DEFAULT_BOX_PADDING, TopDownDataset, load_coco_keypoints
from .distill import load_teacher
from .train import parse_size
from .validate import validate


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m models.teacher_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", type=Path, required=True, help="training checkpoint (models.train, models.from_onnx)")
    ap.add_argument("--ann", type=Path, required=True, help="COCO keypoint file of labelled persons")
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--input-size", type=parse_size, required=True, help="the student's input WxH")
    ap.add_argument("--teacher-input-size", type=parse_size, default=None, metavar="WxH",
                    help="the teacher sees the crops resized to WxH (default: the student's size)")
    ap.add_argument("--flip", action="store_true", help="flip-tested teacher (models.train's default)")
    ap.add_argument("--box-padding", type=float, default=DEFAULT_BOX_PADDING)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not is_box_padding(args.box_padding):  # 0 gives no crop (a singular matrix), below 0 a mirrored one
        print(f"error: --box-padding must be {BOX_PADDING_RULE}, got {args.box_padding:g}", file=sys.stderr)
        return 2
    for p in (args.teacher, args.ann, args.images):
        if not p.exists():
            print(f"error: {p} does not exist", file=sys.stderr)
            return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        samples, meta = load_coco_keypoints(args.ann, args.images)
        dataset = TopDownDataset(samples, meta, args.input_size, train=False, box_padding=args.box_padding)
        with warnings.catch_warnings(record=True) as said:  # one "warning:" line each, as the errors
            warnings.simplefilter("always")
            # matched by name: a teacher listing the file's keypoints in another order is read in the file's
            teacher, info = load_teacher(args.teacher, len(meta["keypoints"]), args.input_size, meta["flip_pairs"],
                                         flip=args.flip, teacher_input_size=args.teacher_input_size,
                                         keypoints=meta["keypoints"])
        for w in said:
            print(f"warning: {w.message}", file=sys.stderr)
        result = validate(teacher, dataset, logits=False)  # a Teacher already returns probabilities
    except (ValueError, OSError) as e:  # TeacherError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {"teacher": info["file"], "teacher_input_size": info["input_size"],
              "student_input_size": list(args.input_size), "flip": args.flip, "box_padding": args.box_padding,
              "persons": len(samples), **{k: v for k, v in result.items() if k != "pck_per_keypoint"}}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
