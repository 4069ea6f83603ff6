"""Measure what a model's joint scores mean, on labelled persons new to it, and write it into its metadata.

Why: a sigmoid heatmap's peak is not a probability a user can act on. On the default's validation persons
joints peaking at 0.4-0.5 lie within 0.2 torso of their labels 76 % of the time, and the fast model's joints at
the same peak 80 %: a raw threshold means something else on every model. This runs the model through the runtime
(``PosePredictor``, the file's own box padding) on the annotation file's tight boxes, and on the photos holding
one annotated person also without a box, found by the search as ``fasterpose predict`` finds it (the search keeps
the best-scoring of several windows, which raises scores: it gets tables of its own), each plain and flip-tested.
For each it fits the chance that a joint is within 0.2 torso (PCK's rule) as a monotone function of its score:
isotonic regression (pool-adjacent-violators) over ``bins`` equal-count score bins. The runtime then reports
``confidences`` beside the scores (``fasterpose_rt/confidence.py``). Weights and graph are untouched.

How well the fit holds on persons it has not seen is measured by two-fold cross-fitting (fit on every other
person, read the others, and the other way round) and recorded with the table, next to the raw scores' error.
Calibrate on persons the model did not train on; the table changes no keypoint, so PCK is untouched, and the
person score (the mean raw score) stays as it was, so is COCO AP.

Python API::

    result = calibrate_scores("model.onnx", "lspet_val.json", "lspet/images", out_path="calibrated.onnx")
    print(result.summary())

Command line: ``python -m export.score_calibration --help``.
"""
from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from fasterpose_rt.confidence import CALIBRATION_KEY, DEFAULT_BINS, cross_fitted, fit_isotonic
from fasterpose_rt.evaluate import EvalError, in_model_order, load_annotations, match_keypoints, predict_annotations
from fasterpose_rt.annotated_photos import listed_size, read_as_listed
from fasterpose_rt.inputs import InputReadError
from fasterpose_rt.metrics import _hits, score_reliability
from fasterpose_rt.predictor import PosePredictor
from fasterpose_rt.session import ModelError
from fasterpose_rt.tracking import find_poses_batch

from .errors import InputError
from .metadata import rewrite_metadata
from .outputs import check_writable

__all__ = ["ScoreCalibrationResult", "calibrate_scores", "main"]

WITHIN = 0.2  # torso fraction: PCK's rule, the product's accuracy target
MIN_JOINTS = 200  # fewer labelled joints give a table too noisy to ship


@dataclass
class ScoreCalibrationResult:
    """path written; per mode ("plain", "flip"): {"ece_raw", "ece_cross_fitted", "joints"}; persons, source."""

    path: Path
    modes: Dict[str, dict]
    persons: int
    source: str

    def summary(self) -> str:
        parts = [f"{m}: calibration error {100 * v['ece_raw']:.1f} -> {100 * v['ece_cross_fitted']:.1f} points "
                 f"(cross-fitted, {v['joints']} joints)" for m, v in self.modes.items()]
        return f"{self.path}: score calibration on {self.persons} persons of {Path(self.source).name}; " + "; ".join(parts)


def ground_truth(data: dict, k: int):
    """(gt (A, K, 2) labelled photo px, labelled (A, K) bool) of the A annotations; no keypoints: none labelled."""
    gt = np.zeros((len(data["annotations"]), k, 3))
    for i, ann in enumerate(data["annotations"]):
        if isinstance(ann.get("keypoints"), list) and len(ann["keypoints"]) == 3 * k:
            gt[i] = np.nan_to_num(np.asarray(ann["keypoints"], np.float64).reshape(k, 3))
    return gt[:, :, :2], gt[:, :, 2] > 0


def _predict_boxed(pred, data, images, category_id, source):
    """Every annotated person in its own box, as ``fasterpose eval`` runs it: (xy (A, K, 2), scores (A, K))."""
    failed: list = []
    scores = np.full((len(data["annotations"]), pred.metadata.num_keypoints), np.nan)
    try:
        _, _, xy = predict_annotations(pred, data, images, category_id, source,
                                       lambda path, reason: failed.append(f"{path}: {reason}"), scores=scores)
    except EvalError as e:
        raise InputError(str(e)) from None
    if failed:  # a table measured on part of the persons would not say so
        raise InputError(f"{len(failed)} photos could not be read, e.g. {failed[0]}")
    return xy, scores


def predict_searched(pred, data, images):
    """The person of every photo that holds exactly one annotated person, found without a box as ``fasterpose
    predict`` finds it (searched and refined): (xy (A, K, 2), scores (A, K)), NaN for the other annotations. Photos
    are read in the frame of the file's width and height (:func:`fasterpose_rt.annotated_photos.read_as_listed`), where its
    keypoints are; the boxed runs before have warned about those read otherwise."""
    a, k = len(data["annotations"]), pred.metadata.num_keypoints
    xy, scores = np.full((a, k, 2), np.nan), np.full((a, k), np.nan)
    by_photo: Dict[int, list] = {}
    for i, ann in enumerate(data["annotations"]):
        by_photo.setdefault(ann.get("image_id"), []).append(i)
    files = {im["id"]: im["file_name"] for im in data["images"]}
    sizes = {im["id"]: listed_size(im) for im in data["images"]}
    alone = [(i[0], files[image_id], sizes[image_id]) for image_id, i in by_photo.items()
             if len(i) == 1 and image_id in files]
    for start in range(0, len(alone), pred.batch_size):
        group = alone[start:start + pred.batch_size]
        try:
            photos = [read_as_listed(Path(images) / name, size)[0] for _, name, size in group]
        except InputReadError as e:
            raise InputError(str(e)) from None
        # every guess (min_presence=0): the presence rule reads the table, so the table is fitted without it
        for (i, _, _), res in zip(group, find_poses_batch(pred, photos, min_presence=0)):
            if len(res):
                xy[i], scores[i] = res.keypoints[0], res.scores[0]
    return xy, scores


def _rounded(knots, chances) -> Tuple[List[float], List[float]]:
    """The table's knots and chances to 4 digits, as the metadata keeps them; knots that rounding makes equal (the
    scores of a barely trained model lie close together) are one, with the higher chance (chances never fall)."""
    xs: List[float] = []
    ys: List[float] = []
    for x, y in zip(knots, chances):
        x, y = round(float(x), 4), round(float(y), 4)
        if xs and x <= xs[-1]:
            ys[-1] = max(ys[-1], y)
        else:
            xs.append(x)
            ys.append(y)
    return xs, ys


def _fit_table(scores, hit, use, xy, gt, labelled, names, bins):
    """The table fitted on every counted joint, with the calibration error of the raw scores and of the scores
    read, two-fold cross-fitted, through the table fitted on the other half of the persons."""
    knots, chances = fit_isotonic(scores[use], hit[use], bins)
    knots, chances = _rounded(knots, chances)
    crossed = cross_fitted(scores, hit, use, scores, bins)
    raw = score_reliability(xy, gt, labelled, names, np.where(use, scores, np.nan), WITHIN)
    cross = score_reliability(xy, gt, labelled, names, np.where(use, crossed, np.nan), WITHIN)
    return {"scores": knots, "chances": chances,
            "joints": int(use.sum()), "persons": int(use.any(axis=1).sum()), "ece_raw": round(raw["ece"], 4),
            "ece_cross_fitted": round(cross["ece"], 4)}


def calibrate_scores(model_path, annotations, images=None, out_path=None, bins: int = DEFAULT_BINS,
                     threads: Optional[int] = None, flip: bool = True, search: bool = True,
                     log=lambda msg: None) -> ScoreCalibrationResult:
    """Fit the score tables of ``model_path`` on the persons of the COCO keypoint file ``annotations`` (photos in
    ``images``, default ``images/`` beside it) and write the model with them to ``out_path`` (default: in place;
    atomically): persons in their labelled boxes, plain and (``flip``) flip-tested, and (``search``) the persons of
    the photos holding one annotated person, found by the search as ``fasterpose predict`` finds them (skipped,
    and said so, when they hold too few joints). Raises InputError for bad arguments or data (nothing written).
    """
    model_path = Path(model_path)
    if bins < 2:
        raise InputError(f"bins must be at least 2, got {bins}")
    out = check_writable(out_path if out_path is not None else model_path,  # before the predictions
                         [("the --ann file", annotations)])
    images = Path(images) if images is not None else Path(annotations).parent / "images"
    try:
        data = load_annotations(annotations)
        predictors = {False: PosePredictor(model_path, threads=threads)}  # and {True: flip-tested}, made if asked
        meta = predictors[False].metadata
        names = list(meta.keypoints)
        data = in_model_order(data, names, str(annotations), lambda w: log(f"warning: {w}"))
        category_id = match_keypoints(data, names, str(annotations), need_sigmas=False).category["id"]
    except (EvalError, ModelError) as e:
        raise InputError(str(e)) from None
    gt, labelled = ground_truth(data, len(names))
    block: dict = {"within": WITHIN, "source": Path(annotations).name, "box_padding": meta.box_padding, "bins": bins}
    modes: Dict[str, dict] = {}
    wanted = [(m, f, s) for m, f, s in (("plain", False, False), ("flip", True, False), ("searched", False, True),
                                        ("searched_flip", True, True)) if (flip or not f) and (search or not s)]
    for mode, flipped, searched in wanted:
        if flipped not in predictors:
            predictors[flipped] = PosePredictor(model_path, threads=threads, flip_test=True)
        pred = predictors[flipped]
        if searched:
            xy, scores = predict_searched(pred, data, images)
        else:
            xy, scores = _predict_boxed(pred, data, images, category_id, str(annotations))
        hit, use = _hits(np.nan_to_num(xy), gt, labelled, names, WITHIN)
        use &= np.isfinite(scores)
        if use.sum() < MIN_JOINTS:
            where = "of persons alone in their photos " if searched else ""
            problem = (f"{annotations}: {int(use.sum())} labelled joints {where}with a measurable torso; a score "
                       f"table needs at least {MIN_JOINTS}")
            if searched:  # the boxes' tables stand in for searched persons
                log(f"{mode}: no table ({problem})")
                continue
            raise InputError(problem)
        block[mode] = _fit_table(scores, hit, use, np.nan_to_num(xy), gt, labelled, names, bins)
        t = block[mode]
        modes[mode] = {"ece_raw": t["ece_raw"], "ece_cross_fitted": t["ece_cross_fitted"], "joints": t["joints"]}
        log(f"{mode}: {len(t['scores'])} knots; calibration error {100 * t['ece_raw']:.1f} points raw, "
            f"{100 * t['ece_cross_fitted']:.1f} cross-fitted")
    persons = block["plain"]["persons"]
    block["persons"] = persons
    block["calibrated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    new_meta = replace(meta, extra={**meta.extra, CALIBRATION_KEY: block})
    rewrite_metadata(model_path, new_meta, out)
    return ScoreCalibrationResult(out, modes, persons, str(annotations))


def main(argv=None) -> None:
    """``python -m export.score_calibration`` (click is imported here only)."""
    import click

    from .quantize import model_and_persons_options, run_cli

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @model_and_persons_options(click, "COCO keypoint file of labelled persons the model did not train on.")
    @click.option("--bins", type=click.IntRange(min=2), default=DEFAULT_BINS, show_default=True,
                  help="Equal-count score bins the monotone fit starts from.")
    @click.option("--flip/--no-flip", default=True, show_default=True, help="Also fit the flip test's tables.")
    @click.option("--search/--no-search", default=True, show_default=True,
                  help="Also fit tables for persons the search finds (photos of one annotated person).")
    @click.option("--threads", type=click.IntRange(min=1), help="Inference threads (default: physical cores).")
    def cli(model, ann, images, out, bins, flip, search, threads):
        """Measure what the model's joint scores mean (the chance a joint is within 0.2 torso of its label) and
        write the table into its metadata.

        Exit codes: 0 written; 1 writing failed; 2 bad input (nothing written).
        """
        sys.exit(run_cli(lambda: calibrate_scores(model, ann, images, out, bins, threads, flip, search,
                                                  log=lambda m: click.echo(m, err=True)), click.echo))

    cli.main(args=argv, prog_name="python -m export.score_calibration")


if __name__ == "__main__":
    main()
