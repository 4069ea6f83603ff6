"""Is anybody there? Photos without boxes: what ``--min-presence`` costs on photos of persons, full-body and from
the waist up, and how many photos of nobody it leaves without a person.

``python -m benchmarks.person_presence [--models A.onnx ...] [--ann data/lspet_val.json] [--negatives DIR_OR_ZIP
...  [--exclude a.png b.png]]`` -> ``benchmarks/results/person_presence.{md,json}``.

Without boxes the runtime finds a person by the window search (or on the whole photo, ``--no-search``) and, asked
to (``--min-presence``), reports it only when it is there (``search.keep_present``): by the model's presence head
(the chance a person is in the crop at all, ``fasterpose_rt/presence.py``) when it has one, else when its better
half of joints average at least that confidence (raw scores for a model without a score table). Both signals are
measured for a model with a head: the rows say which. Every photo of ``--ann``
holds one labelled person, and so does each close-up cut from them (the upper body of each upright person, as a
webcam frames it: ``benchmarks.tracking.close_up_crops``): a photo where nobody is reported counts its person's
joints as missed, so PCK@0.2 is against every guess (the default), with a paired 95 % interval, and the guesses
left out are scored too. ``--negatives`` are photos with nobody in them, folders (searched recursively) or zip
files (e.g. the scikit-image wheel, whose sample pictures are person-free but for astronaut.png and camera.png, and
desktop wallpapers unpacked from Debian packages the presence heads were not fitted on: README), each picture once
(``fasterpose_rt.photo_sets``); for each threshold, how many of them still get a person, and which. One model run
per photo and way; the thresholds are applied to its result.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos, resolve_model
from benchmarks.tracking import close_up_crops, require_close_ups
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.metadata import METADATA_KEY
from fasterpose_rt.metrics import pck, pck_interval
from fasterpose_rt.presence import PRESENCE_KEY
from fasterpose_rt.photo_sets import read_photo_set
from fasterpose_rt.search import presence

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)  # --min-presence: 0 reports every guess; 0.3 the runtime's default
BATCH = 16


SIGNALS = ("head", "joints")  # the model's presence head (when it has one); its joints' confidences
SIGNAL_NAMES = {"head": "presence head", "joints": "joints"}


def guesses(pred, photos, search: bool):
    """The best guess of each photo (``min_presence=0``): keypoints (P, K, 2) and presence (P,) per signal:
    {"joints": the better half of the joints' confidences (raw scores for a model without a score table),
    "head": the presence head's chance (a model with one only)}; ``search.keep_present`` reads the head when there
    is one, else the joints."""
    xy, there = [], {"joints": [], "head": []}
    for s in range(0, len(photos), BATCH):
        for r in find_poses_batch(pred, photos[s:s + BATCH], search=search, min_presence=0):
            xy.append(r.keypoints[0])
            there["joints"].append(presence(r.scores if r.confidences is None else r.confidences)[0])
            if r.presence is not None:
                there["head"].append(r.presence[0])
    return (np.array(xy).reshape(-1, pred.metadata.num_keypoints, 2),
            {k: np.array(v, np.float64) for k, v in there.items() if len(v) or not len(photos)})


def head_cost(model, photo, rounds: int = 200):
    """What the presence head costs: one person's ``predict`` (1 thread) with the model as it is and with its head
    taken out (``export.presence_head.without_head``, its metadata block dropped), timed interleaved; returns
    {"with_ms", "without_ms", "ratio": median of per-round ratios, "rounds"}, or None for a model without a head
    or without onnx (a runtime-only install)."""
    try:
        import onnx

        from export.presence_head import without_head
    except ImportError:
        return None
    pred = PosePredictor(model, threads=1)
    if not pred.has_presence:
        return None
    bare = without_head(onnx.load(str(model)))
    for prop in bare.metadata_props:
        if prop.key == METADATA_KEY:
            block = json.loads(prop.value)
            block.pop(PRESENCE_KEY, None)
            prop.value = json.dumps(block)
    h, w = photo.shape[:2]
    box = np.array([[0.25 * w, 0.1 * h, 0.5 * w, 0.8 * h]])
    times: dict = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(bare, str(Path(tmp) / "without_head.onnx"))
        plain = PosePredictor(Path(tmp) / "without_head.onnx", threads=1)
        for r in range(rounds):
            for headed in ((True, False) if r % 2 else (False, True)):  # the order alternates between rounds
                start = time.perf_counter()
                (pred if headed else plain).predict(photo, box)
                times[headed].append(time.perf_counter() - start)
    with_head, without = np.array(times[True]), np.array(times[False])
    return {"with_ms": 1e3 * float(np.median(with_head)), "without_ms": 1e3 * float(np.median(without)),
            "ratio": float(np.median(with_head / without)), "rounds": rounds}


def read_negatives(sources, exclude) -> tuple:
    """(names, photos) of the distinct photos in ``sources`` (folders, recursively, or zip files such as a wheel:
    ``fasterpose_rt.photo_sets.read_photo_set``), those whose file name is in ``exclude`` left out."""
    names, photos, _ = read_photo_set([Path(s) for s in sources], exclude)
    return names, photos


def main(argv=None):
    ap = BenchmarkParser("benchmarks.person_presence", description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=[str(DEFAULT_MODELS["default"]), str(DEFAULT_MODELS["fast"])])
    add_persons_args(ap)
    ap.add_argument("--negatives", type=Path, nargs="+", default=[],
                    help="photos with nobody in them: folders (searched recursively), or zip files / wheels "
                         "holding them")
    ap.add_argument("--exclude", nargs="*", default=[], help="file names in --negatives to leave out")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=positive_int, default=200, help="timing rounds for the presence head's cost")
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    a.models = [str(resolve_model(m)) for m in a.models]  # a missing one refused by name before any work
    names, gt, vis, _, files = load_persons_args(a)
    photos = read_photos(a.images, files)
    crops, c_gt, c_vis, c_torso, _ = close_up_crops(photos, names, gt, vis)
    require_close_ups(crops, len(files))
    sets = (("photos of one person", photos, gt, vis, None), ("close-ups (waist up)", crops, c_gt, c_vis, c_torso))
    neg_names, negatives = read_negatives(a.negatives, set(a.exclude)) if a.negatives else ([], [])
    rows: list = []
    costs: list = []
    data = {"ann": a.ann.name, "persons": len(files), "close_ups": len(crops), "negatives": neg_names,
            "models": {}, "head_cost": {}}
    for model in a.models:
        pred = PosePredictor(model, threads=a.threads)
        shown = _shown(Path(model))
        data["models"][shown] = {}
        cost = head_cost(model, photos[0], a.rounds)
        data["head_cost"][shown] = cost
        if cost is not None:
            costs.append(f"{shown}: {cost['with_ms']:.2f} ms with its presence head, {cost['without_ms']:.2f} ms "
                         f"without (ratio {cost['ratio']:.3f}, median of {cost['rounds']} interleaved rounds)")
        for search in (True, False):
            way = "search" if search else "whole photo (--no-search)"
            neg_presence = guesses(pred, negatives, search)[1] if negatives else {}
            found = {}
            for label, images, g, v, torso in sets:
                xy, there = guesses(pred, images, search)
                found[label] = (xy, there, g, v, torso, pck(xy, g, v, names, torso=torso)[0])
            signals = [sig for sig in SIGNALS if sig in next(iter(found.values()))[1]]
            data["models"][shown][way] = {"signal_used": signals[0], "signals": {}}
            for signal in signals:
                results = []
                for t in THRESHOLDS:
                    with_person = [n for n, p in zip(neg_names, neg_presence.get(signal, [])) if p >= t]
                    entry = {"min_presence": t, "negatives_with_a_person": with_person}
                    cells = []
                    for label, (xy, there, g, v, torso, every) in found.items():
                        keep = there[signal] >= t
                        ours = np.where(keep[:, None, None], xy, np.inf)  # nobody reported: every joint missed
                        value = pck(ours, g, v, names, torso=torso)[0]
                        low, high = pck_interval(ours, g, v, names, baseline=xy, torso=torso)
                        # how well the model saw the persons left out: their guesses' PCK (None: nobody left out)
                        left_out = pck(xy[~keep], g[~keep], v[~keep], names, torso=None if torso is None else
                                       torso[~keep])[0] if (~keep).any() else None
                        entry[label] = {"reported": int(keep.sum()), "of": len(keep), "pck": value,
                                        "change": value - every, "change_ci95": [low, high],
                                        "pck_of_left_out": left_out}
                        cells.append(f"{int(keep.sum())} / {len(keep)}: {value:.3f} ({value - every:+.4f}, "
                                     f"{low:+.4f} to {high:+.4f})")
                    results.append(entry)
                    used = " (what --min-presence reads)" if signal == signals[0] else ""
                    rows.append([shown, way, SIGNAL_NAMES[signal] + used,
                                 f"{t:g}" + (" (every guess)" if t == 0 else ""), *cells,
                                 f"{len(with_person)} / {len(neg_names)}" if neg_names else "not measured"])
                data["models"][shown][way]["signals"][signal] = {
                    "presence_of_negatives": dict(zip(neg_names, neg_presence.get(signal, np.zeros(0)).tolist())),
                    "thresholds": results}
    body = "\n\n".join([
        f"{len(files)} photos of `{a.ann.name}`, one labelled person each, and {len(crops)} close-ups cut from them "
        "(each upright person's upper body), found without boxes; a photo where nobody is reported counts its "
        "person's joints as missed. Photos of nobody: "
        + (f"{len(neg_names)} distinct pictures from {', '.join(f'`{n}`' for n in a.negatives)} "
           f"({', '.join(neg_names)})." if neg_names else "none given."),
        "Signals: the presence head's chance that a person is in the crop at all (a model with a head), or the "
        "confidence the better half of a person's joints average (raw scores for a model without a score table). "
        "Min presence: the value it must reach. Cells: persons reported: PCK@0.2 (change against every guess, "
        "paired 95 % interval).",
        markdown_table(["model", "persons found by", "signal", "min presence", *[label for label, *_ in sets],
                        "photos of nobody with a person"], rows),
        "What the head costs, one person's `predict` on one thread (the first photo, a box over its middle): "
        + ("; ".join(costs) if costs else "not measured (no model with a head, or no onnx to take it out)") + ".",
    ])
    path = write_results("person_presence", "Is anybody there? --min-presence on photos without boxes", body, data,
                         results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
