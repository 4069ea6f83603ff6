"""benchmarks/tradeoff.py: each model scores exactly what the runtime predicts for it, with its own input size and
box padding; times are per person and the first model's ratio to itself is 1; bundled models go by name; unusable
inputs are refused.

Real parts: both bundled models (the R34 at 128x176 and at 96x128, each with its own calibrated padding) and
40 real LSPET training photos (skipped when ../shared is absent).
"""
import json

import pytest

from benchmarks.tradeoff import main
from conftest import LSPET, NEEDS_LSPET, runtime_pck
from fasterpose_rt import DEFAULT_MODELS, PosePredictor

DEFAULT, FAST = DEFAULT_MODELS["default"], DEFAULT_MODELS["fast"]
pytestmark = [
    NEEDS_LSPET,
    pytest.mark.skipif(not (DEFAULT.is_file() and FAST.is_file()), reason="bundled models absent"),
]


def test_each_model_scores_as_the_runtime_predicts_it_and_is_timed_per_person(lspet40, tmp_path):
    assert PosePredictor(DEFAULT).input_size != PosePredictor(FAST).input_size  # each model's own crops matter
    # "default" by its bundled name, the fast model by its path: both name the same kind of thing
    main(["--models", "default", str(FAST), "--ann", str(lspet40), "--images", str(LSPET / "images"),
          "--rounds", "3", "--results-dir", str(tmp_path)])
    result = json.loads((tmp_path / "tradeoff.json").read_text())
    assert [n.split(": ", 1)[1] for n in result["models"]] == [
        "fasterpose_rt/assets/fasterpose_default_int8.onnx", "fasterpose_rt/assets/fasterpose_fast_int8.onnx"]
    first, second = result["models"].values()
    assert first["pck@0.2"] == pytest.approx(runtime_pck(DEFAULT, lspet40), abs=1e-9)
    assert second["pck@0.2"] == pytest.approx(runtime_pck(FAST, lspet40), abs=1e-9)
    assert first["diff"] == 0.0 and second["diff"] == pytest.approx(second["pck@0.2"] - first["pck@0.2"])
    assert (first["input_size"], second["input_size"]) == ([128, 176], [96, 128])
    assert first["macs_per_person"] > second["macs_per_person"] > 0
    for b in (1, 8):
        assert first[f"batch_{b}"]["ratio_to_first"] == 1.0 and second[f"batch_{b}"]["ms_per_person"] > 0
    md = (tmp_path / "tradeoff.md").read_text()
    assert "ms/person, batch 8 (ratio)" in md and "96×128" in md and "cpu_features" in md
    # the command that ran, every option (it had dropped --ann, --images and --rounds); repository paths relative
    assert (f"Command: `python -m benchmarks.tradeoff --models default "
            f"fasterpose_rt/assets/fasterpose_fast_int8.onnx --ann {lspet40} --images {LSPET / 'images'} --rounds 3 "
            f"--results-dir {tmp_path}`") in md


def test_unusable_inputs_are_refused_with_a_reason(lspet40, tmp_path, standin_path):
    with pytest.raises(SystemExit, match="model absent.onnx: file not found"):
        main(["--models", "default", "absent.onnx", "--ann", str(lspet40), "--results-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="at least two"):
        main(["--models", str(DEFAULT), "--ann", str(lspet40), "--results-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="not found"):
        main(["--models", str(DEFAULT), str(FAST), "--ann", str(tmp_path / "absent.json"), "--results-dir", str(tmp_path)])
    assert PosePredictor(standin_path).metadata.num_keypoints != 14  # the premise: a 17-keypoint stand-in
    with pytest.raises(SystemExit, match="keypoints"):
        main(["--models", str(DEFAULT), str(standin_path), "--ann", str(lspet40), "--results-dir", str(tmp_path)])
    assert not (tmp_path / "tradeoff.json").exists()
