"""Shared test fixtures. Stand-in ONNX models live in tests/standin.py (reusable by every test file)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ are used from the checkout, never installed
    sys.path.insert(0, str(ROOT))
LSPET = ROOT.parent / "shared" / "datasets" / "lspet"  # real photos; tests that need them skip without it
NEEDS_LSPET = pytest.mark.skipif(not (LSPET / "joints.mat").is_file(),
                                 reason=f"LSPET photos not found at {LSPET} (../shared is absent)")
# The bundled default model, measured on real LSPET photos (export.padding, export.edge_peaks): both must be there.
DEFAULT_MODEL = ROOT / "fasterpose_rt" / "assets" / "fasterpose_default_int8.onnx"
MEASURES_DEFAULT_ON_LSPET = [NEEDS_LSPET, pytest.mark.skipif(not DEFAULT_MODEL.is_file(),
                                                             reason="no bundled default model")]
TORCH_ABSENT = "torch is absent: the training and export tests need pip install -e '.[dev]'"
NEEDS_TORCH = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason=TORCH_ABSENT)


def pytest_configure(config):
    """OpenVINO keeps compiled networks in the user's cache folder: the tests (and the CLIs they start) use a
    folder of their own, removed at the end, so a test run leaves nothing in ~/.cache."""
    import os
    import tempfile

    if "FASTERPOSE_OPENVINO_CACHE" not in os.environ:
        config._openvino_cache = tempfile.mkdtemp(prefix="fasterpose-openvino-cache-")
        os.environ["FASTERPOSE_OPENVINO_CACHE"] = config._openvino_cache


def pytest_unconfigure(config):
    import os
    import shutil

    folder = getattr(config, "_openvino_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("FASTERPOSE_OPENVINO_CACHE", None)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests: on 2 cores shared with a training run, one thread is much faster
    than two fighting over them. Use as ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


@pytest.fixture(scope="session")
def lspet_coco(tmp_path_factory):
    """make(first, last) -> a COCO keypoint file of LSPET persons im<first>-im<last> (1-based, inclusive), made
    once per range by the project's converter. Callers skip when LSPET is absent."""
    from models.data.lsp_to_coco import main as convert

    made = {}

    def make(first: int, last: int) -> Path:
        if (first, last) not in made:
            out = tmp_path_factory.mktemp("lspet") / f"lspet_{first}_{last}.json"
            assert convert(["--joints", str(LSPET / "joints.mat"), "--images", str(LSPET / "images"),
                            "--out", str(out), "--range", f"{first}:{last}"]) == 0
            made[first, last] = out
        return made[first, last]

    return make


def run_lspet_benchmark(main, name: str, ann: Path, results_dir: Path, *options) -> dict:
    """Run benchmark ``main`` on the LSPET persons of ``ann`` with its results in ``results_dir``; returns
    ``<name>.json`` as a dict (``<name>.md`` is beside it)."""
    main(["--ann", str(ann), "--images", str(LSPET / "images"), *map(str, options), "--results-dir", str(results_dir)])
    return json.loads((Path(results_dir) / f"{name}.json").read_text())


def runtime_pck(model, ann: Path) -> float:
    """PCK@0.2 of PosePredictor(model) on every person of the LSPET COCO file ann, one predict() per person with
    its labelled box: a path independent of the batch evaluators it checks."""
    import cv2
    import numpy as np

    from fasterpose_rt import PosePredictor
    from fasterpose_rt.metrics import pck

    data = json.loads(Path(ann).read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    pred = PosePredictor(model, threads=1)
    kp = np.array([np.reshape(a["keypoints"], (-1, 3)) for a in data["annotations"]], np.float64)
    xy = np.concatenate([pred.predict(cv2.imread(str(LSPET / "images" / files[a["image_id"]])), [a["bbox"]]).keypoints
                         for a in data["annotations"]])
    return pck(xy, kp[..., :2], kp[..., 2] > 0, pred.keypoint_names)[0]


@pytest.fixture(scope="session")
def lspet40(lspet_coco):
    """A COCO keypoint file of 40 LSPET training persons (im00001-im00040), shared by the tests that score models
    on real photos. Callers skip when LSPET is absent (NEEDS_LSPET)."""
    return lspet_coco(1, 40)
