"""Choose how a model's heatmap peaks one pixel from the map's edge are refined, on labelled persons.

Why: DARK blurs the map around a peak before its sub-pixel step, and next to the edge the blur copies the border
pixel into the neighbourhood, which pushes such a peak outwards (by 0.7 heatmap px for a clean Gaussian; 2.8 crop
px on the default model's 44x32 maps). Whether decoding those peaks from the unblurred map does better is a
measured property of the trained weights, not of the decoder: on the bundled models' validation and training
persons it helps the default and costs the fast model (``python -m benchmarks.decoding --ann ...``). So this runs
the model once over labelled persons (training persons, never the ones you report on), decodes every heatmap both
ways (``fasterpose_rt.decode.EDGE_PEAKS``), keeps the one with the higher PCK@0.2 (ties: the higher PCK@0.1, then
the model's present choice), and writes it into the model's ``fasterpose`` metadata (``edge_peaks``) with what was
measured. Weights and graph are untouched: float and int8 files alike, nothing added at run time. The score table
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


@dataclass
class EdgePeaksResult:
    """path written; previous and chosen way; {way: {threshold: PCK}} on ``persons`` persons (``joints`` labelled
    joints, ``edge_joints`` of them with their peak one pixel from the map's edge) of ``source``."""

    path: Path
    previous: str
    chosen: str
    measured: Dict[str, Dict[float, float]]
    persons: int
    joints: int
    edge_joints: int
    source: str

    def summary(self) -> str:
        ways = "; ".join(f"{way}: " + ", ".join(f"PCK@{t:g} {100 * v:.2f}" for t, v in by.items())
                         for way, by in self.measured.items())
        return (f"{self.path}: edge peaks {self.previous} -> {self.chosen} (on {self.persons} persons of "
                f"{Path(self.source).name}, {self.joints} joints, {self.edge_joints} next to the map's edge: {ways})")


def choose_edge_peaks(model_path, annotations, images=None, out_path=None, threads: Optional[int] = None,
                      log=lambda msg: None) -> EdgePeaksResult:
    """Decode the persons of the COCO keypoint file ``annotations`` (photos in ``images``, default ``images/``
    beside it) every way of EDGE_PEAKS from one run of ``model_path`` and write the model with the better one to
    ``out_path`` (default: in place; written atomically). Crops are cut and run by the runtime's own code at the
    model's box padding, without flip test, as ``PosePredictor()`` runs by default. Raises InputError for bad
    arguments or data or an ``out_path`` that cannot be written (nothing written, checked before the run),
    ExportError when writing fails or the written metadata does not read back."""
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
    differs = ~np.isclose(decoded[EDGE_PEAKS[0]], decoded[EDGE_PEAKS[1]]).all(axis=2)  # (N, K): next to the edge
    edge_joints = int((differs & crops.visible).sum())
    new_meta = replace(meta, edge_peaks=chosen, extra=dict(meta.extra))
    new_meta.extra["edge_peaks_choice"] = {
        "source": Path(annotations).name, "persons": len(crops), "joints": joints, "edge_joints": edge_joints,
        "previous": meta.edge_peaks, "chosen": chosen, "box_padding": meta.box_padding, "flip_test": False,
        **{f"pck@{t:g}": {way: round(measured[way][t], 6) for way in EDGE_PEAKS} for t in THRESHOLDS},
        "chosen_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    rewrite_metadata(model_path, new_meta, out)
    return EdgePeaksResult(out, meta.edge_peaks, chosen, measured, len(crops), joints, edge_joints,
                           str(annotations))


def main(argv=None) -> None:
    """``python -m export.edge_peaks``: choose how a model's edge peaks are refined (click is imported here only)."""
    import click

    from .quantize import model_and_persons_options, run_cli

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @model_and_persons_options(click, "COCO keypoint file of labelled persons to choose on (training persons, not "
                                      "the ones you report on).")
    @click.option("--threads", type=click.IntRange(min=1), help="Inference threads (default: physical cores).")
    def cli(model, ann, images, out, threads):
        """Decode heatmap peaks next to the map's edge blurred or unblurred, whichever scores the better PCK@0.2
        (then PCK@0.1) on labelled persons; write the choice into the model's metadata.

        Exit codes: 0 written; 1 writing failed; 2 bad input (nothing written).
        """
        sys.exit(run_cli(lambda: choose_edge_peaks(model, ann, images, out, threads,
                                                   log=lambda m: click.echo(m, err=True)), click.echo))

    cli.main(args=argv, prog_name="python -m export.edge_peaks")


if __name__ == "__main__":
    main()
