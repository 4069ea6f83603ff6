"""benchmarks/score_meaning.py: its PCK and scores are the runtime's (tight boxes, flip test, the CLI's search),
every way is read through the table the runtime would use (fasterpose_rt.confidence.cross_fitted: tested in
test_score_calibration.py), and the report and its picture are written.

Real parts: the bundled int8 models and the first 12 of 40 real LSPET training photos (skipped when ../shared is
absent).
"""
import importlib.util

import cv2
import numpy as np
import pytest

from benchmarks.orientation import load_persons
from benchmarks.score_meaning import WAYS, main
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.metrics import _hits, pck

PERSONS = 12  # --limit: 6 persons a half to fit each cross-fitted table on

pytestmark = [
    NEEDS_LSPET,
    pytest.mark.skipif(not all(p.is_file() for p in DEFAULT_MODELS.values()), reason="bundled models absent"),
]


def test_the_figures_are_the_runtimes_and_the_report_is_written(lspet40, tmp_path):
    result = run_lspet_benchmark(main, "score_meaning", lspet40, tmp_path, "--models", DEFAULT_MODELS["default"],
                                 "--limit", PERSONS)
    assert (tmp_path / "score_meaning.md").is_file()
    if importlib.util.find_spec("matplotlib") is not None:  # a dev dependency: the picture needs it
        assert cv2.imread(str(tmp_path / "score_meaning.png")) is not None
    else:
        assert "matplotlib is not installed" in (tmp_path / "score_meaning.md").read_text()
    (ways,) = result["models"].values()
    assert list(ways) == [w[0] for w in WAYS] and result["persons"] == PERSONS
    by_run = {w["run"]: w for w in ways.values()}
    names, gt, vis, boxes, files = load_persons(lspet40)
    gt, vis, boxes, files = gt[:PERSONS], vis[:PERSONS], boxes[:PERSONS], files[:PERSONS]
    photos = [cv2.imread(str(LSPET / "images" / f)) for f in files]
    for flip, run in ((False, "boxed"), (True, "boxed_flip")):
        pred = PosePredictor(DEFAULT_MODELS["default"], threads=1, flip_test=flip)
        res = [pred.predict(p, [b]) for p, b in zip(photos, boxes)]
        xy = np.concatenate([r.keypoints for r in res])
        assert by_run[run]["pck"] == pytest.approx(pck(xy, gt, vis, names)[0], abs=1e-9)
        scores = np.concatenate([r.scores for r in res])
        _, counted = _hits(xy, gt, vis, names, 0.2)
        assert by_run[run]["mean_score"] == pytest.approx(float(scores[counted].mean()), abs=1e-6)
    searched = find_poses_batch(PosePredictor(DEFAULT_MODELS["default"], threads=1), photos, min_presence=0)
    assert by_run["searched"]["joints"] <= by_run["boxed"]["joints"]
    assert by_run["searched"]["pck"] == pytest.approx(
        pck(np.concatenate([r.keypoints[:1] for r in searched]), gt, vis, names)[0], abs=1e-9)
    for w in ways.values():
        assert 0 <= w["ece_table"] and 0 <= w["ece_raw"] and len(w["per_keypoint"]) == len(names)
    # the searched persons read through the search's table and through the boxes' one: same joints, same PCK
    searched = [w for w in ways.values() if w["run"] == "searched"]
    assert [w["table"] for w in searched] == ["searched", "boxed"] and searched[0]["pck"] == searched[1]["pck"]
