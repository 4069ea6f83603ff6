"""The OpenVINO backend: a FasterPose ONNX file compiled by OpenVINO's CPU plugin, behind the few methods of an
onnxruntime ``InferenceSession`` the runtime uses (``run``, ``get_inputs``, ``get_outputs``, ``get_modelmeta``,
``get_session_options``), so ``PosePredictor(backend="openvino")`` changes nothing else.

Why: on a CPU with AMX (Intel Xeon since Sapphire Rapids) OpenVINO ran the bundled int8 models at 0.4-0.6x
onnxruntime's time (``python -m benchmarks.backends``; ``fasterpose bench --compare-backends`` on any CPU). It is optional (``pip install "fasterpose[openvino]"``,
about 60 MB) and imported only when asked for.

OpenVINO compiles the network again for each batch size the first time it meets it (tens of ms; later calls at
that size reuse it), so the first few calls of a run are slower than the rest.
"""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Sequence

import numpy as np

__all__ = ["BackendUnavailable", "OpenVinoSession", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "fasterpose[openvino]"'


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
    file it cannot read. ``run`` may be called from several threads: each has its own infer request."""

    def __init__(self, path: Path, threads: int):
        try:
            import openvino as ov
        except ImportError:
            raise BackendUnavailable(f"the OpenVINO backend needs the openvino package: {INSTALL_HINT}") from None
        core = ov.Core()
        self._model = core.read_model(str(path))
        self._compiled = core.compile_model(self._model, "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                                  "PERFORMANCE_HINT": "LATENCY"})
        self.threads = int(threads)
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
