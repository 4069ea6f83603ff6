"""Shrinking a trained, deeper ResNet into a shallower one (R34 -> R18) from a chosen subset of its blocks."""
import json

import pytest
from clirunner import invoke
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch
from torch import nn

from export.__main__ import main as export_main
from models import build_model
from models.shrink import ShrinkError, main, shrink_state_dict

from test_grow import _trained_like
from test_training import _lsp_like_dataset, _main_in_process, _train_cmd

KEEP = [[0, 2], [0, 3], [0, 4]]


def test_shrunk_r18_computes_what_the_r34_does_without_the_dropped_blocks():
    r34 = _trained_like("fasterpose_r34", seed=1)
    r18 = build_model("fasterpose_r18", 14)
    r18.load_state_dict(shrink_state_dict(r34, r18, KEEP))  # strict: every key of the R18 is filled
    for s, blocks in enumerate(KEEP):  # the reference: the same R34 with its other blocks cut out
        layer = getattr(r34.backbone, f"layer{s + 1}")
        setattr(r34.backbone, f"layer{s + 1}", nn.Sequential(*[layer[i] for i in blocks]))
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(r18.eval()(x), r34(x))


def test_shrink_refuses_what_cannot_be_kept():
    r34, r18 = _trained_like("fasterpose_r34", seed=1), build_model("fasterpose_r18", 14)
    with pytest.raises(ShrinkError, match="block 0 changes width or stride"):
        shrink_state_dict(r34, r18, [[0, 1], [1, 2], [0, 5]])  # layer2's first block holds the downsample
    with pytest.raises(ShrinkError, match="has 2 blocks"):
        shrink_state_dict(r34, r18, [[0, 1, 2], [0, 1], [0, 5]])
    with pytest.raises(ShrinkError, match="increasing"):
        shrink_state_dict(r34, r18, [[1, 0], [0, 1], [0, 5]])
    with pytest.raises(ShrinkError, match="increasing"):
        shrink_state_dict(r34, r18, [[0, 1], [0, 4], [0, 5]])  # layer2 of an R34 has blocks 0-3
    with pytest.raises(ShrinkError, match="one list of blocks per stage"):
        shrink_state_dict(r34, r18, [[0, 1], [0, 1]])
    with pytest.raises(ShrinkError, match="block type"):
        shrink_state_dict(r34, build_model("fasterpose_r50", 14), [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5]])


def _save_r34_checkpoint(path, **meta):
    """A training checkpoint (weights and meta, as models.train writes) of a trained-like R34 at input 64x64."""
    torch.save({"model": _trained_like("fasterpose_r34", seed=1).state_dict(),
                "meta": {"architecture": "fasterpose_r34", "input_size": [64, 64], "loss": "rce",
                         "model_options": {"head_width": 256, "final_bias": -4.0}, **meta}}, path)


def test_shrink_cli_writes_a_scored_checkpoint_that_loads_into_the_smaller_model(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=3)
    src, out = tmp_path / "r34.pth", tmp_path / "r18.pth"
    _save_r34_checkpoint(src)
    args = ["--checkpoint", str(src), "--arch", "fasterpose_r18", "--out", str(out)]
    assert main(args + ["--keep", "0,2", "0,3", "0,4", "--ann", str(ann), "--images", str(images)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["persons"] == 3 and 0.0 <= report["pck@0.2"] <= 1.0 and report["kept_blocks"] == KEEP
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["meta"]["architecture"] == "fasterpose_r18" and ckpt["meta"]["shrunk_from"]["kept_blocks"] == KEEP
    build_model("fasterpose_r18", 14).load_state_dict(ckpt["model"])  # strict
    assert torch.equal(ckpt["model"]["backbone.layer3.1.conv1.weight"],
                       torch.load(src, weights_only=True)["model"]["backbone.layer3.4.conv1.weight"])
    # expected errors: a message, exit code 2, no traceback, no file written
    assert main(args[:-1] + [str(tmp_path / "bad.pth"), "--keep", "0,2", "1,3", "0,4"]) == 2
    assert "must be kept" in capsys.readouterr().err and not (tmp_path / "bad.pth").exists()
    assert main(["--checkpoint", str(tmp_path / "none.pth"), "--arch", "fasterpose_r18", "--out", str(out),
                 "--keep", "0,1", "0,1", "0,1"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    torch.save({"model": _trained_like().state_dict()}, tmp_path / "bare.pth")
    assert main(["--checkpoint", str(tmp_path / "bare.pth"), "--arch", "fasterpose_r18", "--out", str(out),
                 "--keep", "0,1", "0,1", "0,1"]) == 2
    assert "not a training checkpoint" in capsys.readouterr().err
    assert main(args + ["--keep", "0,2", "0,3", "0,4", "--ann", str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_shrink_keeps_the_keypoint_names_and_refuses_a_box_padding_that_is_not_positive(tmp_path, capsys):
    from fasterpose_rt.skeletons import LSP14

    src, out = tmp_path / "r34.pth", tmp_path / "r18.pth"
    dataset = {"keypoints": list(LSP14["keypoints"]), "flip_pairs": LSP14["flip_pairs"]}
    _save_r34_checkpoint(src, dataset=dataset)
    args = ["--checkpoint", str(src), "--arch", "fasterpose_r18", "--out", str(out), "--keep", "0,2", "0,3", "0,4"]
    for padding in ("0", "-1"):  # -1 had scored and written a model on mirrored crops
        assert main(args + ["--box-padding", padding]) == 2
        assert "--box-padding must be a number from 0.5 to 4" in capsys.readouterr().err and not out.exists()
    assert main(args) == 0
    assert torch.load(out, weights_only=True)["meta"]["dataset"] == dataset  # its keypoints can still be matched


def test_shrunk_checkpoint_keeps_the_sources_metadata_so_export_and_init_describe_it_rightly(tmp_path, monkeypatch,
                                                                                            capsys):
    """The shrunk checkpoint had kept only a few keys: the recipe (its box padding: the exporter's default crop),
    a models.from_onnx checkpoint's top-level sigmas and box padding were lost, so its export cropped at 1.25 and
    scored OKS with COCO's default sigmas. Every key that still describes the model must travel; only the
    architecture, its options and the scores change, and the recipe records the cut."""
    from export import build_metadata, load_checkpoint, resolve_keypoint_set, resolve_spec
    from fasterpose_rt.skeletons import LSP14
    from models import shrink

    sigmas = [0.05 + 0.01 * i for i in range(14)]
    dataset = {"keypoints": list(LSP14["keypoints"]), "skeleton": LSP14["skeleton"], "flip_pairs": LSP14["flip_pairs"],
               "sigmas": sigmas, "name": "lsp_like", "train_file": "train.json", "persons": 3}
    recipe = {"epochs": 3, "lr": 1e-3, "box_padding": 1.1, "seed": 7, "init": {"file": "r50.pth"}}
    trained = tmp_path / "trained.pth"
    _save_r34_checkpoint(trained, loss="mse", num_keypoints=14, dataset=dataset, recipe=recipe,
                         val={"pck@0.2": 0.9}, input_size=[48, 64])
    keep = ["--keep", "0,2", "0,3", "0,4"]
    out = tmp_path / "r18.pth"
    assert main(["--checkpoint", str(trained), "--arch", "fasterpose_r18", "--out", str(out)] + keep) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    note = {"file": "trained.pth", "sha256": load_checkpoint(trained).sha256, "architecture": "fasterpose_r34",
            "model_options": {"head_width": 256, "final_bias": -4.0}, "kept_blocks": KEEP}
    assert meta == {"architecture": "fasterpose_r18", "model_options": {"head_width": 256, "final_bias": -4.0},
                    "num_keypoints": 14, "input_size": [48, 64], "loss": "mse", "dataset": dataset,
                    "recipe": {**recipe, "shrunk_from": note}, "shrunk_from": note}  # the source's val is not its
    ckpt = load_checkpoint(out)  # what python -m export writes into the ONNX file
    spec = resolve_spec(meta=ckpt.meta)
    exported = build_metadata(spec, resolve_keypoint_set(spec.num_keypoints, ckpt.meta), ckpt)
    assert (exported.box_padding, exported.extra["sigmas"], exported.output, tuple(exported.input_size)) \
        == (1.1, sigmas, "probabilities", (48, 64))
    assert exported.architecture == "fasterpose_r18" and exported.extra["recipe"]["shrunk_from"]["kept_blocks"] == KEEP
    # a models.from_onnx checkpoint: names, sigmas and its file's (calibrated) padding at the top of the meta
    recovered = tmp_path / "recovered.pth"
    top = {"keypoints": list(LSP14["keypoints"]), "skeleton": LSP14["skeleton"], "flip_pairs": LSP14["flip_pairs"],
           "sigmas": sigmas, "box_padding": 1.05, "recipe": recipe, "validation": {"pck@0.2": 0.8},
           "recovered_from": {"file": "model.onnx", "weights": "exact"}}
    _save_r34_checkpoint(recovered, **top)
    twice = tmp_path / "twice.pth"
    assert main(["--checkpoint", str(recovered), "--arch", "fasterpose_r34", "--blocks", "2,3,5", "--out", str(out),
                 "--keep", "0,1", "0,1,2", "0,1,2,3,4"]) == 0
    assert main(["--checkpoint", str(out), "--arch", "fasterpose_r18", "--out", str(twice), "--keep", "0,1", "0,2",
                 "0,4"]) == 0  # shrunk again: both cuts stay on record
    meta = torch.load(twice, weights_only=True)["meta"]
    assert {k: meta[k] for k in ("keypoints", "skeleton", "flip_pairs", "sigmas", "box_padding", "recovered_from")} \
        == {k: top[k] for k in ("keypoints", "skeleton", "flip_pairs", "sigmas", "box_padding", "recovered_from")}
    assert "validation" not in meta and "val" not in meta and meta["model_options"].get("blocks") is None
    assert meta["recipe"]["shrunk_from"]["kept_blocks"] == [[0, 1], [0, 2], [0, 4]]
    assert meta["recipe"]["shrunk_from"]["model_options"]["blocks"] == [2, 3, 5]
    assert meta["recipe"]["shrunk_from"]["shrunk_from"]["file"] == "recovered.pth"
    ckpt = load_checkpoint(twice)
    spec = resolve_spec(meta=ckpt.meta)
    exported = build_metadata(spec, resolve_keypoint_set(spec.num_keypoints, ckpt.meta), ckpt)
    assert (exported.box_padding, exported.extra["sigmas"]) == (1.05, sigmas)
    # --ann scores at the source's padding unless --box-padding says otherwise
    capsys.readouterr()
    used = []
    monkeypatch.setattr(shrink, "checkpoint_scorer", lambda m, a, i, padding, s: (used.append(padding) or
                                                                                 (lambda model: {"pck@0.2": 0.5}, 1)))
    for extra, padding in (([], 1.1), (["--box-padding", "1.3"], 1.3)):
        assert main(["--checkpoint", str(trained), "--arch", "fasterpose_r18", "--out", str(out), "--ann", "a.json"]
                    + keep + extra) == 0
        assert used.pop() == padding and json.loads(capsys.readouterr().out)["box_padding"] == padding
    assert torch.load(out, weights_only=True)["meta"]["val"] == {"pck@0.2": 0.5}


def test_block_drop_benchmark_scores_at_the_checkpoints_padding(tmp_path, monkeypatch):
    """It scored at 1.25 whatever padding the checkpoint was trained or calibrated at."""
    import benchmarks.block_drop as block_drop

    ckpt = tmp_path / "trained.pth"
    _save_r34_checkpoint(ckpt, num_keypoints=14, recipe={"box_padding": 1.1}, input_size=[48, 64])
    used = []

    def scorer(meta, ann, images, padding, source):
        used.append(padding)
        raise SystemExit(0)  # the padding is all this test needs

    monkeypatch.setattr(block_drop, "checkpoint_scorer", scorer)
    for extra, padding in (([], 1.1), (["--box-padding", "1.3"], 1.3)):
        with pytest.raises(SystemExit):
            block_drop.main(["--checkpoint", str(ckpt), "--to", "fasterpose_r18", "--ann", "a.json", "--images", "i",
                             "--results-dir", str(tmp_path)] + extra)
        assert used.pop() == padding


def test_block_drop_benchmark_tries_every_keepable_subset_per_stage():
    from benchmarks.block_drop import candidates, stage_blocks

    r34 = build_model("fasterpose_r34", 14)
    assert stage_blocks("fasterpose_r18", {}) == [2, 2, 2] and stage_blocks("1,2,6", {}) == [1, 2, 6]
    got = candidates(r34, stage_blocks("fasterpose_r18", {}))
    assert got == [(1, [0, 1]), (1, [0, 2]), (1, [1, 2]),  # layer1 has no downsample: any two of three
                   (2, [0, 1]), (2, [0, 2]), (2, [0, 3]),
                   (3, [0, 1]), (3, [0, 2]), (3, [0, 3]), (3, [0, 4]), (3, [0, 5])]
    assert candidates(r34, [1, 2, 6]) == [(1, [0]), (1, [1]), (1, [2]), (2, [0, 1]), (2, [0, 2]), (2, [0, 3])]


def test_blocks_option_builds_thinner_networks_of_the_same_kind():
    model = build_model("fasterpose_r34", 14, blocks=[1, 2, 6])
    assert [len(getattr(model.backbone, f"layer{s}")) for s in (1, 2, 3)] == [1, 2, 6]
    assert model(torch.zeros(1, 3, 64, 48)).shape == (1, 14, 16, 12)
    for bad in ([1, 2], [0, 2, 6]):
        with pytest.raises(ValueError, match="1 or more blocks for each of the 3 stages"):
            build_model("fasterpose_r34", 14, blocks=bad)


def test_shrunk_thin_r34_trains_with_blocks_and_exports(tmp_path, capsys):
    """models.shrink --blocks -> models.train --blocks --init -> python -m export: the counts travel in model_options."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=3)
    src, init = tmp_path / "r34.pth", tmp_path / "thin.pth"
    _save_r34_checkpoint(src)
    assert main(["--checkpoint", str(src), "--arch", "fasterpose_r34", "--blocks", "1,2,6", "--out", str(init),
                 "--keep", "0", "0,1", "0,1,2,3,4,5"]) == 0
    capsys.readouterr()
    meta = torch.load(init, weights_only=True)["meta"]
    assert meta["model_options"]["blocks"] == [1, 2, 6] and meta["shrunk_from"]["architecture"] == "fasterpose_r34"
    cmd = _train_cmd(ann, images, tmp_path / "run", ["--steps-per-epoch", "1", "--lr", "0", "--blocks", "1,2,6",
                                                      "--init", str(init)])
    cmd[cmd.index("--arch") + 1] = "fasterpose_r34"
    code, err = _main_in_process(capsys, cmd)
    assert code == 0, err
    ckpt = torch.load(tmp_path / "run" / "last.pth", weights_only=True)
    assert ckpt["meta"]["model_options"]["blocks"] == [1, 2, 6] and "backbone.layer1.1.conv1.weight" not in ckpt["model"]
    r = invoke(export_main, ["--checkpoint", tmp_path / "run" / "last.pth", "--out", tmp_path / "thin.onnx"])
    assert r.exit_code == 0, r.output
    from fasterpose_rt import PosePredictor

    predictor = PosePredictor(tmp_path / "thin.onnx", threads=1)
    assert predictor.metadata.num_keypoints == 14
    assert predictor.metadata.network == "fasterpose_r34 (blocks 1/2/6)"  # what bench and benchmarks.tradeoff show
    from models.from_onnx import recover  # a shipped thin model can be trained on: the counts come back from metadata

    recover(tmp_path / "thin.onnx", ann, images, tmp_path / "back.pth", crops=3)
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back["meta"]["model_options"]["blocks"] == [1, 2, 6]
    build_model("fasterpose_r34", 14, **back["meta"]["model_options"]).load_state_dict(back["model"])  # strict
    bad = _train_cmd(ann, images, tmp_path / "bad", ["--blocks", "1,0,6"])
    code, err = _main_in_process(capsys, bad)
    assert code == 2 and "1 or more blocks" in err
