"""benchmarks/ensemble.py: an ensemble of a model with itself is that model, exactly as the runtime predicts it;
models that cannot share crops are refused with a reason.

Real parts: the bundled int8 model and 40 real LSPET training photos (skipped when ../shared is absent).
"""
import json

import pytest

from benchmarks.ensemble import main
from conftest import LSPET, NEEDS_LSPET, runtime_pck
from fasterpose_rt import DEFAULT_MODELS, PosePredictor

INT8 = DEFAULT_MODELS["default"]  # the default model, in int8
pytestmark = [
    NEEDS_LSPET,
    pytest.mark.skipif(not INT8.is_file(), reason="bundled int8 model absent"),
]


def test_a_model_ensembled_with_itself_scores_as_the_runtime_predicts_it(lspet40, tmp_path):
    main(["--models", str(INT8), str(INT8), "--ann", str(lspet40), "--images", str(LSPET / "images"),
          "--rounds", "3", "--results-dir", str(tmp_path)])
    result = json.loads((tmp_path / "ensemble.json").read_text())
    ensemble = result["ensemble: mean of 2 models' heatmaps"]
    assert ensemble["pck@0.2"] == pytest.approx(runtime_pck(INT8, lspet40), abs=1e-9)
    assert ensemble["diff"] == 0.0 and ensemble["diff_interval"] == [0.0, 0.0]
    times = result["ms_per_person_1_thread_batch_1"]
    assert len(times) == 3 and min(times.values()) > 0  # the same file twice is timed twice
    assert times["ensemble"] == pytest.approx(sum(v for k, v in times.items() if k != "ensemble"))
    assert "ensemble (sum)" in (tmp_path / "ensemble.md").read_text()


def test_models_with_other_input_sizes_are_refused(lspet40, tmp_path, standin_path):
    assert PosePredictor(INT8).input_size != PosePredictor(standin_path).input_size  # the premise of this test
    with pytest.raises(SystemExit, match="input size differ"):
        main(["--models", str(INT8), str(standin_path), "--ann", str(lspet40), "--results-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="at least two"):
        main(["--models", str(INT8), "--ann", str(lspet40), "--results-dir", str(tmp_path)])
    assert not (tmp_path / "ensemble.json").exists()
