"""CPU latency of the networks: FasterPose vs SimpleBaseline at the same backbone, onnxruntime vs PyTorch eager,
1 thread and all threads, batch 1 and 8, with the achieved GFLOP/s next to this machine's float32 matmul peak.

``python -m benchmarks.latency [--rounds 12] [--torch r18|all|none] [--quick]``
-> ``benchmarks/results/latency.{md,json}`` (``--quick``: a smoke run into a temporary folder).

Models (17 keypoints, random weights: speed does not depend on the values): FasterPose-R18 / SimpleBaseline-R18
and FasterPose-R50 / SimpleBaseline-R50 at 256×192 (h×w), and FasterPose-R18 at our default 192×144. Each is
exported with the exporter's Python API (``export.export_onnx``: simplified, verified ONNX) and run in a session
opened like the runtime's (``fasterpose_rt.session.open_session``: idle threads sleep); PyTorch runs the very
same module in eval mode under ``torch.inference_mode`` with ``torch.set_num_threads`` matched.

Timing: for each (threads, batch) every competitor is called once per round, the order rotated by one every round
(each competitor in every position equally often); medians and 90th percentiles over rounds; a ratio (FP/SB,
ORT/torch) is ``common.paired_ratio``, the median over runs of as many consecutive rounds as competitors of the
geometric mean of their per-round ratios, so drifts of the machine's load and positions in the round cancel.
GFLOP/s = 2 · MACs (``models.complexity``, "ours" convention:
the work a transposed convolution really does) · batch / median time. The peak is the best of a few 2048² float32
matmuls under numpy (OpenBLAS) in a subprocess with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (they force an
older, slower kernel where set); the kernel it ran is read with threadpoolctl when installed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ come from the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio,  # noqa: E402
                               positive_int, run_main, write_results)

NUM_KEYPOINTS = 17
MODELS = [  # (architecture, input size (w, h))
    ("fasterpose_r18", (192, 256)), ("simplebaseline_r18", (192, 256)),
    ("fasterpose_r50", (192, 256)), ("simplebaseline_r50", (192, 256)),
    ("fasterpose_r18", (144, 192)),
]
QUICK_MODELS = [("fasterpose_r18", (96, 128)), ("simplebaseline_r18", (96, 128))]
BATCHES, QUICK_BATCHES = (1, 8), (1, 2)
PEAK_N, QUICK_PEAK_N = 2048, 256
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Runs in a fresh interpreter: the BLAS reads its environment and thread count when numpy is imported.
_PEAK_SCRIPT = r"""
import json, sys, time
import numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
a @ b
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); a @ b; times.append(time.perf_counter() - t0)
try:
    from threadpoolctl import threadpool_info
    blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
except ImportError:
    blas = "unknown (threadpoolctl not installed)"
print(json.dumps({"gflops": [2 * n**3 / t / 1e9 for t in times], "blas": blas}))
"""


def label(arch: str, size) -> str:
    """'FP-R18 256×192' for ("fasterpose_r18", (192, 256)): h×w, as the papers write input sizes."""
    kind, depth = arch.split("_")
    return f"{'FP' if kind == 'fasterpose' else 'SB'}-{depth.upper()} {size[1]}×{size[0]}"


def all_threads() -> int:
    """The runtime's default thread count (physical cores), else the CPUs this process may use."""
    from fasterpose_rt.session import physical_cores

    return physical_cores() or len(os.sched_getaffinity(0))


def export_random(arch: str, num_keypoints: int, size, out: Path, keypoint_set=None):
    """Random-weights ``arch`` (input size (w, h)) -> verified ONNX at ``out``; returns (ExportResult, the
    torch module that was exported, in eval mode). keypoint_set: an ``export.KeypointSet`` naming the K
    keypoints (None: COCO-17, only valid for K = 17)."""
    from export import build_metadata, build_model, export_onnx, resolve_keypoint_set, resolve_spec

    spec = resolve_spec(arch, num_keypoints, tuple(size))
    meta = build_metadata(spec, keypoint_set or resolve_keypoint_set(num_keypoints))
    model = build_model(spec)
    result = export_onnx(model, meta, out)
    return result, model.eval()


def macs(arch: str, num_keypoints: int, size) -> int:
    """MACs of one (1, 3, H, W) forward pass, "ours" convention, counted on the meta device."""
    import torch

    from models import build_model
    from models.complexity import count_complexity

    with torch.device("meta"):
        model = build_model(arch, num_keypoints)
    return int(count_complexity(model, tuple(size), "ours")["macs"])


def matmul_peak(threads: int, n: int, repeats: int, unset_overrides: bool) -> dict:
    """float32 n×n matmul GFLOP/s under numpy in a subprocess limited to ``threads`` BLAS threads.

    Returns {"gflops": best, "median_gflops", "blas": kernel info, "env_removed": [names]}.
    """
    env = dict(os.environ)
    removed = [k for k in BLAS_OVERRIDES if k in env] if unset_overrides else []
    for k in removed:
        del env[k]
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    r = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n), str(repeats)], env=env,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"matmul peak subprocess failed: {r.stderr.strip()[-500:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return {"gflops": max(out["gflops"]), "median_gflops": float(np.median(out["gflops"])), "blas": out["blas"],
            "env_removed": removed}


def measure(models, thread_counts, batches, rounds, torch_for, seed=0):
    """Times of every (threads, batch, model, engine). models: list of dicts with "label", "session" per thread
    count, "module" (torch or None), "size" (w, h). Returns {(threads, batch): {(label, engine): (rounds,) s}}."""
    import torch

    rng = np.random.default_rng(seed)
    out = {}
    with torch.inference_mode():
        for t in thread_counts:
            torch.set_num_threads(t)
            for b in batches:
                fns = {}
                for m in models:
                    w, h = m["size"]
                    x = rng.standard_normal((b, 3, h, w)).astype(np.float32)
                    sess = m["sessions"][t]
                    feed, names = {sess.get_inputs()[0].name: x}, [sess.get_outputs()[0].name]
                    fns[(m["label"], "ort")] = lambda s=sess, f=feed, n=names: s.run(n, f)
                    if m["label"] in torch_for:
                        xt = torch.from_numpy(x)
                        fns[(m["label"], "torch")] = lambda mod=m["module"], xt=xt: mod(xt)
                # onnxruntime's calls timed among themselves: torch's OpenMP threads keep spinning after a call and
                # slowed whichever onnxruntime call came next at 2 threads (review s61); torch's among themselves
                out[(t, b)] = interleaved_times({k: f for k, f in fns.items() if k[1] == "ort"}, rounds)
                torch_fns = {k: f for k, f in fns.items() if k[1] == "torch"}
                if torch_fns:
                    out[(t, b)].update(interleaved_times(torch_fns, rounds))
                print(f"  measured threads={t} batch={b}", file=sys.stderr, flush=True)
    return out


def _ms(t):
    return f"{np.median(t) * 1e3:.1f}"


def _p90(t):
    return f"{np.percentile(t, 90) * 1e3:.1f}"


def run(rounds: int, torch_sel: str, quick: bool, results_dir=None):
    import torch

    from fasterpose_rt.session import open_session

    model_list = QUICK_MODELS if quick else MODELS
    batches = QUICK_BATCHES if quick else BATCHES
    threads_all = all_threads()
    thread_counts = sorted({1, threads_all})
    torch.manual_seed(0)

    print("matmul peak ...", file=sys.stderr, flush=True)
    n, peak_repeats = (QUICK_PEAK_N, 3) if quick else (PEAK_N, 5)
    overrides_set = [k for k in BLAS_OVERRIDES if k in os.environ]
    peak = {t: matmul_peak(t, n, peak_repeats, unset_overrides=True) for t in thread_counts}
    peak_as_set = {t: matmul_peak(t, n, peak_repeats, unset_overrides=False) for t in thread_counts} \
        if overrides_set else None

    models = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, size in model_list:
            lab = label(arch, size)
            print(f"exporting {lab} ...", file=sys.stderr, flush=True)
            result, module = export_random(arch, NUM_KEYPOINTS, size, Path(tmp) / f"{arch}_{size[0]}x{size[1]}.onnx")
            sessions = {t: open_session(result.path, threads=t)[0] for t in thread_counts}
            models.append({"label": lab, "arch": arch, "size": size, "sessions": sessions, "module": module,
                           "macs": macs(arch, NUM_KEYPOINTS, size), "onnx_mb": result.size_bytes / 1e6})
    torch_for = {m["label"] for m in models
                 if torch_sel == "all" or (torch_sel == "r18" and m["arch"].endswith("_r18"))}
    times = measure(models, thread_counts, batches, rounds, torch_for)

    # Per-model rows.
    rows, records = [], []
    for (t, b), tt in times.items():
        for m in models:
            ort_t = tt[(m["label"], "ort")]
            tor_t = tt.get((m["label"], "torch"))
            gflops = 2 * m["macs"] * b / np.median(ort_t) / 1e9
            rec = {"model": m["label"], "architecture": m["arch"], "input_size_wh": list(m["size"]), "threads": t,
                   "batch": b, "macs_per_crop": m["macs"], "ort_median_ms": float(np.median(ort_t) * 1e3),
                   "ort_p90_ms": float(np.percentile(ort_t, 90) * 1e3), "ort_gflops": gflops,
                   "ort_percent_of_peak": 100 * gflops / peak[t]["gflops"]}
            row = [t, b, m["label"], f"{m['macs'] / 1e9:.2f}", _ms(ort_t), _p90(ort_t), f"{gflops:.1f}",
                   f"{rec['ort_percent_of_peak']:.0f} %"]
            if tor_t is not None:
                rec.update(torch_median_ms=float(np.median(tor_t) * 1e3), torch_p90_ms=float(np.percentile(tor_t, 90) * 1e3),
                           ort_over_torch=paired_ratio(ort_t, tor_t),
                           torch_gflops=2 * m["macs"] * b / np.median(tor_t) / 1e9)
                row += [_ms(tor_t), _p90(tor_t), f"{rec['torch_gflops']:.1f}", f"{rec['ort_over_torch']:.2f}"]
            else:
                row += ["–"] * 4
            rows.append(row)
            records.append(rec)

    # FasterPose / SimpleBaseline at equal backbone and input size.
    pair_rows, pairs = [], []
    by_key = {(m["arch"].split("_")[1], tuple(m["size"])): {} for m in models}
    for m in models:
        by_key[(m["arch"].split("_")[1], tuple(m["size"]))][m["arch"].split("_")[0]] = m
    for (depth, size), d in by_key.items():
        if "fasterpose" not in d or "simplebaseline" not in d:
            continue
        fp, sb = d["fasterpose"], d["simplebaseline"]
        for (t, b), tt in times.items():
            rec = {"backbone": depth, "input_size_wh": list(size), "threads": t, "batch": b,
                   "macs_ratio": fp["macs"] / sb["macs"],
                   "ort_fp_over_sb": paired_ratio(tt[(fp["label"], "ort")], tt[(sb["label"], "ort")])}
            tor = (fp["label"], "torch") in tt and (sb["label"], "torch") in tt
            if tor:
                rec["torch_fp_over_sb"] = paired_ratio(tt[(fp["label"], "torch")], tt[(sb["label"], "torch")])
            pairs.append(rec)
            pair_rows.append([depth.upper(), f"{size[1]}×{size[0]}", t, b, f"{rec['macs_ratio']:.2f}",
                              f"{rec['ort_fp_over_sb']:.2f}", f"{rec['torch_fp_over_sb']:.2f}" if tor else "–"])

    peak_rows = [[t, f"{peak[t]['gflops']:.1f}", f"{peak[t]['median_gflops']:.1f}", _blas_text(peak[t]["blas"])]
                 for t in thread_counts]
    if peak_as_set:
        peak_rows += [[f"{t} (env as set: {', '.join(overrides_set)})", f"{p['gflops']:.1f}",
                       f"{p['median_gflops']:.1f}", _blas_text(p["blas"])] for t, p in peak_as_set.items()]
    env_note = (f"{', '.join(overrides_set)} removed for the peak subprocess only (the rows marked 'env as set' "
                "keep them, for comparison)" if overrides_set else
                "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE were not set in this environment")

    body = "\n".join([
        f"Random weights, {NUM_KEYPOINTS} keypoints. ONNX (opset from the exporter, simplified) under onnxruntime "
        f"in sessions opened as the runtime opens them (idle threads sleep); PyTorch {torch.__version__} eager, "
        "eval mode, `torch.inference_mode`, NCHW float32, `torch.set_num_threads` matched. "
        f"{rounds} interleaved rounds per (threads, batch) and engine, the order rotated every round; warm-up 1 "
        "round. onnxruntime's calls share rounds of their own and PyTorch's the next ones (PyTorch's OpenMP "
        "threads spin on after a call and slowed the call after it), so FP/SB is paired in the same rounds and "
        "ORT/torch compares two adjacent sets of rounds. "
        f"All threads = {threads_all} (the runtime's default: physical cores). "
        "Times are per call (the whole batch). On a shared machine (see the load average) absolute times are "
        "indicative; ratios are the point.",
        "", "## FasterPose / SimpleBaseline at equal backbone", "",
        markdown_table(["backbone", "input h×w", "threads", "batch", "MACs FP/SB", "time FP/SB, ORT",
                        "time FP/SB, torch"], pair_rows),
        "", "## Per model", "",
        markdown_table(["threads", "batch", "model", "GMACs/crop", "ORT median ms", "ORT p90 ms", "ORT GFLOP/s",
                        "ORT % of peak", "torch median ms", "torch p90 ms", "torch GFLOP/s", "time ORT/torch"], rows),
        "", "## Machine peak (float32 matmul, numpy)", "",
        f"{n}×{n} @ {n}×{n}, best and median of {peak_repeats}; {env_note}.", "",
        *(["**Warning: the all-threads peak is below the 1-thread peak: other processes were using the cores "
           "(OpenBLAS threads wait for each other), so the multi-thread figures of this run are not "
           "representative.**", ""] if peak[threads_all]["gflops"] < peak[1]["gflops"] else []),
        markdown_table(["threads", "best GFLOP/s", "median GFLOP/s", "BLAS kernel (threadpoolctl)"], peak_rows),
        "", "GFLOP/s of a network = 2 · MACs · batch / median time (MACs: `models.complexity`, \"ours\" "
        "convention, which prices a transposed convolution at the work it does). A matmul is the best case for "
        "a CPU; convolutions with few channels, the stem and memory-bound layers (BatchNorm is folded away in "
        "ONNX, but not in eager PyTorch) run well below it.",
    ])
    data = {"num_keypoints": NUM_KEYPOINTS, "weights": "random", "rounds": rounds, "warmup_rounds": 1,
            "threads_all": threads_all, "quick": quick, "torch_models": sorted(torch_for),
            "models": [{"model": m["label"], "architecture": m["arch"], "input_size_wh": list(m["size"]),
                        "macs_per_crop": m["macs"], "onnx_mb": m["onnx_mb"]} for m in models],
            "peak": {str(t): p for t, p in peak.items()},
            "peak_env_as_set": {str(t): p for t, p in peak_as_set.items()} if peak_as_set else None,
            "pairs": pairs, "rows": records}
    path = write_results("latency", "Network latency on CPU: FasterPose vs SimpleBaseline, onnxruntime vs PyTorch",
                         body, data, results_dir=results_dir)
    print(body)
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def _blas_text(blas) -> str:
    if isinstance(blas, str):
        return blas
    return "; ".join(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture')}, "
                     f"{b.get('num_threads')} threads" for b in blas) or "none found"


def main(argv=None):
    ap = BenchmarkParser("benchmarks.latency", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=positive_int, default=12, help="interleaved timing rounds per (threads, batch) (default 12)")
    ap.add_argument("--torch", dest="torch_sel", choices=["r18", "all", "none"], default="r18",
                    help="models also timed in PyTorch eager (default r18: the three R18 models)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: R18 at 128×96, batch 1 and 2, 256² matmul, results to a temporary folder")
    ap.add_argument("--results-dir", type=Path, help="where to write latency.{md,json} (default benchmarks/results)")
    args = ap.parse_args(argv)
    results_dir = args.results_dir or (Path(tempfile.mkdtemp(prefix="latency_quick_")) if args.quick else None)
    run(args.rounds, args.torch_sel, args.quick, results_dir)


if __name__ == "__main__":
    run_main(main)
