"""benchmarks/frame_reading.py: its video's labels follow the pixels, its simulated camera keeps time like a
stream, and its rows are VideoPoses reading ahead and live.

Real parts: the bundled fast int8 model and real LSPET validation-format photos (skipped when ../shared is absent).
"""
import time

import numpy as np
import pytest

from benchmarks.frame_reading import SimulatedCamera, main, place, write_clips_video
from conftest import NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS

MODEL = DEFAULT_MODELS["fast"]  # the benchmark reads and follows frames the same whatever the model: the faster one
FRAMES = 3  # per clip: each clip still acquires its person, then follows it


def test_placed_labels_land_on_their_pixels():
    photo = np.zeros((60, 90, 3), np.uint8)
    photo[20:23, 30:33] = 255  # a 3 px white square centred on (31, 21)
    picture, m = place(photo, (200, 100))
    want = m[:, :2] @ [31.0, 21.0] + m[:, 2]  # (77, 35.33): far from the grey border
    yy, xx = np.mgrid[20:50, 60:95]
    weight = picture[20:50, 60:95, 0].astype(float)
    centre = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
    np.testing.assert_allclose(centre, want, atol=0.1)  # ignoring pixel centres would be off by 0.5 s - 0.5 = 0.33
    assert picture.shape == (100, 200, 3) and (picture[:, :5] == 128).all()  # 60x90 scaled 5/3: 150 wide, centred


def test_the_simulated_camera_waits_for_frames_and_queues_them_for_a_late_reader(tmp_path, monkeypatch):
    frames = [np.full((40, 60, 3), 10 * i, np.uint8) for i in range(6)]
    labels = write_clips_video([(frames, np.zeros((6, 1, 2)))], tmp_path / "v.mp4", size=(60, 40), fps=20.0)
    assert labels.shape == (6, 1, 2)
    camera = SimulatedCamera(tmp_path / "v.mp4", fps=20.0)
    assert camera.read()[0] and camera.read()[0]
    assert camera.born[1] - camera.born[0] == pytest.approx(0.05)
    assert time.perf_counter() >= camera.born[1]  # the second read waited for its frame
    time.sleep(0.25)  # late: frames 2-5 exist by now (frame 5 at 0.25 s, the second read returned after 0.05 s)
    t0 = time.perf_counter()
    waits = []  # counted, not timed: a busy CI machine stalls at will
    monkeypatch.setattr(time, "sleep", waits.append)
    for _ in range(4):
        ok, frame = camera.read()
        assert ok and frame.shape == (40, 60, 3)
    assert waits == [] and all(born <= t0 for born in camera.born[2:6])  # the missed frames at once, oldest first
    assert not camera.read()[0] and len(camera.born) == 6


def test_zero_frames_are_refused(capsys):
    with pytest.raises(SystemExit) as e:  # argparse refuses it before any work
        main(["--frames", "0"])
    assert e.value.code == 2 and "--frames: must be >= 1, got 0" in capsys.readouterr().err


@NEEDS_LSPET
@pytest.mark.skipif(not MODEL.is_file(), reason="bundled fast model absent")
def test_rows_read_ahead_and_live(lspet_coco, tmp_path):
    ann = lspet_coco(8001, 8002)
    result = run_lspet_benchmark(main, "frame_reading", ann, tmp_path, "--clips", 2, "--frames", FRAMES, "--rounds", 1,
                                 "--threads", 1, "--size", "320x180", "--model", MODEL)
    assert result["frames"] == 2 * FRAMES and result["size"] == [320, 180]
    assert [(r["threads"], r["track"]) for r in result["file"]] == [(1, True), (1, False)]
    for r in result["file"]:
        assert r["inline_fps"] > 0 and r["ahead_fps"] > 0 and len(r["ahead_seconds"]) == 1
    by = {(r["track"], r["live"]): r for r in result["live"]}
    assert set(by) == {(True, False), (True, True), (False, False), (False, True)}
    for (_, live), r in by.items():
        assert r["processed"] + r["dropped"] == 2 * FRAMES and (live or r["dropped"] == 0)
        assert 0.0 <= r["pck"] <= 1.0 and r["latency_ms_mean"] > 0
    assert by[(True, False)]["pck"] > 0.3  # real poses on real photos, read in order
    assert (tmp_path / "frame_reading.md").read_text().count("| 1 |") == 6
