"""Box-padding calibration (export/padding.py): the sweep is the runtime's own PCK, the best padding is written
into the metadata and nothing else changes, bad input writes nothing, the command line's exit codes.

Real parts: the bundled default model and 40 real LSPET training photos (skipped when ../shared is absent).
"""
import hashlib
import json

import numpy as np
import onnx
import pytest

from conftest import LSPET, MEASURES_DEFAULT_ON_LSPET, TORCH_ABSENT, runtime_pck
pytest.importorskip("torch", reason=TORCH_ABSENT)
from export import InputError
from export.padding import calibrate_padding, main
from export.presence_head import without_head
from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.confidence import CALIBRATION_KEY
from fasterpose_rt.presence import PRESENCE_KEY
from keypoint_order import without_keypoint, write_reversed

MODEL = DEFAULT_MODELS["default"]
pytestmark = MEASURES_DEFAULT_ON_LSPET
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
    old, new = (PosePredictor(p, threads=1).metadata for p in (MODEL, out))
    a, b = onnx.load(str(MODEL)), onnx.load(str(out))
    if new.box_padding != old.box_padding:  # the presence head goes too (test_a_new_padding_takes_...)
        a = without_head(a)
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    # the earlier calibration record is replaced; the score table and the presence head, measured at the old
    # padding, go with a new padding; nothing else in the metadata changes
    changed = ("box_padding_calibration", CALIBRATION_KEY, PRESENCE_KEY, "quantization")
    assert {k: v for k, v in new.extra.items() if k not in changed} == \
        {k: v for k, v in old.extra.items() if k not in changed}
    quant = old.extra["quantization"]
    if new.box_padding != old.box_padding:  # the int8 check says at which padding it was measured
        quant = {**quant, "verification": {"box_padding": old.box_padding, **quant["verification"]}}
    assert new.extra["quantization"] == quant
    for key in (CALIBRATION_KEY, PRESENCE_KEY):
        assert (key in new.extra) == (key in old.extra and new.box_padding == old.box_padding)
    assert (new.input_size, new.keypoints, new.mean, new.std, new.output) == \
        (old.input_size, old.keypoints, old.mean, old.std, old.output)


def test_the_sweep_is_what_the_predictor_measures(calibrated, lspet40):
    result, out = calibrated
    assert runtime_pck(MODEL, lspet40) == pytest.approx(result.sweep[OWN], abs=1e-9)
    assert runtime_pck(out, lspet40) == pytest.approx(result.sweep[result.chosen], abs=1e-9)


def test_only_the_previous_padding_keeps_it(lspet40, tmp_path):
    result = calibrate_padding(MODEL, lspet40, LSPET / "images", tmp_path / "same.onnx", candidates=[OWN], threads=1)
    assert result.chosen == result.previous == OWN and list(result.sweep) == [OWN]
    assert PosePredictor(tmp_path / "same.onnx", threads=1).metadata.extra[PRESENCE_KEY]  # the head stays


def test_a_new_padding_takes_out_the_presence_head_fitted_at_the_old_one(lspet40, tmp_path, monkeypatch):
    """The head reads features pooled over the crop, fitted on crops of the model's padding: it had been kept
    beside a new padding while the score table, measured at the old one, was dropped."""
    import export.padding as padding

    said, trial = [], []
    cut = padding.load_crops
    monkeypatch.setattr(padding, "load_crops", lambda persons, index, meta: trial.append(meta.box_padding) or cut(
        persons, index, meta))
    measure = padding.pck
    monkeypatch.setattr(padding, "pck", lambda *a: (1.0 if trial[-1] == 1.4 else 0.5,) + measure(*a)[1:])  # 1.4 wins
    out = tmp_path / "padded.onnx"
    result = calibrate_padding(MODEL, lspet40, LSPET / "images", out, candidates=[1.4], threads=1, log=said.append)
    assert result.chosen == 1.4
    assert PRESENCE_KEY in PosePredictor(MODEL, threads=1).metadata.extra  # the premise: the default has a head
    pred = PosePredictor(out, threads=1)
    assert pred.metadata.box_padding == 1.4 and PRESENCE_KEY not in pred.metadata.extra
    graph = onnx.load(str(out)).graph
    assert [o.name for o in graph.output] == ["heatmaps"]
    assert graph.SerializeToString() == without_head(onnx.load(str(MODEL))).graph.SerializeToString()
    assert pred.predict(np.zeros((96, 64, 3), np.uint8), np.array([[0, 0, 63, 95]])).presence is None
    assert any("presence head was fitted at box padding 1.1" in s and "export.presence_head" in s for s in said)
    # the int8 check's figures, measured at 1.1, were shown as the new file's (review s61)
    from fasterpose_rt.cli.bench import verification_line

    verification = pred.metadata.extra["quantization"]["verification"]
    assert verification == {"box_padding": OWN, **PosePredictor(MODEL, threads=1).metadata.extra["quantization"][
        "verification"]}
    assert verification_line(verification).endswith("measured at box padding 1.1, not the model's present one")


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
    for bad in (0.0, 0.01, 50.0):  # review s58: 0.01 was chosen and written, a model no run could crop with
        with pytest.raises(InputError, match="must each be a number from 0.5 to 4"):
            calibrate_padding(MODEL, lspet40, LSPET / "images", out, candidates=[1.1, bad])
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
    assert e.value.code == 2 and "a number from 0.5 to 4" in capsys.readouterr().err
