"""Shared helpers of the benchmarks: the command line (parser, entry point, error exits), machine description,
median and interleaved timing (rotating order, position-symmetric ratios), results as Markdown + JSON.

Results go to ``benchmarks/results/<name>.md`` (for people) and ``<name>.json`` (for tools), both stamped with
the command that ran (as parsed by :class:`BenchmarkParser`) and the machine it ran on.

A benchmark's module ends with ``if __name__ == "__main__": run_main(main)``: the runtime's expected errors
(a missing model or photo, an unusable file) and the benchmarks' own refusals become one ``error: ...`` line and
exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from fasterpose_rt.bench import cpu_description

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
_invocation: Optional[str] = None  # the command line the last BenchmarkParser parsed; write_results stamps it


def shown_path(path) -> str:
    """A path relative to the repository when it lies inside it, else as given (results name no local folders)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _shown_arg(arg: str) -> str:
    """A command-line argument as stamped: an absolute path inside the repository relative to it (the command is
    run from the repository's root), anything else as typed. ``--opt=/abs/path`` too."""
    opt, eq, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
    if not value.startswith("/"):
        return arg
    try:
        value = str(Path(value).relative_to(ROOT))
    except ValueError:
        return arg
    return f"{opt}{eq}{value}"


def command_line(prog: str, args: Sequence[str]) -> str:
    """``prog`` and its arguments as one shell line (quoted where needed, repository paths relative)."""
    return " ".join([prog, shlex.join(_shown_arg(str(a)) for a in args)]).rstrip()


class BenchmarkParser(argparse.ArgumentParser):
    """``argparse`` for a benchmark: usage reads ``python -m <module>``, and the arguments it parses (``sys.argv``
    from the command line, or the list a caller gives ``main(argv)``) become the command ``write_results`` stamps
    on the results, options and all."""

    def __init__(self, module: str, **kwargs):
        kwargs.setdefault("prog", f"python -m {module}")
        super().__init__(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        given = sys.argv[1:] if args is None else [str(a) for a in args]
        parsed = super().parse_known_args(given, namespace)
        global _invocation
        _invocation = command_line(self.prog, given)
        return parsed


def _whole_number(text: str, least: int) -> int:
    """argparse type check: a whole number >= ``least``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (rounds, photos: 0 would time or score nothing and write NaN)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (``--limit``: 0 means all)."""
    return _whole_number(text, 0)


def expected_errors() -> tuple:
    """The exception types a benchmark meets on bad input rather than a bug: the runtime's errors for a model,
    photo, annotation, detections or boxes file it cannot use, a missing optional backend, a missing file, and the
    exporter's ``InputError`` (bad arguments or files) when the benchmark loaded the exporter."""
    from fasterpose_rt.boxes import BoxesFileError
    from fasterpose_rt.detections import DetectionsError
    from fasterpose_rt.inputs import InputReadError
    from fasterpose_rt.metadata import MetadataError
    from fasterpose_rt.openvino_session import BackendUnavailable
    from fasterpose_rt.photo_sets import PhotoSetError
    from fasterpose_rt.session import ModelError  # ModelNotFoundError is one

    types = [ModelError, MetadataError, InputReadError, BackendUnavailable, PhotoSetError, DetectionsError,
             BoxesFileError, FileNotFoundError]
    try:
        from fasterpose_rt.evaluate import EvalError, MissingExtra
        types += [EvalError, MissingExtra]
    except ImportError:  # evaluate's optional parts are imported lazily; never let this hide the real error
        pass
    if "export.errors" in sys.modules:  # the checkout's exporter, where a benchmark uses it: bad user input only
        types.append(sys.modules["export.errors"].InputError)
    return tuple(types)


def error_exit(message: str) -> None:
    """Print ``error: <message>`` (once prefixed) to stderr and exit with code 2."""
    message = " ".join(str(message).split("\n")).strip() or "failed"
    print(message if message.startswith("error:") else f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_main(main: Callable, argv: Optional[Sequence[str]] = None) -> None:
    """Run a benchmark's ``main(argv)`` as its command line does and exit: an expected error
    (:func:`expected_errors`) or a refusal (``SystemExit`` with a message) prints one ``error: ...`` line and
    exits 2; argparse's own exits (usage errors, ``--help``) pass through; a whole-number return is the exit
    code, anything else 0."""
    try:
        code = main(argv)
    except SystemExit as e:
        if isinstance(e.code, str):
            error_exit(e.code)
        raise
    except expected_errors() as e:
        error_exit(str(e) or type(e).__name__)
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


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


def markdown_table(header: Sequence[str], rows: List[Sequence]) -> str:
    """A GitHub Markdown table; header (C,) strings, rows of C cells (anything str()-able)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def finite_json(value):
    """``value`` made JSON-safe for ``json.dumps(allow_nan=False)``: NaN and ±inf become None (null), numpy
    scalars and arrays plain Python numbers and lists, tuples lists; dict keys are kept."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and ``os.replace``: a reader (or a run that
    stops half-way) sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain write would make it (mkstemp's file is private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _argv_command(name: str) -> str:
    """The command of this process when it runs a benchmark module (``python -m benchmarks.x ...``), else the
    bare ``python -m benchmarks.<name>``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", "") or ""
    if module.startswith("benchmarks."):
        return command_line(f"python -m {module}", sys.argv[1:])
    return f"python -m benchmarks.{name}"


def write_results(name: str, title: str, body_md: str, data: Dict, command: Optional[str] = None,
                  results_dir: Optional[Path] = None) -> Path:
    """Write ``results/<name>.md`` (title, command, machine, body) and ``results/<name>.json`` ({"machine",
    **data}), each atomically (a temporary file, then ``os.replace``).

    command: the command line shown; by default the one that ran, with every option, as the benchmark's
    :class:`BenchmarkParser` parsed it (else this process's ``sys.argv``). results_dir: where to write (default
    ``benchmarks/results``). Non-finite numbers in ``data`` are written as null (never NaN: strict JSON). Returns
    the Markdown path.
    """
    global _invocation
    if command is None:
        command = _invocation or _argv_command(name)
    _invocation = None  # stamped once: a later write without a parse of its own falls back to sys.argv
    out_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    md = [f"# {title}", "", f"Command: `{command}`", "", "Machine:", ""]
    md += [f"- {k}: {v}" for k, v in machine.items()]
    md += ["", body_md.rstrip(), ""]
    # Both texts are made before either file is touched: a failure leaves the previous pair as it was.
    md_text = "\n".join(md)
    json_text = json.dumps(finite_json({"machine": machine, **data}), indent=2, allow_nan=False) + "\n"
    md_path = out_dir / f"{name}.md"
    _atomic_write(md_path, md_text)
    _atomic_write(out_dir / f"{name}.json", json_text)
    return md_path


class RoundTimes(np.ndarray):
    """A competitor's (rounds,) seconds from :func:`interleaved_times`: a float array like any other, which also
    carries ``cycle``, the number of consecutive rounds in which every competitor of that call holds every position
    once (:func:`paired_ratio` averages over that many). Arithmetic and slices keep it (right for contiguous ones,
    ``t[k:]``; not for strided ones, ``t[::2]``), ``np.array(t)`` drops it; its reductions (``np.median``,
    ``t.mean()``, ...) are plain numpy scalars."""

    cycle: Optional[int] = None

    def __new__(cls, values, cycle: int):
        out = np.asarray(values, dtype=float).view(cls)
        out.cycle = cycle
        return out

    def __array_finalize__(self, obj):
        self.cycle = getattr(obj, "cycle", None)

    def __reduce__(self):  # a pickled copy keeps its cycle (ndarray's own pickling knows nothing of it)
        rebuild, args, state = super().__reduce__()
        return rebuild, args, (state, self.cycle)

    def __setstate__(self, state):
        array_state, self.cycle = state
        super().__setstate__(array_state)

    def __array_wrap__(self, arr, context=None, *args, **kwargs):
        out = super().__array_wrap__(arr, context)
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def interleaved_times(fns: Dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> Dict[str, np.ndarray]:
    """Seconds per call of each fn, {name: (rounds,) array (a :class:`RoundTimes`)}, each fn timed once per round.

    The order rotates by one every round: round r runs ``names[r % n:] + names[:r % n]`` (A B C, B C A, C A B,
    A B C, ...). So over any n consecutive rounds every competitor holds every position once, and a fixed position
    in the round (caches, turbo, the first call after the timer's own work) favours none of them; :func:`paired_ratio`
    cancels it exactly by averaging over such n rounds. Rounds are back to back, and for 3 or more competitors no
    round starts with the one the previous round ended with (round r ends with names[r - 1], round r + 1 starts
    with names[r + 1]; the warm-up rounds run in list order, ending with the last, before round 0 starts with the
    first), so no competitor runs twice in a row with the warm caches of its own previous call.

    Two competitors: every order that lets each of them go first in some rounds must, where who goes first
    changes, start a round with the one that ended the previous one. Rotation by one is A B, B A, A B, ... (the
    alternation): every round boundary repeats a competitor, each in turn (B|B, A|A, ...), and a competitor runs
    first exactly in the rounds where it follows itself (round 0 included: the warm-up runs B A). Running right
    after itself is thus part of its "first"
    position, which each of the two holds in every other round, and cancels with the position in
    :func:`paired_ratio` (two consecutive rounds). The other schemes are worse: A B, A B, ... never repeats but
    never moves B from second; A B, A B, B A, B A, ... repeats at half the boundaries but needs four rounds to
    balance and makes a competitor's first position sometimes after itself, sometimes not.

    Not balanced: which competitor runs just before another within a round (always the one before it in the
    list); a position effect cancels, a carry-over from one particular neighbour does not.
    """
    names = list(fns)
    n = len(names)
    # Two: the warm-up ends with the first, so round 0's first follows itself as every later round's first does
    for _ in range(warmup):
        for name in (names[::-1] if n == 2 else names):
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds if n else 0):
        for name in names[r % n:] + names[:r % n]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: RoundTimes(t, cycle=n) for name, t in times.items()}


def paired_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """How many times slower ``a`` is than ``b``, from two (rounds,) time arrays measured in the same rounds: the
    median, over every run of ``cycle`` consecutive rounds, of the geometric mean of those rounds' ratios
    a[i] / b[i] (exp of the mean of their log-ratios).

    ``cycle`` is the number of rounds in which each of the two holds each of its positions once: for arrays from
    :func:`interleaved_times` the number of competitors of that call (carried by the arrays, :class:`RoundTimes`;
    of two from different calls, the least common multiple), for plain arrays 2 (the hand-written loops of the
    benchmarks reverse the order every other round, so any two consecutive rounds hold both orders of a pair).

    Symmetric over positions: a round's ratio depends on where a and b ran in it (one value when a runs before b,
    another when after), so the per-round ratios are multi-modal and their median sits on whichever mode holds the
    middle, i.e. depends on the number of rounds. Each window of ``cycle`` consecutive rounds (any start) gives
    both every position once, so its geometric mean carries no position effect, and every window is complete
    (no leftover rounds to bias it, whatever the number of rounds). Robust: an outlier round spoils only the
    ``cycle`` windows holding it, and the median over windows stays on clean ones while fewer than half are
    spoiled. (A trimmed mean of the per-round log-ratios would not be position-symmetric: with 3+ competitors a
    pair has several position states, and trimming cuts the extreme ones.) Fewer rounds than ``cycle``: the
    geometric mean of all the ratios (no complete window exists).
    """
    cycles = [c for c in (getattr(a, "cycle", None), getattr(b, "cycle", None)) if c]
    cycle = math.lcm(*cycles) if cycles else 2
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.asarray(a, dtype=float) / np.asarray(b, dtype=float))
    if logs.size == 0:
        return math.nan
    if logs.size < cycle:
        return float(np.exp(logs.mean()))
    windows = np.lib.stride_tricks.sliding_window_view(logs, cycle).mean(axis=1)
    return float(np.exp(np.median(windows)))
