"""``fasterpose bench``: latency and throughput of ``PosePredictor.predict`` on a real-sized synthetic photo.

For each thread count and batch size (persons per call): warm-up calls, then N timed calls; latency
percentiles per call and per person, the process's CPU time per person (all threads; unlike wall time it
barely moves when other programs compete for the cores), persons/s, and achieved GFLOP/s = 2 × MACs × persons/s when
the model's MACs are known. MACs come from the metadata field ``macs`` (written by the exporter); otherwise they are
counted from the ONNX graph when the optional ``onnx`` package is installed (imported lazily: the runtime
never needs it), else reported as unknown.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["synthetic_photo", "person_boxes", "latency_stats", "model_macs", "macs_from_onnx",
           "bench_alternating", "run_bench_side_by_side", "format_table", "speed_ratios",
           "cpu_description", "advice"]

PHOTO_SIZE = (640, 480)  # (w, h): a common camera/webcam frame
# Instruction-set extensions that decide CPU inference speed: int8 dot products (VNNI) and bf16 change int8 and
# training figures several-fold, and machines sold under one CPU name may expose different sets.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # x86 int8 dot products: what the int8 models need to be fast


def cpu_description() -> Dict[str, str]:
    """{"cpu": model name, "cpu_features": the ISA_FLAGS this CPU has} from /proc/cpuinfo (Linux), else best effort."""
    model = features = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" and model is None:
                model = value.strip()
            elif key in ("flags", "features") and features is None:  # x86 "flags", ARM "Features"
                flags = set(value.split())
                features = " ".join(f for f in ISA_FLAGS if f in flags) or "none of " + " ".join(ISA_FLAGS)
    except OSError:
        pass
    return {"cpu": model or platform.processor() or "unknown", "cpu_features": features or "unknown"}


def synthetic_photo(size=PHOTO_SIZE, seed: int = 0) -> np.ndarray:
    """A (h, w, 3) uint8 BGR photo: smooth gradients plus noise (so no work is skipped on flat input)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 127 // max(w + h, 1)], 2)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def person_boxes(n: int, size=PHOTO_SIZE, seed: int = 0) -> np.ndarray:
    """n person-shaped boxes (N, 4) [x, y, w, h] spread over a photo of size (w, h): 1/5 wide, 1/2 tall."""
    w, h = size
    rng = np.random.default_rng(seed)
    bw, bh = w / 5.0, h / 2.0
    xy = rng.uniform([0, 0], [w - bw, h - bh], (n, 2))
    return np.concatenate([xy, np.tile([bw, bh], (n, 1))], axis=1)


def latency_stats(seconds: Union[np.ndarray, Sequence[float]], persons: int,
                  cpu_seconds: Union[np.ndarray, Sequence[float], None] = None) -> Dict[str, float]:
    """Per-call latencies (R,) s -> ms percentiles per call and per person, and persons/s (from the median).

    cpu_seconds (R,): the process's CPU time per call, if measured -> ``cpu_ms_per_person`` (median / persons).
    """
    t = np.asarray(seconds, np.float64) * 1e3
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    cpu = {} if cpu_seconds is None else \
        {"cpu_ms_per_person": float(np.median(np.asarray(cpu_seconds, np.float64)) * 1e3 / persons)}
    return {**cpu,
        "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(t.mean()),
        "p50_ms_per_person": float(p50 / persons), "p90_ms_per_person": float(p90 / persons),
        "p99_ms_per_person": float(p99 / persons),
        "persons_per_s": float(persons / (p50 / 1e3)) if p50 > 0 else float("inf"),
    }


def macs_from_onnx(path) -> Optional[int]:
    """MACs of one person (batch 1) counted from the ONNX graph, or None when ``onnx`` is not installed.

    Counted like models/complexity.py ("ours"): Conv / ConvInteger / QLinearConv = output elements × weight
    elements per output channel; ConvTranspose = input elements × out channels/group × kernel area;
    Gemm / MatMul (and their integer / QLinear forms) = output elements × inner dimension. Others: 0.
    """
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        return None
    model = onnx.load(str(path))
    for vi in list(model.graph.input) + list(model.graph.output):  # symbolic batch -> 1
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if i == 0 or not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {t.name: list(numpy_helper.to_array(t).shape) for t in model.graph.initializer}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes.setdefault(vi.name, [d.dim_value for d in dims])
    weight_at = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1,
                 "Gemm": 1, "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}
    total = 0
    for node in model.graph.node:
        if node.op_type not in weight_at:
            continue
        w = shapes.get(node.input[weight_at[node.op_type]])
        x, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        if w is None or y is None:
            continue
        if node.op_type == "ConvTranspose":
            if x is not None:  # weight (C_in, C_out/groups, kh, kw)
                total += int(np.prod(x)) * int(np.prod(w[1:]))
        elif "Conv" in node.op_type:  # weight (C_out, C_in/groups, kh, kw)
            total += int(np.prod(y)) * int(np.prod(w[1:]))
        else:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            inner = w[-1] if trans_b else w[-2] if len(w) >= 2 else w[0]
            total += int(np.prod(y)) * int(inner)
    return total


def model_macs(predictor) -> Optional[int]:
    """MACs per person: metadata ``macs`` if present, else counted from the graph (needs ``onnx``), else None."""
    value = predictor.metadata.extra.get("macs")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    try:
        return macs_from_onnx(predictor.model_path)
    except Exception:  # an exotic graph the counter cannot read: report unknown, never fail the benchmark
        return None


def bench_alternating(predictors: Sequence, batch: int, runs: int, warmup: int,
                      photo: np.ndarray) -> List[Dict[str, float]]:
    """Time several predictors' ``predict(photo, batch boxes)`` at once: each one's ``warmup`` untimed calls, then
    ``runs`` timed calls of each, taken in turn (A, B, A, B, ...), so a change in the machine's load falls on all of
    them alike and their ratios hold. One :func:`latency_stats` dict per predictor."""
    boxes = person_boxes(batch, (photo.shape[1], photo.shape[0]))
    for predictor in predictors:
        for _ in range(warmup):
            predictor.predict(photo, boxes)
    times, cpu = np.empty((len(predictors), runs)), np.empty((len(predictors), runs))
    for i in range(runs):
        for j, predictor in enumerate(predictors):
            c0, t0 = time.process_time(), time.perf_counter()
            predictor.predict(photo, boxes)
            times[j, i], cpu[j, i] = time.perf_counter() - t0, time.process_time() - c0
    return [latency_stats(times[j], batch, cpu[j]) for j in range(len(predictors))]


def run_bench_side_by_side(makers: Sequence[Tuple[str, Callable[[int, int], object]]], threads: Sequence[int],
                           batches: Sequence[int], runs: int, warmup: int,
                           progress: Optional[Callable[[str], None]] = None) -> List[dict]:
    """Rows of results, one per model and (threads, batch), for several models ((label, make_predictor) each:
    make_predictor(threads, batch_size) -> a PosePredictor, one per thread count, its batch_size the largest batch so
    every call is one session run), measured side by side: for each (threads, batch) their calls alternate
    (:func:`bench_alternating`), so the ratios between them are measured in the same moments. Rows grouped by model,
    in ``makers``' order."""
    photo = synthetic_photo()
    rows: List[List[dict]] = [[] for _ in makers]
    for t in threads:
        preds = [make(t, max(batches)) for _, make in makers]
        macs = [model_macs(pred) for pred in preds]
        for b in batches:
            if progress:
                progress(f"{' / '.join(label or 'model' for label, _ in makers)}: threads={t} batch={b}")
            for j, stats in enumerate(bench_alternating(preds, b, runs, warmup, photo)):
                macs_j = macs[j]
                gflops = 2.0 * macs_j * stats["persons_per_s"] / 1e9 if macs_j else None
                rows[j].append({"model": makers[j][0], "threads": t, "batch": b, "runs": runs, **stats,
                                "macs_per_person": macs[j], "gflop_per_s": gflops})
    return [row for model_rows in rows for row in model_rows]


def format_table(rows: List[dict]) -> str:
    """A human-readable table of run_bench_side_by_side rows (ms, persons/s, GFLOP/s)."""
    head = ["model", "threads", "batch", "p50 ms", "p90 ms", "p99 ms", "p50 ms/person", "CPU ms/person", "persons/s",
            "GFLOP/s"]
    body = [[r["model"], str(r["threads"]), str(r["batch"]), f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}",
             f"{r['p99_ms']:.2f}", f"{r['p50_ms_per_person']:.2f}",
             f"{r['cpu_ms_per_person']:.2f}" if "cpu_ms_per_person" in r else "n/a", f"{r['persons_per_s']:.1f}",
             "n/a" if r["gflop_per_s"] is None else f"{r['gflop_per_s']:.1f}"] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]

    def fmt(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def speed_ratios(rows: List[dict], slow: str, fast: str) -> List[dict]:
    """For each (threads, batch) measured for both models: fast/slow ratios of p50 ms per person (wall) and of CPU
    ms per person (``None`` where CPU time is missing). Below 1 means ``fast`` is faster."""
    by = {(r["model"], r["threads"], r["batch"]): r for r in rows}
    out = []
    for (model, t, b), r_slow in by.items():
        r_fast = by.get((fast, t, b))
        if model != slow or r_fast is None:
            continue
        cpu = None
        if r_slow.get("cpu_ms_per_person") and "cpu_ms_per_person" in r_fast:
            cpu = r_fast["cpu_ms_per_person"] / r_slow["cpu_ms_per_person"]
        out.append({"threads": t, "batch": b, "wall": r_fast["p50_ms_per_person"] / r_slow["p50_ms_per_person"],
                    "cpu": cpu})
    return out


def advice(cpu_features: str, benched: Sequence[Tuple[Path, str]]) -> List[str]:
    """What to try on this CPU, from what the README measured on CPUs of its kind; empty where nothing applies.

    cpu_features: ``cpu_description()["cpu_features"]``; benched: (model path, backend) of each model timed.
    """
    from .predictor import DEFAULT_MODELS

    flags = set(cpu_features.split())
    paths = {Path(p).resolve() for p, _ in benched}
    backends = {b for _, b in benched}
    out = []
    if "avx2" in flags and not flags & set(INT8_DOT_FLAGS) and DEFAULT_MODELS["default"].resolve() in paths \
            and DEFAULT_MODELS["fast"].resolve() not in paths:
        out.append("this CPU has no int8 dot products (VNNI): on such CPUs the bundled default took 16.8-29.1 ms per "
                   "person on 1 thread and the fast model (--fast) 0.52-0.71x its time; `fasterpose bench --compare` "
                   "times both here (README, 'Latency per kind of CPU')")
    if "amx_int8" in flags and backends == {"onnxruntime"}:
        out.append("this CPU has AMX: on such a CPU OpenVINO (--backend openvino, "
                   "pip install \"openvino>=2024.0\") took 0.37-0.74x onnxruntime's time; "
                   "`fasterpose bench --compare-backends` times both here (docs/performance.md, 'Backends')")
    return out
