"""benchmarks/person_presence.py: its rows are what find_poses reports at each --min-presence (a photo where nobody
is reported counts as missed), and photos of nobody are read from a folder or a zip file.

Real parts: the bundled default and the first 8 of 40 real LSPET training photos (skipped when ../shared is absent);
the photos of nobody are made here (blank, noise), so this checks the bookkeeping, not the rule's quality (the README's
run does).
"""
import importlib.util
import zipfile

import cv2
import numpy as np
import pytest

from benchmarks.orientation import load_persons
from benchmarks.person_presence import main, read_negatives
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.metrics import pck
from fasterpose_rt.photo_sets import PhotoSetError, read_photo_set

MODEL = DEFAULT_MODELS["default"]
PERSONS = 8  # --limit: they hold the one person of the 40 the rule drops (whole photo, 0.3 and 0.5), 3 close-ups


def _nobody(folder):
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((200, 300, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "noise.jpg"), np.random.default_rng(3).integers(0, 256, (200, 300, 3), np.uint8))
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((8, 8, 3), np.uint8))  # too small: skipped
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_photos_of_nobody_come_from_folders_or_zip_files_each_picture_once(tmp_path):
    folder = _nobody(tmp_path / "nobody")
    names, photos = read_negatives([folder], set())
    assert names == ["nobody:blank.png", "nobody:noise.jpg"] and all(p.shape == (200, 300, 3) for p in photos)
    with zipfile.ZipFile(tmp_path / "photos.whl", "w") as archive:
        for f in folder.iterdir():
            archive.write(f, f"pkg/data/{f.name}")
    zipped, zipped_photos = read_negatives([tmp_path / "photos.whl"], {"noise.jpg"})
    assert zipped == ["photos.whl:pkg/data/blank.png"] and np.array_equal(zipped_photos[0], photos[0])
    # a wallpaper shipped in two sizes, in a subfolder: one picture, its larger copy; the zip's blank is the folder's
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    (folder / "sizes").mkdir()
    cv2.imwrite(str(folder / "sizes" / "small.png"), gradient)
    cv2.imwrite(str(folder / "sizes" / "large.png"), cv2.resize(gradient, (600, 400)))
    both, both_photos = read_negatives([folder, tmp_path / "photos.whl"], set())
    assert both == ["nobody:blank.png", "nobody:noise.jpg", "nobody:sizes/large.png"]
    assert both_photos[2].shape == (400, 600, 3)
    # what was left out is counted: the unreadable "photo", the tiny ones, the repeats (a size, the zip's copies)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    _, _, counts = read_photo_set([folder, tmp_path / "photos.whl"])
    assert counts == {"files": 9, "unreadable": 1, "too_small": 2, "repeats": 3}
    with pytest.raises(PhotoSetError, match="neither a folder nor a zip file"):
        read_photo_set([folder / "notes.txt"])


@NEEDS_LSPET
@pytest.mark.skipif(not MODEL.is_file(), reason="no bundled default model")
def test_each_row_is_what_find_poses_reports_at_that_threshold(lspet40, tmp_path):
    negatives = _nobody(tmp_path / "nobody")
    result = run_lspet_benchmark(main, "person_presence", lspet40, tmp_path / "out", "--models", MODEL,
                                 "--negatives", negatives, "--rounds", 3, "--limit", PERSONS)
    (ways,) = result["models"].values()
    names, gt, vis, _, files = load_persons(lspet40)
    gt, vis, files = gt[:PERSONS], vis[:PERSONS], files[:PERSONS]
    photos = [cv2.imread(str(LSPET / "images" / f)) for f in files]
    pred = PosePredictor(MODEL, threads=1)
    for search, way in ((True, "search"), (False, "whole photo (--no-search)")):
        used = ways[way]["signal_used"]  # what keep_present reads: the head when the model has one
        assert used == ("head" if pred.has_presence else "joints") and "joints" in ways[way]["signals"]
        rows = {r["min_presence"]: r for r in ways[way]["signals"][used]["thresholds"]}
        every = rows[0.0]["photos of one person"]
        assert every["reported"] == every["of"] == PERSONS and every["change"] == 0
        assert rows[0.0]["negatives_with_a_person"] == ["nobody:blank.png", "nobody:noise.jpg"]  # a person each
        for t in (0.3, 0.5):
            found = find_poses_batch(pred, photos, search=search, min_presence=t)  # the runtime's own rule
            xy = np.stack([r.keypoints[0] if len(r) else np.full((len(names), 2), np.nan) for r in found])
            row = rows[t]["photos of one person"]
            assert row["reported"] == sum(len(r) for r in found)
            assert row["pck"] == pytest.approx(pck(xy, gt, vis, names)[0], abs=1e-9)
        assert rows[0.5]["negatives_with_a_person"] == []  # neither a blank photo nor noise holds anybody
        assert rows[0.0]["close-ups (waist up)"]["of"] == result["close_ups"] > 0
    (cost,) = result["head_cost"].values()  # the bundled default has a head: timed with and without it
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("torch") is None:
        assert cost is None  # a runtime-only install cannot take the head out (export/ needs onnx and torch)
    else:
        assert cost["rounds"] == 3 and cost["with_ms"] > 0 and cost["without_ms"] > 0
