"""CLI results on real COCO photos (../shared/datasets/coco-mini) read back by pycocotools.

A K = 17 stand-in (1x1 conv + 4x4 pooling, COCO-17 metadata) gives meaningless poses in the right format:
these tests check formats and plumbing, not accuracy.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from clirunner import invoke

from fasterpose_rt.cli import main
from fasterpose_rt.metadata import METADATA_KEY, ModelMetadata
from fasterpose_rt.skeletons import COCO17

COCO_MINI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "coco-mini"
pytestmark = pytest.mark.skipif(not (COCO_MINI / "person_keypoints.json").is_file(),
                                reason=f"shared dataset coco-mini not found at {COCO_MINI}")


@pytest.fixture(scope="module")
def coco17_model(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w, h, k = 48, 64, 17
    weight = np.random.default_rng(0).normal(0, 0.5, (k, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["v"]),
         helper.make_node("AveragePool", ["v"], ["heatmaps"], kernel_shape=[4, 4], strides=[4, 4])],
        "coco17_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", k, h // 4, w // 4])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(input_size=(w, h), keypoints=list(COCO17["keypoints"]), skeleton=COCO17["skeleton"],
                         flip_pairs=COCO17["flip_pairs"], architecture="standin17")
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    path = tmp_path_factory.mktemp("coco17") / "coco17.onnx"
    onnx.save(model, str(path))
    return path


def test_predict_results_are_read_by_pycocotools(coco17_model, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann = COCO_MINI / "person_keypoints.json"
    out = tmp_path / "results.json"
    r = invoke(main, ["predict", str(COCO_MINI / "images"), "--model", str(coco17_model),
                                  "--boxes", str(ann), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr  # the model's keypoints are the file's
    gt_data = json.loads(ann.read_text())
    persons = [a for a in gt_data["annotations"] if not a.get("iscrowd") and a.get("bbox")]
    res = json.loads(out.read_text())
    assert len(res) == len(persons) == 14
    assert {e["image_id"] for e in res} == {im["id"] for im in gt_data["images"]}
    assert all(len(e["keypoints"]) == 51 and e["category_id"] == 1 for e in res)

    def scores(ann, results):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(results)), "keypoints")  # the file as written, no conversion
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return ev.stats

    stats = scores(ann, out)
    assert 0.0 <= stats[0] <= 1.0
    # a file whose person category has another id: the results carry it, and score as against the first
    for c in gt_data["categories"]:
        c["id"] = 2
    for a in gt_data["annotations"]:
        a["category_id"] = 2
    ann2, out2 = tmp_path / "person_is_2.json", tmp_path / "results_2.json"
    ann2.write_text(json.dumps(gt_data))
    r = invoke(main, ["predict", str(COCO_MINI / "images"), "--model", str(coco17_model), "--boxes", str(ann2),
                      "--out", str(out2), "-q"])
    assert r.exit_code == 0, r.output
    assert {e["category_id"] for e in json.loads(out2.read_text())} == {2}
    np.testing.assert_array_equal(scores(ann2, out2), stats)


def test_predict_warns_when_the_boxes_files_keypoints_are_not_the_models(tmp_path):
    """The bundled models predict LSP's 14 joints: results on COCO's 17-keypoint file keep the model's 14 (what it
    predicts), which pycocotools cannot score against that file; predict says so once, before any photo."""
    ann = COCO_MINI / "person_keypoints.json"
    r = invoke(main, ["predict", str(COCO_MINI / "images"), "--boxes", str(ann), "-q"])
    assert r.exit_code == 0, r.output
    assert r.stderr == (f"warning: {ann} lists 17 keypoints (COCO's), the model 14 (LSP's): results keep the "
                        "model's 14, which COCOeval cannot score against that file; `fasterpose eval` scores the 12 "
                        "both name\n")
    assert all(len(e["keypoints"]) == 14 * 3 for e in json.loads(r.stdout))


def test_eval_on_coco_mini(coco17_model, tmp_path):
    pytest.importorskip("pycocotools")
    out = tmp_path / "report.json"
    r = invoke(main, ["eval", "--coco", str(COCO_MINI / "person_keypoints.json"), "--images",
                                  str(COCO_MINI / "images"), "--model", str(coco17_model), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["photos"] == 4 and rep["persons"] == 14 and rep["failed"] == []
    assert 0.0 <= rep["coco"]["AP"] <= 1.0 and 0.0 <= rep["pck@0.2"]["pck"] <= 1.0
    assert rep["pck@0.2"]["joints"] > 0 and set(rep["pck@0.2"]["per_keypoint"]) == set(COCO17["keypoints"])


def test_the_bundled_lsp_model_is_evaluated_on_the_joints_coco_shares(tmp_path):
    pytest.importorskip("pycocotools")
    out = tmp_path / "report.json"
    r = invoke(main, ["eval", "--coco", str(COCO_MINI / "person_keypoints.json"), "--images",
                                  str(COCO_MINI / "images"), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "share 12 keypoint names; only those are evaluated (left out: nose," in r.stderr
    rep = json.loads(out.read_text())
    shared = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
              "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"]
    assert rep["keypoints"] == shared and list(rep["pck@0.2"]["per_keypoint"]) == shared
    assert rep["persons"] == 14 and 0.0 < rep["coco"]["AP"] <= 1.0  # pycocotools on the 12 joints
    # a real model on real persons: most shoulders of COCO's labelled persons are found (1.00 in session 41)
    assert rep["pck@0.2"]["per_keypoint"]["left_shoulder"] >= 0.8 and rep["pck@0.2"]["pck"] > 0.5
    assert "on the 12 keypoints the model and the file share" in r.stdout


def test_the_bundled_model_on_detected_boxes_of_real_coco_photos(tmp_path):
    """COCO's top-down protocol (--detections) on real photos and pycocotools: the file's own boxes given as a
    detector's score as they do without it; a spurious box adds a pose that matches nobody."""
    pytest.importorskip("pycocotools")
    ann = COCO_MINI / "person_keypoints.json"
    data = json.loads(ann.read_text())
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in data["annotations"] if not a.get("iscrowd")]
    first = data["images"][0]
    spurious = {"image_id": first["id"], "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.3}
    reports = {}
    for name, boxes in (("file", None), ("detected", dets), ("spurious", dets + [spurious])):
        out, args = tmp_path / f"{name}.json", []
        if boxes is not None:
            (tmp_path / f"{name}_dets.json").write_text(json.dumps(boxes))
            args = ["--detections", str(tmp_path / f"{name}_dets.json")]
        r = invoke(main, ["eval", "--coco", str(ann), "--images", str(COCO_MINI / "images"), "--out", str(out), "-q",
                          *args])
        assert r.exit_code == 0, r.output
        reports[name] = json.loads(out.read_text())
    file, detected, spurious = reports["file"], reports["detected"], reports["spurious"]
    # the persons with labelled joints among the 12 shared ones: each scored on its own box's pose
    assert detected["detections"]["persons_matched"] == detected["detections"]["persons_labelled"] == 12
    assert detected["pck@0.2"]["pck"] == file["pck@0.2"]["pck"] and detected["pck@0.2"]["joints"] == \
        file["pck@0.2"]["joints"]
    # the same poses, ranked by box score x joints instead of joints alone: AP moves a little, AR not at all
    assert detected["coco"]["AR"] == pytest.approx(file["coco"]["AR"]) and \
        abs(detected["coco"]["AP"] - file["coco"]["AP"]) < 0.05
    assert spurious["persons"] == detected["persons"] + 1 and spurious["pck@0.2"] == detected["pck@0.2"]


def test_eval_places_predicts_results_by_file_name_whatever_the_files_ids(tmp_path):
    """predict numbers a folder's photos 1..N in sorted order; a COCO file numbering them 1..N the other way round
    must still get each photo's own boxes (it had got another photo's, matching 3 of 12 persons)."""
    pytest.importorskip("pycocotools")
    ann = COCO_MINI / "person_keypoints.json"
    data = json.loads(ann.read_text())
    new_id = {im["id"]: len(data["images"]) - j for j, im in enumerate(sorted(data["images"],
                                                                           key=lambda im: im["file_name"]))}
    for im in data["images"]:
        im["id"] = new_id[im["id"]]
    for a in data["annotations"]:
        a["image_id"] = new_id[a["image_id"]]
    reversed_ann, dets = tmp_path / "reversed.json", tmp_path / "results.json"
    reversed_ann.write_text(json.dumps(data))
    r = invoke(main, ["predict", str(COCO_MINI / "images"), "--out", str(dets), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(e["image_id"] for e in json.loads(dets.read_text())) == [1, 2, 3, 4]  # the premise
    reports = {}
    for name, path in (("coco ids", ann), ("reversed ids", reversed_ann)):
        out = tmp_path / f"{name}.json"
        r = invoke(main, ["eval", "--coco", str(path), "--images", str(COCO_MINI / "images"), "--detections",
                          str(dets), "--out", str(out), "-q"])
        assert r.exit_code == 0, r.output
        assert "4 detections placed by file_name: the image_id differs" in r.stdout
        reports[name] = json.loads(out.read_text())
    ours, theirs = reports["reversed ids"], reports["coco ids"]
    assert ours["detections"]["remapped"] == theirs["detections"]["remapped"] == 4
    assert ours["detections"]["persons_matched"] == theirs["detections"]["persons_matched"] == 4  # one per photo
    assert ours["pck@0.2"] == theirs["pck@0.2"] and ours["coco"] == theirs["coco"]
