"""Calibrate a model's box padding, the context its crops take around a person box, on labelled persons.

Why: augmentation can make training crops show persons larger than a tight box at test time does (large
rotations of a region fitted to the upright box push turned persons past the crop's edges; half-body crops zoom
in), so a model trained at box padding 1.25 may find persons best when they fill more of the crop than 1.25
leaves them — a train/test discrepancy like FixRes's (Touvron et al., "Fixing the train-test resolution
discrepancy", NeurIPS 2019), here for pose. The best padding is a measured property of the trained weights, not of the recipe: this sweeps
candidate paddings on labelled persons (training persons, never the ones you report on), keeps the one with the
highest PCK@0.2 and writes it into the model's ``fasterpose`` metadata together with the whole sweep. Weights
and graph are untouched, so it works on float and int8 files alike and costs nothing at run time. What was
measured at the old padding goes when the padding changes: the score table, and a presence head (its graph
output too), each to be fitted again at the new one.

Python API::

    result = calibrate_padding("model.onnx", "lspet_train1k.json", "lspet/images", out_path="tuned.onnx")
    print(result.summary())

Command line: ``python -m export.padding --help``.
"""
from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from fasterpose_rt.confidence import CALIBRATION_KEY
from fasterpose_rt.metadata import BOX_PADDING_RULE, is_box_padding
from fasterpose_rt.metrics import pck
from fasterpose_rt.presence import PRESENCE_KEY

from .crops import crop_keypoints, list_persons, load_crops
from .errors import InputError
from .metadata import open_to_measure, rewrite_metadata
from .presence_head import without_head

__all__ = ["DEFAULT_CANDIDATES", "PaddingResult", "calibrate_padding", "main"]

DEFAULT_CANDIDATES = (1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3)
PCK_THRESHOLD = 0.2


@dataclass
class PaddingResult:
    """path written; previous and chosen padding; sweep {padding: PCK@0.2} on ``persons`` persons (``joints``
    labelled joints) of ``source``."""

    path: Path
    previous: float
    chosen: float
    sweep: Dict[float, float]
    persons: int
    joints: int
    source: str

    def summary(self) -> str:
        sweep = ", ".join(f"{p:g}: {100 * v:.2f}" for p, v in sorted(self.sweep.items()))
        return (f"{self.path}: box padding {self.previous:g} -> {self.chosen:g} (PCK@{PCK_THRESHOLD:g} on "
                f"{self.persons} persons of {Path(self.source).name}, {self.joints} joints: {sweep})")


def _check_candidates(candidates: Sequence[float]) -> list:
    values = sorted({float(c) for c in candidates})
    if not values or not all(is_box_padding(v) for v in values):
        raise InputError(f"candidate paddings must each be {BOX_PADDING_RULE}, got {list(candidates)!r}")
    return values


def calibrate_padding(model_path, annotations, images=None, out_path=None, candidates=DEFAULT_CANDIDATES,
                      threads: Optional[int] = None, log=lambda msg: None) -> PaddingResult:
    """Sweep ``candidates`` box paddings on the persons of the COCO keypoint file ``annotations`` (photos in
    ``images``, default ``images/`` beside it) and write ``model_path`` with the best one to ``out_path``
    (default: in place; written atomically). Every crop is cut, run and decoded by the runtime's own code,
    without flip test, as ``PosePredictor()`` runs by default. The previous padding is always measured too.
    Raises InputError for bad arguments or data or an ``out_path`` that cannot be written (nothing written,
    checked before the sweep), ExportError when writing fails or the written metadata does not read back.
    A new padding drops the score table and takes a presence head out (both were measured at the old one).
    """
    model_path = Path(model_path)
    out, session, meta = open_to_measure(model_path, out_path, annotations, threads)
    names = list(meta.keypoints)
    values = _check_candidates(list(candidates) + [meta.box_padding])
    persons = list_persons(annotations, names, images, warn=lambda w: log(f"warning: {w}"))
    if persons.keypoints is None:
        raise InputError(f"{annotations}: no ground truth to calibrate on ({persons.note})")
    index = np.arange(len(persons))
    sweep, joints, persons_used = {}, 0, 0
    for padding in values:
        trial = replace(meta, box_padding=padding)
        crops = load_crops(persons, index, trial)
        xy, shape = crop_keypoints(session, crops, trial)
        sweep[padding], _, joints = pck(crops.to_photo(xy, shape, trial), crops.keypoints, crops.visible, names,
                                        PCK_THRESHOLD)
        persons_used = len(crops)
        log(f"box padding {padding:g}: PCK@{PCK_THRESHOLD:g} {100 * sweep[padding]:.2f} ({len(crops)} persons)")
    if joints == 0:
        raise InputError(f"{annotations}: no labelled joint of a person with a measurable torso")
    best = max(sweep.values())
    # Ties go to the padding nearest the previous one: change the model only for a measured gain.
    chosen = min((p for p, v in sweep.items() if v == best), key=lambda p: abs(p - meta.box_padding))

    new_meta = meta.chosen(box_padding=chosen, extra=dict(meta.extra))
    graph = None
    if chosen != meta.box_padding and new_meta.extra.pop(CALIBRATION_KEY, None) is not None:
        log(f"the score table was measured at box padding {meta.box_padding:g}: dropped "
            "(measure it again: python -m export.score_calibration)")
    if chosen != meta.box_padding and new_meta.extra.pop(PRESENCE_KEY, None) is not None:
        # its features were pooled over crops of the old padding: the head would read other crops than it learnt
        graph = without_head
        log(f"the presence head was fitted at box padding {meta.box_padding:g}: taken out of the model "
            "(fit it again: python -m export.presence_head)")
    quant = new_meta.extra.get("quantization")
    if chosen != meta.box_padding and isinstance(quant, dict) and isinstance(quant.get("verification"), dict):
        # the int8 check's figures were measured on crops of the old padding: say so (the first such padding kept)
        verification = {"box_padding": meta.box_padding, **quant["verification"]}
        if verification["box_padding"] == chosen:  # back where they were measured
            del verification["box_padding"]
        new_meta.extra["quantization"] = {**quant, "verification": verification}
    new_meta.extra["box_padding_calibration"] = {
        "source": Path(annotations).name, "persons": persons_used, "joints": joints, "previous": meta.box_padding,
        "chosen": chosen, f"pck@{PCK_THRESHOLD:g}": {f"{p:g}": round(v, 6) for p, v in sorted(sweep.items())},
        "flip_test": False,
        "calibrated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    rewrite_metadata(model_path, new_meta, out, graph)
    return PaddingResult(out, meta.box_padding, chosen, sweep, persons_used, joints, str(annotations))


def main(argv=None) -> None:
    """``python -m export.padding``: calibrate an exported model's box padding (click is imported here only)."""
    import click

    from .quantize import model_and_persons_options, run_cli

    def parse(ctx, param, value):
        try:
            return [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @model_and_persons_options(click, "COCO keypoint file of labelled persons to calibrate on (training persons, not the ones you report on).")
    @click.option("--candidates", default=",".join(f"{c:g}" for c in DEFAULT_CANDIDATES), show_default=True,
                  callback=parse, help="Paddings to try, comma-separated (the model's own is always tried).")
    @click.option("--threads", type=click.IntRange(min=1), help="Inference threads (default: physical cores).")
    def cli(model, ann, images, out, candidates, threads):
        """Pick the box padding with the best PCK@0.2 on labelled persons; write it into the model's metadata.

        Exit codes: 0 written; 1 writing failed; 2 bad input (nothing written).
        """
        sys.exit(run_cli(lambda: calibrate_padding(model, ann, images, out, candidates, threads,
                                                   log=lambda m: click.echo(m, err=True)), click.echo))

    cli.main(args=argv, prog_name="python -m export.padding")


if __name__ == "__main__":
    main()
