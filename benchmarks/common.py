"""Shared helpers of the benchmarks: machine description, median timing, results as Markdown + JSON.

Results go to ``benchmarks/results/<name>.md`` (for people) and ``<name>.json`` (for tools), both stamped with
the machine they were measured on.
"""
from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from fasterpose_rt.bench import cpu_description

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _version(module: str) -> str:
    # torch is reported only when the benchmark already imported it: never pull it in just to print a version.
    if module == "torch" and "torch" not in sys.modules:
        return "not loaded"
    try:
        return getattr(importlib.import_module(module), "__version__", "unknown")
    except ImportError:
        return "not installed"


def machine_info() -> Dict[str, str]:
    """CPU model, core count, load, library versions and the date, as strings."""
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        **cpu_description(),
        "cores": str(os.cpu_count()),
        "load_average_1_5_15min": load,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def markdown_table(header: Sequence[str], rows: List[Sequence]) -> str:
    """A GitHub Markdown table; header (C,) strings, rows of C cells (anything str()-able)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, body_md: str, data: Dict, command: Optional[str] = None,
                  results_dir: Optional[Path] = None) -> Path:
    """Write ``results/<name>.md`` (title, machine, body) and ``results/<name>.json`` ({"machine", **data}).

    command: the command line shown (default ``python -m benchmarks.<name>``); results_dir: where to write
    (default ``benchmarks/results``). Returns the Markdown path.
    """
    out_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    md = [f"# {title}", "", f"Command: `{command or f'python -m benchmarks.{name}'}`", "", "Machine:", ""]
    md += [f"- {k}: {v}" for k, v in machine.items()]
    md += ["", body_md.rstrip(), ""]
    md_path = out_dir / f"{name}.md"
    md_path.write_text("\n".join(md))
    (out_dir / f"{name}.json").write_text(json.dumps({"machine": machine, **data}, indent=2) + "\n")
    return md_path


def interleaved_times(fns: Dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> Dict[str, np.ndarray]:
    """Seconds per call of each fn, {name: (rounds,) array}, each fn timed once per round in turn.

    The order alternates (forward in even rounds, reversed in odd ones), so neither a slow drift of the
    machine's load nor a fixed position in the round (caches, turbo) favours one competitor.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: np.array(t) for name, t in times.items()}


def paired_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """Median over rounds of a[i] / b[i] for two (rounds,) time arrays measured in the same rounds."""
    return float(np.median(np.asarray(a) / np.asarray(b)))
