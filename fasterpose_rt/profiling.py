"""``fasterpose bench --profile``: where a model's time goes, operator by operator, as the inference engine itself
measures it (onnxruntime's profiler, or OpenVINO's performance counters).

It answers "is this CPU slow at the convolutions, or is something else in the way?": on an AVX2-only CPU the
bundled default spends about 96 % of its time in its 30 int8 convolutions (``QLinearConv``), each 3×3 one about
equally long whatever its stage, so only fewer multiply-adds or better int8 instructions make it faster.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

__all__ = ["profile_model", "format_profile"]


def _summary(per_node: Dict[str, List], runs: int, call_ms: float) -> dict:
    """per_node: name -> [op type, kernel, total µs over the timed calls] -> the profile dict (see profile_model)."""
    names = list(per_node)
    us = np.array([per_node[n][2] for n in names], np.float64) / max(runs, 1)
    total = float(us.sum())
    share = us / total if total > 0 else np.zeros_like(us)
    ops: Dict[str, List[float]] = defaultdict(lambda: [0.0, 0])
    for name, t in zip(names, us):
        ops[per_node[name][0]][0] += t
        ops[per_node[name][0]][1] += 1
    op_rows: List[Dict[str, Any]] = sorted(
        ({"op": op, "ms": t / 1000, "share": t / total if total > 0 else 0.0, "nodes": int(n)}
         for op, (t, n) in ops.items()), key=lambda r: float(r["ms"]), reverse=True)
    order = np.argsort(-us, kind="stable")
    node_rows = [{"name": names[i], "op": per_node[names[i]][0], "kernel": per_node[names[i]][1],
                  "ms": float(us[i]) / 1000, "share": float(share[i])} for i in order]
    return {"runs": runs, "call_ms": call_ms, "operators_ms": total / 1000, "ops": op_rows,
            "nodes": node_rows}


def _profile_onnxruntime(path: Path, x: np.ndarray, threads: int, runs: int, warmup: int) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="fasterpose-profile-") as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    # The profiler records every call since the session was made: keep the nodes inside the last `runs` calls.
    calls = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                   if e.get("cat") == "Session" and e.get("name") == "model_run")[-runs:]
    starts = np.array([c[0] for c in calls])
    ends = np.array([c[1] for c in calls])
    per_node: Dict[str, List] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        i = np.searchsorted(starts, e["ts"], side="right") - 1
        if i < 0 or e["ts"] > ends[i]:
            continue
        name = e["name"][: -len("_kernel_time")]
        per_node.setdefault(name, [e["args"].get("op_name", "?"), "", 0.0])[2] += e["dur"]
    call_ms = float(np.mean(ends - starts)) / 1000 if len(calls) else float("nan")
    return _summary(per_node, len(calls), call_ms)


def _profile_openvino(path: Path, x: np.ndarray, threads: int, runs: int, warmup: int) -> dict:
    from .openvino_session import import_openvino

    ov = import_openvino()
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                          "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer({0: x})
    per_node: Dict[str, List] = {}
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer({0: x})
        walls.append(time.perf_counter() - t0)
        for p in request.get_profiling_info():  # the counters of the last call only
            if p.status == p.Status.EXECUTED:
                per_node.setdefault(p.node_name, [p.node_type, p.exec_type, 0.0])[2] += \
                    p.real_time.total_seconds() * 1e6
    return _summary(per_node, runs, float(np.mean(walls)) * 1000)


def profile_model(path, threads: int = 1, batch: int = 1, runs: int = 20, warmup: int = 3,
                  backend: str = "onnxruntime", input_size: Optional[tuple] = None, seed: int = 0) -> dict:
    """Time each operator of the model at ``path`` on ``batch`` random crops (N, 3, H, W), ``runs`` calls after
    ``warmup`` untimed ones, with ``threads`` threads; input_size (w, h): the model's (its metadata) if None.

    Returns {"backend", "threads", "batch", "runs", "call_ms": mean time of a whole call, "operators_ms": the sum of
    the operators' times per call, "ops": [{"op", "ms", "share", "nodes"}] by time, "nodes": [{"name", "op",
    "kernel", "ms", "share"}] by time}; ms are per call, shares of ``operators_ms``. "kernel": the implementation
    OpenVINO chose (e.g. ``jit_avx2_I8``: int8 with AVX2 instructions); onnxruntime does not say (""). Raises
    BackendUnavailable where the backend is not installed, ValueError for an unknown backend.
    """
    from .session import BACKENDS, open_session

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if input_size is None:
        input_size = open_session(path, threads)[1].input_size  # also checks the file and its metadata
    w, h = input_size
    x = np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)
    profile = _profile_openvino if backend == "openvino" else _profile_onnxruntime
    out = profile(Path(path), x, threads, runs, warmup)
    return {"backend": backend, "threads": threads, "batch": batch, **out}


def _clip(name: str, width: int) -> str:
    """A node name cut to ``width`` characters from the left, where ONNX names differ (their layer)."""
    return name if len(name) <= width else "..." + name[-(width - 3):]


def format_profile(p: dict, label: str, top: int = 10) -> str:
    """A profile as text: the call, the time per operator type, and the ``top`` slowest nodes."""
    threads = f"{p['threads']} thread" + ("" if p["threads"] == 1 else "s")
    head = (f"profile of {label} on {p['backend']}, {threads}, batch {p['batch']}, {p['runs']} calls: "
            f"{p['call_ms']:.2f} ms per call, ")
    if not p["operators_ms"] > p["call_ms"]:
        head += f"{p['operators_ms']:.2f} ms of it in operators"
    else:  # seen with OpenVINO on 2 threads (15.8 ms against 14.8): its clocks per operator are not additive there
        head += (f"though the operators' own clocks sum to {p['operators_ms']:.2f} ms: they do not add up (operators "
                 f"timed in parallel, or the clocks' own overhead), so read the shares, not the sum")
    lines = [head]
    width = max([len(r["op"]) for r in p["ops"]] + [7])
    lines.append(f"{'op type':<{width}}  {'ms/call':>8}  {'share':>6}  nodes")
    lines += [f"{r['op']:<{width}}  {r['ms']:8.3f}  {100 * r['share']:5.1f}%  {r['nodes']:5d}" for r in p["ops"]]
    nodes = p["nodes"][:top]
    if nodes:
        nw = min(max(len(r["name"]) for r in nodes), 48)
        kernels = any(r["kernel"] for r in nodes)
        kw = max([len(r["kernel"]) for r in nodes] + [6])

        def row(name, op, kernel, ms, share):
            return f"{name:<{nw}}  {op:<{width}}  " + (f"{kernel:<{kw}}  " if kernels else "") + f"{ms:>8}  {share:>6}"

        lines.append(f"the {len(nodes)} slowest nodes:")
        lines.append(row("node", "op type", "kernel", "ms/call", "share"))
        lines += [row(_clip(r["name"], nw), r["op"], r["kernel"], f"{r['ms']:.3f}", f"{100 * r['share']:5.1f}%")
                  for r in nodes]
    return "\n".join(lines)
