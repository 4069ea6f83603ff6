"""Open a FasterPose ONNX file: one onnxruntime CPU session plus its validated ``fasterpose`` metadata."""
from __future__ import annotations

import numbers
import os
import re
from pathlib import Path
from typing import Any, Optional, Tuple

import onnxruntime as ort

from .metadata import METADATA_KEY, MetadataError, ModelMetadata
from .presence import presence_output

__all__ = ["ModelError", "ModelNotFoundError", "open_session", "physical_cores", "BACKENDS"]

MAX_THREADS = 1024  # far beyond any CPU; onnxruntime fails obscurely on counts past 2**31
BACKENDS = ("onnxruntime", "openvino")  # open_session's backends: onnxruntime always, openvino where installed


class ModelError(ValueError):
    """The model file cannot be used: not ONNX, no or malformed ``fasterpose`` metadata, wrong graph shape."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model file does not exist (also a ``FileNotFoundError``)."""


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-thread siblings counted once).

    Linux: distinct (physical id, core id) pairs in /proc/cpuinfo among the CPUs in this process's affinity
    mask. Elsewhere, or if that fails, 0, which tells onnxruntime to pick its own default (also physical cores).
    """
    try:
        allowed = os.sched_getaffinity(0)
        cores, cpu, phys = set(), None, "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "processor":
                    cpu, phys = int(val), "0"
                elif key == "physical id":
                    phys = val
                elif key == "core id" and cpu in allowed:
                    cores.add((phys, val))
        # No "core id" lines (some ARM/virtual machines): count the allowed logical CPUs.
        return len(cores) or len(allowed)
    except (AttributeError, OSError, ValueError):
        return 0


def open_session(path, threads: Optional[int] = None, backend: str = "onnxruntime") -> Tuple[Any, ModelMetadata]:
    """Load ``path`` into a CPU InferenceSession and read its metadata; raise ModelError naming any problem.

    threads: intra-op threads (None -> :func:`physical_cores`), not spinning while idle. Inter-op threads 1
    (the graph is a chain), all graph optimisations on, CPUExecutionProvider only, warnings silenced.
    backend: "onnxruntime", or "openvino" (``openvino_session.OpenVinoSession``, the same methods; raises
    BackendUnavailable, an ImportError, where openvino is not installed).
    Checks the graph against the metadata: one float input (N, 3, H, W) with (W, H) = ``input_size`` where the
    axes are fixed, a first, 4-D output with K = number of keypoints channels where that axis is fixed, and the
    presence output (N,) its metadata names, if any (``presence.py``).
    """
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"model file not found: {p}")
    if not p.is_file():
        raise ModelError(f"model path is not a file: {p}")
    if threads is None:
        threads = physical_cores()
    elif (isinstance(threads, bool) or not isinstance(threads, (int, numbers.Integral))  # numpy's integers too
          or not 1 <= threads <= MAX_THREADS):
        raise ValueError(f"threads must be an integer from 1 to {MAX_THREADS} or None, got {threads!r}")
    else:
        threads = int(threads)  # the engines' options take a Python int

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if threads == 0:  # physical_cores could not count them: onnxruntime picks; OpenVINO needs a number
        threads = (os.cpu_count() or 1) if backend == "openvino" else 0
    if backend == "openvino":
        from .openvino_session import OpenVinoSession

        try:
            session: Any = OpenVinoSession(p, threads)
        except RuntimeError as e:  # OpenVINO's own errors for files it cannot read
            raise _unloadable(p, e) from None
        return session, _read_metadata(session, p)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 4  # fatal only: loading prints nothing; a failed run's error is raised, not also logged
    # Idle intra-op threads sleep instead of spinning: between runs the cores belong to our own cropping and
    # decoding, other predict() threads, or the rest of the application (measured on a shared 2-core machine:
    # spinning made one-box inference ~1.7x slower; see benchmarks/results/runtime.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        raise _unloadable(p, e) from None

    return session, _read_metadata(session, p)


_SOURCE_LINE = re.compile(r"^(Exception from )?\S+\.(cpp|cc|hpp|h):\d+:?$")


def _unloadable(p: Path, e: Exception) -> ModelError:
    """The engine's error for a file it cannot load, as one line naming the file: its first line that says something,
    past lines that only say where in the engine's C++ it was raised (OpenVINO's "Exception from src/...cpp:84:",
    whose reason is on a later line: review s68)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    said = [line for line in lines if not _SOURCE_LINE.match(line)]
    msg = (said or lines or [type(e).__name__])[0]
    return ModelError(f"{p} is not a loadable ONNX model: {msg}")


def _read_metadata(session, p: Path) -> ModelMetadata:
    """The session's validated ``fasterpose`` metadata, its graph checked against it; ModelError otherwise."""
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelError(
            f"{p} has no '{METADATA_KEY}' metadata, so it is not a FasterPose model "
            "(models exported with `python -m export` carry it)"
        )
    try:
        meta = ModelMetadata.from_json(props[METADATA_KEY])
    except MetadataError as e:
        raise ModelError(f"{p}: {e}") from None
    _check_graph(session, meta, p)
    return meta


def _check_graph(session, meta: ModelMetadata, p: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelError(f"{p}: expected one input tensor, found {len(inputs)}")
    inp = inputs[0]
    w, h = meta.input_size
    if inp.type != "tensor(float)":
        raise ModelError(f"{p}: input '{inp.name}' must be float32, is {inp.type}")
    if len(inp.shape) != 4 or not all(
        not isinstance(dim, int) or dim == want for dim, want in zip(inp.shape[1:], (3, h, w))
    ):
        raise ModelError(
            f"{p}: input '{inp.name}' has shape {inp.shape}; the metadata's input_size {meta.input_size} "
            f"needs (N, 3, {h}, {w})"
        )
    if not outputs or len(outputs[0].shape) != 4:
        raise ModelError(f"{p}: expected a 4-D heatmap output (N, K, h, w)")
    k = outputs[0].shape[1]
    if isinstance(k, int) and k != meta.num_keypoints:
        raise ModelError(f"{p}: the output has {k} heatmaps but the metadata names {meta.num_keypoints} keypoints")
    try:
        name = presence_output(meta.extra, [o.name for o in outputs])
    except ValueError as e:
        raise ModelError(f"{p}: {e}") from None
    if name is not None:
        shape = next(o.shape for o in outputs if o.name == name)
        if not (len(shape) == 1 or (len(shape) == 2 and (shape[1] == 1 or not isinstance(shape[1], int)))):
            raise ModelError(f"{p}: the presence output '{name}' has shape {shape}; expected (N,) or (N, 1)")
