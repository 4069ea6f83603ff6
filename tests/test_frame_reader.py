"""FrameReader: frames read by a thread, in order (files) or newest only (cameras and streams)."""
import time

import cv2
import numpy as np
import pytest
from fakes import GatedSource
from standin import write_video

from fasterpose_rt import InputReadError
from fasterpose_rt.frame_reader import FrameReader
from fasterpose_rt.inputs import is_live, iter_video_frames


def wait_for(condition, seconds=10.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", frames=7)


@pytest.mark.parametrize("every", [1, 3])
def test_in_order_it_reads_what_the_caller_would_have_read(clip, every):
    want = list(iter_video_frames(cv2.VideoCapture(str(clip)), every))
    cap = cv2.VideoCapture(str(clip))
    got = list(FrameReader(cap, every))
    assert [i for i, _ in got] == [i for i, _ in want] == list(range(0, 7, every))
    for (_, a), (_, b) in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert not cap.isOpened()  # released at the end


def test_in_order_it_reads_at_most_ahead_frames_ahead():
    source = GatedSource()
    for i in range(10):
        source.send(i)
    reader = FrameReader(source, ahead=2)
    wait_for(lambda: source.reads == 3)  # two queued, the third waiting for room
    time.sleep(0.05)
    assert source.reads == 3
    frames = iter(reader)
    assert next(frames)[0] == 0
    wait_for(lambda: source.reads == 4)
    source.send(None)
    assert [i for i, _ in frames] == list(range(1, 10)) and reader.dropped == 0 and source.released


def test_newest_only_drops_the_frames_the_caller_was_too_slow_for():
    source = GatedSource()
    reader = FrameReader(source, latest=True)
    frames = iter(reader)
    for i in range(3):
        source.send(i)
    wait_for(lambda: reader.dropped == 2)
    index, frame = next(frames)
    assert index == 2 and frame[0, 0, 0] == 2  # the newest, not the oldest
    source.send(3)  # one at a time: the caller keeps up, nothing is dropped
    assert next(frames)[0] == 3
    for i in (4, 5):
        source.send(i)
    wait_for(lambda: reader.dropped == 3)
    assert next(frames)[0] == 5
    source.send(None)
    assert list(frames) == [] and reader.dropped == 3 and source.released


def test_newest_only_with_every_decodes_only_those_frames():
    source = GatedSource()
    for i in list(range(6)) + [None]:
        source.send(i)
    reader = FrameReader(source, every=2, latest=True)
    wait_for(lambda: source.released)
    assert [i for i, _ in reader] == [4] and reader.dropped == 2  # 0 and 2 replaced by 4; 1, 3, 5 only grabbed


def test_the_sources_error_comes_after_its_frames():
    source = GatedSource()
    for item in (0, 1, RuntimeError("camera unplugged")):
        source.send(item)
    got = []
    with pytest.raises(RuntimeError, match="camera unplugged"):
        for index, _ in FrameReader(source):
            got.append(index)
    assert got == [0, 1] and source.released


def test_no_frame_at_all_is_named(tmp_path):
    source = GatedSource()
    source.send(None)
    with pytest.raises(InputReadError, match="no frame could be decoded"):
        list(FrameReader(source))
    with pytest.raises(ValueError, match=">= 1"):
        FrameReader(GatedSource(), every=0)


def test_closing_early_stops_the_thread_and_releases_the_source():
    source = GatedSource()
    for i in range(10):
        source.send(i)
    reader = FrameReader(source, ahead=2)
    frames = iter(reader)
    next(frames)
    frames.close()  # as a caller's break or islice does
    assert not reader._thread.is_alive() and source.released


def test_which_sources_are_live():
    assert is_live("camera:0") and is_live("rtsp://cam.local/stream") and is_live("https://x.org/live.m3u8")
    assert not is_live("file:///tmp/clip.mp4") and not is_live("FILE:///tmp/clip.mp4")


class StampedSource(GatedSource):
    """A GatedSource whose frames carry timestamps (CAP_PROP_POS_MSEC), as OpenCV's captures do."""

    def __init__(self, stamps_ms):
        super().__init__()
        self.stamps, self.now = list(stamps_ms), None

    def read(self):
        ok, frame = super().read()
        self.now = self.stamps.pop(0) if ok else None
        return ok, frame

    def get(self, prop):
        return self.now if prop == cv2.CAP_PROP_POS_MSEC else 0.0


@pytest.mark.parametrize("latest", [False, True])
def test_with_times_each_frame_keeps_the_timestamp_read_with_it(latest):
    source = StampedSource([0.0, 40.0, 250.0, float("nan")])  # a variable frame rate, then no timestamp
    for i in range(4):
        source.send(i)
    source.send(None)
    got = []
    for index, frame, stamp in FrameReader(source, latest=latest, times=True):
        got.append((index, int(frame[0, 0, 0]), stamp))
        source.released or time.sleep(0.2)  # newest only: the frames read meanwhile are dropped, with their times
    want = [(0, 0, 0.0), (1, 1, 0.04), (2, 2, 0.25), (3, 3, None)]
    assert got == want if not latest else (got[-1] == want[-1] and set(got) <= set(want))


def test_ctrl_c_is_taken_while_a_stream_is_opening(monkeypatch):
    """A stream that connects but sends nothing holds cv2.VideoCapture (in C, deaf to Ctrl-C) up to 30 s."""
    import _thread
    import signal
    import threading

    import fasterpose_rt.inputs as inputs

    gate, opened, real = threading.Event(), threading.Event(), cv2.VideoCapture

    def stalled(source, *args):
        gate.wait(5)  # without a signal to break it, as OpenCV's wait
        opened.set()
        return real()

    monkeypatch.setattr(inputs.cv2, "VideoCapture", stalled)
    # Python's own Ctrl-C handler, also where the suite was started in the background (a shell then ignores SIGINT
    # for it, and interrupt_main does nothing)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.2, _thread.interrupt_main)  # Ctrl-C, as the signal handler takes it
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            inputs.open_stream("rtsp://127.0.0.1:9/stalled")
        assert not opened.is_set()  # taken while OpenCV still waited, not after it gave up (no clock: CI stalls)
    finally:
        gate.set()
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
