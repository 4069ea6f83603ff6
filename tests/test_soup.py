"""Averaging the weights of rounds that share a starting point (models.soup)."""
import json

import pytest
from clirunner import invoke
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from export.__main__ import main as export_main
from models import build_model
from models.soup import SoupError, average_state_dicts, main

from test_grow import _trained_like
from test_training import _lsp_like_dataset

META = {"architecture": "fasterpose_r18", "input_size": [64, 64], "loss": "rce",
        "model_options": {"head_width": 256, "final_bias": -4.0}, "recipe": {"box_padding": 1.1}}


def test_weighted_mean_of_state_dicts_is_exact_and_keeps_counters():
    a, b = _trained_like(seed=1).state_dict(), _trained_like(seed=2).state_dict()
    same = average_state_dicts([a, a])
    assert all(torch.equal(same[k], a[k]) for k in a)  # a soup of one network twice is that network
    mixed = average_state_dicts([a, b], weights=[1, 3])
    name = "backbone.layer2.0.conv1.weight"
    assert torch.allclose(mixed[name], 0.25 * a[name] + 0.75 * b[name], atol=1e-7)
    var = "backbone.layer2.0.bn1.running_var"  # BatchNorm statistics are averaged like any weight
    assert torch.allclose(mixed[var], 0.25 * a[var] + 0.75 * b[var], atol=1e-7)
    counter = "backbone.layer2.0.bn1.num_batches_tracked"
    b[counter] = torch.tensor(99)
    assert average_state_dicts([a, b])[counter].item() == a[counter].item()  # integers are not averaged
    assert mixed[name].dtype == a[name].dtype


def test_a_soup_of_one_network_computes_what_it_does():
    model = _trained_like(seed=3)
    soup = build_model("fasterpose_r18", 14).eval()
    soup.load_state_dict(average_state_dicts([model.state_dict()] * 3))
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.allclose(soup(x), model(x), atol=1e-6)


def _without_hips(ann, out):
    """A copy of the COCO file ``ann`` at ``out`` whose hips are unlabelled: no person has a torso to measure PCK by."""
    coco = json.loads(ann.read_text())
    names = coco["categories"][0]["keypoints"]
    for a in coco["annotations"]:
        for k in (names.index("left_hip"), names.index("right_hip")):
            a["keypoints"][3 * k: 3 * k + 3] = [0, 0, 0]
    out.write_text(json.dumps(coco))
    return out


def test_soup_and_block_drop_score_a_validation_set_without_a_torso_to_measure(tmp_path, capsys):
    """Validation gives no PCK (None) there; soup took None - None and block_drop formatted None: tracebacks."""
    from benchmarks.block_drop import main as block_drop
    from benchmarks.training_claims import _pck

    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    no_hips = _without_hips(ann, tmp_path / "no_hips.json")
    paths = [tmp_path / f"r{i}.pth" for i in (1, 2)]
    for seed, path in zip((1, 2), paths):
        torch.save({"model": _trained_like(seed=seed).state_dict(), "meta": META}, path)
    args = ["--checkpoints", *map(str, paths), "--out", str(tmp_path / "soup.pth"), "--ann", str(no_hips),
            "--images", str(images)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["soup"]["pck@0.2"] is None and report["soup_minus_best_ingredient"] is None
    assert block_drop(["--checkpoint", str(paths[0]), "--to", "1,1,1", "--ann", str(no_hips), "--images",
                       str(images), "--results-dir", str(tmp_path / "res")]) == 0
    table = (tmp_path / "res" / "block_drop.md").read_text()
    assert "| all | all blocks | - | - |" in table
    assert _pck({"val_pck@0.2": None}) != _pck({"val_pck@0.2": None}) and _pck({"val_pck@0.2": 0.5}) == 0.5


def test_soup_refuses_what_cannot_be_averaged():
    a = _trained_like(seed=1).state_dict()
    with pytest.raises(SoupError, match="2 or more"):
        average_state_dicts([a])
    with pytest.raises(SoupError, match="one positive number per checkpoint"):
        average_state_dicts([a, a], weights=[1])
    with pytest.raises(SoupError, match="one positive number per checkpoint"):
        average_state_dicts([a, a], weights=[1, 0])
    with pytest.raises(SoupError, match="other tensors"):
        average_state_dicts([a, _trained_like("fasterpose_r34").state_dict()])
    b = dict(a, **{"head.final.weight": torch.zeros(7, *a["head.final.weight"].shape[1:])})
    with pytest.raises(SoupError, match="in shape"):
        average_state_dicts([a, b])


def test_soup_cli_scores_ingredients_and_soup_and_writes_a_loadable_checkpoint(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=3)
    paths = [tmp_path / f"r{i}.pth" for i in (1, 2)]
    for seed, path in zip((1, 2), paths):
        torch.save({"model": _trained_like(seed=seed).state_dict(), "meta": META}, path)
    out = tmp_path / "soup" / "last.pth"
    args = ["--checkpoints", *map(str, paths), "--out", str(out)]
    assert main(args + ["--weights", "1", "3", "--ann", str(ann), "--images", str(images)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["persons"] == 3 and report["weights"] == [0.25, 0.75] and len(report["ingredients"]) == 2
    assert 0.0 <= report["soup"]["pck@0.2"] <= 1.0
    assert report["soup_minus_best_ingredient"] == pytest.approx(
        report["soup"]["pck@0.2"] - max(s["pck@0.2"] for s in report["ingredients"]), abs=1e-6)
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["meta"]["architecture"] == "fasterpose_r18" and ckpt["meta"]["input_size"] == [64, 64]
    assert [s["weight"] for s in ckpt["meta"]["souped_from"]] == [0.25, 0.75]
    assert len(ckpt["meta"]["souped_from"][0]["sha256"]) == 64
    build_model("fasterpose_r18", 14, **META["model_options"]).load_state_dict(ckpt["model"])  # strict
    assert ckpt["meta"]["recipe"]["box_padding"] == 1.1
    ckpt["meta"]["dataset"] = {"keypoints": [f"k{i}" for i in range(14)], "skeleton": [[0, 1]], "flip_pairs": []}
    torch.save(ckpt, paths[1])  # an ingredient that knows its keypoints: the soup carries them to the exporter
    assert main(args) == 0
    capsys.readouterr()
    r = invoke(export_main, ["--checkpoint", out, "--out", tmp_path / "s.onnx"])  # `python -m export`'s command
    assert r.exit_code == 0, r.output
    from fasterpose_rt import PosePredictor

    exported = PosePredictor(tmp_path / "s.onnx", threads=1).metadata
    assert exported.keypoints[:2] == ["k0", "k1"] and exported.box_padding == 1.1
    # expected errors: a message, exit code 2, no traceback, no file written
    other = tmp_path / "other.pth"
    torch.save({"model": _trained_like(seed=4).state_dict(), "meta": dict(META, input_size=[96, 128])}, other)
    bad = tmp_path / "bad.pth"
    assert main(["--checkpoints", str(paths[0]), str(other), "--out", str(bad)]) == 2
    assert "differs from" in capsys.readouterr().err and not bad.exists()
    assert main(["--checkpoints", str(paths[0]), str(tmp_path / "none.pth"), "--out", str(bad)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err and not bad.exists()
    assert main(["--checkpoints", str(paths[0]), "--out", str(bad)]) == 2
    assert "2 or more" in capsys.readouterr().err and not bad.exists()


def test_each_ingredient_is_scored_with_its_own_weights(tmp_path, monkeypatch):
    import models.soup as soup_module

    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    paths = [tmp_path / f"r{i}.pth" for i in (1, 2)]
    for seed, path in zip((1, 2), paths):
        torch.save({"model": _trained_like(seed=seed).state_dict(), "meta": META}, path)
    name = "backbone.layer2.0.conv1.weight"
    seen = []
    monkeypatch.setattr(soup_module, "checkpoint_scorer", lambda *args: (lambda model: seen.append(
        model.state_dict()[name].clone()) or {"pck@0.2": 0.5}, 2))
    soup_module.make_soup(paths, ann=ann, images=images)
    first, second = (torch.load(p, weights_only=True)["model"][name] for p in paths)
    assert len(seen) == 3  # both ingredients, then the soup
    assert torch.equal(seen[0], first) and torch.equal(seen[1], second)
    assert torch.allclose(seen[2], (first + second) / 2, atol=1e-7)


def test_scoring_matches_a_file_of_another_keypoint_order_by_name_and_refuses_other_keypoints(tmp_path, capsys):
    from fasterpose_rt.skeletons import LSP14
    from keypoint_order import write_reversed
    from models.validate import InFileOrder, checkpoint_scorer, keypoint_order

    ann, images, _ = _lsp_like_dataset(tmp_path, n=3)
    names = list(LSP14["keypoints"])
    meta, model = dict(META, dataset={"keypoints": names}), _trained_like(seed=1)
    want = checkpoint_scorer(meta, ann, images, 1.25)[0](model)
    assert not capsys.readouterr().err.count("warning")
    score, persons = checkpoint_scorer(meta, write_reversed(ann, tmp_path / "rev.json"), images, 1.25, "r.pth")
    assert score(model) == want and persons == 3
    assert "lists r.pth's keypoints in another order; matched by name" in capsys.readouterr().err
    assert keypoint_order(names, names[::-1], "r.pth", "rev.json") == list(range(13, -1, -1))
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(InFileOrder(model, [2, 0, 1])(x), model(x)[:, [2, 0, 1]])
    with pytest.raises(ValueError, match="not in the file: nose; not predicted: head_top"):
        checkpoint_scorer(dict(META, dataset={"keypoints": names[:-1] + ["nose"]}), ann, images, 1.25)
    with pytest.raises(ValueError, match="predicts 17 keypoints"):  # no names: the count is still compared
        checkpoint_scorer(dict(META, num_keypoints=17), ann, images, 1.25)


@pytest.mark.parametrize("padding", ["0", "-1", "nan"])
def test_a_box_padding_that_is_not_positive_is_refused_before_any_work(padding, tmp_path, capsys):
    out = tmp_path / "soup.pth"
    assert main(["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "--out", str(out),
                 "--box-padding", padding]) == 2
    assert "--box-padding must be a number from 0.5 to 4" in capsys.readouterr().err and not out.exists()


def test_a_soup_of_recovered_checkpoints_keeps_their_keypoint_set_and_box_padding(tmp_path):
    """models.from_onnx records the keypoint set and the ONNX file's box padding at the top of the meta; the soup
    passes them on, and the exporter prefers that padding to the recipe's (the training's)."""
    from export import Checkpoint, build_metadata, resolve_keypoint_set, resolve_spec
    from models.soup import make_soup

    names = [f"k{i}" for i in range(14)]
    recovered = dict(META, keypoints=names, skeleton=[[0, 1]], flip_pairs=[[2, 3]], sigmas=[0.07] * 14,
                     box_padding=1.15, recipe={"box_padding": 1.25})
    paths = [tmp_path / f"r{i}.pth" for i in (1, 2)]
    for seed, path in zip((1, 2), paths):
        torch.save({"model": _trained_like(seed=seed).state_dict(), "meta": recovered}, path)
    _, meta, _ = make_soup(paths)
    assert meta["box_padding"] == 1.15 and meta["sigmas"] == [0.07] * 14 and meta["flip_pairs"] == [[2, 3]]
    spec = resolve_spec(meta=meta)
    exported = build_metadata(spec, resolve_keypoint_set(spec.num_keypoints, meta), Checkpoint({}, meta))
    assert exported.keypoints == names and exported.flip_pairs == [[2, 3]] and exported.box_padding == 1.15
