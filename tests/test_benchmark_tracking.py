"""benchmarks/tracking.py: its rows are the runtime's own predictions, its model-call counts are right, and the
synthetic clips move the labels exactly as they move the pixels.

Real parts: the bundled int8 model and real LSPET training photos (skipped when ../shared is absent).
"""

import cv2
import numpy as np
import pytest

from benchmarks.orientation import load_persons
from benchmarks.tracking import FIXED_PASSES, FRAMES, camera_path, main, match_persons
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.geometry import apply_affine
from fasterpose_rt.metrics import pck
from fasterpose_rt.search import SEARCH_CANDIDATES, search_windows
from fasterpose_rt.tracking import REFINE_PASSES, find_poses

MODEL = DEFAULT_MODELS["fast"]  # the benchmark runs the same code whatever the model: the faster one here
PERSONS, CLIP_FRAMES = 4, 4  # 2 photo pairs and 2 two-person clips; short clips: each still acquires, then tracks


def test_camera_path_moves_labels_with_the_pixels():
    rng = np.random.default_rng(3)
    h, w = 90, 160
    photo = np.zeros((h, w), np.float32)
    point = np.array([50.0, 40.0])
    yy, xx = np.mgrid[0:h, 0:w]
    photo[:] = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 3.0 ** 2))
    path = camera_path(w, h, 7, rng)
    assert path.shape == (7, 2, 3) and not np.allclose(path[0], path[3])  # the camera moves
    for m in path:
        frame = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR)
        centroid = np.array([(frame * xx).sum(), (frame * yy).sum()]) / frame.sum()
        np.testing.assert_allclose(apply_affine(point[None, None], m[None])[0, 0], centroid, atol=0.05)


@NEEDS_LSPET
@pytest.mark.skipif(not MODEL.is_file(), reason="bundled fast model absent")
def test_rows_are_the_runtimes_predictions_and_calls_are_counted(lspet_coco, tmp_path):
    ann = lspet_coco(1, 8)
    result = run_lspet_benchmark(main, "tracking", ann, tmp_path, "--limit", PERSONS, "--clips", 2,
                                 "--frames", CLIP_FRAMES, "--threads", 1, "--model", MODEL)
    assert "tracking" in (tmp_path / "tracking.md").read_text()
    names, gt, vis, boxes, files = load_persons(ann)
    gt, vis, boxes, files = gt[:PERSONS], vis[:PERSONS], boxes[:PERSONS], files[:PERSONS]
    pred = PosePredictor(MODEL, threads=1)
    images = [cv2.imread(str(LSPET / "images" / f)) for f in files]
    photos, videos = result["photos"], result["videos"]
    whole = np.stack([pred.predict(img).keypoints[0] for img in images])
    tight = np.stack([pred.predict(img, [b]).keypoints[0] for img, b in zip(images, boxes)])
    assert photos["whole photo"]["pck@0.2"] == pytest.approx(pck(whole, gt, vis, names)[0], abs=1e-9)
    tight_row = photos["tight labelled box (upper bound)"]
    assert tight_row["pck@0.2"] == pytest.approx(pck(tight, gt, vis, names)[0], abs=1e-9)
    for p in range(1, FIXED_PASSES + 1):  # every pass run: exactly 1 + p calls per photo
        row = next(v for k, v in photos.items() if k.startswith(f"whole photo + {p} refine pass"))
        assert row["model_calls_per_photo"] == pytest.approx(1 + p)
    no_search = next(v for k, v in photos.items() if k.startswith("whole photo + refine (up to"))
    assert 1 < no_search["model_calls_per_photo"] <= 1 + REFINE_PASSES
    assert no_search["crops_per_photo"] == no_search["model_calls_per_photo"]  # one box a call
    default = next(v for k, v in photos.items() if "the CLI's default" in k)  # the search: find_poses without boxes
    searched = np.stack([find_poses(pred, img, min_presence=0).keypoints[0] for img in images])
    assert default["pck@0.2"] == pytest.approx(pck(searched, gt, vis, names)[0], abs=1e-9)
    assert 1 <= default["model_calls_per_photo"] <= 1 + REFINE_PASSES  # the windows share one call
    windows = np.mean([len(search_windows(img.shape)) for img in images])
    assert windows < default["crops_per_photo"] <= windows + SEARCH_CANDIDATES * REFINE_PASSES
    assert tight_row["crops_per_photo"] == 1.0
    assert result["clips"] == 2 and result["frames_per_clip"] == CLIP_FRAMES
    tracked = next(v for k, v in videos.items() if k.startswith("tracking, acquired on the whole frame"))
    assert 1 <= tracked["model_calls_per_frame"] < 1 + REFINE_PASSES
    tracked = next(v for k, v in videos.items() if k.startswith("tracking, acquired by search"))
    assert tracked["crops_per_frame"] > tracked["model_calls_per_frame"] >= 1  # a search's windows: one call
    assert any("track ids per clip" in note for note in videos["notes"].values())
    identities = result["identities"]
    assert len(identities) == 12 and any("(the default)" in k for k in identities)
    for row in identities.values():  # two persons side by side: at least one id per clip, no more found than 2
        assert row["track_ids_per_clip"] >= 1 and row["id_swaps"] >= 0
        assert 0 <= row["labelled_persons_found_per_frame"] <= 2
    several = result["two_person_photos"]  # the 4 photos side by side in 2 pairs
    assert len(several) == 7
    best, two, best_there, five, five_there = (several[k] for k in (
        "search, the best person, every guess (--min-presence 0)", "search, up to 2 persons (--max-persons 2), every guess",
        "search, the best person if there (the default)", "search, up to 5 persons (--max-persons 5), every guess",
        "search, up to 5 persons, those there"))
    assert best["labelled_found_per_photo"] + best["extra_per_photo"] == pytest.approx(1.0)  # one person a photo
    assert two["labelled_found_per_photo"] >= best["labelled_found_per_photo"]
    for every, there in ((best, best_there), (five, five_there)):  # the presence rule only ever drops persons
        assert there["labelled_found_per_photo"] <= every["labelled_found_per_photo"]
        assert there["extra_per_photo"] <= every["extra_per_photo"]
    assert all(0 <= v["labelled_found_per_photo"] <= 2 for v in several.values())
    coco_mini = LSPET.parent / "coco-mini" / "person_keypoints.json"  # the benchmark's multi-person photos
    if coco_mini.is_file():
        assert result["coco_photos"] is not None and len(result["coco_photos"]) == 7
    else:  # an incomplete ../shared: that part left out, the rest measured
        assert result["coco_photos"] is None
    for row in list(photos.values()) + list(videos.values()):
        if isinstance(row, dict) and "pck@0.2" in row:
            assert 0.0 <= row["pck@0.2"] <= 1.0 and row["diff_interval"][0] <= row["diff_interval"][1]


def test_frames_option_defaults_to_frames_and_refuses_zero(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and f"(default {FRAMES};" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as e:  # argparse refuses it before any work
        main(["--frames", "0"])
    assert e.value.code == 2 and "--frames: must be >= 1, got 0" in capsys.readouterr().err


def test_match_persons_pairs_each_labelled_person_once_with_the_nearest():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    a = np.array([[10, 10], [30, 10], [10, 50], [30, 50]], np.float64)  # torso 40 px
    labels, visible = np.stack([a, a + [200, 0]]), np.ones((2, 4), bool)
    reported = np.stack([a + 3, a + 1, a + [500, 0], a + [200, 2]])
    assert match_persons(reported, labels, visible, names).tolist() == [-1, 0, -1, 1]  # the nearer one takes a
    assert match_persons(reported[:0], labels, visible, names).tolist() == []
