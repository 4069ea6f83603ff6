"""int8 vs float32 in one run: latency (single-thread target) and accuracy on the LSPET validation photos.

``python -m benchmarks.int8 [--model F.onnx] [--int8 Q.onnx] [--rounds 60] [--results-dir D]``
-> ``benchmarks/results/int8.{md,json}`` (or D).

Targets (int8 issue): int8 single-thread latency ≤ 0.5× float32 (batch 1, bare ``session.run``), and PCK@0.2
drop ≤ 1 point on the LSPET validation photos (ground-truth boxes).
Models: ``--model`` (a float FasterPose ONNX, e.g. ``python -m export`` of a checkpoint; the bundled models are
both int8), else a random-weights FasterPose-R18 (14 LSP keypoints, 144×192) exported here (its latency is real,
its PCK means nothing and is flagged so). int8: ``--int8``, or the
bundled int8 model when it was quantised from this float model, else quantised here (calibrated on 200 persons of
the LSPET training file; verified on the validation file, the same numbers as below).
Accuracy: every validation person, cropped and decoded by the runtime's own code (``export.quantize.compare_models``:
``fasterpose_rt`` preprocessing, sessions and DARK decoding, as ``PosePredictor`` without flip test).
Latency: each configuration timed interleaved round by round (float, int8, int8, float, ...); ratios are
``common.paired_ratio``: the median over pairs of consecutive rounds (each model once first) of the geometric mean
of their ratios, so drifts of the machine's load and who runs first cancel out. Single-thread rows also give the
calling thread's CPU time (onnxruntime computes there with one intra-op thread): the idle-core latency, which the
verdict uses.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ come from the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (BenchmarkParser, markdown_table, paired_ratio, positive_int, run_main,  # noqa: E402
                               write_results)
from export.checkpoint import file_sha256  # noqa: E402
from export.crops import list_persons, load_crops  # noqa: E402
from export.quantize import compare_models, quantize_file  # noqa: E402
from fasterpose_rt import PosePredictor  # noqa: E402
from fasterpose_rt.predictor import DEFAULT_MODELS  # noqa: E402
from fasterpose_rt.session import open_session  # noqa: E402

DATA = ROOT / "data"  # the checkout's data/, as every benchmark reads it
IMAGES = ROOT.parent / "shared" / "datasets" / "lspet" / "images"
TARGET_RATIO, TARGET_DROP = 0.5, 1.0
CONFIGS = [  # (label, threads, batch, kind): kind "run" = bare session.run, "predict" = PosePredictor, one box
    ("1 thread, batch 1 (target)", 1, 1, "run"),
    ("1 thread, predict() 1 box", 1, 1, "predict"),
    ("1 thread, batch 8", 1, 8, "run"),
    ("2 threads, batch 1", 2, 1, "run"),
]


def _provenance(path) -> str:
    """' (architecture, weights, epoch, training validation)' from the model's metadata."""
    extra = open_session(path, 1)[1].extra
    val = extra.get("validation") or {}
    bits = [extra.get("weights", "?") + " weights", f"epoch {extra['epoch']}" if extra.get("epoch") else None,
            f"training-time val PCK@0.2 {val['pck@0.2']:.3f}" if isinstance(val.get("pck@0.2"), float) else None]
    return " (" + ", ".join(b for b in bits if b) + ")"


def float_model(given, tmp: Path, val: Path):
    """(path, description, trained?)."""
    if given:
        return Path(given), f"`{given}`{_provenance(given)}", True
    from export import export_from_args

    out = tmp / "fasterpose_r18_random.onnx"
    export_from_args(out, arch="fasterpose_r18", num_keypoints=14, input_size=(144, 192), keypoints_from=val)
    return out, "RANDOM-weights fasterpose_r18 (no --model given): PCK below is meaningless", False


def int8_model(given, fp32: Path, tmp: Path, calib: Path, val: Path):
    """(path, description, agreement or None when it must still be measured)."""
    if given:
        return Path(given), f"`{given}`", None
    bundled = DEFAULT_MODELS["default"]
    if bundled.is_file():
        _, meta = open_session(bundled, 1)
        if meta.extra.get("quantization", {}).get("float_model", {}).get("sha256") == file_sha256(fp32):
            return bundled, "bundled default (`fasterpose_default_int8.onnx`)", None
    result = quantize_file(fp32, tmp / "int8.onnx", calibration=calib, calibration_images=IMAGES,
                           eval_file=val, eval_images=IMAGES, max_pck_drop=float("inf"))
    return result.path, "quantised in this run by `export.quantize` (default recipe)", result.agreement


def _recipe_text(recipe: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in recipe.items() if k != "tool") or "not recorded"


def time_config(paths, threads, batch, kind, photo, box, x1, rounds):
    """{name: (rounds,) seconds} for the two models under one configuration."""
    fns = {}
    for name, path in paths.items():
        if kind == "predict":
            pred = PosePredictor(path, threads=threads)
            fns[name] = lambda p=pred: p.predict(photo, box)
        else:
            session, _ = open_session(path, threads)
            x = np.repeat(x1, batch, axis=0)
            inp = session.get_inputs()[0].name
            fns[name] = lambda s=session, x=x, i=inp: s.run(None, {i: x})
    return interleaved_wall_cpu(fns, rounds, warmup=3)


def interleaved_wall_cpu(fns, rounds: int, warmup: int = 3):
    """({name: (rounds,) wall s}, {name: (rounds,) CPU s of the calling thread}), each fn once per round in turn,
    order reversed every other round. With one intra-op thread onnxruntime computes on the calling thread, so
    its CPU time is the latency the run would have on an idle core, whatever other processes do meanwhile."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            w0, c0 = time.perf_counter(), time.thread_time()
            fns[name]()
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    return ({n: np.array(v) for n, v in wall.items()}, {n: np.array(v) for n, v in cpu.items()})


def conv_profile(path, x, runs: int = 20) -> dict:
    """Single-thread onnxruntime profile of ``runs`` batch-1 runs, ms per run: the first convolution (the 7×7 stem
    on 3 channels), all other convolutions, every other kernel. Each kernel counts with its fastest of the runs,
    which drops the runs where another process took the core mid-kernel."""
    import json
    import os

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"int8_profile_{os.getpid()}")
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(runs):
        session.run(None, {name: x})
    trace = Path(session.end_profiling())
    events = [e for e in json.loads(trace.read_text()) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    trace.unlink()
    fastest, op = {}, {}
    for e in events:  # in execution order
        fastest[e["name"]] = min(fastest.get(e["name"], float("inf")), e["dur"])
        op[e["name"]] = e["args"]["op_name"]
    convs = [n for n in fastest if op[n] in ("Conv", "QLinearConv", "FusedConv")]
    parts = {"stem_conv": fastest[convs[0]], "other_convs": sum(fastest[n] for n in convs[1:]),
             "other_ops": sum(v for n, v in fastest.items() if n not in convs)}
    return {k: v / 1e3 for k, v in parts.items()}


def main(argv=None) -> None:
    ap = BenchmarkParser("benchmarks.int8", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="float32 FasterPose ONNX (default: a random-weights FasterPose-R18 exported here: "
                                    "its latency is real, its PCK meaningless; the bundled models are int8)")
    ap.add_argument("--int8", help="its int8 build (default: the bundled one, else quantised here)")
    ap.add_argument("--eval", default=str(DATA / "lspet_val.json"), help="COCO file of the validation photos")
    ap.add_argument("--calibration", default=str(DATA / "lspet_train.json"), help="COCO file to calibrate on")
    ap.add_argument("--rounds", type=positive_int, default=60, help="interleaved timing rounds (default 60)")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where to write int8.{md,json} (default benchmarks/results)")
    args = ap.parse_args(argv)
    val, calib = Path(args.eval), Path(args.calibration)
    for p in (val, IMAGES) + (() if args.int8 else (calib,)):
        if not p.exists():
            sys.exit(f"error: {p} not found (LSPET photos and `python -m models.data.lsp_to_coco` output needed)")
    for flag, given in (("--model", args.model), ("--int8", args.int8)):
        if given and not Path(given).is_file():
            sys.exit(f"error: {flag} {given}: file not found")

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        fp32, fp32_desc, trained = float_model(args.model, tmp, val)
        q8, q8_desc, agreement = int8_model(args.int8, fp32, tmp, calib, val)
        paths = {"fp32": fp32, "int8": q8}
        _, meta = open_session(fp32, 1)
        persons = list_persons(val, meta.keypoints, IMAGES)
        if agreement is None:
            agreement = compare_models(fp32, q8, load_crops(persons, range(len(persons)), meta))
        one = load_crops(persons, [0], meta)
        x1 = next(one.batches(meta))
        import cv2

        photo = cv2.imread(str(persons.paths[0]))
        box = persons.boxes[:1]
        timing = []
        for label, threads, batch, kind in CONFIGS:
            t, c = time_config(paths, threads, batch, kind, photo, box, x1, args.rounds)
            row = {"config": label, "threads": threads, "batch": batch, "kind": kind,
                   "fp32_ms": 1e3 * float(np.median(t["fp32"])), "int8_ms": 1e3 * float(np.median(t["int8"])),
                   "ratio": paired_ratio(t["int8"], t["fp32"])}
            if threads == 1:  # CPU time means latency only when all the work is on the calling thread
                row.update(fp32_cpu_ms=1e3 * float(np.median(c["fp32"])), int8_cpu_ms=1e3 * float(np.median(c["int8"])),
                           cpu_ratio=paired_ratio(c["int8"], c["fp32"]))
            timing.append(row)
        profile = {k: conv_profile(p, x1) for k, p in paths.items()}
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        _, q_meta = open_session(q8, 1)

    ratio, cpu_ratio = timing[0]["ratio"], timing[0]["cpu_ratio"]
    drop = agreement.pck_drop
    lat_ok = cpu_ratio <= TARGET_RATIO
    acc_ok = drop is not None and drop <= TARGET_DROP and trained
    lat_rows = [[r["config"], f"{r['fp32_ms']:.2f}", f"{r['int8_ms']:.2f}", f"{r['ratio']:.3f}",
                 *((f"{r['fp32_cpu_ms']:.2f}", f"{r['int8_cpu_ms']:.2f}", f"{r['cpu_ratio']:.3f}") if "cpu_ratio" in r
                   else ("", "", "")), f"{1 / r.get('cpu_ratio', r['ratio']):.2f}×"] for r in timing]
    acc_rows = [["float32", f"{100 * agreement.pck_float:.2f}", ""],
                ["int8", f"{100 * agreement.pck_int8:.2f}", f"{drop:+.2f}"]]
    prof_rows = [[part.replace("_", " "), f"{profile['fp32'][part]:.2f}", f"{profile['int8'][part]:.2f}",
                  f"{profile['fp32'][part] / max(profile['int8'][part], 1e-9):.2f}×"] for part in profile["fp32"]]
    body = [
        f"Float model: {fp32_desc}, {sizes['fp32'] / 1e6:.1f} MB. int8 model: {q8_desc}, {sizes['int8'] / 1e6:.1f} MB; "
        f"Recipe: {_recipe_text(q_meta.extra.get('quantization', {}).get('recipe') or {})}.",
        "",
        "## Verdict",
        "",
        markdown_table(["target", "measured", ""], [
            [f"int8 / float32 single-thread latency ≤ {TARGET_RATIO} (CPU time; wall clock beside)",
             f"{cpu_ratio:.3f} (wall {ratio:.3f})", "met" if lat_ok else "NOT met"],
            [f"PCK@0.2 drop ≤ {TARGET_DROP} point on LSPET val", f"{drop:+.2f}",
             ("met" if acc_ok else "NOT met") if trained else "not measurable (random weights)"],
        ]),
        "",
        f"## Latency (median ms over {args.rounds} interleaved rounds; ratio = int8/fp32 paired round by round, `benchmarks.common.paired_ratio`)",
        "",
        "Wall clock, and for single-thread runs also the CPU time of the calling thread (where onnxruntime computes "
        "when it has one intra-op thread): the latency on an idle core, unaffected by other processes taking the "
        "CPU meanwhile (see the load average above). The verdict uses the CPU-time ratio; speed-up = 1 / that "
        "ratio (wall-clock ratio for multi-thread rows).",
        "",
        markdown_table(["configuration", "fp32 ms", "int8 ms", "int8/fp32", "fp32 CPU ms", "int8 CPU ms",
                        "int8/fp32 CPU", "speed-up"], lat_rows),
        "",
        "Where the time goes (onnxruntime profiler, 1 thread, batch 1, ms per run, each kernel at its fastest of 20 "
        "runs; the stem is the first convolution, 7×7 over 3 input channels):",
        "",
        markdown_table(["kernels", "fp32 ms", "int8 ms", "speed-up"], prof_rows),
        "",
        f"## Accuracy on {agreement.crops} LSPET validation persons (ground-truth boxes, no flip test)",
        "",
        markdown_table(["model", f"PCK@0.2 (%) vs {agreement.reference}", "drop (points)"], acc_rows),
        "",
        f"int8 vs float keypoints: mean distance {agreement.mean_px:.3f} heatmap px (p95 {agreement.p95_px:.3f}); "
        f"{100 * agreement.moved:.2f}% of keypoints move more than 0.5 heatmap px.",
    ]
    data = {"float_model": {"path": str(fp32), "description": fp32_desc, "trained": trained, "bytes": sizes["fp32"]},
            "int8_model": {"path": str(q8), "description": q8_desc, "bytes": sizes["int8"],
                           "quantization": q_meta.extra.get("quantization")},
            "latency": timing, "profile_ms": profile, "accuracy": {**agreement.__dict__, "pck_drop": drop},
            "targets": {"latency_ratio": TARGET_RATIO, "pck_drop": TARGET_DROP},
            "met": {"latency": lat_ok, "accuracy": acc_ok}}
    path = write_results("int8", "int8 vs float32: latency and accuracy", "\n".join(body), data,
                         results_dir=args.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
