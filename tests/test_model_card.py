"""``fasterpose info`` and fasterpose_rt/model_card.py: a model file's self-description, its training stages."""
import hashlib
import json

import pytest
from clirunner import invoke

from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.cli import main
from fasterpose_rt.model_card import training_stages
from standin import standin_metadata, write_standin

ROOT_RECIPE = {"epochs": 12, "optimizer": "AdamW", "lr": 0.002, "pretrained": False, "amp": "off"}
MIDDLE = {"epochs": 40, "lr": 0.0005, "ema": 0.9995, "distill": {"file": "teacher.pth", "alpha": 0.5},
          "init": {"file": "root.pth", "architecture": "fasterpose_r18", "recipe": ROOT_RECIPE,
                   "val": {"pck@0.2": 0.51}}}
NEWEST = {"epochs": 20, "lr": 0.0001, "drop_path": 0.1,
          "init": {"file": "middle.pth", "architecture": "fasterpose_r18", "recipe": MIDDLE, "val": {"pck@0.2": 0.66}}}


def run(*args):
    return invoke(main, args)


def test_training_stages_walk_the_init_chain_newest_first():
    stages = training_stages(NEWEST, {"pck@0.2": 0.7, "oks_ap": 0.5}, "fasterpose_r34")
    assert [s["epochs"] for s in stages] == [20, 40, 12]
    assert [s["architecture"] for s in stages] == ["fasterpose_r34", "fasterpose_r18", "fasterpose_r18"]
    assert [s["init"] for s in stages] == ["middle.pth", "root.pth", None]  # the oldest started from nothing
    assert [s["teacher"] for s in stages] == [None, "teacher.pth", None]
    assert [s["validation"]["pck@0.2"] for s in stages] == [0.7, 0.66, 0.51]  # each stage's own figures
    assert stages[-1]["pretrained"] is False and stages[0]["drop_path"] == 0.1
    assert training_stages(None) == [] and training_stages({"epochs": 3})[0]["init"] is None
    # review s63: a best.pth of epoch 2 of 3 was shown as "3 epochs"; the stage it started from records its epoch too
    stopped = dict(NEWEST, init=dict(NEWEST["init"], epoch=31))
    stages = training_stages(stopped, None, "fasterpose_r34", 7)
    assert [s["trained"] for s in stages] == [7, 31, None]
    from fasterpose_rt.model_card import _stage_line
    assert "7 epochs of a 20-epoch schedule" in _stage_line(stages[0])
    assert "fasterpose_r34, 20 epochs," in _stage_line(dict(stages[0], trained=20))  # the whole schedule
    assert ", 12 epochs," in _stage_line(stages[2])
    # review s66: keypoints without a torso have no PCK, but an AP, which was hidden with it
    ap_only = training_stages({"epochs": 3}, {"pck@0.2": None, "oks_ap": 0.25}, "fasterpose_r18")
    assert _stage_line(ap_only[0]).endswith("val AP 0.250")
    both = training_stages(NEWEST, {"pck@0.2": 0.7, "oks_ap": 0.5}, "fasterpose_r34")
    assert _stage_line(both[0]).endswith("val PCK@0.2 0.700, AP 0.500") and _stage_line(both[1]).endswith("0.660")


def test_info_describes_the_bundled_model_from_its_metadata():
    r = run("info")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("model") and "fasterpose_default_int8.onnx" in lines[0]
    assert any(line.startswith("keypoints") and "14: right_ankle" in line for line in lines)
    assert any(line.startswith("box padding  1.1, chosen on 1000 persons") for line in lines)
    assert "int8 accuracy, measured at export" in r.output
    card = json.loads(run("info", "--json").output)
    path = DEFAULT_MODELS["default"]
    assert card["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["file"]["bytes"] == path.stat().st_size and card["metadata"]["input_size"] == [128, 176]
    stages = card["stages"]  # the whole training history the file records, each stage a printed line
    assert len(stages) > 1 and stages[-1]["init"] is None and stages[-1]["pretrained"] is False
    total = sum(s["epochs"] for s in stages)
    assert f"{len(stages)} recorded, {total} epochs in all; the oldest records no starting weights" in r.output
    assert sum(line.lstrip().startswith(f"{n}. ") for n in range(1, len(stages) + 1) for line in lines) == len(stages)


def test_info_on_a_model_without_provenance_and_on_a_missing_file(standin_path, tmp_path):
    r = run("info", "--model", standin_path)
    assert r.exit_code == 0, r.output
    assert "keypoints    4: red, green_left, green_right, blue" in r.output and "stages" not in r.output
    r = run("info", "--model", tmp_path / "missing.onnx")
    assert r.exit_code == 2 and "cannot load the model" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("extra, shown", [
    ({"quantization": "int8"}, "quantization 'int8' (malformed)"),
    ({"params": "8.8M", "macs": "1.4G"}, "parameters '8.8M' (malformed), MACs per person '1.4G' (malformed)"),
    ({"recipe": {"epochs": 10, "ema": "0.9995", "drop_path": [0.1]}}, "EMA '0.9995' (malformed), drop-path [0.1]"),
    ({"recipe": {"epochs": "10", "input_size": 128, "init": {"file": "a.pth", "architecture": 18,
                                                              "recipe": {"epochs": 2}}}},
     "epochs '10' (malformed), input 128 (malformed), from a.pth\n             2. 18, 2 epochs"),
    ({"box_padding_calibration": {"pck@0.2": {"1.1": None, "1.2": 0.5}}}, "1.1 None (malformed), 1.2 0.500"),
    ({"quantization": {"verification": {"crops": 5, "moved": "x", "pck_float": None, "pck_int8": 0.7}}},
     "'x' (malformed) % by more than 0.5 px; PCK@0.2 of its float source None (malformed) vs int8 0.700 (drop not"),
    ({"quantization": {"verification": [1, 2]}}, "int8 accuracy: verification figures [1, 2] (malformed)"),
    ({"exported_at": 1700000000, "exporter": {"tool": "x"}}, "exported     1700000000 by x"),
])
def test_info_prints_what_it_can_of_malformed_provenance_and_marks_it(tmp_path, extra, shown):
    """The loader checks only what inference needs; `fasterpose info` had stopped at the first provenance field of
    another type ("unexpected TypeError", exit 1)."""
    meta = json.loads(standin_metadata().to_json())
    meta.update(extra)
    r = run("info", "--model", write_standin(tmp_path / "odd.onnx", metadata_text=meta))
    assert r.exit_code == 0, r.output
    assert shown in r.output and "keypoints    4: red" in r.output
    assert run("info", "--json", "--model", tmp_path / "odd.onnx").exit_code == 0


def test_bench_reads_no_int8_figures_from_a_malformed_quantization_block():
    from fasterpose_rt.cli.bench import _accuracy_line, _verification

    assert _verification({"quantization": "int8"}) is None
    assert _verification({"quantization": {"verification": {"crops": 3}}}) == {"crops": 3}
    assert "no verification figures" in _accuracy_line({"pck@0.2": 0.7}, _verification({"quantization": "int8"}))


def test_info_marks_the_settings_a_file_does_not_record_and_a_nan_figure(tmp_path):
    """Session 64 left open: a file without box_padding or edge_peaks was described with the runtime's defaults as
    if the file had chosen them, and a NaN MACs count was printed as a figure."""
    meta = json.loads(standin_metadata().to_json())
    for key in ("box_padding", "edge_peaks", "color", "std"):
        del meta[key]
    meta.update(params=1.5e6, macs=float("nan"))
    path = write_standin(tmp_path / "bare.onnx", metadata_text=json.dumps(meta))
    r = run("info", "--model", path)
    assert r.exit_code == 0, r.output
    lines = {line.split("  ", 1)[0]: line for line in r.output.splitlines()}
    assert lines["box padding"].endswith("1.25 (box_padding not recorded in the file: this runtime's default)")
    assert "(edge_peaks not recorded in the file: this runtime's default)" in lines["edge peaks"]
    assert lines["input"].endswith("(color, std not recorded in the file: this runtime's defaults)")
    assert "1.50 M parameters, MACs per person nan (malformed)" in lines["network"]
    card = json.loads(run("info", "--json", "--model", path).output)
    assert card["unrecorded"] == ["box_padding", "color", "edge_peaks", "std"]
    from fasterpose_rt import PosePredictor
    from fasterpose_rt.model_card import format_card, model_card

    # a tool that rewrites the file does not write the defaults in as the file's own choice, and keeps what it sets
    from fasterpose_rt.metadata import ModelMetadata

    read = ModelMetadata.from_json(json.dumps(meta))
    assert not {"box_padding", "edge_peaks", "color", "std"} & set(json.loads(read.to_json()))
    tuned = json.loads(read.chosen(box_padding=1.25, edge_peaks="unblurred").to_json())  # chosen, even = default
    assert (tuned["box_padding"], tuned["edge_peaks"]) == (1.25, "unblurred") and "std" not in tuned
    assert ModelMetadata.from_json(json.dumps(tuned)).unrecorded == ("color", "std")
    from dataclasses import replace
    assert json.loads(replace(read, box_padding=1.1).to_json())["box_padding"] == 1.1  # a value set is never lost
    pred = PosePredictor(path, threads=1, box_padding=1.5)  # the caller's padding is no runtime default
    assert "box_padding" not in model_card(path, pred.metadata)["unrecorded"]
    meta["macs"] = 10 ** 400  # beyond a float: marked, where formatting it raised OverflowError
    big = write_standin(tmp_path / "big.onnx", metadata_text=json.dumps(meta))
    assert f"MACs per person {10 ** 400!r} (malformed)" in format_card(model_card(big, PosePredictor(big).metadata))
    # a file that records them all: nothing marked
    r = run("info", "--model", write_standin(tmp_path / "full.onnx"))
    assert r.exit_code == 0 and "not recorded" not in r.output and json.loads(
        run("info", "--json", "--model", tmp_path / "full.onnx").output)["unrecorded"] == []
