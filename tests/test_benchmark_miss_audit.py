"""benchmarks/miss_audit.py: the sampled misses are the model's PCK@0.2 misses, drawn reproducibly; verdicts are
counted, and a sheet with a missing verdict is refused by row.

Real parts: the bundled int8 model and 40 real LSPET training photos (skipped when ../shared is absent).
"""
import csv
import json

import cv2
import pytest

from benchmarks.miss_audit import FIELDS, PANEL_H, PANEL_W, main, wilson_interval
from conftest import LSPET, NEEDS_LSPET, runtime_pck
from fasterpose_rt import DEFAULT_MODELS

INT8 = DEFAULT_MODELS["default"]


@NEEDS_LSPET
@pytest.mark.skipif(not INT8.is_file(), reason="bundled int8 model absent")
def test_the_misses_are_the_models_pck_misses_and_the_sample_is_reproducible(lspet40, tmp_path):
    args = ["--ann", str(lspet40), "--images", str(LSPET / "images"), "--sample", "5"]
    misses, counted, _ = main(args + ["--panels", str(tmp_path / "a")])
    assert misses / counted == pytest.approx(1 - runtime_pck(INT8, lspet40), abs=1e-12)
    main(args + ["--panels", str(tmp_path / "b")])
    first, second = ((tmp_path / d / "misses.csv").read_text() for d in "ab")
    assert first == second
    rows = list(csv.DictReader(open(tmp_path / "a" / "misses.csv")))
    assert len(rows) == 5 and all(float(r["distance_torso"]) > 0.2 and r["verdict"] == "" for r in rows)
    assert cv2.imread(str(tmp_path / "a" / "panels_00.png")).shape == (2 * PANEL_H, 4 * PANEL_W, 3)
    assert cv2.imread(str(tmp_path / "a" / "panels_01.png")).shape == (2 * PANEL_H, 4 * PANEL_W, 3)


def sheet(path, verdicts):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for i, v in enumerate(verdicts):
            w.writerow({"n": i, "file": f"im{i:05d}.jpg", "joint": "left_knee", "distance_torso": 0.3 + i,
                        "mirror_hit": i % 2, "score": 0.5, "verdict": v, "why": ""})
    return path


def test_verdicts_are_counted_and_a_missing_one_is_refused_by_row(tmp_path):
    with pytest.raises(SystemExit, match="rows 2 have no verdict"):
        main(["--summarise", str(sheet(tmp_path / "partial.csv", ["label", "model", "", "unclear"]))])
    data = main(["--summarise", str(sheet(tmp_path / "full.csv", ["label", "model", "model", "unclear"])),
                 "--results-dir", str(tmp_path / "out")])
    assert [data[v]["misses"] for v in ("label", "model", "unclear")] == [1, 2, 1]
    assert data["model"]["mirror_hits"] == 1 and data["model"]["within_0.35_torso"] == 0
    assert json.loads((tmp_path / "out" / "miss_audit.json").read_text())["model"]["share"] == 0.5
    with pytest.raises(SystemExit, match="--panels DIR"):
        main([])


def test_wilson_interval():
    lo, hi = wilson_interval(0, 48)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.05 < hi < 0.1
    lo, hi = wilson_interval(9, 48)
    assert lo < 9 / 48 < hi and hi - lo < 0.25
