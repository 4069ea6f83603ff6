"""benchmarks/fast_search.py: the three ways of finding a person without boxes, each scored as the runtime's own
find_poses finds it, timed in turns, with the paired interval against the default's search.

Real parts: both bundled models, 8 real LSPET training photos (skipped when ../shared is absent).
"""
import cv2
import numpy as np
import pytest

from benchmarks.fast_search import WAYS, main
from benchmarks.orientation import load_persons
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses
from fasterpose_rt.metrics import pck

pytestmark = [NEEDS_LSPET, pytest.mark.skipif(not all(p.is_file() for p in DEFAULT_MODELS.values()),
                                              reason="a bundled model is absent")]


def test_each_way_scores_as_find_poses_finds_its_persons(lspet_coco, tmp_path):
    ann = lspet_coco(1, 8)
    result = run_lspet_benchmark(main, "fast_search", ann, tmp_path, "--threads", 1)
    ways = result["ways"]
    assert list(ways) == list(WAYS) and result["persons"] == 8
    names, gt, vis, _, files = load_persons(ann)
    photos = [cv2.imread(str(LSPET / "images" / f)) for f in files]
    default, fast = PosePredictor(threads=1), PosePredictor(variant="fast", threads=1)
    for way, pred in ((WAYS[0], default), (WAYS[1], PosePredictor(threads=1, search_with=fast)), (WAYS[2], fast)):
        found = [find_poses(pred, p) for p in photos]
        xy = np.stack([r.keypoints[0] if len(r) else np.full((14, 2), np.inf, np.float32) for r in found])
        assert ways[way]["pck@0.2"] == pytest.approx(pck(xy, gt, vis, names)[0], abs=1e-9), way
        assert ways[way]["ms_per_photo"] > 0 and 0.05 < ways[way]["time_ratio"] < 20
    for way in WAYS[1:]:
        low, high = ways[way]["difference_ci95"]
        assert low <= ways[way]["pck@0.2"] - ways[WAYS[0]]["pck@0.2"] <= high
    assert ways[WAYS[0]]["time_ratio"] == 1.0 and (tmp_path / "fast_search.md").is_file()
