"""benchmarks/detected_boxes.py: COCO's top-down protocol on real LSPET photos with three kinds of boxes. The file's
own boxes score what ``fasterpose eval`` scores; the detections files it writes are real COCO detection results
(pycocotools loads them) whose boxes are the runtime's own.

Real parts: the bundled default model, 40 real LSPET training photos, pycocotools (skipped when ../shared is absent).
"""
import json

import cv2
import numpy as np
import pytest

from benchmarks.detected_boxes import main
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark, runtime_pck
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.boxes import HogPeopleDetector

pytestmark = [NEEDS_LSPET, pytest.mark.skipif(not DEFAULT_MODELS["default"].is_file(), reason="bundled model absent")]


def test_three_kinds_of_boxes_scored_by_the_protocol_and_the_detections_kept(lspet40, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    result = run_lspet_benchmark(main, "detected_boxes", lspet40, tmp_path, "--keep", tmp_path / "dets")
    ways = result["ways"]
    assert len(ways) == 4 and result["photos"] == 40 and (tmp_path / "detected_boxes.md").is_file()
    own, hog, hog_refined, search = ways.values()
    # the file's own boxes: every person matched, PCK as the runtime scores each person in its box
    assert own["matched"] == own["labelled"] == own["poses"] == 40
    assert own["pck"] == pytest.approx(runtime_pck(DEFAULT_MODELS["default"], lspet40), abs=1e-9)
    for way in (hog, hog_refined, search):
        assert way["labelled"] == 40 and 0 <= way["matched"] <= 40 and 0.0 <= way["AP"] <= own["AP"] + 0.05
    # the written detections are the runtime's own boxes, in COCO's detection results format
    data = json.loads(lspet40.read_text())
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    files = {im["id"]: im["file_name"] for im in data["images"]}
    first = data["images"][0]["id"]
    photo = cv2.imread(str(LSPET / "images" / files[first]))
    searched = json.loads((tmp_path / "dets" / "detections_search.json").read_text())
    assert len(coco.loadRes(searched).getAnnIds()) == len(searched) == 40  # one guess per photo, every one kept
    mine = [d["bbox"] for d in searched if d["image_id"] == first]
    expected = find_poses_batch(PosePredictor(threads=2), [photo], min_presence=0)[0].boxes
    np.testing.assert_allclose(mine, expected, atol=0.01)
    hogs = json.loads((tmp_path / "dets" / "detections_hog.json").read_text())
    detector, boxes = HogPeopleDetector(), []
    for im in data["images"]:  # HOG finds nobody on many of these photos: all 40 are compared
        boxes.append(detector(cv2.imread(str(LSPET / "images" / im["file_name"])))[0])
    boxes = np.concatenate(boxes)
    assert len(boxes) == len(hogs) > 0
    np.testing.assert_allclose([d["bbox"] for d in hogs], boxes, atol=0.01)
