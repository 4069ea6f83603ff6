"""Where the export's names and settings come from: checkpoint meta, flags, COCO annotation files, COCO-17."""
import json

import pytest
from clirunner import invoke

from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
from export import InputError, KeypointSetError, build_metadata, keypoints_from_coco, resolve_keypoint_set, resolve_spec
from export.__main__ import main
from fasterpose_rt.metadata import ModelMetadata
from fasterpose_rt.skeletons import COCO17, LSP14


def coco_file(tmp_path, names, skeleton_1based):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 9, "name": "no_kps"},
        {"id": 1, "name": "person", "keypoints": names, "skeleton": skeleton_1based},
    ]}))
    return path


def test_coco_annotation_file_skeleton_made_0_based_and_flip_pairs_derived(tmp_path):
    names = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    ks = resolve_keypoint_set(5, None, coco_file(tmp_path, names, [[1, 2], [1, 3], [2, 4], [3, 5]]))
    assert ks.keypoints == names
    assert ks.skeleton == [[0, 1], [0, 2], [1, 3], [2, 4]]
    assert ks.flip_pairs == [[1, 2], [3, 4]]
    assert ks.sigmas is None and "ann.json" in ks.source


def test_annotation_file_read_as_training_reads_it(tmp_path):
    """--keypoints-from used left_/right_ names only, so an LSP-style file with other side names and its own
    flip_pairs (which training uses) exported a model without flip pairs; and what training refuses, the exporter
    refuses (Rankle beside Lankle pair up by no rule: without flip_pairs they are refused)."""
    from models.data.coco_keypoints import load_coco_keypoints

    names = [n.replace("right_", "R").replace("left_", "L") for n in LSP14["keypoints"]]
    path = tmp_path / "lsp.json"
    category = {"id": 1, "name": "person", "keypoints": names, "flip_pairs": LSP14["flip_pairs"],
                "skeleton": [[a + 1, b + 1] for a, b in LSP14["skeleton"]]}
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "keypoints": [1, 1, 2] * 14}],
        "categories": [category]}))
    ks = resolve_keypoint_set(14, None, path)
    trained = load_coco_keypoints(path, tmp_path)[1]
    assert ks.flip_pairs == trained["flip_pairs"] == LSP14["flip_pairs"] and ks.skeleton == trained["skeleton"]
    for changes, message in (({"flip_pairs": None}, r"keypoint names look left/right \(Rankle, .* add \"flip_pairs\""),
                             ({"flip_pairs": [[0, 14]]}, r"flip_pairs entry \[0, 14\] is not a pair")):
        bad = {**category, **changes}
        if bad["flip_pairs"] is None:
            del bad["flip_pairs"]
        path.write_text(json.dumps({"images": [], "annotations": [], "categories": [bad]}))
        with pytest.raises(KeypointSetError, match="lsp.json: " + message):
            resolve_keypoint_set(14, None, path)
    r = invoke(main, ["--arch", "fasterpose_r18", "--num-keypoints", "14", "--keypoints-from", str(path),
                      "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "flip_pairs entry [0, 14]" in r.output and "Traceback" not in r.output


def test_checkpoint_names_win_over_annotation_file(tmp_path):
    meta = {"dataset": {"keypoints": LSP14["keypoints"], "skeleton": LSP14["skeleton"], "flip_pairs": LSP14["flip_pairs"]}}
    ks = resolve_keypoint_set(14, meta, coco_file(tmp_path, list(LSP14["keypoints"]), []))  # no skeleton, pairs
    assert ks.keypoints == LSP14["keypoints"] and ks.flip_pairs == LSP14["flip_pairs"]


def test_coco17_defaults_only_for_17(tmp_path):
    ks = resolve_keypoint_set(17)
    assert ks.keypoints == COCO17["keypoints"] and ks.skeleton == COCO17["skeleton"]
    with pytest.raises(KeypointSetError, match="no keypoint names for K=14.*--keypoints-from"):
        resolve_keypoint_set(14)


def test_keypoint_set_errors(tmp_path):
    names = ["a", "b", "c"]
    with pytest.raises(KeypointSetError, match="names 3 keypoints but the model has 4"):
        resolve_keypoint_set(4, None, coco_file(tmp_path, names, []))
    with pytest.raises(KeypointSetError, match=r"ann.json: skeleton entry \[3, 4\] is not a pair of keypoint "
                                               r"numbers in \[1, 3\] \(COCO skeletons count from 1\)"):
        resolve_keypoint_set(3, None, coco_file(tmp_path, names, [[3, 4]]))  # 1-based 4 is out of range
    with pytest.raises(KeypointSetError, match="not found"):
        keypoints_from_coco(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(KeypointSetError, match="not valid JSON"):
        keypoints_from_coco(bad)
    for text, why in (("[" * 100000 + "]" * 100000, "nested too deeply"), ("[" + "9" * 5000 + "]", "thousands of digits")):
        bad.write_text(text)  # review s68: tracebacks (RecursionError, ValueError)
        with pytest.raises(KeypointSetError, match=why):
            keypoints_from_coco(bad)


def test_spec_from_meta_and_flags():
    meta = {"architecture": "fasterpose_r18", "num_keypoints": 14, "input_size": [96, 128], "loss": "mse",
            "model_options": {"head_width": 64}}
    spec = resolve_spec(meta=meta)
    assert (spec.architecture, spec.num_keypoints, spec.input_size) == ("fasterpose_r18", 14, (96, 128))
    assert spec.output == "probabilities" and spec.model_options == {"head_width": 64}
    assert resolve_spec("fasterpose_r18", 14, (64, 64), meta=meta).input_size == (64, 64)  # flag overrides
    assert resolve_spec("fasterpose_r18", 17).output == "logits"  # no loss recorded -> logits
    with pytest.raises(InputError, match="--arch fasterpose_r50 does not match the checkpoint's architecture fasterpose_r18"):
        resolve_spec("fasterpose_r50", meta=meta)
    with pytest.raises(InputError, match="--num-keypoints 17 does not match"):
        resolve_spec(num_keypoints=17, meta=meta)
    with pytest.raises(InputError, match="contradicts"):
        resolve_spec(output="logits", meta=meta)
    with pytest.raises(InputError, match="unknown architecture 'nope'"):
        resolve_spec("nope", 17)


def test_metadata_without_checkpoint_marks_random_weights():
    spec = resolve_spec("fasterpose_r50", 17)
    meta = build_metadata(spec, resolve_keypoint_set(17), None, box_padding=1.5)
    back = ModelMetadata.from_json(meta.to_json())
    assert back.extra["weights"] == "random" and "source_checkpoint" not in back.extra
    assert back.box_padding == 1.5 and back.input_size == (192, 256) and back.architecture == "fasterpose_r50"


@pytest.mark.parametrize("args, message", [
    (["--num-keypoints", "17"], "no architecture"),
    (["--arch", "fasterpose_r18", "--num-keypoints", "14"], "no keypoint names for K=14"),
    (["--arch", "fasterpose_r18", "--num-keypoints", "17", "--input-size", "64by64"], "expected WxH"),
    (["--arch", "fasterpose_r18", "--num-keypoints", "17", "--opset", "13"], "13"),
])
def test_cli_input_errors_exit_2(tmp_path, args, message):
    out = tmp_path / "m.onnx"
    r = invoke(main, args + ["--out", str(out)])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_checkpoints_naming_their_keypoints_at_the_top_keep_them():
    """models.from_onnx and models.soup record keypoints / skeleton / flip pairs (and sigmas, box padding) at the
    top of the meta, as the ONNX file had them: the exporter had read only meta["dataset"], so K=17 became COCO-17
    with COCO's flip pairs and any other K was refused."""
    from export import Checkpoint

    names = [f"part{i}" for i in range(17)]
    meta = {"architecture": "fasterpose_r18", "keypoints": names, "skeleton": [[0, 1]], "flip_pairs": [[3, 4]],
            "sigmas": [0.05] * 17, "box_padding": 1.1, "recipe": {"box_padding": 1.25}}
    spec = resolve_spec(meta=meta)  # no num_keypoints recorded: K from the names
    assert spec.num_keypoints == 17
    ks = resolve_keypoint_set(spec.num_keypoints, meta)
    assert (ks.keypoints, ks.skeleton, ks.flip_pairs, ks.sigmas) == (names, [[0, 1]], [[3, 4]], [0.05] * 17)
    assert ks.source == "checkpoint metadata"
    exported = build_metadata(spec, ks, Checkpoint({}, meta))
    assert exported.box_padding == 1.1  # the file's (calibrated) padding, not the recipe's
    assert build_metadata(spec, ks, Checkpoint({}, {"recipe": {"box_padding": 1.2}})).box_padding == 1.2
    # where the weights came from travels into the file (a soup's, a shrunk or recovered model's: review s59)
    for lineage, value in (("souped_from", [{"file": "a.pth", "weight": 0.5}]), ("shrunk_from", {"source": "b"}),
                           ("recovered_from", {"file": "c.onnx"})):
        assert build_metadata(spec, ks, Checkpoint({}, {**meta, lineage: value})).extra[lineage] == value
    five = {"architecture": "fasterpose_r18", "keypoints": list("abcde"), "skeleton": [], "flip_pairs": []}
    assert resolve_keypoint_set(resolve_spec(meta=five).num_keypoints, five).keypoints == list("abcde")


def test_recovered_checkpoints_keep_what_their_heatmaps_are_and_how_edges_decode():
    """models.from_onnx of a file exported from a plain state dict with --output probabilities records no loss: the
    re-export said "logits", so the runtime put a sigmoid on probabilities, and an unblurred edge_peaks became
    blurred (review s61). The source file's output and edge_peaks now travel with the recovered weights."""
    from export import Checkpoint

    meta = {"architecture": "fasterpose_r18", "keypoints": list("abcde"), "skeleton": [], "flip_pairs": [],
            "output": "probabilities", "edge_peaks": "unblurred"}
    spec = resolve_spec(meta=meta)
    assert spec.output == "probabilities" and spec.loss is None
    exported = build_metadata(spec, resolve_keypoint_set(5, meta), Checkpoint({}, meta))
    assert (exported.output, exported.edge_peaks) == ("probabilities", "unblurred")
    assert resolve_spec(meta={**meta, "output": "logits", "loss": "rce"}).output == "logits"
    for bad, message in (({"loss": "rce"}, "records output 'probabilities' and loss 'rce'"),
                         ({"output": "heat"}, "unknown output 'heat'")):
        with pytest.raises(InputError, match=message):
            resolve_spec(meta={**meta, **bad})
    with pytest.raises(InputError, match="contradicts the checkpoint's recorded output"):
        resolve_spec(output="logits", meta=meta)
    bare = {k: v for k, v in meta.items() if k not in ("output", "edge_peaks")}
    plain = build_metadata(resolve_spec(meta=bare), resolve_keypoint_set(5, bare), Checkpoint({}, bare))
    assert (plain.output, plain.edge_peaks) == ("logits", "blurred")  # nothing recorded: the defaults


@pytest.mark.parametrize("meta, message", [
    ({"num_keypoints": [14]}, "checkpoint meta num_keypoints must be an integer, got [14]"),
    ({"recipe": "adamw"}, "checkpoint meta recipe must be a dict, got str 'adamw'"),
    ({"recipe": {"box_padding": "wide"}}, "checkpoint meta recipe.box_padding must be a number from 0.5 to 4, got 'wide'"),
    ({"box_padding": 0}, "checkpoint meta box_padding must be a number from 0.5 to 4, got 0"),
    ({"dataset": {"keypoints": LSP14["keypoints"], "sigmas": ["a"] * 14}}, "sigmas must be a list of positive numbers"),
    ({"dataset": {"keypoints": LSP14["keypoints"], "sigmas": [0.0] * 14}}, "sigmas must be positive numbers"),
    ({"dataset": {"keypoints": "abcdefghijklmn"}}, "keypoints must be a list of names, got str"),
    ({"input_size": [64.9, 96]}, "input_size must be [w, h] in whole pixels, got [64.9, 96]"),
])
def test_malformed_checkpoint_meta_exits_2_with_one_line(tmp_path, meta, message):
    import torch

    from models import build_model

    base = {"architecture": "fasterpose_r18", "num_keypoints": 14, "input_size": [64, 96],
            "dataset": {"keypoints": LSP14["keypoints"], "skeleton": LSP14["skeleton"]}}
    ckpt, out = tmp_path / "c.pth", tmp_path / "m.onnx"
    torch.save({"model": build_model("fasterpose_r18", 14).state_dict(), "meta": {**base, **meta}}, ckpt)
    r = invoke(main, ["--checkpoint", str(ckpt), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1
    assert "Traceback" not in r.output and not out.exists()


def test_a_keypoints_file_the_checkpoint_contradicts_is_refused(tmp_path):
    """A COCO-17 --keypoints-from with a checkpoint naming LSP's 14 was ignored with a note (review s58)."""
    import json as _json

    from export.keypoints import KeypointSetError, resolve_keypoint_set
    from fasterpose_rt.skeletons import COCO17, LSP14

    def coco_file(names, path):
        path.write_text(_json.dumps({"images": [], "annotations": [], "categories": [
            {"id": 1, "name": "person", "keypoints": list(names), "skeleton": []}]}))
        return path

    meta = {"dataset": {"keypoints": list(LSP14["keypoints"]), "skeleton": [], "flip_pairs": []}}
    with pytest.raises(KeypointSetError, match="names 17 keypoints .*, the checkpoint 14 others"):
        resolve_keypoint_set(14, meta, coco_file(COCO17["keypoints"], tmp_path / "coco.json"))
    same = coco_file(list(LSP14["keypoints"])[::-1], tmp_path / "lsp.json")  # the same names, another order
    assert resolve_keypoint_set(14, meta, same).keypoints == list(LSP14["keypoints"])
