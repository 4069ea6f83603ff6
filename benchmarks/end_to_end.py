"""End-to-end throughput of ``fasterpose predict`` on real photos, and the share of the time spent outside the
network (photo decoding, cropping, heatmap decoding, results).

``python -m benchmarks.end_to_end [--first 8001 --count 200] [--model X.onnx] [--threads N] [--quick]``
-> ``benchmarks/results/end_to_end.{md,json}`` (``--quick``: 8 photos, a smoke run into a temporary folder).

Photos: LSPET ``im08001.jpg`` ... ``im08200.jpg`` (its validation range) from ``../shared/datasets/lspet/images``
beside the repository, symlinked into a temporary folder; one whole-photo person box each, one model call
(``--refine 0``).
Model: ``--model``, else the bundled default model ``fasterpose_rt/assets/fasterpose_default_int8.onnx``, else a
random-weights FasterPose-R18 (14 LSP keypoints, input 144×192 w×h) exported here;
random weights time the same as trained ones.

1. The real CLI, as a subprocess: ``fasterpose predict FOLDER --model M --quiet --out T.json`` on the N photos
   and on a folder of 1 photo, alternating, ``--repeats`` times each, in six variants (:data:`VARIANTS`): the
   whole photo with one model call per photo group (``--refine 0 --no-search``), the whole photo refined
   (``--no-search``), and the default search (since session 42), each with the default grouping (up to
   ``--batch-size`` 16 photos share a model call, since session 41) and with ``--batch-size 1`` (a call per
   photo, as before). Images/s all-in = N / wall time (interpreter start, imports and model loading included);
   steady state = (N − 1) / (wall_N − wall_1), which removes that fixed start-up cost; each variant's ratio to
   its ``--batch-size 1`` twin comes from the same rounds.
2. In process, the per-photo work of ``--refine 0 --no-search --batch-size 1`` (:data:`IN_PROCESS_VARIANT`: the
   whole photo, one model call per photo; ``read_image`` -> ``PosePredictor.predict(photo)`` -> ``coco_entries``
   -> ``ResultsWriter``) with a timer around each phase: the predictor's session is wrapped in a proxy whose
   ``run`` is timed, and ``warp_crops`` / ``decode_heatmaps`` (looked up by ``fasterpose_rt.predictor`` at call
   time) and the predictor's normaliser are swapped for timed wrappers during the measurement.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ come from the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, markdown_table, run_main, write_results  # noqa: E402

SHARED = ROOT.parent / "shared"
LSPET_IMAGES = SHARED / "datasets" / "lspet" / "images"
RANDOM_ARCH, RANDOM_SIZE = "fasterpose_r18", (144, 192)  # (w, h)
VARIANTS = {  # name -> extra `fasterpose predict` arguments; each grouped row is followed by its --batch-size 1 twin
    "whole photo, one call per photo group (--refine 0 --no-search)": ["--refine", "0", "--no-search"],
    "whole photo, one call per photo (--refine 0 --no-search --batch-size 1)": ["--refine", "0", "--no-search",
                                                                               "--batch-size", "1"],
    "whole photo, refined (--no-search)": ["--no-search"],
    "whole photo, refined, a call per photo (--no-search --batch-size 1)": ["--no-search", "--batch-size", "1"],
    "searched and refined (the default)": [],
    "searched and refined, a call per photo (--batch-size 1)": ["--batch-size", "1"],
}
# What the in-process section times (``predict(photo)``: the whole photo, no boxes, one call, no refining): the
# per-photo work of this CLI variant.
IN_PROCESS_VARIANT = "whole photo, one call per photo (--refine 0 --no-search --batch-size 1)"


class PhaseTimer:
    """Accumulated seconds per phase name; ``wrap(name, fn)`` returns fn with its calls timed into ``name``."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
        return timed


class _TimedSession:
    """An onnxruntime session whose ``run`` is timed; everything else is the session's own."""

    def __init__(self, session, timer: PhaseTimer):
        self._session = session
        self.run = timer.wrap("session.run", session.run)

    def __getattr__(self, name):
        return getattr(self._session, name)


def photo_folder(first: int, count: int, dest: Path) -> list:
    """Symlink LSPET im{first:05d}.jpg ... into ``dest``; returns the (count,) list of links.

    Raises SystemExit with a clear message when the dataset or a photo is missing.
    """
    if not LSPET_IMAGES.is_dir():
        raise SystemExit(f"error: LSPET photos not found at {LSPET_IMAGES}: this benchmark needs the shared "
                         "datasets folder beside the repository (../shared/datasets/lspet/images)")
    dest.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(first, first + count):
        src = LSPET_IMAGES / f"im{i:05d}.jpg"
        if not src.is_file():
            raise SystemExit(f"error: {src} is missing (LSPET has im00001 ... im10000; check --first/--count)")
        link = dest / src.name
        link.symlink_to(src)
        links.append(link)
    return links


def get_model(given, tmp: Path):
    """(model path, how it was obtained)."""
    from fasterpose_rt.predictor import DEFAULT_MODELS

    if given:
        if not Path(given).is_file():
            raise SystemExit(f"error: --model {given} does not exist")
        return Path(given), f"`{given}` (given)"
    if DEFAULT_MODELS["default"].is_file():
        return DEFAULT_MODELS["default"], "the bundled default model"
    from benchmarks.latency import export_random
    from export import KeypointSet
    from fasterpose_rt.skeletons import LSP14

    ks = KeypointSet(list(LSP14["keypoints"]), LSP14["skeleton"], LSP14["flip_pairs"], list(LSP14["sigmas"]), "LSP-14")
    out = tmp / "fasterpose_r18_lsp_random.onnx"
    export_random(RANDOM_ARCH, len(ks.keypoints), RANDOM_SIZE, out, ks)
    return out, (f"random-weights {RANDOM_ARCH}, 14 LSP keypoints, input {RANDOM_SIZE[0]}×{RANDOM_SIZE[1]} (w×h) "
                 "(the bundled default model was not present)")


def cli_command():
    """The installed ``fasterpose`` console script next to this interpreter, else on PATH, else ``-m``."""
    beside = Path(sys.executable).parent / "fasterpose"
    if beside.is_file():
        return [str(beside)], str(beside)
    found = shutil.which("fasterpose")
    if found:
        return [found], found
    return [sys.executable, "-m", "fasterpose_rt.cli"], "python -m fasterpose_rt.cli"


def time_cli(cmd, folder: Path, model: Path, out: Path, threads, expected: int, extra=("--refine", "0")) -> float:
    """Wall seconds of one ``fasterpose predict`` run; checks its exit code and the number of results."""
    # --min-presence 0: a result for every photo (what is timed is the work, and the count is checked)
    args = [*cmd, "predict", str(folder), "--model", str(model), *extra, "--min-presence", "0", "--quiet", "--out",
            str(out)]
    if threads:
        args += ["--threads", str(threads)]
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"error: `{' '.join(args)}` exited {r.returncode}: {r.stderr.strip()[-800:]}")
    n = len(json.loads(out.read_text()))
    if n != expected:
        raise SystemExit(f"error: `{' '.join(args)}` wrote {n} results for {expected} photos")
    return wall


def in_process(photos, model: Path, threads, passes: int, warmup: int = 3):
    """Per-phase seconds summed over ``passes`` passes over ``photos``, the CLI's per-photo work in the variant
    :data:`IN_PROCESS_VARIANT` (``predict(photo)``: the whole photo, one call per photo, not refined).

    Returns ({phase: seconds}, total seconds, number of photos processed, the predictor's threads).
    """
    import fasterpose_rt.predictor as predictor_module
    from fasterpose_rt import PosePredictor
    from fasterpose_rt.inputs import read_image
    from fasterpose_rt.results import ResultsWriter, coco_entries

    pred = PosePredictor(model, threads=threads)
    timer = PhaseTimer()
    if not hasattr(pred, "_session"):
        raise SystemExit("error: PosePredictor has no _session attribute any more: update this benchmark")
    pred._session = _TimedSession(pred._session, timer)
    if hasattr(pred, "_normalize"):
        pred._normalize = timer.wrap("normalise crops", pred._normalize)
    patched = {name: getattr(predictor_module, name) for name in ("warp_crops", "decode_heatmaps")
               if hasattr(predictor_module, name)}
    labels = {"warp_crops": "crop (warp_crops)", "decode_heatmaps": "heatmap decoding (DARK)"}
    read = timer.wrap("photo decoding (read_image)", read_image)
    predict = timer.wrap("predict (all of it)", pred.predict)

    def write(res, i, name, writer):
        writer.add(coco_entries(res, i, name))
        writer.step()
    write = timer.wrap("results (coco_entries + writer)", write)

    try:
        for name, fn in patched.items():
            setattr(predictor_module, name, timer.wrap(labels[name], fn))
        with tempfile.TemporaryDirectory() as tmp:
            for p in photos[:warmup]:
                pred.predict(read_image(p))
            timer.seconds.clear()
            t0 = time.perf_counter()
            for _ in range(passes):
                writer = ResultsWriter(Path(tmp) / "results.json")
                for i, p in enumerate(photos, 1):
                    write(predict(read(p)), i, p.name, writer)
                writer.close()
            total = time.perf_counter() - t0
    finally:
        for name, fn in patched.items():
            setattr(predictor_module, name, fn)
    return dict(timer.seconds), total, passes * len(photos), pred.threads


def run(first, count, model_arg, threads, repeats, passes, quick, results_dir=None):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = photo_folder(first, count, tmp / "photos")
        single = tmp / "one"
        single.mkdir()
        (single / photos[0].name).symlink_to(photos[0].resolve())
        model, source = get_model(model_arg, tmp)
        cmd, cmd_text = cli_command()

        print(f"CLI runs ({repeats} × {count} photos per variant and {repeats} × 1 photo, alternating) ...",
              file=sys.stderr, flush=True)
        walls = {name: [] for name in VARIANTS}
        walls_1 = []
        time_cli(cmd, single, model, tmp / "warm.json", threads, 1)  # warm the page cache and the imports
        for r in range(repeats):
            order = [*VARIANTS, None]  # None: the 1-photo folder
            for name in (order if r % 2 == 0 else order[::-1]):
                if name is None:
                    walls_1.append(time_cli(cmd, single, model, tmp / "out_1.json", threads, 1))
                else:
                    walls[name].append(time_cli(cmd, photos[0].parent, model, tmp / "out_n.json", threads, count,
                                                VARIANTS[name]))
        print("in-process phases ...", file=sys.stderr, flush=True)
        phases, total, processed, used_threads = in_process(photos, model, threads, passes)

    wall_1 = float(np.median(walls_1))
    cli_rows, rates = [], {}
    names = list(VARIANTS)
    for i, name in enumerate(names):
        wall_n = float(np.median(walls[name]))
        steady = (count - 1) / (wall_n - wall_1) if wall_n > wall_1 else float("nan")
        rates[name] = {"wall_n_s": walls[name], "images_per_s_all_in": count / wall_n, "images_per_s_steady": steady}
        twin = names[i + 1] if i % 2 == 0 else None  # grouped rows are followed by their --batch-size 1 twin
        one = np.array(walls_1)  # start-up, same rounds: the ratio is of the time spent on the photos
        spent = (np.array(walls[name]) - one, np.array(walls[twin]) - one) if twin else None
        # a start-up as long as a whole run (a tiny --quick folder) leaves no photo time to compare
        ratio = "–" if spent is None else f"{np.median(spent[0] / spent[1]):.3f}" if (spent[1] > 0).all() else "nan"
        cli_rows.append([name, f"{wall_n:.2f}", " / ".join(f"{w:.2f}" for w in walls[name]), f"{count / wall_n:.1f}",
                         f"{steady:.1f}", ratio])
    cli_rows.append(["1 photo (start-up)", f"{wall_1:.2f}", " / ".join(f"{w:.2f}" for w in walls_1), "–", "–", "–"])
    run_s = phases.get("session.run", 0.0)
    predict_s = phases.get("predict (all of it)", 0.0)
    inner = sum(v for k, v in phases.items() if k not in ("predict (all of it)", "photo decoding (read_image)",
                                                         "results (coco_entries + writer)"))
    rows = []
    order = ["photo decoding (read_image)", "crop (warp_crops)", "normalise crops", "session.run",
             "heatmap decoding (DARK)"]
    for name in order:
        if name in phases:
            rows.append([name, f"{phases[name] / processed * 1e3:.2f}", f"{100 * phases[name] / total:.1f} %"])
    rest_predict = predict_s - inner
    rest_loop = total - predict_s - phases.get("photo decoding (read_image)", 0) - phases.get(
        "results (coco_entries + writer)", 0)
    rows.append(["rest of predict (boxes, sigmoid, coordinates)", f"{rest_predict / processed * 1e3:.2f}",
                 f"{100 * rest_predict / total:.1f} %"])
    if "results (coco_entries + writer)" in phases:
        name = "results (coco_entries + writer)"
        rows.append([name, f"{phases[name] / processed * 1e3:.2f}", f"{100 * phases[name] / total:.1f} %"])
    rows.append(["loop and timers", f"{rest_loop / processed * 1e3:.2f}", f"{100 * rest_loop / total:.1f} %"])
    rows.append(["**total**", f"{total / processed * 1e3:.2f}", "100 %"])
    outside = 1 - run_s / total

    body = "\n".join([
        f"Photos: LSPET im{first:05d} … im{first + count - 1:05d} ({count}, no boxes given). "
        f"Model: {source}. Threads: {used_threads if not threads else threads} "
        f"({'given' if threads else 'the CLI default: physical cores'}).",
        "", "## Through the CLI", "",
        f"`{Path(cmd_text).name} predict FOLDER --model M [variant] --quiet --out T.json` as a subprocess; {repeats} "
        f"runs of each variant on the {count} photos and of a 1-photo folder, alternating, after one untimed "
        "warm-up run. All-in includes interpreter start-up, imports and model loading; steady state = (N − 1) / "
        "(wall_N − wall_1). The ratio: the time spent on the photos (wall time minus the same round's 1-photo "
        "run) against the `--batch-size 1` twin in the row below (a model call per photo, the CLI before session "
        "41), median over rounds.", "",
        markdown_table(["variant", "median wall s", "runs s", "images/s all-in", "images/s steady",
                        "photo time vs a call per photo"], cli_rows),
        "", "## Where the time goes (in process)", "",
        f"The per-photo work of `{' '.join(VARIANTS[IN_PROCESS_VARIANT])}` (the whole photo, one `predict` call per "
        f"photo, not refined), {passes} pass(es) over the {count} photos after {3} warm-up photos, "
        f"{processed / total:.1f} images/s. Phases timed by wrapping: the predictor's session in a proxy whose "
        "`run` is timed; `warp_crops`, `decode_heatmaps` and the normaliser swapped for timed wrappers; "
        "`read_image`, `predict` and the results writing timed around their calls. 'Rest of predict' = "
        "predict minus the phases inside it.", "",
        markdown_table(["phase", "ms / photo", "share"], rows), "",
        f"**Outside `session.run`: {100 * outside:.1f} % of the time** (photo decoding, cropping, normalisation, "
        "heatmap decoding, results).",
    ])
    data = {"photos": {"dataset": "LSPET", "first": first, "count": count}, "model": source,
            "threads": threads or used_threads, "cli": {"command": cmd_text, "repeats": repeats,
                                                        "wall_1_s": walls_1, "variants": rates},
            "in_process": {"variant": IN_PROCESS_VARIANT, "passes": passes, "photos_processed": processed, "total_s": total,
                           "images_per_s": processed / total, "phase_seconds": phases,
                           "share_outside_session_run": outside},
            "quick": quick}
    path = write_results("end_to_end", "End to end: `fasterpose predict` on LSPET photos", body, data,
                         results_dir=results_dir)
    print(body)
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.end_to_end", description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=8001, help="first LSPET photo number (default 8001)")
    ap.add_argument("--count", type=int, default=200, help="number of photos (default 200)")
    ap.add_argument("--model", help="ONNX model (default: the bundled one, else a random-weights R18 export)")
    ap.add_argument("--threads", type=int, help="CPU threads (default: the CLI's, physical cores)")
    ap.add_argument("--repeats", type=int, default=3, help="CLI runs per folder (default 3)")
    ap.add_argument("--passes", type=int, default=2, help="in-process passes over the photos (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 photos, 1 repeat, 1 pass, temporary results")
    ap.add_argument("--results-dir", type=Path, help="where to write end_to_end.{md,json} (default benchmarks/results)")
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.repeats, args.passes = 8, 1, 1
    for name in ("count", "repeats", "passes"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if args.count < 2:
        ap.error("--count must be >= 2 (the steady-state rate compares N photos with 1)")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    results_dir = args.results_dir or (Path(tempfile.mkdtemp(prefix="end_to_end_quick_")) if args.quick else None)
    run(args.first, args.count, args.model, args.threads, args.repeats, args.passes, args.quick, results_dir)


if __name__ == "__main__":
    run_main(main)
