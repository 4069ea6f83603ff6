"""Choose how a model's heatmap peaks one pixel from the map's edge are refined, on labelled persons.

Why: DARK blurs the map around a peak before its sub-pixel step, and next to the edge the blur copies the border
pixel into the neighbourhood, which pushes such a peak outwards (by 0.7 heatmap px for a clean Gaussian; 2.8 crop
px on the default model's 44x32 maps). Whether decoding those peaks from the unblurred map does better is a
measured property of the trained weights, not of the decoder: on the bundled models' persons in their boxes it
helps the default and costs the fast model (``python -m benchmarks.decoding --ann ...``). So this runs the model
once over labelled persons (training persons, never the ones you report on), decodes every heatmap both ways
(``fasterpose_rt.decode.EDGE_PEAKS``), takes the one with the higher PCK@0.2 (ties: the higher PCK@0.1, then the
model's present choice) unless it loses where persons are found without a box (the search's windows cut persons,
so far more of their peaks lie next to the edge: the default's case on validation, docs/default_model.md, session
60), and writes it into the model's ``fasterpose`` metadata (``edge_peaks``) with what was measured. Weights and graph are untouched: float and int8 files alike, nothing added at run time. The score table
and presence head stay (a joint's peak value, what they read, does not change; its position moves by under a
pixel for the few joints next to the edge).

Python API::

    result = choose_edge_peaks("model.onnx", "lspet_train1k.json", "lspet/images", out_path="tuned.onnx")
    print(result.summary())

Command line: ``python -m export.edge_peaks --help``.
"""
from __future__ import annotations

import datetime
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from fasterpose_rt.decode import EDGE_PEAKS
from fasterpose_rt.metrics import pck

from .crops import crop_keypoints_each, list_persons, load_crops
from .errors import InputError
from .metadata import open_to_measure, rewrite_metadata

__all__ = ["EdgePeaksResult", "choose_edge_peaks", "main"]

THRESHOLDS = (0.2, 0.1)  # the first decides; the second breaks its ties
SEARCHED = "searched"  # the key of the searched persons' PCK@0.2 in ``measured``


@dataclass
class EdgePeaksResult:
    """path written; previous and chosen way; {way: {threshold: PCK in their boxes, "searched": PCK@0.2 of the
    persons alone in their photos found by the search (absent: not measured)}} on ``persons`` persons (``joints``
    labelled joints, ``edge_joints`` of them with their peak one pixel from the map's edge) of ``source``."""

    path: Path
    previous: str
    chosen: str
    measured: Dict[str, Dict[float, float]]
    persons: int
    joints: int
    edge_joints: int
    source: str

    def summary(self) -> str:
        ways = "; ".join(f"{way}: " + ", ".join(f"PCK@{t:g} {100 * v:.2f}" if t != SEARCHED else
                                                 f"searched PCK@0.2 {100 * v:.2f}" for t, v in by.items())
                         for way, by in self.measured.items())
        return (f"{self.path}: edge peaks {self.previous} -> {self.chosen} (on {self.persons} persons of "
                f"{Path(self.source).name}, {self.joints} joints, {self.edge_joints} next to the map's edge: {ways})")


def choose_edge_peaks(model_path, annotations, images=None, out_path=None, threads: Optional[int] = None,
                      search: bool = True, log=lambda msg: None) -> EdgePeaksResult:
    """Decode the persons of the COCO keypoint file ``annotations`` (photos in ``images``, default ``images/``
    beside it) every way of EDGE_PEAKS from one run of ``model_path`` and write the model with the better one to
    ``out_path`` (default: in place; written atomically). Crops are cut and run by the runtime's own code at the
    model's box padding, without flip test, as ``PosePredictor()`` runs by default. With ``search``, the persons
    alone in their photos are also found without a box, as ``fasterpose predict`` finds them, each way: a way
    that wins in the boxes but loses there is not taken (a search window cuts persons, so many more of their peaks
    lie next to the edge). Raises InputError for bad arguments or data or an ``out_path`` that cannot be written
    (nothing written, checked before the run), ExportError when writing fails or the written metadata does not
    read back."""
    model_path = Path(model_path)
    out, session, meta = open_to_measure(model_path, out_path, annotations, threads)
    names = list(meta.keypoints)
    persons = list_persons(annotations, names, images, warn=lambda w: log(f"warning: {w}"))
    if persons.keypoints is None:
        raise InputError(f"{annotations}: no ground truth to choose on ({persons.note})")
    crops = load_crops(persons, np.arange(len(persons)), meta)
    decoded, shape = crop_keypoints_each(session, crops, meta, EDGE_PEAKS)
    measured: Dict[str, Dict[float, float]] = {way: {} for way in EDGE_PEAKS}
    joints = 0
    for way, xy in decoded.items():
        for t in THRESHOLDS:
            measured[way][t], _, joints = pck(crops.to_photo(xy, shape, meta), crops.keypoints, crops.visible, names,
                                              t)
        log(f"edge peaks {way}: " + ", ".join(f"PCK@{t:g} {100 * v:.2f}" for t, v in measured[way].items()))
    if joints == 0:
        raise InputError(f"{annotations}: no labelled joint of a person with a measurable torso")
    # Ties on both go to the present choice: change the model only for a measured gain.
    key = {way: tuple(measured[way][t] for t in THRESHOLDS) for way in EDGE_PEAKS}
    best = max(key.values())
    chosen = meta.edge_peaks if key[meta.edge_peaks] == best else max(EDGE_PEAKS, key=key.__getitem__)
    if search and chosen != meta.edge_peaks:  # asked only when the boxes would change the model
        for way in (meta.edge_peaks, chosen):
            measured[way][SEARCHED] = _searched_pck(model_path, way, annotations, images, names, threads, log)
            log(f"edge peaks {way}: searched PCK@0.2 {100 * measured[way][SEARCHED]:.2f}")
        if measured[chosen][SEARCHED] < measured[meta.edge_peaks][SEARCHED]:
            chosen = meta.edge_peaks
    differs = ~np.isclose(decoded[EDGE_PEAKS[0]], decoded[EDGE_PEAKS[1]]).all(axis=2)  # (N, K): next to the edge
    edge_joints = int((differs & crops.visible).sum())
    new_meta = meta.chosen(edge_peaks=chosen, extra=dict(meta.extra))
    new_meta.extra["edge_peaks_choice"] = {
        "source": Path(annotations).name, "persons": len(crops), "joints": joints, "edge_joints": edge_joints,
        "previous": meta.edge_peaks, "chosen": chosen, "box_padding": meta.box_padding, "flip_test": False,
        **{f"pck@{t:g}": {way: round(measured[way][t], 6) for way in EDGE_PEAKS} for t in THRESHOLDS},
        **({"searched_pck@0.2": {way: round(measured[way][SEARCHED], 6) for way in EDGE_PEAKS}}
           if all(SEARCHED in measured[way] for way in EDGE_PEAKS) else {}),
        "chosen_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    rewrite_metadata(model_path, new_meta, out)
    return EdgePeaksResult(out, meta.edge_peaks, chosen, measured, len(crops), joints, edge_joints,
                           str(annotations))


def _searched_pck(model_path, way: str, annotations, images, names, threads, log) -> float:
    """PCK@0.2 of the persons alone in their photos of ``annotations``, found by the search (every guess) as
    ``fasterpose predict`` finds them, decoding peaks next to the edge ``way``; a person not found counts as missed."""
    from fasterpose_rt.evaluate import EvalError, in_model_order, load_annotations
    from fasterpose_rt.predictor import PosePredictor

    from .score_calibration import ground_truth, predict_searched

    images = Path(images) if images is not None else Path(annotations).parent / "images"
    try:
        data = in_model_order(load_annotations(annotations), names, str(annotations), lambda w: None)
    except EvalError as e:
        raise InputError(str(e)) from None
    pred = PosePredictor(model_path, threads=threads)
    pred.metadata = replace(pred.metadata, edge_peaks=way)
    xy, _ = predict_searched(pred, data, images)
    per_photo = Counter(a.get("image_id") for a in data["annotations"])
    alone = np.array([per_photo[a.get("image_id")] == 1 for a in data["annotations"]])
    gt, labelled = ground_truth(data, len(names))
    if not alone.any():
        raise InputError(f"{annotations}: no photo holds one annotated person alone, to search; give --no-search")
    return pck(np.nan_to_num(xy[alone]), gt[alone], labelled[alone], names, THRESHOLDS[0])[0]


def main(argv=None) -> None:
    """``python -m export.edge_peaks``: choose how a model's edge peaks are refined (click is imported here only)."""
    import click

    from .quantize import model_and_persons_options, run_cli

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @model_and_persons_options(click, "COCO keypoint file of labelled persons to choose on (training persons, not "
                                      "the ones you report on).")
    @click.option("--search/--no-search", default=True, show_default=True,
                  help="Before changing the model, also find the persons alone in their photos without a box, each "
                       "way: a way that loses there is not taken.")
    @click.option("--threads", type=click.IntRange(min=1), help="Inference threads (default: physical cores).")
    def cli(model, ann, images, out, search, threads):
        """Decode heatmap peaks next to the map's edge blurred or unblurred, whichever scores the better PCK@0.2
        (then PCK@0.1) on labelled persons in their boxes without losing where the search finds them; write the
        choice into the model's metadata.

        Exit codes: 0 written; 1 writing failed; 2 bad input (nothing written).
        """
        sys.exit(run_cli(lambda: choose_edge_peaks(model, ann, images, out, threads, search,
                                                   log=lambda m: click.echo(m, err=True)), click.echo))

    cli.main(args=argv, prog_name="python -m export.edge_peaks")


if __name__ == "__main__":
    main()
