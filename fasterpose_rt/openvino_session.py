"""The OpenVINO backend: a FasterPose ONNX file compiled by OpenVINO's CPU plugin, behind the few methods of an
onnxruntime ``InferenceSession`` the runtime uses (``run``, ``get_inputs``, ``get_outputs``, ``get_modelmeta``,
``get_session_options``), so ``PosePredictor(backend="openvino")`` changes nothing else.

Why: on a CPU with AMX (Intel Xeon since Sapphire Rapids) OpenVINO ran the bundled int8 models at 0.37-0.74x
onnxruntime's time, on an AVX2-only AMD EPYC at 0.9-0.95x (``python -m benchmarks.backends``; ``fasterpose bench
--compare-backends`` on any CPU). It is optional (``pip install "openvino>=2024.0"``, about 60 MB) and imported
only when asked for.

Compiling the network takes about 0.3 s, so the compiled network is kept on disk (:func:`cache_dir`: about 9 MB per
model) and later runs load it in about 0.08 s. OpenVINO also compiles again for each batch size the
first time it meets it (tens of ms; later calls at that size reuse it), so the first few calls of a run are slower
than the rest.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = ["BackendUnavailable", "OpenVinoSession", "INSTALL_HINT", "CACHE_ENV", "cache_dir", "import_openvino"]

INSTALL_HINT = 'pip install "openvino>=2024.0"'
CACHE_ENV = "FASTERPOSE_OPENVINO_CACHE"
_NO_CACHE = ("", "0", "off", "none", "false", "no")


_ENV_LOCK = threading.Lock()


def import_openvino():
    """``import openvino``, without its usage telemetry. OpenVINO's import sends an event to Google Analytics (and
    writes ~/intel/) unless the user opted out, or ``CI=true`` (its telemetry declines in CI); the runtime promises no
    network use, so the import runs as in CI and the environment is put back as it was. Raises BackendUnavailable
    without the package."""
    import sys

    if sys.modules.get("openvino") is not None:  # None there: an import that fails (ImportError), as Python's own
        return sys.modules["openvino"]
    with _ENV_LOCK:
        before = os.environ.get("CI")
        os.environ["CI"] = "true"
        try:
            import openvino
        except ImportError:
            raise BackendUnavailable(f"the OpenVINO backend needs the openvino package: {INSTALL_HINT}") from None
        finally:
            if before is None:
                os.environ.pop("CI", None)
            else:
                os.environ["CI"] = before
    return openvino


def cache_dir() -> Optional[Path]:
    """Where compiled networks are kept between runs: ``$FASTERPOSE_OPENVINO_CACHE`` if set (``off`` or empty: keep
    none), else ``$XDG_CACHE_HOME/fasterpose/openvino``, else ``~/.cache/fasterpose/openvino``.

    OpenVINO names each file by a hash of the network, so a changed model file gets a file of its own (the thread
    count is set when a file is loaded), and a damaged file is compiled again. Deleting the folder is always safe.
    """
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in _NO_CACHE else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fasterpose" / "openvino"


class BackendUnavailable(ImportError):
    """The backend asked for is not installed; the message says how to install it."""


def _port(port, element_types) -> SimpleNamespace:
    """An input or output as onnxruntime describes one: .name, .shape (ints, a name for a free axis), .type."""
    shape = [d.get_length() if d.is_static else f"dim{i}" for i, d in enumerate(port.get_partial_shape())]
    kind = element_types.get(port.get_element_type().get_type_name(), port.get_element_type().get_type_name())
    return SimpleNamespace(name=port.get_any_name(), shape=shape, type=f"tensor({kind})")


class OpenVinoSession:
    """An ONNX file compiled for OpenVINO's CPU device with ``threads`` inference threads and the latency hint (one
    stream: each call uses every thread). Raises BackendUnavailable without openvino, RuntimeError (OpenVINO's) for a
    file it cannot read. ``run`` may be called from several threads: each has its own infer request.

    cache: the folder compiled networks are kept in; "auto" (the default): :func:`cache_dir`; None: none. Where it
    cannot be written the network is compiled without it, with a warning if the folder was chosen (argument or
    environment); ``.cache_dir`` is the folder used, or None; ``.loaded_from_cache`` tells whether it saved compiling.
    """

    def __init__(self, path: Path, threads: int, cache: Union[str, Path, None] = "auto"):
        ov = import_openvino()
        auto = isinstance(cache, str) and cache == "auto"
        chosen = not auto or CACHE_ENV in os.environ
        self.cache_dir: Optional[Path] = cache_dir() if auto else (None if cache is None else Path(cache))
        core = ov.Core()
        self._model = core.read_model(str(path))
        config = {"INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY"}
        try:
            extra = {} if self.cache_dir is None else {"CACHE_DIR": str(self.cache_dir)}
            self._compiled = core.compile_model(self._model, "CPU", {**config, **extra})
        except RuntimeError as e:
            if self.cache_dir is None:
                raise
            # e.g. a read-only home: compiling anew each run is slower, never wrong
            if chosen:
                reason = [line for line in str(e).splitlines() if line.strip()][-1:] or ["unknown"]
                warnings.warn(f"OpenVINO cannot keep compiled networks in {self.cache_dir} ({reason[0].strip()}); "
                              f"compiling without a cache (set {CACHE_ENV}=off to silence this)", stacklevel=2)
            self.cache_dir = None
            self._compiled = core.compile_model(self._model, "CPU", config)
        self.threads = int(threads)
        self.loaded_from_cache = bool(self.cache_dir is not None and self._compiled.get_property("LOADED_FROM_CACHE"))
        names = {"f32": "float", "f16": "float16", "i64": "int64", "i32": "int32", "u8": "uint8"}
        self._inputs = [_port(p, names) for p in self._compiled.inputs]
        self._outputs = [_port(p, names) for p in self._compiled.outputs]
        self._local = threading.local()

    def get_inputs(self) -> List[SimpleNamespace]:
        return list(self._inputs)

    def get_outputs(self) -> List[SimpleNamespace]:
        return list(self._outputs)

    def get_session_options(self) -> SimpleNamespace:
        return SimpleNamespace(intra_op_num_threads=self.threads)

    def get_modelmeta(self) -> SimpleNamespace:
        """The ONNX file's metadata entries (OpenVINO keeps them under its 'framework' runtime info)."""
        info = self._model.get_rt_info()
        framework = info["framework"] if "framework" in info else {}
        framework = framework.astype(dict) if hasattr(framework, "astype") else framework
        return SimpleNamespace(custom_metadata_map={str(k): v.astype(str) if hasattr(v, "astype") else str(v)
                                                    for k, v in framework.items()})

    def run(self, output_names: Sequence[str], feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """onnxruntime's ``run``: the named outputs (all for None) for the inputs in ``feed``, as new arrays."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({name: np.ascontiguousarray(x) for name, x in feed.items()}, share_outputs=False)
        wanted = [o.name for o in self._outputs] if output_names is None else list(output_names)
        return [np.array(result[self._compiled.output(name)]) for name in wanted]
