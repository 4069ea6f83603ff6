"""benchmarks/photo_reading.py: its camera-sized photos carry their labels and boxes along, and its rows are the
real CLI decoding whole or smaller.

Real parts: the bundled int8 model, real LSPET photos (skipped when ../shared is absent) and the installed CLI.
"""
import json

import cv2
import numpy as np
import pytest

import benchmarks.photo_reading as photo_reading
from conftest import NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.boxes import load_boxes_file

INT8 = DEFAULT_MODELS["default"]


@pytest.mark.parametrize("small", [False, True])
def test_framed_photos_keep_labels_and_boxes_on_their_pixels(small, monkeypatch, tmp_path):
    monkeypatch.setattr(photo_reading, "FRAME", (400, 300))
    photo = np.zeros((60, 40, 3), np.uint8)
    photo[20:23, 10:13] = 255  # a 3 px square centred on (11, 21)
    box = np.array([9.5, 19.5, 3.0, 3.0])  # its edges
    picture, label, framed_box = photo_reading.framed(photo, np.array([[11.0, 21.0]]), box, small,
                                                      np.random.default_rng(0))
    weight = np.clip(picture[..., 0].astype(float) - 128, 0, None)  # the square, not the grey
    yy, xx = np.mgrid[0:300, 0:400]
    centre = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
    np.testing.assert_allclose(centre, label[0], atol=0.3)
    np.testing.assert_allclose(framed_box[:2] + framed_box[2:] / 2, label[0], atol=1e-9)  # same centre
    assert framed_box[3] == pytest.approx(300 / 8 if small else 300 / 60 * 3)
    labels, boxes_file = photo_reading.write_set(tmp_path / "set", [photo, photo], np.zeros((2, 1, 2)),
                                                 [box, box], small)
    assert labels.shape == (2, 1, 2) and sorted(p.name for p in (tmp_path / "set").iterdir()) == [
        "p0000.jpg", "p0001.jpg"]
    assert cv2.imread(str(tmp_path / "set" / "p0001.jpg")).shape == (300, 400, 3)
    found = load_boxes_file(boxes_file).find(tmp_path / "set" / "p0001.jpg")  # the CLI reads it
    assert found.image_id == 2 and len(found.boxes) == 1


def test_best_keypoints_takes_each_photos_best_person(tmp_path):
    out = tmp_path / "r.json"
    out.write_text(json.dumps([
        {"file_name": "x/p0001.jpg", "score": 0.2, "keypoints": [1, 2, 0.2]},
        {"file_name": "x/p0001.jpg", "score": 0.5, "keypoints": [3, 4, 0.5]},
        {"file_name": "x/p0000.jpg", "score": 0.1, "keypoints": [5, 6, 0.1]}]))
    kp = photo_reading.best_keypoints(out, 3, 1)
    np.testing.assert_array_equal(kp[:2], [[[5, 6]], [[3, 4]]])
    assert np.isnan(kp[2]).all()  # no person found: every joint a miss


@NEEDS_LSPET
@pytest.mark.skipif(not INT8.is_file(), reason="bundled int8 model absent")
def test_rows_are_the_cli_decoding_whole_or_smaller(lspet_coco, tmp_path, monkeypatch):
    monkeypatch.setattr(photo_reading, "FRAME", (2600, 1950))  # decoded at 1/2 by default
    monkeypatch.setattr(photo_reading, "VARIANTS", {k: v for k, v in photo_reading.VARIANTS.items()
                                                    if "--read-ahead" in v or not v})  # before and the default
    result = run_lspet_benchmark(photo_reading.main, "photo_reading", lspet_coco(8001, 8002), tmp_path,
                                 "--photos", 2, "--rounds", 1)
    for key in ("large", "small"):
        rows = result[key]
        assert [(r["boxes"], r["variant"].endswith("(before)")) for r in rows] == [
            (False, True), (False, False), (True, True), (True, False)]
        assert all(r["photos_per_s"] > 0 and 0 <= r["pck"] <= 1 for r in rows)
    assert result["large"][2]["pck"] > 0.5  # real poses on real photos with their tight boxes
