"""benchmarks/smoothing.py: jitter means what its docstring says, and its rows are the runtime's tracker and
smoother on real photos.

Real parts: the bundled int8 model and real LSPET training photos (skipped when ../shared is absent).
"""
import cv2
import numpy as np
import pytest

from benchmarks.orientation import load_persons
from benchmarks.smoothing import ClipScores, main, smoothed, still_path, track_clips
from benchmarks.tracking import best_person, make_clips
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, KeypointSmoother, PosePredictor
from fasterpose_rt.metrics import pck

INT8 = DEFAULT_MODELS["default"]
NAMES = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]


def test_jitter_counts_how_the_error_changes_between_frames():
    gt = np.zeros((1, 4, 4, 2))
    gt[..., 0] = np.arange(4)[:, None] * 10.0  # the person moves 10 px a frame
    gt[:, :, :, 1] += [0, 0, 50, 50]  # shoulders at y 0, hips at y 50: torso (left shoulder to right hip) ~50
    gt[:, :, 3, 0] += 10  # right hip 10 px to the right
    vis = np.ones((1, 4), bool)
    scores = ClipScores(NAMES, gt, vis)
    torso = np.hypot(10, 50)
    shifted = gt + [3.0, 0.0]  # a steady offset: wrong by 3 px, but no jitter
    wobble = gt + np.array([3.0, -3.0, 3.0, -3.0])[None, :, None, None] * [1, 0]  # 6 px back and forth each frame
    assert scores.jitter(gt, gt) == (0.0, 0.0) and scores.jitter(shifted, gt)[0] == pytest.approx(0.0)
    assert scores.jitter(wobble, gt)[0] == pytest.approx(100 * 6 / torso)
    far = gt.copy()
    far[:, 1:3, 0, 0] += 40  # joint 0 far off the label in frames 1 and 2: not a found joint there
    everywhere, found = scores.jitter(far, far)
    assert everywhere == pytest.approx(100 * (2 * 40 / torso) / 12)  # two jumps of 40 px over 12 joint pairs
    assert found == pytest.approx(0.0)  # the joints placed right in both frames did not move off their labels


def test_still_clips_move_labels_with_the_pixels_and_add_noise():
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[20:23, 30:33] = 255  # a 3 px white square centred on (31, 21)
    (frames, labels), = make_clips([photo], np.array([[[31.0, 21.0]]]), frames=6, path=still_path, noise=2.0)
    for frame, label in zip(frames, labels):
        weight = np.clip(frame[..., 0].astype(float) - 20, 0, None)  # the square, not the noise
        yy, xx = np.mgrid[0:60, 0:80]
        centre = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
        np.testing.assert_allclose(centre, label[0], atol=0.1)
    assert 0 < np.abs(frames[0].astype(int) - frames[1].astype(int)).mean()  # fresh noise every frame


@NEEDS_LSPET
@pytest.mark.skipif(not INT8.is_file(), reason="bundled int8 model absent")
def test_rows_are_the_runtimes_tracker_and_smoother(lspet_coco, tmp_path):
    ann = lspet_coco(1, 3)
    result = run_lspet_benchmark(main, "smoothing", ann, tmp_path, "--clips", 3, "--threads", 1)
    names, gt, vis, _, files = load_persons(ann)
    pred = PosePredictor(INT8, threads=1)
    clips = make_clips([cv2.imread(str(LSPET / "images" / f)) for f in files], gt)
    tracked = track_clips(pred, clips, 1)
    labels = np.stack([g for _, g in clips])
    raw = np.stack([[best_person(r) for r in clip] for clip in tracked])
    flat = (raw.reshape(-1, len(names), 2), labels.reshape(-1, len(names), 2), np.repeat(vis, labels.shape[1], 0))
    rows = result["handheld_step_1"]
    assert rows["raw (the model's keypoints)"]["pck@0.2"] == pytest.approx(pck(*flat, names)[0], abs=1e-9)
    default = next(v for k, v in rows.items() if "the CLI's default" in k)
    xy, _ = smoothed(tracked, KeypointSmoother(30.0))
    assert default["pck@0.2"] == pytest.approx(ClipScores(names, labels, vis).pck(xy), abs=1e-9)
    assert set(result) >= {"still", "handheld_step_2", "handheld_step_4"}
    for row in rows.values():
        assert 0.0 <= row["pck@0.2"] <= 1.0 and row["jitter_pct_torso"] >= 0.0
