"""Training augmentation of TopDownDataset: half-body crops and --rotation-fit on keypoint sets and persons the
usual COCO/LSP tests do not cover (other naming conventions, few labelled joints)."""
import json

import cv2
import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)

from models.data.coco_keypoints import PersonSample, TopDownDataset, read_category

from test_training import _lsp_like_dataset

COCO9 = ["nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle",
         "right_ankle"]
OPENPOSE9 = ["Nose", "LEye", "REye", "LShoulder", "RShoulder", "LHip", "RHip", "LAnkle", "RAnkle"]
JOINTS9 = np.array([[150, 60], [155, 55], [145, 55], [180, 100], [120, 100], [170, 200], [130, 200], [175, 330],
                    [125, 330]], float)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((400, 300, 3), np.uint8))
    return path


def _region_heights(ds, sample, draws=20):
    return {round(float(ds._region(sample, np.random.default_rng(i))[1][1]), 1) for i in range(draws)}


def test_half_body_finds_the_upper_body_whatever_the_names_case(photo):
    """OpenPose / Human3.6M names (Nose, LShoulder) matched no lower-case word: no upper body, never a half-body
    crop."""
    s = PersonSample(photo, 1, np.array([100., 40., 100., 310.]), JOINTS9, np.ones(9, bool), 1.0)
    options = dict(train=True, half_body_prob=1.0, scale_range=0.0, shift=0.0, rotation_prob=0.0, flip_prob=0.0)
    heights = {}
    for names in (COCO9, OPENPOSE9):
        ds = TopDownDataset([s], read_category({"keypoints": names}, "cat"), (48, 64), **options)
        assert ds.upper.tolist() == [True] * 5 + [False] * 4
        heights[names[0]] = _region_heights(ds, s)
    full = 310 * 1.25  # the box's height, padded
    assert heights["Nose"] == heights["nose"] and max(heights["Nose"]) < full / 2  # every draw half a body


def test_half_body_refuses_keypoints_it_can_never_halve(photo, tmp_path, capsys):
    s = PersonSample(photo, 1, np.array([100., 40., 100., 310.]), JOINTS9, np.ones(9, bool), 1.0)
    unnamed = read_category({"keypoints": [f"j{i}" for i in range(9)]}, "cat")
    with pytest.raises(ValueError, match=r"--half-body: .* of these 9 keypoints 0 are upper-body ones \(none\)"):
        TopDownDataset([s], unnamed, (48, 64), train=True, half_body_prob=0.3)
    faces = read_category({"keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]}, "cat")
    with pytest.raises(ValueError, match="5 are upper-body ones"):  # all upper body: nothing to halve either
        TopDownDataset([s], faces, (48, 64), train=True, half_body_prob=0.3)
    for ok in (TopDownDataset([s], unnamed, (48, 64), train=True),  # off, or not training: nothing to refuse
               TopDownDataset([s], unnamed, (48, 64), train=False, half_body_prob=0.3)):
        assert not ok.upper.any()
    # models.train says so up front, one line
    from models.train import main as train_main
    ann, images, _ = _lsp_like_dataset(tmp_path / "lsp", n=2)
    coco = json.loads(ann.read_text())
    coco["categories"][0].update(keypoints=[f"j{i}" for i in range(14)], flip_pairs=[])
    renamed = tmp_path / "unnamed.json"
    renamed.write_text(json.dumps(coco))
    args = ["--train-ann", str(renamed), "--train-images", str(images), "--input-size", "64x64", "--batch-size", "1",
            "--workers", "0", "--threads", "1", "--work-dir", str(tmp_path / "w"), "--half-body", "0.3"]
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert "error: --half-body: " in err and "Traceback" not in err


@pytest.mark.parametrize("visible, why", [([0, 1, 1, 0, 0, 0, 0, 0, 0], "two eyes"),
                                          ([1, 1, 1, 1, 1, 0, 0, 0, 0], "head and shoulders in a full-body box"),
                                          ([0, 0, 1, 0, 0, 0, 1, 0, 1], "three joints in an upright line")])
def test_rotation_fit_keeps_the_upright_region_when_the_joints_say_little(photo, visible, why):
    """The margin sqrt(box area / joints' span area) blew up for 2 joints or a thin span (two eyes: 10x1 px in a
    100x300 box, 55x): the fitted region dwarfed the person."""
    box = np.array([100., 40., 100., 300.])
    s = PersonSample(photo, 1, box, JOINTS9, np.array(visible, bool), 1.0)
    ds = TopDownDataset([s], read_category({"keypoints": COCO9}, "cat"), (48, 64), train=True, rotation_fit=True)
    upright = ds.crop_transform(0)[0]  # the upright box's region: what the crop is without --rotation-fit
    for rot in (0.5, 30.0, 90.0):
        center, size = ds._fit_rotated(box, s, rot)
        np.testing.assert_allclose(size, [48 / upright[0, 0], 64 / upright[1, 1]], err_msg=why)
        np.testing.assert_allclose(center, box[:2] + box[2:] / 2, err_msg=why)
    # all joints labelled: fitted around the turned person, the box's own margin (1.35) over the joints' span
    s.visible[:] = True
    _, size = ds._fit_rotated(box, s, 90.0)
    lying = np.array([275, 60]) * np.sqrt(100 * 300 / (60 * 275))  # the joints' span turned, times the margin
    np.testing.assert_allclose(size, [lying[0] * 1.25, lying[0] * 1.25 * 64 / 48])  # given the crop's aspect
