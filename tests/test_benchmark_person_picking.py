"""benchmarks.person_picking: every rule picks from the same candidates; the runtime's rule is marked, and its row
is what find_poses itself reports (skipped when ../shared is absent)."""
import cv2

from benchmarks.orientation import load_persons
from benchmarks.person_picking import main
from benchmarks.tracking import match_persons, pair_photos
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import PosePredictor, find_poses


@NEEDS_LSPET
def test_real_run_scores_every_rule_and_its_runtime_row_is_find_poses(lspet_coco, tmp_path):
    ann = lspet_coco(1, 8)
    data = run_lspet_benchmark(main, "person_picking", ann, tmp_path, "--threads", "1")
    rules = data["rules"]
    assert data["photos"] == 4 and data["max_persons"] == 2 and len(rules) == 5 * 6
    runtime = [r for r in rules if r["runtime"]]
    assert len(runtime) == 1 and (runtime[0]["min_score"], runtime[0]["min_presence"]) == (0.2, 0.9)
    for r in rules:
        assert 0 <= r["labelled_found_per_photo"] <= 2 and 0 <= r["pck@0.2"] <= 1
    # lower bars report at least as many persons
    loose = next(r for r in rules if r["min_score"] == 0 and r["min_presence"] is None)
    strict = next(r for r in rules if r["min_score"] == 0.3 and r["min_presence"] == 0.95)
    assert loose["labelled_found_per_photo"] + loose["extra_per_photo"] >= \
        strict["labelled_found_per_photo"] + strict["extra_per_photo"]
    # the runtime's row is what the CLI's search reports
    names, gt, vis, _, files = load_persons(ann)
    photos = pair_photos([cv2.imread(str(LSPET / "images" / f)) for f in files], gt, vis)
    pred = PosePredictor(threads=1)
    found = extra = 0
    for photo, labels, visible in photos:
        owner = match_persons(find_poses(pred, photo, max_persons=2).keypoints, labels, visible, list(names))
        found, extra = found + int((owner >= 0).sum()), extra + int((owner < 0).sum())
    assert (found / 4, extra / 4) == (runtime[0]["labelled_found_per_photo"], runtime[0]["extra_per_photo"])
    assert "(the runtime's)" in (tmp_path / "person_picking.md").read_text()
