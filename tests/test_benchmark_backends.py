"""benchmarks/backends.py: both engines timed on the same calls and scored on the same persons; onnxruntime's PCK is
the runtime's own, OpenVINO's is within a few joints of it, and every ratio is OpenVINO's time over onnxruntime's.

Real parts: the bundled default model, OpenVINO (optional: skipped where absent), 40 real LSPET training photos
(skipped when ../shared is absent).
"""
import numpy as np
import pytest

from benchmarks.backends import main
from conftest import NEEDS_LSPET, run_lspet_benchmark, runtime_pck
from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.openvino_session import import_openvino

try:  # as the runtime imports it: without OpenVINO's usage telemetry (a network call at import)
    import_openvino()
except ImportError:
    pytest.skip("openvino is not installed (optional: pip install \"openvino>=2024.0\")", allow_module_level=True)
pytestmark = [NEEDS_LSPET, pytest.mark.skipif(not DEFAULT_MODELS["default"].is_file(), reason="bundled model absent")]


def test_both_engines_timed_and_scored_on_the_same_persons(lspet40, tmp_path):
    result = run_lspet_benchmark(main, "backends", lspet40, tmp_path, "--models", DEFAULT_MODELS["default"],
                                 "--rounds", "3", "--photos", "4")
    (r,) = result["models"].values()
    assert [(x["threads"], x["batch"]) for x in r["per_person"]] == [(1, 1), (1, 8), (2, 1), (2, 8)]
    for x in r["per_person"] + [r["search"]]:
        assert x["onnxruntime_ms"] > 0 and x["openvino_ms"] > 0 and 0.05 < x["ratio"] < 20
    acc = r["accuracy"]
    assert acc["onnxruntime_pck"] == pytest.approx(runtime_pck(DEFAULT_MODELS["default"], lspet40), abs=1e-9)
    assert abs(acc["openvino_pck"] - acc["onnxruntime_pck"]) < 0.02 and acc["median_shift_px"] < 0.5
    low, high = acc["difference_ci95"]
    assert low <= acc["openvino_pck"] - acc["onnxruntime_pck"] <= high and np.isfinite([low, high]).all()
    assert (tmp_path / "backends.md").is_file()
