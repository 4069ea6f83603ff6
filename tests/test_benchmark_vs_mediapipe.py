"""benchmarks.vs_mediapipe: the joints both engines name, MediaPipe's coordinates in OpenCV's pixel convention,
the cut around a box; and a smoke run where mediapipe is installed (it lives in a venv of its own)."""
import importlib.util
import json

import cv2
import numpy as np
import pytest

from benchmarks.vs_mediapipe import (MEDIAPIPE_INDEX, MEDIAPIPE_VIDEO, cut_around, landmarks_to_pixels,
                                     report_clips, run_clips, shared_joints)
from fasterpose_rt.skeletons import LSP14


def test_the_twelve_shared_joints_map_to_mediapipe_landmarks():
    names = LSP14["keypoints"]
    ours, theirs = shared_joints(names)
    assert [names[i] for i in ours] == [n for n in names if n not in ("neck", "head_top")]
    assert len(set(theirs.tolist())) == 12 and set(MEDIAPIPE_INDEX) <= set(names)
    # BlazePose's numbering: left landmarks odd, right even, shoulders to wrists 11-16, hips to ankles 23-28
    for n, k in MEDIAPIPE_INDEX.items():
        assert k % 2 == (1 if n.startswith("left") else 0) and (11 <= k <= 16 or 23 <= k <= 28)


def test_normalised_landmarks_become_pixel_centres():
    # a 4 px wide image: its left edge is x = -0.5 and its right edge x = 3.5 in OpenCV's convention
    xy = landmarks_to_pixels([[0.0, 0.0], [1.0, 1.0], [0.125, 0.5]], width=4, height=2)
    np.testing.assert_allclose(xy, [[-0.5, -0.5], [3.5, 1.5], [0.0, 0.5]])


def test_cut_around_a_box_is_clipped_to_the_photo():
    photo = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    cut, offset = cut_around(photo, np.array([20.0, 30.0, 20.0, 40.0]), 2.0)  # centre (30, 50), 40 x 80
    assert offset.tolist() == [10.0, 10.0] and cut.shape == (80, 40, 3)
    np.testing.assert_array_equal(cut, photo[10:90, 10:50])
    cut, offset = cut_around(photo, np.array([0.0, 0.0, 40.0, 60.0]), 3.0)  # beyond the top-left corner
    assert offset.tolist() == [0.0, 0.0] and cut.shape == (100, 80, 3)



def test_video_rows_take_turns_frame_by_frame_and_score_nobody_as_misses():
    """run_clips on two short clips over the demo photo, with a stand-in for MediaPipe's video mode that answers
    with the labels on even frames and finds nobody on odd ones: one engine per clip, closed; FasterPose's rows
    as the CLI runs a video and --no-track; report_clips' PCK and found shares follow."""
    from benchmarks.tracking import make_clips
    from demo_labels import demo_prediction
    from fasterpose_rt import PosePredictor

    image, _, result = demo_prediction()
    labels = result.keypoints[0]
    clips = make_clips([image, image[:, ::-1].copy()], np.stack([labels, labels]), frames=4)
    names = LSP14["keypoints"]
    ours, theirs = shared_joints(names)
    engines = []

    class StandIn:
        def __init__(self):
            self.seen, self.closed = 0, False
            engines.append(self)

        def __call__(self, frame):
            i, self.seen = self.seen, self.seen + 1
            if i % 2:
                return None
            clip = len(engines) - 1
            out = np.zeros((33, 2))
            out[theirs] = clips[clip][1][i][ours]
            return out

        def close(self):
            self.closed = True

    rows = run_clips(clips, names, PosePredictor(threads=1), StandIn)
    assert len(engines) == 2 and all(e.closed and e.seen == 4 for e in engines)
    assert all(r["xy"].shape == (8, 12, 2) and (r["wall"] > 0).all() for r in rows.values())
    mp = rows[MEDIAPIPE_VIDEO]
    assert mp["found"].tolist() == [True, False] * 4 and np.isnan(mp["xy"][1::2]).all()
    labels_all = np.concatenate([c[1] for c in clips])
    table, data = report_clips(rows, labels_all, np.ones((8, 14), bool), names, 2)
    assert data[MEDIAPIPE_VIDEO]["pck@0.2"] == 0.5 and data[MEDIAPIPE_VIDEO]["found"] == 0.5  # odd frames missed
    assert data[MEDIAPIPE_VIDEO]["time_vs_mediapipe_video"] == 1.0 and "| MediaPipe Pose, video mode" in table
    tracked = data["FasterPose, tracked and smoothed (the CLI's default for videos)"]
    assert tracked["found"] == 1.0 and 0.0 <= tracked["pck@0.2"] <= 1.0

@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                    reason="mediapipe is not installed (it lives in a venv of its own: benchmarks/vs_mediapipe.py)")
def test_smoke_run_on_the_demo_photo(tmp_path):
    """The demo photo labelled with the default's own flip-tested joints: both engines find the astronaut."""
    from benchmarks.vs_mediapipe import main
    from demo_labels import demo_prediction

    image, box, result = demo_prediction()
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), image)
    kp = np.concatenate([result.keypoints[0], np.full((14, 1), 2.0)], axis=1).reshape(-1)
    ann = tmp_path / "demo.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": box, "num_keypoints": 14, "keypoints": kp.tolist()}],
        "categories": [{"id": 1, "name": "person", "keypoints": LSP14["keypoints"]}]}))
    main(["--ann", str(ann), "--images", str(tmp_path / "images"), "--results-dir", str(tmp_path)])
    data = json.loads((tmp_path / "vs_mediapipe.json").read_text())
    assert data["persons"] == 1 and len(data["rows"]) == 5 and data["videos"]["clips"] == 1
    assert data["rows"]["MediaPipe Pose, whole photo"]["found"] == 1.0
    # its own flip-tested joints as labels: without the flip test only guessed joints (legs below the frame) move
    assert data["rows"]["FasterPose, tight box"]["pck@0.2"] >= 0.75
