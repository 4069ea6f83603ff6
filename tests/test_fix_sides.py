"""models.data.fix_sides: exchanging left and right in training labels a model says are mirrored.

Real parts: the bundled default model and the demo photo (both in the repository).
"""
import json

import numpy as np
import pytest

from conftest import NEEDS_TORCH

from fasterpose_rt.skeletons import LSP14, flip_permutation
from models.data.fix_sides import main, mirrored_persons, swap_sides
from demo_labels import demo_prediction, write_demo_coco
from keypoint_order import reversed_keypoints, unreversed

NAMES, PAIRS = LSP14["keypoints"], LSP14["flip_pairs"]
PERM = flip_permutation(len(NAMES), PAIRS)


def _standing_person():
    """gt (1, 14, 2): a frontal person 100 px tall, the person's right on the photo's left."""
    xy = {"right_ankle": (40, 100), "right_knee": (42, 75), "right_hip": (44, 50), "left_hip": (60, 50),
          "left_knee": (62, 75), "left_ankle": (64, 100), "right_wrist": (25, 50), "right_elbow": (30, 35),
          "right_shoulder": (38, 20), "left_shoulder": (66, 20), "left_elbow": (74, 35), "left_wrist": (79, 50),
          "neck": (52, 18), "head_top": (52, 0)}
    return np.array([[xy[n] for n in NAMES]], np.float64)


def test_a_mirrored_prediction_marks_the_person_and_a_matching_one_does_not():
    gt = _standing_person()
    vis = np.ones((1, 14), bool)
    assert mirrored_persons(gt[:, PERM], gt, vis, NAMES, PAIRS).tolist() == [True]
    assert mirrored_persons(gt, gt, vis, NAMES, PAIRS).tolist() == [False]


def test_a_lost_or_missing_prediction_says_nothing_about_the_labels():
    gt = _standing_person()
    vis = np.ones((1, 14), bool)
    lost = gt[:, PERM].copy()
    lost[:, :9] += 500  # only 5 of 14 joints hit, mirrored or not: fewer than half
    assert mirrored_persons(lost, gt, vis, NAMES, PAIRS).tolist() == [False]
    assert mirrored_persons(np.full_like(gt, np.nan), gt, vis, NAMES, PAIRS).tolist() == [False]


def test_the_margin_counts_joints():
    gt = _standing_person()
    vis = np.ones((1, 14), bool)
    pred = gt.copy()
    pred[0, [3, 2]] = gt[0, [2, 3]]  # only the hips exchanged: mirrored, the hips hit but every other side misses
    assert mirrored_persons(pred, gt, vis, NAMES, PAIRS, margin=1).tolist() == [False]
    arms_legs = gt[:, PERM].copy()
    arms_legs[0, [6, 11]] = gt[0, [6, 11]]  # wrists as labelled: as is 4 hits, mirrored 12
    assert mirrored_persons(arms_legs, gt, vis, NAMES, PAIRS, margin=8).tolist() == [True]
    assert mirrored_persons(arms_legs, gt, vis, NAMES, PAIRS, margin=9).tolist() == [False]


def test_swap_sides_moves_whole_triplets_and_leaves_the_input_alone():
    kp = []
    for k in range(14):
        kp += [k * 10, k * 10 + 1, 2 if k != 0 else 0]
    ann = {"id": 7, "keypoints": list(kp), "bbox": [0, 0, 1, 1]}
    out = swap_sides(ann, PERM)
    assert ann["keypoints"] == kp
    got = np.array(out["keypoints"]).reshape(-1, 3)
    np.testing.assert_array_equal(got, np.array(kp).reshape(-1, 3)[PERM])
    assert got[5, 2] == 0 and got[0, 2] == 2  # right ankle's "unlabelled" moved to the left ankle
    assert all(isinstance(v, int) for v in out["keypoints"])
    assert swap_sides(out, PERM)["keypoints"] == kp


def test_swap_sides_in_a_file_of_another_order_moves_the_models_joints_where_the_file_has_them():
    kp = np.arange(15 * 3).reshape(15, 3)  # the file: an extra keypoint first, then the model's 14 reversed
    columns = np.arange(14, 0, -1)  # where the model's keypoint k is in the file
    out = np.reshape(swap_sides({"keypoints": kp.reshape(-1).tolist()}, PERM, columns)["keypoints"], (-1, 3))
    np.testing.assert_array_equal(out[columns], kp[columns][PERM])
    np.testing.assert_array_equal(out[0], kp[0])  # not the model's: untouched


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    """A COCO file: the demo photo twice, labelled with the model's own prediction mirrored and as it is,
    and a third photo that does not exist."""
    image, box, res = demo_prediction()
    xy = res.keypoints[0].astype(np.float64)
    return write_demo_coco(tmp_path_factory.mktemp("sides"), image, box, [xy[PERM], xy, xy[PERM]])


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_end_to_end_on_a_real_photo(demo_set, tmp_path, capsys):
    path, images_dir, coco = demo_set
    out = tmp_path / "fixed.json"
    code = main(["--ann", str(path), "--images", str(images_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "missing.jpg" in err, err  # the unreadable photo is named; the rest is written
    fixed = json.loads(out.read_text())
    a, b, c = fixed["annotations"]
    np.testing.assert_array_equal(np.reshape(a["keypoints"], (-1, 3)),
                                  np.reshape(coco["annotations"][0]["keypoints"], (-1, 3))[PERM])
    assert b == coco["annotations"][1]
    assert c == coco["annotations"][2]  # not predicted: left as it was
    info = fixed["info"]["fix_sides"]
    assert info["changed"] == [10] and info["persons"] == 3
    assert info["model"]["file"].endswith(".onnx") and len(info["model"]["sha256"]) == 64
    assert fixed["images"] == coco["images"] and fixed["categories"] == coco["categories"]


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_a_file_listing_the_keypoints_in_another_order_is_fixed_in_its_own_order(demo_set, tmp_path, capsys):
    _, images_dir, coco = demo_set
    rev, out = tmp_path / "rev.json", tmp_path / "fixed.json"
    rev.write_text(json.dumps(reversed_keypoints(coco)))
    assert main(["--ann", str(rev), "--images", str(images_dir), "--out", str(out)]) == 1
    assert "lists the model's keypoints in another order; matched by name" in capsys.readouterr().err
    fixed = json.loads(out.read_text())
    assert fixed["info"]["fix_sides"]["changed"] == [10]  # by position: no person, or the wrong ones
    assert fixed["categories"] == reversed_keypoints(coco)["categories"]  # written in the file's own order
    np.testing.assert_array_equal(np.reshape(unreversed(fixed["annotations"][0]["keypoints"]), (-1, 3)),
                                  np.reshape(coco["annotations"][0]["keypoints"], (-1, 3))[PERM])


@pytest.mark.parametrize("threshold", ["0", "-0.2", "nan", "3"])
def test_a_bad_threshold_is_refused_before_any_work(threshold, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--ann", "a.json", "--images", str(tmp_path), "--out", str(tmp_path / "o.json"),
              "--threshold", threshold])
    assert e.value.code == 2 and "--threshold must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_bad_input_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = tmp_path / "out.json"
    assert main(["--ann", str(bad), "--images", str(tmp_path), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err and not out.exists()


@NEEDS_TORCH  # the label tools record the model's provenance through export/
def test_a_keypoint_set_other_than_the_models_is_refused_before_predicting(demo_set, tmp_path, capsys):
    path, images_dir, coco = demo_set
    other = dict(coco, annotations=[dict(coco["annotations"][0], keypoints=[0, 0, 0] * 17)])
    wrong = tmp_path / "coco17.json"
    wrong.write_text(json.dumps(other))
    out = tmp_path / "out.json"
    assert main(["--ann", str(wrong), "--images", str(images_dir), "--out", str(out)]) == 2
    assert "3 x 14 = 42 numbers" in capsys.readouterr().err and not out.exists()  # the file's category has 14


def test_a_failed_write_is_one_error_line(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    import models.data.predicted_labels as pl

    out = tmp_path / "out.json"

    def fake(ann, images, model, flip_test=True):
        out.mkdir()  # --out became a folder while the model predicted
        gt = _standing_person()
        labels = np.concatenate([gt[0], np.full((14, 1), 2.0)], axis=1)[None]
        return SimpleNamespace(predictor=SimpleNamespace(keypoint_names=NAMES, flip_pairs=PAIRS),
                               data={"images": [], "annotations": [{"id": 1, "keypoints": labels[0].ravel().tolist()}]},
                               labels=labels, pred=gt[:, PERM], scores=np.ones((1, 14)), failed=[],
                               model={"file": "m.onnx", "sha256": "0" * 64}, columns=np.arange(14))

    monkeypatch.setattr(pl, "predict_or_explain", fake)
    assert main(["--ann", "a.json", "--images", str(tmp_path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error:")
