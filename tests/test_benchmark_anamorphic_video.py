"""benchmarks/anamorphic_video.py: each way is what the runtime does with such a frame, and the baseline is the
photo itself.

Real parts: the bundled fast model and 40 real LSPET training photos (skipped when ../shared is absent).
"""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from benchmarks.anamorphic_video import ASPECTS, OneFrame, main, stored, video_keypoints
from benchmarks.orientation import load_persons
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.geometry import rescale_boxes
from fasterpose_rt.metrics import pck

FAST = DEFAULT_MODELS["fast"]
pytestmark = [NEEDS_LSPET, pytest.mark.skipif(not FAST.is_file(), reason="bundled fast model absent")]


def test_every_way_is_reported_against_the_photo(lspet40, tmp_path):
    result = run_lspet_benchmark(main, "anamorphic_video", lspet40, tmp_path, "--model", "fast", "--limit", 12)
    names, gt, vis, boxes, files = load_persons(lspet40)
    pred = PosePredictor(FAST, threads=1)
    photo = np.concatenate([pred.predict(cv2.imread(str(LSPET / "images" / f)), [b]).keypoints
                            for f, b in zip(files[:12], boxes[:12])])
    assert result["the photo itself (the baseline)"]["pck@0.2"] == pytest.approx(
        pck(photo, gt[:12], vis[:12], names)[0], abs=1e-9)
    assert result["persons"] == 12 and set(result["aspects"]) == {label for label, _ in ASPECTS}
    for label, aspect in ASPECTS:
        for way in ("as stored", "as shown"):
            assert 0 < result[f"{label} ({aspect.numerator}:{aspect.denominator}) run {way}"]["pck@0.2"] <= 1
        gain = result["aspects"][label]
        assert gain["gain_interval"][0] <= gain["gain"] <= gain["gain_interval"][1]


def test_as_shown_is_the_frame_widened_to_square_pixels_and_as_stored_the_frame_itself(lspet40):
    _, _, _, boxes, files = load_persons(lspet40)
    pred = PosePredictor(FAST, threads=1)
    photo = cv2.imread(str(LSPET / "images" / files[0]))
    for aspect in (Fraction(64, 45), Fraction(8, 9)):
        frame, f = stored(photo, aspect)
        assert abs(frame.shape[1] / frame.shape[0] * aspect - photo.shape[1] / photo.shape[0]) < 0.01
        box = rescale_boxes(boxes[0], f).astype(np.float32)
        np.testing.assert_array_equal(video_keypoints(pred, frame, box, None), pred.predict(frame, [box]).keypoints[0])
        fx, fy = (float(aspect), 1.0) if aspect > 1 else (1.0, float(1 / aspect))
        square = cv2.resize(frame, (0, 0), fx=fx, fy=fy, interpolation=cv2.INTER_LINEAR)
        want = pred.predict(square, rescale_boxes(box, (fx, fy)).astype(np.float32)[None]).rescaled((1 / fx, 1 / fy))
        np.testing.assert_allclose(video_keypoints(pred, frame, box, aspect), want.keypoints[0], atol=1e-3)


def test_a_one_frame_source_says_its_aspect_only_when_given():
    from fasterpose_rt.inputs import pixel_aspect

    frame = np.zeros((4, 4, 3), np.uint8)
    assert pixel_aspect(OneFrame(frame, Fraction(64, 45))) == pytest.approx(64 / 45)
    assert pixel_aspect(OneFrame(frame, None)) == 1.0
