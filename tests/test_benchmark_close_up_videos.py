"""benchmarks.close_up_videos: close-ups keep their labels in the crop's pixels, and a real run on LSPET training
photos counts the tracker's restarts and scores every row (skipped when ../shared is absent)."""
import numpy as np

from benchmarks.close_up_videos import main
from benchmarks.tracking import close_up_crops
from conftest import NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.skeletons import LSP14

NAMES = LSP14["keypoints"]


def test_close_ups_cut_the_upper_body_and_move_the_labels_with_it():
    idx = {n: i for i, n in enumerate(NAMES)}
    gt = np.zeros((1, 14, 2))
    gt[0, [idx["head_top"], idx["neck"]]] = [[100, 20], [100, 50]]
    gt[0, [idx["left_shoulder"], idx["right_shoulder"]]] = [[120, 55], [80, 55]]
    gt[0, [idx["left_elbow"], idx["right_elbow"], idx["left_wrist"], idx["right_wrist"]]] = [
        [130, 90], [70, 90], [135, 120], [65, 120]]
    gt[0, [idx["left_hip"], idx["right_hip"]]] = [[115, 150], [85, 150]]
    gt[0, [idx["left_knee"], idx["right_knee"], idx["left_ankle"], idx["right_ankle"]]] = [
        [115, 200], [85, 200], [115, 250], [85, 250]]
    photo = np.zeros((300, 200, 3), np.uint8)
    crops, labels, visible, torso, kept = close_up_crops([photo], NAMES, gt, np.ones((1, 14), bool))
    assert kept.tolist() == [0] and len(crops) == 1
    # cut 60 % of the way from neck (y 50) to hips (y 150): y 110; margins 15 % of the upper body's extent
    assert crops[0].shape[0] == 110 - int(20 - 0.15 * 90) and crops[0].shape[1] == int(135 + 10.5) - int(65 - 10.5)
    np.testing.assert_allclose(labels[0] + [int(65 - 10.5), int(20 - 0.15 * 90)], gt[0])
    assert visible[0, idx["head_top"]] and not visible[0, idx["left_hip"]] and not visible[0, idx["right_ankle"]]
    assert torso[0] > 0


@NEEDS_LSPET
def test_real_run_counts_restarts_and_scores_every_row(lspet_coco, tmp_path):
    # the fast model: this checks the benchmark's bookkeeping, not a model (the default took 29 s here)
    data = run_lspet_benchmark(main, "close_up_videos", lspet_coco(1, 40), tmp_path, "--clips", 3, "--model",
                               DEFAULT_MODELS["fast"])
    rows = data["videos"]
    assert data["clips"] == 3 and len(rows) == 5  # notes and four rows
    tracked = rows["tracking, acquired by search (the CLI's default)"]
    assert 0.0 <= tracked["pck@0.2"] <= 1.0 and tracked["model_calls_per_frame"] >= 1.0
    assert "started again" in rows["notes"]["tracking, acquired by search (the CLI's default):"]
    assert rows["tight labelled box, every frame (upper bound)"]["model_calls_per_frame"] == 1.0
