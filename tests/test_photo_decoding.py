"""Photos decoded ahead of the model (prefetch) and big JPEGs decoded smaller (read_photo), mapped back exactly."""
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from test_cli_units import exif_jpeg

from fasterpose_rt import PoseResult
from fasterpose_rt.geometry import rescale_boxes, rescale_points
from fasterpose_rt.inputs import (InputReadError, expand_inputs, jpeg_header, jpeg_size, read_image, read_photo,
                                  reduction_for)
from fasterpose_rt.prefetch import prefetch


def test_prefetch_keeps_order_and_each_items_error():
    def work(i):
        if i == 2:
            raise InputReadError("bad photo")
        return i * 10

    got = []
    for item, future in prefetch(work, range(5), depth=2):
        try:
            got.append((item, future.result()))
        except InputReadError as e:
            got.append((item, str(e)))
    assert got == [(0, 0), (1, 10), (2, "bad photo"), (3, 30), (4, 40)]


def test_prefetch_runs_at_most_depth_ahead_in_another_thread():
    started, threads = [], set()

    def work(i):
        started.append(i)
        threads.add(threading.current_thread().name)
        return i

    items = prefetch(work, range(10), depth=2)
    item, future = next(items)
    assert future.result() == 0
    time.sleep(0.05)
    assert started == [0, 1, 2] and all(n.startswith("fasterpose-prefetch") for n in threads)
    items.close()  # a break: the rest is never read
    time.sleep(0.05)
    assert started == [0, 1, 2]
    started.clear()
    lazy = prefetch(work, range(3), depth=0)
    item, future = next(lazy)
    assert started == [] and future.result() == 0 and started == [0]  # depth 0: read when asked, here
    with pytest.raises(ValueError, match="depth"):
        next(prefetch(work, [], depth=-1))


def jpeg(tmp_path, image, name="p.jpg", params=()):
    path = tmp_path / name
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95, *params])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def test_jpeg_size_reads_the_frame_header(tmp_path):
    img = np.zeros((123, 457, 3), np.uint8)
    assert jpeg_size(jpeg(tmp_path, img).read_bytes()) == (457, 123)
    progressive = jpeg(tmp_path, img, "q.jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)).read_bytes()
    assert jpeg_size(progressive) == (457, 123) and jpeg_size(np.frombuffer(progressive, np.uint8)) == (457, 123)
    assert jpeg_size(exif_jpeg(img, 6)) == (457, 123)  # before orientation: the header's own
    assert jpeg_size(cv2.imencode(".png", img)[1].tobytes()) is None
    assert jpeg_size(progressive[:40]) is None and jpeg_size(b"") is None


def test_reduction_keeps_the_long_side_and_the_limit():
    assert [reduction_for((4000, 3000), side) for side in (4000, 2000, 1999, 1000, 500, 100)] == [1, 2, 2, 4, 8, 8]
    assert reduction_for((4000, 3000), 100, most=3) == 2 and reduction_for((4000, 3000), 100, most=1) == 1
    assert reduction_for((3000, 4000), 1280) == 2  # portrait alike


def test_a_big_jpeg_decodes_smaller_and_its_points_map_back(tmp_path):
    img = np.zeros((800, 1200, 3), np.uint8)
    img[400:408, 600:608] = 255  # an 8 px square centred on (603.5, 403.5)
    path = jpeg(tmp_path, img)
    for side, factor in ((None, 1), (1200, 1), (600, 2), (300, 4), (150, 8), (10, 8)):
        small, f = read_photo(path, side)
        assert f == factor and small.shape == (800 // f, 1200 // f, 3)
        weight = small[..., 0].astype(float)
        yy, xx = np.mgrid[0:small.shape[0], 0:small.shape[1]]
        centre = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
        np.testing.assert_allclose(rescale_points(centre, f), [603.5, 403.5], atol=0.1)
    assert read_photo(path, 10, most=2)[1] == 2
    png = tmp_path / "p.png"
    cv2.imwrite(str(png), img)
    assert read_photo(png, 10)[1] == 1  # only JPEGs decode faster smaller
    rotated = tmp_path / "r.jpg"
    rotated.write_bytes(exif_jpeg(img, 6))
    small, f = read_photo(rotated, 300)
    assert f == 4 and small.shape == (300, 200, 3) and read_image(rotated).shape == (1200, 800, 3)  # EXIF applied


def test_jpeg_header_reads_the_exif_orientation():
    img = np.zeros((123, 457, 3), np.uint8)
    assert [jpeg_header(exif_jpeg(img, k)) for k in (1, 2, 6, 8)] == [(457, 123, k) for k in (1, 2, 6, 8)]
    assert jpeg_header(cv2.imencode(".jpg", img)[1]) == (457, 123, 1)  # no Exif: as stored
    big_endian = exif_jpeg(img, 3)
    at = big_endian.index(b"MM\x00\x2a")
    tiff = big_endian[at:at + 26]  # header, IFD0 of one entry, next-IFD offset
    little = b"II\x2a\x00" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little") + bytes(
        [0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0]) + bytes(4)
    assert jpeg_header(big_endian.replace(tiff, little)) == (457, 123, 3)
    untagged = big_endian.replace(tiff, tiff[:10] + bytes(16))  # IFD0 holds one entry, not the orientation
    assert jpeg_header(untagged) == (457, 123, 1)
    broken = big_endian.replace(tiff, b"MM\x00\x2a" + (99).to_bytes(4, "big") + bytes(18))  # IFD0 outside
    assert jpeg_header(broken) == (457, 123, 0)  # unreadable: taken as mirroring both axes
    end = 4 + int.from_bytes(big_endian[4:6], "big")  # the Exif block moved after the frame header: still read
    plain = big_endian[:2] + big_endian[end:]
    sof = plain.index(b"\xff\xc0") + 2 + int.from_bytes(plain[plain.index(b"\xff\xc0") + 2:][:2], "big")
    late = plain[:sof] + big_endian[2:end] + plain[sof:]
    assert jpeg_header(late) == (457, 123, 3) and cv2.imdecode(np.frombuffer(late, np.uint8), 1).shape == img.shape


def test_a_mirroring_orientation_only_reduces_by_what_divides_the_mirrored_axis():
    size = (1204, 803)  # stored W divisible by 4 (not 8), H by nothing
    assert [reduction_for(size, 150, orientation=k) for k in range(1, 9)] == [8, 4, 1, 1, 8, 1, 1, 4]
    assert reduction_for(size, 150, orientation=0) == 1 and reduction_for(size, 150, orientation=9) == 8
    assert reduction_for((1600, 800), 100, orientation=7) == 8  # multiples of 8: unchanged


def test_a_big_jpeg_in_every_exif_orientation_maps_back_exactly(tmp_path):
    """OpenCV turns the reduced image upright, so a mirrored axis of ceil(W / f) px was off by ceil(W / f) * f - W."""
    img = np.zeros((803, 1204, 3), np.uint8)
    img[400:408, 600:608] = 255

    def centre(a):
        weight = a.astype(float).sum(axis=2)
        yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
        return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()

    factors = []
    for k in range(1, 9):
        path = tmp_path / f"o{k}.jpg"
        path.write_bytes(exif_jpeg(img, k))
        small, f = read_photo(path, 150)
        factors.append(f)
        np.testing.assert_allclose(rescale_points(centre(small), f), centre(read_image(path)), atol=0.1,
                                   err_msg=f"orientation {k}")
    assert factors == [8, 4, 1, 1, 8, 1, 1, 4]


def test_rescaling_is_its_own_inverse_and_keeps_pixel_edges():
    pts = np.array([[0.0, 0.0], [10.25, 3.5]])
    np.testing.assert_allclose(rescale_points(rescale_points(pts, 4), 0.25), pts)
    np.testing.assert_allclose(rescale_points([[0.0, 0.0]], 2), [[0.5, 0.5]])  # pixel 0 covers full px 0 and 1
    np.testing.assert_allclose(rescale_boxes([[-0.5, -0.5, 300, 200]], 4), [[-0.5, -0.5, 1200, 800]])
    res = PoseResult(np.array([[[1.0, 2.0]]], np.float32), np.array([[0.9]], np.float32),
                     np.array([[-0.5, -0.5, 10, 20]], np.float32), ["a"])
    big = res.rescaled(2)
    np.testing.assert_allclose(big.keypoints, [[[2.5, 4.5]]])
    np.testing.assert_allclose(big.boxes, [[-0.5, -0.5, 20, 40]])
    assert big.scores is res.scores and big.keypoints.dtype == np.float32


def test_ordered_jobs_run_in_order_at_most_pending_behind_and_hand_back_failures():
    from fasterpose_rt.prefetch import OrderedJobs

    gate, done = threading.Event(), []

    def job(i):
        def run():
            gate.wait(5)
            done.append(i)
            if i == 1:
                raise OSError("disk full")
        return run

    jobs = OrderedJobs(pending=2)
    assert jobs.submit("a", job(0)) == [] and jobs.submit("b", job(1)) == []  # both waiting behind the gate
    threading.Timer(0.1, gate.set).start()
    failures = jobs.submit("c", job(2))  # a third: waits for the oldest
    assert done[:1] == [0]
    failures += jobs.finish()
    assert done == [0, 1, 2] and [(label, str(e)) for label, e in failures] == [("b", "disk full")]
    assert jobs.finish() == []  # each failure is handed back once


def test_an_iphone_heic_photo_is_read_with_pillow_heif(tmp_path, monkeypatch):
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is absent: pip install pillow-heif")
    img = np.full((90, 120, 3), 40, np.uint8)
    img[30:50, 70:100] = (20, 200, 240)  # BGR: an orange-yellow block
    heif = pillow_heif.from_bytes(mode="RGB", size=(120, 90), data=cv2.cvtColor(img, cv2.COLOR_BGR2RGB).tobytes())
    path = tmp_path / "IMG_0001.HEIC"
    heif.save(str(path), quality=95)
    assert path.read_bytes()[4:8] == b"ftyp"
    photo, scale = read_photo(path, long_side=10)  # decoded whole: HEIF has no scaled decoding
    assert photo.shape == (90, 120, 3) and photo.dtype == np.uint8 and scale == 1
    np.testing.assert_allclose(photo[40, 85], (20, 200, 240), atol=20)  # colour order kept (BGR)
    np.testing.assert_allclose(photo[10, 10], (40, 40, 40), atol=10)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if it were not installed
    with pytest.raises(InputReadError, match="pip install pillow-heif"):
        read_image(path)
    items, _ = expand_inputs([tmp_path])
    assert [i.path.name for i in items] == ["IMG_0001.HEIC"]  # folders pick them up
