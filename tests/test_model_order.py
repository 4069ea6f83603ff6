"""fasterpose_rt.evaluate.in_model_order: the one rule by which the tools that read ground truth by position
(export's crops, the label-repair tools, score calibration, the presence head) meet a COCO file's keypoints."""
import numpy as np
import pytest

from fasterpose_rt.evaluate import EvalError, in_model_order, match_keypoints
from fasterpose_rt.skeletons import LSP14

from keypoint_order import reversed_keypoints, unreversed, without_keypoint

NAMES = list(LSP14["keypoints"])


def _coco(names=NAMES, sigmas=None) -> dict:
    k = len(names)
    kp = np.concatenate([np.arange(2 * k).reshape(k, 2) + 0.5, np.full((k, 1), 2.0)], axis=1).reshape(-1)
    cat = {"id": 1, "name": "person", "keypoints": list(names), "skeleton": [[1, 2]]}
    if sigmas is not None:
        cat["sigmas"] = sigmas
    return {"images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "keypoints": kp.tolist()}],
            "categories": [cat]}


def test_a_file_in_another_order_is_read_in_the_models_and_said_so():
    data = _coco()
    said = []
    got = in_model_order(reversed_keypoints(data), NAMES, "rev.json", said.append)
    assert got["annotations"][0]["keypoints"] == data["annotations"][0]["keypoints"]  # back in the model's order
    assert got["categories"][0]["keypoints"] == NAMES
    assert said == ["rev.json lists the model's keypoints in another order; matched by name"]
    assert in_model_order(data, NAMES, "same.json", said.append) is data and len(said) == 1  # nothing to say
    assert unreversed(reversed_keypoints(data)["annotations"][0]["keypoints"]) == data["annotations"][0]["keypoints"]


def test_sigmas_are_not_needed_but_match_keypoints_still_asks_for_them():
    data = _coco()  # 14 keypoints, no sigmas
    in_model_order(reversed_keypoints(data), NAMES, "a.json", lambda w: None)
    with pytest.raises(EvalError, match="sigmas"):
        match_keypoints(data, NAMES, "a.json")


def test_a_file_that_does_not_name_all_the_models_keypoints_is_refused_naming_them():
    data = without_keypoint(_coco(), "neck")
    with pytest.raises(EvalError, match=r"a\.json: .*1 of the model's 14 keypoints \(neck\)"):
        in_model_order(data, NAMES, "a.json")


def test_more_keypoints_than_the_model_are_cut_down_and_said_so():
    data = _coco(NAMES[::-1] + ["nose"])
    said = []
    got = in_model_order(data, NAMES, "a.json", said.append)
    kp = np.reshape(got["annotations"][0]["keypoints"], (-1, 3))
    want = np.reshape(data["annotations"][0]["keypoints"], (-1, 3))[:14][::-1]
    np.testing.assert_array_equal(kp, want)
    assert len(said) == 1 and "left out: nose" in said[0]


def test_names_that_differ_altogether_are_compared_by_position_with_a_warning(capsys):
    data = _coco([f"kp{i}" for i in range(14)])
    got = in_model_order(data, NAMES, "a.json")  # default: the warning on stderr
    assert got["annotations"][0]["keypoints"] == data["annotations"][0]["keypoints"]
    assert "warning: keypoint names differ" in capsys.readouterr().err
