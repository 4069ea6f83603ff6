"""Box-padding calibration (export/padding.py): the sweep is the runtime's own PCK, the best padding is written
into the metadata and nothing else changes, bad input writes nothing, the command line's exit codes.

Real parts: the bundled default model and 40 real LSPET training photos (skipped when ../shared is absent).
"""
import hashlib
import json

import onnx
import pytest

from conftest import LSPET, NEEDS_LSPET, TORCH_ABSENT, runtime_pck
pytest.importorskip("torch", reason=TORCH_ABSENT)
from export import InputError
from export.padding import calibrate_padding, main
from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.confidence import CALIBRATION_KEY
from keypoint_order import without_keypoint, write_reversed

MODEL = DEFAULT_MODELS["default"]
pytestmark = [
    NEEDS_LSPET,
    pytest.mark.skipif(not MODEL.is_file(), reason="no bundled default model"),
]
CANDIDATES = (1.0, 1.25, 1.4)
OWN = 1.1  # the default's calibrated padding: always measured too


@pytest.fixture(scope="module")
def calibrated(lspet40, tmp_path_factory):
    out = tmp_path_factory.mktemp("padding_out") / "tuned.onnx"
    before = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    result = calibrate_padding(MODEL, lspet40, LSPET / "images", out, candidates=CANDIDATES, threads=1)
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() == before  # the source model is never touched
    return result, out


def test_the_best_padding_of_the_sweep_is_written_and_recorded(calibrated, lspet40):
    result, out = calibrated
    assert PosePredictor(MODEL, threads=1).metadata.box_padding == OWN  # the premise of this module
    assert set(result.sweep) == {1.0, OWN, 1.25, 1.4}  # the model's own padding is always measured
    assert result.previous == OWN and result.sweep[result.chosen] == max(result.sweep.values())
    assert result.persons == 40 and result.joints > 300
    meta = PosePredictor(out, threads=1).metadata
    assert meta.box_padding == result.chosen
    record = meta.extra["box_padding_calibration"]
    assert record["chosen"] == result.chosen and record["previous"] == OWN and record["source"] == lspet40.name
    assert record["pck@0.2"] == {f"{p:g}": round(v, 6) for p, v in sorted(result.sweep.items())}
    assert f"box padding {OWN:g} -> {result.chosen:g}" in result.summary()


def test_only_the_metadata_changes(calibrated):
    _, out = calibrated
    a, b = onnx.load(str(MODEL)), onnx.load(str(out))
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    old, new = (PosePredictor(p, threads=1).metadata for p in (MODEL, out))
    # the earlier calibration record is replaced; the score table, measured at the old padding, goes with a new
    # padding; nothing else in the metadata changes
    changed = ("box_padding_calibration", CALIBRATION_KEY)
    assert {k: v for k, v in new.extra.items() if k not in changed} == \
        {k: v for k, v in old.extra.items() if k not in changed}
    assert (CALIBRATION_KEY in new.extra) == (CALIBRATION_KEY in old.extra and new.box_padding == old.box_padding)
    assert (new.input_size, new.keypoints, new.mean, new.std, new.output) == \
        (old.input_size, old.keypoints, old.mean, old.std, old.output)


def test_the_sweep_is_what_the_predictor_measures(calibrated, lspet40):
    result, out = calibrated
    assert runtime_pck(MODEL, lspet40) == pytest.approx(result.sweep[OWN], abs=1e-9)
    assert runtime_pck(out, lspet40) == pytest.approx(result.sweep[result.chosen], abs=1e-9)


def test_only_the_previous_padding_keeps_it(lspet40, tmp_path):
    result = calibrate_padding(MODEL, lspet40, LSPET / "images", tmp_path / "same.onnx", candidates=[OWN], threads=1)
    assert result.chosen == result.previous == OWN and list(result.sweep) == [OWN]


def test_a_file_listing_the_keypoints_in_another_order_is_matched_by_name(calibrated, lspet40, tmp_path):
    result, _ = calibrated
    said = []
    got = calibrate_padding(MODEL, write_reversed(lspet40, tmp_path / "rev.json"), LSPET / "images",
                            tmp_path / "rev.onnx", candidates=[OWN], threads=1, log=said.append)
    assert got.sweep[OWN] == result.sweep[OWN] and got.joints == result.joints  # read by position: ~3 % PCK
    assert any("another order; matched by name" in s for s in said)
    (tmp_path / "no_neck.json").write_text(json.dumps(without_keypoint(json.loads(lspet40.read_text()), "neck")))
    with pytest.raises(InputError, match=r"no ground truth .*\(neck\)"):
        calibrate_padding(MODEL, tmp_path / "no_neck.json", LSPET / "images", tmp_path / "never.onnx")
    assert not (tmp_path / "never.onnx").exists()


def test_bad_input_writes_nothing(lspet40, tmp_path):
    out = tmp_path / "never.onnx"
    no_kp = json.loads(lspet40.read_text())
    for a in no_kp["annotations"]:
        a.pop("keypoints")
    (tmp_path / "no_kp.json").write_text(json.dumps(no_kp))
    with pytest.raises(InputError, match="has no 'keypoints'"):  # named by the annotation file's check
        calibrate_padding(MODEL, tmp_path / "no_kp.json", LSPET / "images", out)
    with pytest.raises(InputError, match="positive"):
        calibrate_padding(MODEL, lspet40, LSPET / "images", out, candidates=[1.1, 0.0])
    with pytest.raises(InputError):
        calibrate_padding(tmp_path / "missing.onnx", lspet40, LSPET / "images", out)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_command_line(lspet40, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    args = ["--model", str(MODEL), "--ann", str(lspet40), "--images", str(LSPET / "images"), "--out", str(out),
            "--threads", "1"]
    with pytest.raises(SystemExit) as e:
        main(args + ["--candidates", "1.25"])
    assert e.value.code == 0 and out.is_file()
    assert f"box padding {OWN:g} ->" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(args + ["--candidates", "a,b"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(args + ["--candidates", "-1"])
    assert e.value.code == 2 and "positive" in capsys.readouterr().err
