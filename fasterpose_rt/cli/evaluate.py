"""``fasterpose eval``: COCO keypoint AP/AR and PCK@0.2 of a model on an annotation file's persons (or a
detector's boxes), against a baseline model if asked, printed and written as JSON."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from ..detections import DET_SCORE, OKS_NMS
from ..metadata import BOX_PADDING_RANGE
from ..results import atomic_write_text
from ..session import MAX_THREADS
from .common import (BOX_PADDING_HELP, EXIT_FAILED, MAX_BATCH, Count, FiniteFloat,
                     NamedPath, UsageProblem, backend_option, debug_option, given, guarded, load_predictor,
                     model_options, out_is_one_of, out_problem, plural, say, trace)


@click.command(name="eval")
@click.option("--coco", "coco_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="COCO keypoint annotation file; its person boxes are the inputs.")
@click.option("--images", "images_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the annotation file's photos (file_name is relative to it; an absolute file_name, "
                   "or one with '..', is read where it leads, as training reads it).")
@model_options
@backend_option
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=None,
              help="CPU threads [default: physical cores].")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=16, show_default=True,
              help="Most person crops per model call (the persons of several photos share a call).")
@click.option("--flip", is_flag=True, help="Flip test.")
@click.option("--box-padding", type=FiniteFloat(*BOX_PADDING_RANGE), default=None,
              help=BOX_PADDING_HELP[:-1] + " --baseline keeps its own.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Another ONNX model to score on the same persons: its PCK and the paired 95 % interval of the "
                   "difference (is the model really better?).")
@click.option("--detections", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="COCO detection results (a JSON list of {image_id, category_id, bbox, score}: a person "
                   "detector's boxes on the file's photos): run the model on these boxes instead of the file's own, "
                   "as COCO's top-down protocol does (each pose scored box score x mean joint score above 0.2, "
                   "duplicates dropped by OKS; docs/usage.md, 'Evaluating with a detector's boxes'). An entry with a "
                   "file_name (predict's results) goes to the photo of that name, whatever its image_id (the path "
                   "may end in the file's name: /data/val2017/a.jpg is val2017/a.jpg); others by image_id.")
@click.option("--det-score", type=FiniteFloat(min=0), default=DET_SCORE, show_default=True,
              help="With --detections: leave out boxes scoring below this.")
@click.option("--oks-nms", type=FiniteFloat(min=0, max=1), default=OKS_NMS, show_default=True,
              help="With --detections: of two poses of a photo overlapping by more OKS than this, the "
                   "lower-scored is dropped (1: keep all).")
@click.option("--refine", "refine_passes", type=Count(0), default=0, show_default=True,
              help="Most extra passes per person on the box around the joints it found (as predict --refine): "
                   "turns a detector's loose box into the tight box the model is calibrated for.")
@click.option("--out", type=NamedPath(dir_okay=False, readable=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@debug_option
@guarded
def eval_cmd(coco_file, images_dir, model, variant, backend, threads, batch_size, flip, box_padding, baseline,
             detections, det_score, oks_nms, refine_passes, out, quiet, debug):
    """COCO keypoint AP/AR (pycocotools) and PCK@0.2 with the annotation file's person boxes, or a person
    detector's (--detections)."""
    from ..detections import DetectionsError, load_detections
    from ..evaluate import (EvalError, MissingExtra, NotComputed, coco_ap, load_annotations, match_keypoints,
                           matched_persons, pck_report, persons_to_evaluate, predict_annotations, predict_detections)

    for option in ("det_score", "oks_nms"):
        if given(option) and detections is None:
            raise click.UsageError(f"--{option.replace('_', '-')} applies to the boxes of --detections: give "
                                   "--detections")
    if out is not None:  # before the work: a report that cannot be written is known now
        problem = out_problem(out)
        if problem is not None:
            raise UsageProblem(f"cannot write the report to {out}: {problem}")
        same = out_is_one_of(out, [(f"the {option} file", p) for option, p in (
            ("--coco", coco_file), ("--detections", detections), ("--model", model), ("--baseline", baseline))])
        if same is not None:  # the report would replace an input (predict refuses the same)
            raise UsageProblem(f"cannot write the report to {out}: it is {same}; give --out another file")
    notes: list = []
    try:
        data = load_annotations(coco_file, warnings=notes)
        pred = load_predictor(model, variant, threads, batch_size, flip, debug, box_padding, backend)
        # sigmas only where OKS is needed to run: --detections' duplicates and matching; AP alone says why not
        match = match_keypoints(data, pred.keypoint_names, str(coco_file), pred.flip_pairs,
                                need_sigmas=detections is not None)
        data, cat, columns = match.restrict(data), match.category, match.model_columns if match.partial else None
        if out is not None and os.path.isfile(out):  # the report would replace a photo it scores (a link too)
            there = os.stat(out)
            photo = next((im["file_name"] for im in data["images"] if _same_file(there, images_dir, im["file_name"])),
                         None)
            if photo is not None:
                raise UsageProblem(f"cannot write the report to {out}: it is the photo {photo} the --coco file "
                                   "lists; give --out another file")
        persons_to_evaluate(data, cat["id"], str(coco_file))
        other = load_predictor(baseline, None, threads, batch_size, flip, debug, backend=backend) if baseline \
            else None
        if other is not None and other.keypoint_names != pred.keypoint_names:
            raise EvalError(f"--baseline {baseline} predicts other keypoints ({len(other.keypoint_names)}) "
                            f"than the model ({len(pred.keypoint_names)}); they cannot be compared")
        found = None
        if detections is not None:
            names = {im["id"]: im["file_name"] for im in data["images"]}  # load_annotations checked them
            found, det_counts = load_detections(detections, names, cat["id"], file_names=names)
            found = {i: (b[sc >= det_score], sc[sc >= det_score]) for i, (b, sc) in found.items()}
    except (EvalError, DetectionsError) as e:
        trace(debug)
        raise UsageProblem(str(e)) from None
    for w in match.warnings + notes:
        say(f"warning: {w}")
    if found is not None:
        for key, what in (("other_images", "name photos the annotation file does not list"),
                          ("other_files", "name files the annotation file does not list (e.g. "
                                          f"{det_counts['other_file_example']!r})"),
                          ("other_category", "are of another category"), ("empty_boxes", "have empty boxes")):
            if det_counts[key]:
                say(f"warning: {detections}: {det_counts[key]} of {det_counts['entries']} detections {what}; "
                     "left out")
        if not any(len(scores) for _, scores in found.values()):  # found nobody anywhere: AP 0 is the answer, said
            kept = f" scoring --det-score {det_score:g} or more" if det_counts["entries"] else ""
            say(f"warning: {detections} holds no detections{kept}: every person counts as missed")
    failed = []

    def on_fail(path, reason):
        failed.append(str(path))
        say(f"error: {path}: {reason}")

    def wrap(ids):
        # disable=None: drawn on a terminal only, not into a log of stderr
        return tqdm(ids, desc="eval", unit="photo", disable=True if quiet else None, file=sys.stderr)

    scores = np.full((len(data["annotations"]), len(match.names)), np.nan)

    def run(predictor, report_fail, keep_scores=None, warn=lambda msg: say(f"warning: {msg}")):
        if found is None:
            return predict_annotations(predictor, data, images_dir, cat["id"], str(coco_file), report_fail, wrap,
                                       scores=keep_scores, columns=columns, refine_passes=refine_passes, warn=warn,
                                       decoder_lines=True)  # (a damaged photo named: every decode here is a reader's)
        return predict_detections(predictor, data, images_dir, cat["id"], str(coco_file), found, match.sigmas,
                                  report_fail, wrap, scores=keep_scores, columns=columns,
                                  refine_passes=refine_passes, nms_threshold=oks_nms, warn=warn, decoder_lines=True)

    try:
        results, done, kp = run(pred, on_fail, scores)
    except EvalError as e:
        raise UsageProblem(str(e)) from None
    other_kp = None
    if other is not None:  # same photos, same boxes; what failed or was warned of above is already reported
        _, _, other_kp = run(other, lambda path, reason: None, warn=lambda msg: None)
    report = {"model": pred.model_path, "backend": pred.backend, "box_padding": pred.box_padding,
              "annotations": str(coco_file),
              "photos": len(done), "persons": len(results), "failed": failed, "refine": refine_passes,
              "keypoints": match.names if match.partial else None, "detections": None, "coco": None,
              "coco_note": None}
    if found is not None:
        matched, labelled = matched_persons(kp)
        report["detections"] = {"file": str(detections), "det_score": det_score, "oks_nms": oks_nms,
                                "boxes": int(sum(len(found[i][1]) for i in done)), **det_counts,
                                "persons_labelled": labelled, "persons_matched": matched}
    ap_failed = False
    try:
        if match.no_sigmas is not None:
            raise NotComputed(match.no_sigmas)
        report["coco"] = coco_ap(data, results, done, cat["id"], match.sigmas)
    except NotComputed as e:
        report["coco_note"] = str(e)
    except MissingExtra as e:
        report["coco_note"] = str(e)
        say(f"note: {e}")
    except Exception as e:  # pycocotools choking on something the checks let through: PCK is still reported
        trace(debug)
        report["coco_note"] = f"pycocotools failed: {type(e).__name__}: {e}"
        say(f"error: COCO AP not computed: {report['coco_note']}")
        ap_failed = True  # a run that could not compute what it was asked for is not ok (exit 1)
    confidences = None if pred.calibration is None else pred.calibration(scores)  # NaN stays NaN
    report.update({"pck@0.2": pck_report(data, kp, match.names, done, 0.2, match.flip_pairs, other_kp, scores,
                                         confidences)})
    if pred.calibration is not None and "by_confidence" in report["pck@0.2"]:
        report["pck@0.2"]["by_confidence"]["table_source"] = pred.calibration.source
        report["pck@0.2"]["by_confidence"]["in_sample"] = pred.calibration.source == Path(coco_file).name
    if other is not None and "vs_baseline" in report["pck@0.2"]:
        report["pck@0.2"]["vs_baseline"]["model"] = other.model_path
    _print_eval(report)  # before writing it: a write failing now does not lose the figures
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2, allow_nan=False) + "\n")  # NaN is no JSON
    if report["coco"] is None and report["pck@0.2"]["pck"] is None:
        reasons = dict.fromkeys([report["coco_note"], report["pck@0.2"]["reason"]])  # each once, in order
        say(f"error: nothing was evaluated: {'; '.join(reasons)}")
        sys.exit(EXIT_FAILED)
    if failed or ap_failed:
        sys.exit(EXIT_FAILED)


def _print_eval(report: dict) -> None:
    det = report.get("detections")
    refined = f", refined up to {report['refine']} times" if report.get("refine") else ""
    refined += f", backend {report['backend']}" if report.get("backend", "onnxruntime") != "onnxruntime" else ""
    click.echo(f"model {report['model']} (box padding {report['box_padding']:g}{refined}): "
               f"{plural(report['photos'], 'photo')}, {plural(report['persons'], 'person' if det is None else 'pose')}")
    if det is not None:
        click.echo(f"boxes: {plural(det['boxes'], 'detection')} of {det['file']} scoring >= {det['det_score']:g}; "
                   f"poses kept after OKS-NMS {det['oks_nms']:g}: {report['persons']}; labelled persons a pose "
                   f"matched: {det['persons_matched']} of {det['persons_labelled']} (PCK counts the others' joints "
                   "as misses)")
        if det.get("remapped"):
            click.echo(f"  {plural(det['remapped'], 'detection')} placed by file_name: the image_id differs from "
                       "the annotation file's id of that photo")
    if report.get("keypoints"):
        click.echo(f"on the {len(report['keypoints'])} keypoints the model and the file share: "
                   f"{', '.join(report['keypoints'])}")
    if report["coco"] is not None:
        c = report["coco"]
        click.echo("COCO keypoints  " + "  ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in c.items()))
    else:
        click.echo(f"COCO keypoints  not computed: {report['coco_note']}")
    p = report["pck@0.2"]
    if p["pck"] is None:
        click.echo(f"PCK@0.2         not computed: {p['reason']}")
    else:
        low, high = p["ci95"]
        click.echo(f"PCK@0.2 (torso) {p['pck']:.3f} over {p['joints']} joints "
                   f"(95 % interval {low:.3f}-{high:.3f}, persons resampled)")
        click.echo("  " + "  ".join(f"{n} {'n/a' if v is None else f'{v:.2f}'}" for n, v in p["per_keypoint"].items()))
        if p.get("by_threshold"):
            click.echo("  by threshold: " + "  ".join(f"PCK@{t} {v:.3f}" for t, v in p["by_threshold"].items()))
        bins = [b for b in p.get("by_orientation") or [] if b["pck"] is not None]
        if bins:
            click.echo("  by body orientation: " + "  ".join(
                f"{b['orientation']}{'' if b['degrees'] is None else ' %g-%g°' % tuple(b['degrees'])} "
                f"{b['pck']:.2f} ({plural(b['persons'], 'person')})" for b in bins))
        for key, what in (("by_score", "joint score"), ("by_confidence", "confidence")):
            r = p.get(key)
            if r and r["bins"]:
                note = " (measured on this file's persons: in-sample)" if r.get("in_sample") else ""
                click.echo(f"  right (PCK) by {what}: " + "  ".join(
                    f"{b['low']:.1f}-{b['high']:.1f} {b['pck']:.2f} ({b['joints']})" for b in r["bins"])
                    + f"; calibration error {100 * r['ece']:.1f} points{note}")
        lr = p.get("left_right")
        if lr and lr["misses"]:
            click.echo(f"  left/right: {lr['mirror_hits']} of {lr['misses']} misses land on the mirror joint's label; "
                       f"better mirrored: {plural(lr['persons_mirrored'], 'person')} "
                       f"(PCK {lr['pck_mirror_forgiven']:.3f} if forgiven)")
        vs = p.get("vs_baseline")
        if vs:
            low, high = vs["ci95"]
            click.echo(f"  vs baseline {vs['model']}: PCK {vs['pck']:.3f}, difference {vs['difference']:+.3f} "
                       f"(95 % interval {low:+.3f} to {high:+.3f}, paired, persons resampled)")


def _same_file(there: os.stat_result, folder, name: str) -> bool:
    """Whether the photo ``name`` in ``folder`` is the file ``there`` describes (hard and symbolic links too)."""
    try:
        return os.path.samestat(there, os.stat(os.path.join(folder, name)))
    except OSError:  # a missing photo is named when it is read
        return False
