"""models.data.doubtful_labels: leaving out training labels a confident model puts far away.

Real parts: the bundled default model and the demo photo (both in the repository).
"""
import json

import numpy as np
import pytest

from conftest import NEEDS_TORCH

from fasterpose_rt.skeletons import LSP14
from models.data.doubtful_labels import doubtful_joints, main, unlabel
from demo_labels import demo_prediction, write_demo_coco
from keypoint_order import reversed_keypoints, unreversed

NAMES = LSP14["keypoints"]
LS, RH = NAMES.index("left_shoulder"), NAMES.index("right_hip")


def _person():
    """gt (1, 14, 2) with a torso (left shoulder to right hip) of exactly 50 px."""
    gt = np.zeros((1, 14, 2))
    gt[0, :, 0] = np.arange(14) * 3.0
    gt[0, LS] = (0.0, 0.0)
    gt[0, RH] = (30.0, 40.0)
    return gt


def test_only_far_and_confident_labelled_joints_are_chosen():
    gt = _person()
    vis = np.ones((1, 14), bool)
    pred = gt.copy()
    pred[0, 0] += (0, 26)    # 0.52 torso away, confident: chosen
    pred[0, 1] += (0, 24)    # 0.48 torso away: kept
    pred[0, 2] += (0, 40)    # far, but the model is unsure: kept
    pred[0, 3] += (0, 40)    # far and confident, but not labelled: nothing to leave out
    scores = np.full((1, 14), 0.6)
    scores[0, 2] = 0.2
    vis[0, 3] = False
    got = doubtful_joints(pred, scores, gt, vis, NAMES, distance=0.5, min_score=0.3)
    assert np.flatnonzero(got[0]).tolist() == [0]
    assert doubtful_joints(pred, scores, gt, vis, NAMES, distance=0.45, min_score=0.3)[0, :2].all()
    assert not doubtful_joints(pred, scores, gt, vis, NAMES, distance=0.5, min_score=0.7).any()


def test_no_prediction_or_no_torso_says_nothing():
    gt = _person()
    vis = np.ones((1, 14), bool)
    far = gt + 500
    scores = np.ones((1, 14))
    assert not doubtful_joints(np.full_like(gt, np.nan), scores, gt, vis, NAMES).any()
    no_torso = vis.copy()
    no_torso[0, [LS, RH, NAMES.index("right_shoulder"), NAMES.index("left_hip")]] = False  # neither diagonal
    assert not doubtful_joints(far, scores, gt, no_torso, NAMES).any()
    assert doubtful_joints(far, scores, gt, vis, NAMES).all()


def test_unlabel_zeroes_whole_triplets_recounts_and_leaves_the_input_alone():
    kp = []
    for k in range(14):
        kp += [k * 10 + 0.5, k * 10 + 1, 2 if k != 4 else 0]
    ann = {"id": 7, "keypoints": list(kp), "num_keypoints": 13}
    joints = np.zeros(14, bool)
    joints[[1, 4]] = True
    out = unlabel(ann, joints)
    assert ann["keypoints"] == kp and ann["num_keypoints"] == 13
    got = np.reshape(out["keypoints"], (-1, 3))
    assert got[1].tolist() == [0, 0, 0] and got[4].tolist() == [0, 0, 0] and out["num_keypoints"] == 12
    np.testing.assert_array_equal(np.delete(got, [1, 4], 0), np.delete(np.reshape(kp, (-1, 3)), [1, 4], 0))
    assert all(isinstance(v, int) for v in out["keypoints"][3:6])


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    """A COCO file: the demo photo labelled with the model's own prediction, once as it is and once with its
    head top moved 3 torsos down, and a third photo that does not exist."""
    image, box, res = demo_prediction()
    xy = res.keypoints[0].astype(np.float64)
    head = NAMES.index("head_top")
    assert res.scores[0, head] >= 0.3  # the model is sure of this head
    moved = xy.copy()
    moved[head, 1] += 3 * np.linalg.norm(xy[LS] - xy[RH])
    return write_demo_coco(tmp_path_factory.mktemp("doubtful"), image, box, [moved, xy, moved])


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_end_to_end_on_a_real_photo(demo_set, tmp_path, capsys):
    path, images_dir, coco = demo_set
    out = tmp_path / "clean.json"
    code = main(["--ann", str(path), "--images", str(images_dir), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "missing.jpg" in captured.err, captured.err  # named; the rest is written
    assert "1 of 42 labelled joints left out, in 1 of 3 persons" in captured.out
    clean = json.loads(out.read_text())
    a, b, c = clean["annotations"]
    head = NAMES.index("head_top")
    got = np.reshape(a["keypoints"], (-1, 3))
    assert got[head].tolist() == [0, 0, 0] and a["num_keypoints"] == 13
    np.testing.assert_array_equal(np.delete(got, head, 0),
                                  np.delete(np.reshape(coco["annotations"][0]["keypoints"], (-1, 3)), head, 0))
    assert b == coco["annotations"][1] and c == coco["annotations"][2]  # right, and not predicted: as they were
    info = clean["info"]["doubtful_labels"]
    assert info["changed"] == [{"id": 10, "joints": ["head_top"]}] and info["persons"] == 3
    assert info["rule"] == {"distance": 0.5, "min_score": 0.3, "flip_test": True}
    assert info["model"]["file"].endswith(".onnx") and len(info["model"]["sha256"]) == 64
    assert clean["images"] == coco["images"] and clean["categories"] == coco["categories"]


def test_unlabel_in_a_file_of_another_order_zeroes_the_joints_where_the_file_has_them():
    kp = np.arange(1, 15 * 3 + 1).reshape(15, 3)  # the file: the model's 14 reversed, then an extra keypoint
    joints = np.zeros(14, bool)
    joints[[0, 3]] = True
    out = unlabel({"keypoints": kp.reshape(-1).tolist()}, joints, np.arange(13, -1, -1))
    got = np.reshape(out["keypoints"], (-1, 3))
    assert (got[[13, 10]] == 0).all() and out["num_keypoints"] == 13
    np.testing.assert_array_equal(np.delete(got, [13, 10], 0), np.delete(kp, [13, 10], 0))


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_a_file_listing_the_keypoints_in_another_order_is_cleaned_in_its_own_order(demo_set, tmp_path, capsys):
    _, images_dir, coco = demo_set
    rev, out = tmp_path / "rev.json", tmp_path / "clean.json"
    rev.write_text(json.dumps(reversed_keypoints(coco)))
    assert main(["--ann", str(rev), "--images", str(images_dir), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "lists the model's keypoints in another order; matched by name" in captured.err
    assert "1 of 42 labelled joints left out, in 1 of 3 persons" in captured.out  # by position: most of them
    clean = json.loads(out.read_text())
    assert clean["info"]["doubtful_labels"]["changed"] == [{"id": 10, "joints": ["head_top"]}]
    assert clean["categories"] == reversed_keypoints(coco)["categories"]  # written in the file's own order
    got = np.reshape(unreversed(clean["annotations"][0]["keypoints"]), (-1, 3))
    assert got[NAMES.index("head_top")].tolist() == [0, 0, 0] and clean["annotations"][0]["num_keypoints"] == 13


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_bad_input_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = tmp_path / "out.json"
    assert main(["--ann", str(bad), "--images", str(tmp_path), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("option", [["--distance", "0"], ["--min-score", "1.5"]])
def test_a_bad_rule_is_refused(option, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--ann", "a.json", "--images", str(tmp_path), "--out", str(tmp_path / "o.json")] + option)
    assert e.value.code == 2


def _tight(kp):
    xy = np.reshape(kp, (-1, 3))
    xy = xy[xy[:, 2] > 0, :2]
    lo, hi = xy.min(0), xy.max(0)
    return [*lo.tolist(), *(hi - lo).tolist()]


def test_unlabel_shrinks_a_tight_box_to_the_joints_still_labelled():
    kp = []
    for k in range(14):
        kp += [20.0 + k, 30.0 + 2 * k, 2]
    kp[13 * 3: 13 * 3 + 2] = [200.0, 300.0]  # the head top far off
    box = [round(v, 3) for v in _tight(kp)]  # as lsp_to_coco writes it
    ann = {"id": 1, "keypoints": kp, "num_keypoints": 14, "bbox": box, "area": round(box[2] * box[3], 3)}
    joints = np.zeros(14, bool)
    joints[13] = True
    out = unlabel(ann, joints)
    assert out["bbox"] == [20.0, 30.0, 12.0, 24.0] and out["area"] == 288.0
    assert ann["bbox"] == box  # the input as it was
    drawn = dict(ann, bbox=[0.0, 0.0, 400.0, 500.0], area=200000.0)  # not the joints' box: a box of its own
    out = unlabel(drawn, joints)
    assert out["bbox"] == [0.0, 0.0, 400.0, 500.0] and out["area"] == 200000.0
    out = unlabel(ann, np.ones(14, bool))  # nothing left labelled: the empty box, as lsp_to_coco gives
    assert out["bbox"] == [0.0, 0.0, 0.0, 0.0] and out["area"] == 0.0


def _fake_prediction(tmp_path, made_later=None):
    """A predict_or_explain stand-in: one person whose head top the model puts far away, confidently."""
    from types import SimpleNamespace

    def fake(ann, images, model, flip_test=True):
        if made_later is not None:
            made_later.mkdir()  # --out became a folder while the model predicted
        labels = np.concatenate([_person()[0], np.full((14, 1), 2.0)], axis=1)[None]
        pred = labels[..., :2].copy()
        pred[0, 0] += 500
        data = {"images": [], "annotations": [{"id": 1, "keypoints": labels[0].reshape(-1).tolist()}]}
        return SimpleNamespace(predictor=SimpleNamespace(keypoint_names=NAMES, flip_pairs=LSP14["flip_pairs"]),
                               data=data, labels=labels, pred=pred, scores=np.ones((1, 14)), failed=[],
                               model={"file": "m.onnx", "sha256": "0" * 64}, columns=np.arange(14))
    return fake


def test_a_failed_write_is_one_error_line(tmp_path, capsys, monkeypatch):
    import models.data.predicted_labels as pl

    out = tmp_path / "out.json"
    monkeypatch.setattr(pl, "predict_or_explain", _fake_prediction(tmp_path, made_later=out))
    assert main(["--ann", "a.json", "--images", str(tmp_path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error:")
