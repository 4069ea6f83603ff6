"""Shared test fixtures. Stand-in ONNX models live in tests/standin.py (reusable by every test file)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ are used from the checkout, never installed
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def standin_factory(tmp_path_factory):
    """make(**standin_metadata kwargs) -> path of a stand-in ONNX model, built once per distinct kwargs."""
    from standin import write_standin

    built = {}
    root = tmp_path_factory.mktemp("standin")

    def make(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in built:
            built[key] = write_standin(root / f"standin_{len(built)}.onnx", **kwargs)
        return built[key]

    return make


@pytest.fixture(scope="session")
def standin_path(standin_factory):
    """The default stand-in: 64x96 input (w, h), RGB, ImageNet mean/std, logits, box padding 1.25."""
    return standin_factory()
