"""VideoPoses: a video's poses frame by frame, tracked and smoothed as the CLI does, on real video files."""
import re
import struct
import time

import cv2
import numpy as np
import pytest
from fakes import GatedSource
from standin import STANDIN_POINTS, paint_blobs, read_video, write_video

from fasterpose_rt import (InputReadError, KeypointSmoother, PosePredictor, PoseTracker, VideoFrame, VideoPoses,
                           find_poses, find_poses_batch)
from fasterpose_rt.draw import draw_poses
from fasterpose_rt.search import search_windows
from fasterpose_rt.video import REACQUIRE_EVERY


@pytest.fixture
def pred(standin_path):
    return PosePredictor(standin_path, threads=1)


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", frames=6)  # 10 fps, the red joint moving down 2 px a frame


def test_tracked_and_smoothed_as_a_tracker_and_smoother_would(pred, clip):
    video = VideoPoses(pred, clip)
    assert video.fps == 10 and video.frame_count == 6 and video.expected_frames == 6
    got = list(video)
    assert all(isinstance(f, VideoFrame) for f in got)
    assert [f.index for f in got] == list(range(6))
    np.testing.assert_allclose([f.time for f in got], np.arange(6) / 10)
    tracker, smoother = PoseTracker(pred), KeypointSmoother(10)
    for f, frame in zip(got, read_video(clip)):
        want = smoother(tracker(frame), f.index / 10)
        np.testing.assert_array_equal(f.image, frame)
        np.testing.assert_array_equal(f.poses.keypoints, want.keypoints)
        np.testing.assert_array_equal(f.poses.boxes, want.boxes)
        assert f.poses.track_ids.tolist() == [1]
    raw = [f.poses.keypoints[0, 0, 1] for f in VideoPoses(pred, clip, smooth=False)]
    np.testing.assert_allclose(raw, 30 + 2 * np.arange(6), atol=1.0)  # unsmoothed: the model's own joints
    assert not np.allclose(raw, [f.poses.keypoints[0, 0, 1] for f in got], atol=0.01)  # smoothing did something


def test_every_nth_frame_keeps_the_video_time(pred, clip):
    video = VideoPoses(pred, clip, every=4)
    got = list(video)
    assert video.expected_frames == 2 and [f.index for f in got] == [0, 4]
    np.testing.assert_allclose([f.time for f in got], [0.0, 0.4])


def test_untracked_frames_are_photos(pred, clip):
    frames = read_video(clip)
    got = list(VideoPoses(pred, clip, track=False))
    assert all(f.poses.track_ids is None for f in got)
    for f, frame in zip(got, frames):  # the whole frame refined, as `fasterpose predict` does for a photo
        np.testing.assert_array_equal(f.poses.keypoints, find_poses(pred, frame).keypoints)
    box = [[20, 20, 40, 80]]
    got = list(VideoPoses(pred, clip, track=False, boxes=box))  # given boxes: used as they are, every frame
    assert all(f.poses.boxes.tolist() == box for f in got)
    got = list(VideoPoses(pred, clip, boxes=box, smooth=False))  # tracked: the boxes start it, then the joints'
    for f in got[:2]:  # each frame's reported box: where the person is in it, the box around its joints
        kp = f.poses.keypoints[0]
        np.testing.assert_allclose(f.poses.boxes[0], [*kp.min(axis=0), *np.ptp(kp, axis=0)], atol=1e-4)
    np.testing.assert_allclose(got[1].poses.boxes[0], [30, 32, 20, 58], atol=0.6)  # head 2 px lower than frame 0


def test_given_boxes_start_the_video_and_a_person_lost_later_is_searched_for(pred, tmp_path):
    """The given boxes were tried again every frame once the person was lost, where it had started: a person who
    walked away was never found again, and ghosts were reported there (review s58)."""
    path = tmp_path / "walks.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (200, 120))
    left, right = np.asarray(STANDIN_POINTS, float), np.asarray(STANDIN_POINTS, float) + [110, 0]
    for points in [left, left, None, None, right, right, right]:
        w.write(np.zeros((120, 200, 3), np.uint8) if points is None else paint_blobs((120, 200), points))
    w.release()
    got = list(VideoPoses(pred, path, boxes=[[20, 20, 40, 80]], smooth=False))
    np.testing.assert_allclose(got[0].poses.boxes[0], [30, 30, 20, 60], atol=0.6)  # found from the given box
    assert all(len(f.poses) == 0 for f in VideoPoses(pred, path, boxes=np.zeros((0, 4)), smooth=False))  # nobody
    late = [f.poses for f in got[4:]]
    assert all(len(p) == 1 for p in late)  # found again where it is now
    np.testing.assert_allclose(late[-1].keypoints[0], right, atol=2.0)


def test_a_person_lost_after_the_given_boxes_is_searched_for_with_refine_passes(pred, tmp_path, monkeypatch):
    """Given boxes are tight, so their first frame takes no refine pass; the search for a person lost later had
    inherited those 0 passes and kept a search window's rough pose (review s61: validation PCK@0.2 0.596 instead of
    0.738 on the frame found again, 0.422 instead of 0.755 with --no-search)."""
    path = tmp_path / "walks.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (200, 120))
    right = np.asarray(STANDIN_POINTS, float) + [110, 0]
    for points in [None, right, right]:  # nobody where the given box is: lost at once, then searched for
        w.write(np.zeros((120, 200, 3), np.uint8) if points is None else paint_blobs((120, 200), points))
    w.release()
    calls, model = [], pred.predict_batch
    monkeypatch.setattr(pred, "predict_batch", lambda images, boxes=None: calls.append(len(images)) or model(
        images, boxes))
    per_frame = []
    for f in VideoPoses(pred, path, boxes=[[20, 20, 40, 80]], smooth=False, read_ahead=0):
        per_frame.append(len(calls))
        calls.clear()
    assert per_frame[:2] == [1, 2]  # the given box: no refine pass; the search: windows, then a refine pass
    explicit = list(VideoPoses(pred, path, boxes=[[20, 20, 40, 80]], smooth=False, refine_passes=0))
    assert len(calls) == 3 and len(explicit) == 3  # refine_passes=0 asked for: no pass anywhere


def test_detector_boxes_or_the_whole_frame(pred, clip):
    calls = []

    def detector(frame):  # HogPeopleDetector's shape of answer: (boxes, scores)
        calls.append(frame.shape)
        return np.array([[20, 20, 40, 80]], np.float32) if len(calls) % 2 else np.zeros((0, 4)), np.ones(1)

    got = list(VideoPoses(pred, clip, track=False, detector=detector, refine_passes=0, search=False))
    assert len(calls) == 6 and calls[0] == (120, 80, 3)
    assert [f.poses.boxes.tolist() for f in got] == [[[20, 20, 40, 80]], [[-0.5, -0.5, 80, 120]]] * 3  # none: whole
    calls.clear()
    got = list(VideoPoses(pred, clip, track=False, detector=detector, refine_passes=0))  # none: a search
    windows = search_windows((120, 80)).tolist()
    assert [f.poses.boxes.tolist()[0] in ([[20, 20, 40, 80]] if i % 2 == 0 else windows)
            for i, f in enumerate(got)] == [True] * 6
    calls.clear()
    got = list(VideoPoses(pred, clip, detector=detector))
    assert len(calls) == 1 and [f.poses.track_ids.tolist() for f in got] == [[1]] * 6  # then followed


def test_a_search_for_several_persons_also_looks_for_new_arrivals(pred, clip):
    one, several = VideoPoses(pred, clip), VideoPoses(pred, clip, max_persons=3)
    assert one.tracker.reacquire_every is None and several.tracker.max_persons == 3
    assert several.tracker.reacquire_every == REACQUIRE_EVERY
    got = list(several)
    assert len(got) == 6 and all(len(f.poses) <= 3 for f in got)
    one.close()


def test_a_failing_frame_raises_or_is_reported_and_skipped(pred, clip, monkeypatch):
    real = PosePredictor.predict_batch
    seen = []

    def fail_on_third_call(self, images, boxes=None):  # every model call goes through predict_batch
        seen.append(None)
        if len(seen) == 3:
            raise RuntimeError("model exploded")
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", fail_on_third_call)
    with pytest.raises(RuntimeError, match="model exploded"):
        list(VideoPoses(pred, clip, track=False, refine_passes=0))
    seen.clear()
    failed = []
    got = list(VideoPoses(pred, clip, track=False, refine_passes=0, on_error=lambda i, e: failed.append((i, str(e)))))
    assert failed == [(2, "model exploded")] and [f.index for f in got] == [0, 1, 3, 4, 5]


def test_an_opened_capture_is_a_source_and_released(pred, clip):
    cap = cv2.VideoCapture(str(clip))
    with VideoPoses(pred, cap, every=2) as video:
        assert [f.index for f in video] == [0, 2, 4]
    assert not cap.isOpened()
    cap = cv2.VideoCapture(str(clip))
    with VideoPoses(pred, cap) as video:
        next(iter(video))  # stop early: leaving the block releases it
    assert not cap.isOpened()


def test_a_video_without_a_frame_rate_counts_30_per_second(pred, clip, monkeypatch):
    import fasterpose_rt.video

    real = fasterpose_rt.video.capture_info
    # a container that does not say its frame rate (a subclass of cv2.VideoCapture would crash Python at exit)
    monkeypatch.setattr(fasterpose_rt.video, "capture_info", lambda cap: (real(cap)[0], 0.0))
    video = VideoPoses(pred, cv2.VideoCapture(str(clip)), every=3)
    assert video.fps == 0.0
    np.testing.assert_allclose([f.time for f in video], [0.0, 0.1])


def test_bad_sources_and_options_are_named(pred, clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(InputReadError, match="cannot open as a video"):
        VideoPoses(pred, broken)
    with pytest.raises(InputReadError, match="absent.mp4: no such file$"):  # not "corrupt" (review s58)
        VideoPoses(pred, tmp_path / "absent.mp4")
    cap = cv2.VideoCapture(str(clip))
    cap.release()
    with pytest.raises(InputReadError, match="not open"):
        VideoPoses(pred, cap)
    with pytest.raises(TypeError, match="video file path or a cv2.VideoCapture"):
        VideoPoses(pred, np.zeros((4, 8, 8, 3), np.uint8))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="every must be a positive integer"):
            VideoPoses(pred, clip, every=bad)
    with pytest.raises(ValueError, match="either boxes or a detector"):
        VideoPoses(pred, clip, boxes=[[0, 0, 8, 8]], detector=lambda f: None)
    video = VideoPoses(pred, clip, every=3)
    assert len(list(video)) == 2
    with pytest.raises(RuntimeError, match="iterated once"):
        list(video)


def test_draw_shows_skeletons_boxes_and_track_ids(pred, clip):
    frame = next(iter(VideoPoses(pred, clip)))
    res = frame.poses
    drawn = pred.draw(frame.image, res)
    want = draw_poses(frame.image, res.keypoints, res.scores, pred.skeleton, pred.keypoint_names, 0.3,
                      boxes=res.boxes, labels=["#1"])
    np.testing.assert_array_equal(drawn, want)
    plain = pred.draw(frame.image, res.__class__(res.keypoints, res.scores, res.boxes, res.keypoint_names))
    assert not np.array_equal(plain, drawn)  # the id label is drawn only for tracked persons
    gray = paint_blobs((120, 80), STANDIN_POINTS)[:, :, 1]
    assert pred.draw(gray, find_poses(pred, gray)).shape == (120, 80, 3)  # any photo layout predict takes


def test_max_frames_stops_there_and_releases_the_capture(pred, clip):
    cap = cv2.VideoCapture(str(clip))
    video = VideoPoses(pred, cap, every=2, max_frames=2)
    assert video.expected_frames == 2
    assert [f.index for f in video] == [0, 2] and not cap.isOpened()  # no third frame read
    assert VideoPoses(pred, clip, max_frames=50).expected_frames == 6  # the video ends first
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="max_frames must be a positive integer"):
            VideoPoses(pred, clip, max_frames=bad)


def test_a_stream_url_is_read_as_a_video(pred, clip):
    """OpenCV's FFmpeg opens URLs (rtsp://, http://, ...); a file:// URL takes that same path without a network."""
    from fasterpose_rt.inputs import open_stream

    from_url = [f.poses.keypoints for f in VideoPoses(pred, open_stream(clip.resolve().as_uri()))]
    from_file = [f.poses.keypoints for f in VideoPoses(pred, clip)]
    assert len(from_url) == 6
    np.testing.assert_array_equal(np.stack(from_url), np.stack(from_file))
    with pytest.raises(InputReadError, match="cannot open camera 99"):
        open_stream("camera:99")
    with pytest.raises(InputReadError, match="cannot open the stream"):
        open_stream((clip.parent / "missing.mp4").resolve().as_uri())


def test_live_processes_the_newest_frame_and_counts_the_dropped(pred, clip):
    frames = read_video(clip)
    source = GatedSource()
    for frame in frames + [None]:
        source.send(frame)
    video = VideoPoses(pred, source, live=True, track=False)
    assert video.fps == 0.0 and video.dropped_frames == 0
    got = []
    for f in video:
        got.append(f)
        source.released or time.sleep(0.5)  # a slow model: the source ends meanwhile
    indices = [f.index for f in got]
    assert indices[-1] == 5 and indices == sorted(indices)  # the last frame always, in order
    assert len(got) + video.dropped_frames == 6 and video.dropped_frames >= 1
    np.testing.assert_allclose([f.time for f in got], np.array(indices) / 30.0)  # times keep the source's pace
    np.testing.assert_array_equal(got[-1].image, frames[5])
    with pytest.raises(ValueError, match="read_ahead must be a non-negative integer"):
        VideoPoses(pred, clip, read_ahead=-1)


def test_reading_ahead_or_not_gives_the_same_poses(pred, clip):
    ahead = [f.poses.keypoints for f in VideoPoses(pred, clip)]
    inline = [f.poses.keypoints for f in VideoPoses(pred, clip, read_ahead=0)]
    np.testing.assert_array_equal(np.stack(ahead), np.stack(inline))


def test_a_detector_asked_again_for_new_arrivals_keeps_the_followed_persons_id(pred, tmp_path):
    """Every REACQUIRE_EVERY frames the detector is asked for new arrivals; its box around a person already
    followed (shaped otherwise than the box around the joints) is that person, who keeps id 1."""
    clip = write_video(tmp_path / "long.mp4", frames=REACQUIRE_EVERY + 5, head_y=lambda i: 30)
    calls = []

    def detector(frame):  # a loose box around the stand-in person, as a detector draws one
        calls.append(1)
        return np.array([[12, 10, 56, 105]], np.float32)

    got = list(VideoPoses(pred, clip, detector=detector, smooth=False))
    assert len(calls) == 2 and len(got) == REACQUIRE_EVERY + 5
    assert {tuple(f.poses.track_ids.tolist()) for f in got} == {(1,)}


def test_closing_or_failing_mid_video_stops_reading_and_releases_it(pred, clip):
    """close() in the loop ends it (read in the caller's thread too: not a cut-off file), and an error on a frame
    releases the capture and stops the reader thread even while the error (and its traceback) is kept."""
    import threading

    video = VideoPoses(pred, clip, read_ahead=0)
    seen = []
    for frame in video:
        seen.append(frame.index)
        if frame.index == 2:
            video.close()
    assert seen == [0, 1, 2]

    class Exploding:
        def __call__(self, frame, index):
            raise RuntimeError("model exploded")

    cap = cv2.VideoCapture(str(clip))
    video = VideoPoses(pred, cap, live=True)
    video._poses = Exploding()
    try:
        list(video)
    except RuntimeError as e:
        kept = e  # a notebook keeps the last error, and with it the loop's frame
    assert str(kept) == "model exploded"
    time.sleep(0.5)
    assert not cap.isOpened()
    assert not [t for t in threading.enumerate() if t.name == "fasterpose-frame-reader"]


def test_api_misuse_is_named(pred, clip):
    image = paint_blobs((120, 80), STANDIN_POINTS)
    for call in (lambda: pred.predict_batch(image), lambda: find_poses_batch(pred, image)):
        with pytest.raises(TypeError, match="sequence of photos"):  # not 120 gray photos of one row each
            call()
    res = pred.predict(image, [[10, 10, 60, 100], [0, 0, 80, 120]])
    one = res.take(1)
    assert len(one) == 1 and one.keypoints.shape == (1, 4, 2) and one.boxes.tolist() == [[0, 0, 80, 120]]
    with pytest.raises(TypeError, match="one PoseResult"):
        pred.draw(image, [res])
    with pytest.raises(ValueError, match="max_persons"):
        VideoPoses(pred, clip, max_persons=0)
    with pytest.raises(ValueError, match="max_persons"):
        PoseTracker(pred, max_persons=0)


def test_an_anamorphic_video_is_run_as_shown_and_answered_in_its_decoded_px(pred, tmp_path):
    """A video whose pixels are shown 1.5 times as wide as tall (stored 80x120, shown 120x120): the model is given
    the frame as shown, the poses come back in the decoded frame's px, and as_shown maps both to the picture a
    player shows."""
    path = write_mkv(tmp_path / "ana.mkv", [0, 100, 200], display=(120, 120))
    video = VideoPoses(pred, path, smooth=False)
    assert video.pixel_aspect == 1.5 and video.square_factors == (1.5, 1.0)
    seen, track = [], video.tracker

    def spy(frame, index=None):
        seen.append(frame.shape)
        return track(frame, index)

    video.tracker = spy
    got = list(video)
    assert seen == [(120, 120, 3)] * 3  # the model's frame: square pixels, the narrow axis widened
    for i, f in enumerate(got):
        assert f.image.shape == (120, 80, 3)  # as decoded
        np.testing.assert_allclose(f.poses.keypoints[0], [[40, 30 + 2 * i]] + STANDIN_POINTS[1:], atol=1.0)
        shown, poses = video.as_shown(f.image, f.poses)
        assert shown.shape == (120, 120, 3)
        np.testing.assert_allclose(poses.keypoints[0, :, 0], (f.poses.keypoints[0, :, 0] + 0.5) * 1.5 - 0.5,
                                   atol=1e-4)
        np.testing.assert_array_equal(poses.keypoints[0, :, 1], f.poses.keypoints[0, :, 1])


def test_an_anamorphic_videos_boxes_and_detections_are_in_its_decoded_px(pred, tmp_path):
    path = write_mkv(tmp_path / "ana.mkv", [0, 100], display=(120, 120))
    box = np.array([[20.0, 10.0, 40.0, 100.0]], np.float32)  # around the stand-in person, in decoded px
    for track in (True, False):
        got = list(VideoPoses(pred, path, boxes=box, track=track, smooth=False))
        if not track:  # (a tracker's boxes are its persons' joints')
            np.testing.assert_allclose(got[0].poses.boxes, box, atol=1e-4)  # the given box, back as given
        np.testing.assert_allclose(got[0].poses.keypoints[0], [[40, 30]] + STANDIN_POINTS[1:], atol=1.0)
    given = []

    def detect(frame):
        given.append(frame.shape)
        return box

    for track in (True, False):
        given.clear()
        got = list(VideoPoses(pred, path, detector=detect, track=track, smooth=False))
        assert given and set(given) == {(120, 80, 3)}  # the frame as decoded, its boxes in its px
        np.testing.assert_allclose(got[-1].poses.keypoints[0], [[40, 32]] + STANDIN_POINTS[1:], atol=1.0)


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_a_capture_handing_out_no_picture_is_named_with_its_frame(pred, read_ahead):
    """A capture of one's own whose read() gives an array that is no picture: a ValueError from deep inside, the
    frames before it yielded; now an InputReadError naming the frame."""
    from fasterpose_rt.inputs import InputReadError

    frames = [np.zeros((40, 30, 3), np.uint8), np.zeros((3, 3, 7), np.uint8)]

    class Source:
        def read(self):
            return (True, frames.pop(0)) if frames else (False, None)

        def grab(self):
            return bool(frames)

        def release(self):
            pass

    got = []
    with pytest.raises(InputReadError, match=r"frame 1 is no picture: image must be .* got shape \(3, 3, 7\)"):
        for frame in VideoPoses(pred, Source(), read_ahead=read_ahead):
            got.append(frame.index)
    assert got == [0]


class _Capture:
    def __init__(self, props):
        self.props = props

    def get(self, prop):
        return self.props.get(prop, 0.0)


@pytest.mark.parametrize("props, aspect", [
    ({cv2.CAP_PROP_SAR_NUM: 64, cv2.CAP_PROP_SAR_DEN: 45}, 64 / 45),  # PAL 16:9 DV
    ({cv2.CAP_PROP_SAR_NUM: 8, cv2.CAP_PROP_SAR_DEN: 9}, 8 / 9),  # NTSC 4:3 DV: narrower than tall
    ({cv2.CAP_PROP_SAR_NUM: 4, cv2.CAP_PROP_SAR_DEN: 3, cv2.CAP_PROP_ORIENTATION_AUTO: 1,
      cv2.CAP_PROP_ORIENTATION_META: 90}, 3 / 4),  # turned a quarter by OpenCV: so are its pixels
    ({cv2.CAP_PROP_SAR_NUM: 4, cv2.CAP_PROP_SAR_DEN: 3, cv2.CAP_PROP_ORIENTATION_AUTO: 1,
      cv2.CAP_PROP_ORIENTATION_META: 180}, 4 / 3),
    ({cv2.CAP_PROP_SAR_NUM: 4, cv2.CAP_PROP_SAR_DEN: 3, cv2.CAP_PROP_ORIENTATION_META: 90}, 4 / 3),  # not turned
    ({}, 1.0),  # not said (0:0)
    ({cv2.CAP_PROP_SAR_NUM: 1, cv2.CAP_PROP_SAR_DEN: 0}, 1.0),
    ({cv2.CAP_PROP_SAR_NUM: 100, cv2.CAP_PROP_SAR_DEN: 1}, 1.0),  # a broken header, not a lens
    ({cv2.CAP_PROP_SAR_NUM: float("nan"), cv2.CAP_PROP_SAR_DEN: 1}, 1.0),
    ({cv2.CAP_PROP_SAR_NUM: 1001, cv2.CAP_PROP_SAR_DEN: 1000}, 1.0),  # square to any model
])
def test_a_videos_pixel_aspect_is_its_sample_aspect_ratio_as_shown(props, aspect):
    from fasterpose_rt.inputs import pixel_aspect

    assert pixel_aspect(_Capture(props)) == pytest.approx(aspect)
    assert pixel_aspect(object()) == 1.0  # a capture-like source without get()


def test_a_clock_rate_is_no_frame_rate(pred, clip, monkeypatch):
    """Some RTSP streams report their 90 kHz clock as the frame rate: taken as unknown (30 frames a second)."""
    from fasterpose_rt.inputs import capture_info

    class Clocked:
        def get(self, prop):
            return 90000.0 if prop == cv2.CAP_PROP_FPS else 0.0

    assert capture_info(Clocked()) == (None, 0.0)


def _el(id_, payload):
    """A Matroska (EBML) element: id, size, payload."""
    n = len(payload)
    length = next(k for k in range(1, 9) if n < (1 << (7 * k)) - 1)
    return id_ + (n | (1 << (7 * length))).to_bytes(length, "big") + payload


def _uint(id_, v):
    return _el(id_, v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big"))


def write_mkv(path, times_ms, size=(80, 120), duration_ms=None, display=None, frames=None):
    """A Matroska video of the stand-in person (MJPEG, the first joint 2 px lower each frame) whose frames show at
    ``times_ms``, as a phone or a screen recorder writes a variable frame rate: the container lists no frame count,
    so OpenCV reads its duration x its guess of the frame rate. duration_ms: the duration its header records (as
    when its audio runs on after the pictures); default the last frame's end. display: (w, h) the frames are shown
    at (an anamorphic video: pixels display_w / w : display_h / h); frames: (H, W, 3) uint8 BGR images instead of
    the stand-in person's, one per time. Returns path."""
    w, h = size if frames is None else frames[0].shape[1::-1]
    shown = b"" if display is None else _uint(b"\x54\xb0", display[0]) + _uint(b"\x54\xba", display[1])
    ebml = _el(b"\x1a\x45\xdf\xa3", _el(b"\x42\x82", b"matroska") + _uint(b"\x42\x87", 4) + _uint(b"\x42\x85", 2))
    duration = duration_ms if duration_ms is not None else times_ms[-1] + (times_ms[-1] - times_ms[-2])
    info = _el(b"\x15\x49\xa9\x66", _uint(b"\x2a\xd7\xb1", 1000000) + _el(b"\x44\x89", struct.pack(">d", duration)))
    track = _el(b"\xae", _uint(b"\xd7", 1) + _uint(b"\x73\xc5", 1) + _uint(b"\x83", 1) + _el(b"\x86", b"V_MJPEG")
                + _el(b"\xe0", _uint(b"\xb0", w) + _uint(b"\xba", h) + shown))
    if frames is None:
        frames = [paint_blobs((h, w), [[40, 30 + 2 * i]] + STANDIN_POINTS[1:]) for i in range(len(times_ms))]
    blocks = b"".join(_el(b"\xa3", b"\x81" + struct.pack(">hB", t, 0x80) + cv2.imencode(".jpg", f)[1].tobytes())
                      for f, t in zip(frames, times_ms))
    segment = info + _el(b"\x16\x54\xae\x6b", track) + _el(b"\x1f\x43\xb6\x75", _uint(b"\xe7", 0) + blocks)
    path.write_bytes(ebml + _el(b"\x18\x53\x80\x67", segment))
    return path


VFR_MS = [0, 33, 67, 100, 200, 300, 400, 500]  # 30 fps, then 10 fps: OpenCV lists 18 frames at 30 fps


@pytest.mark.parametrize("read_ahead", [0, 2])  # read in the caller's thread, or by a FrameReader
def test_a_variable_frame_rate_video_is_whole_and_timed_by_its_frames(pred, tmp_path, read_ahead):
    video = VideoPoses(pred, write_mkv(tmp_path / "vfr.mkv", VFR_MS), read_ahead=read_ahead)
    assert video.frame_count == 18 and video.fps == 30  # more frames than it holds: no error for that
    got = list(video)
    assert [f.index for f in got] == list(range(8))
    assert [f.time for f in got] == [0.0, 1 / 30, 2 / 30, 0.1, 0.2, 0.3, 0.4, 0.5]  # index / fps where they agree
    tracker, smoother = PoseTracker(pred), KeypointSmoother(30)
    for f in got:  # the smoother is timed alike
        np.testing.assert_array_equal(f.poses.keypoints, smoother(tracker(f.image), f.time).keypoints)


def test_a_variable_frame_rate_videos_drawing_keeps_its_pace(standin_path, tmp_path):
    """--vis writes at one rate (OpenCV's 30 fps here): a frame is held until the next one's time, so the drawing
    lasts as the source does (its 8 frames were written one per 1/30 s: 0.27 s for 0.6, running ahead)."""
    from clirunner import invoke

    from fasterpose_rt.cli import main

    video = write_mkv(tmp_path / "vfr.mkv", VFR_MS)
    r = invoke(main, ["predict", video, "--model", standin_path, "--no-search", "-q", "--vis", tmp_path / "vis",
                      "--out", tmp_path / "r.json"])
    assert r.exit_code == 0, r.output
    drawn = read_video(tmp_path / "vis" / "vfr.mp4")
    assert len(drawn) == round(VFR_MS[-1] * 30 / 1000) + 1  # 16: the last frame's place at 30 fps, and itself
    slots = [round(ms * 30 / 1000) for ms in VFR_MS]  # where each source frame starts: 0, 1, 2, 3, 6, 9, 12, 15
    change = [float(np.abs(drawn[i].astype(int) - drawn[i - 1]).mean()) for i in range(1, len(drawn))]
    starts = {i for i in range(1, len(drawn)) if change[i - 1] > 0.2}  # a new frame: the person moved 2 px
    assert starts == set(slots[1:]), (starts, [round(c, 2) for c in change])


def test_a_variable_frame_rate_video_cut_short_is_still_named(pred, tmp_path):
    data = write_mkv(tmp_path / "vfr.mkv", VFR_MS).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:len(data) * 6 // 10])  # its first 4 frames, 0.13 s of 0.6
    video = VideoPoses(pred, cut)
    with pytest.raises(InputReadError, match="decoding stopped at frame 4 of the 18 the file lists"):
        for _ in video:
            pass


def test_a_matroska_file_whose_audio_runs_longer_is_whole(pred, tmp_path):
    """review s64: a whole MKV, WebM or TS file whose audio ran more than 10 % past its pictures (or whose last
    frame was held long) failed as "damaged or cut off": Matroska counts no frames, and OpenCV's estimate is the
    whole duration x fps. Such a count is held against the file only when the file ends before its Segment does."""
    from fasterpose_rt.inputs import counts_frames, ends_early

    path = write_mkv(tmp_path / "long_audio.mkv", VFR_MS, duration_ms=2000)
    video = VideoPoses(pred, path)
    assert video.frame_count == 60 and not counts_frames(path) and not ends_early(path)
    assert [f.index for f in video] == list(range(8))  # no error: the 8 frames it holds
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[:path.stat().st_size * 6 // 10])
    assert ends_early(cut) and not ends_early(tmp_path / "absent.mkv")
    with pytest.raises(InputReadError, match="decoding stopped at frame 4 of the 60 the file lists"):
        list(VideoPoses(pred, cut))


def test_an_empty_path_or_a_folder_is_refused_in_a_line(pred, tmp_path, capfd):
    """review s64: VideoPoses(pred, "") let OpenCV print its own C++ assertion before "no such file"; a folder was
    "not a regular file (a folder): save the video to a file first"."""
    with pytest.raises(InputReadError, match=r"^no such file \(an empty path\)$"):
        VideoPoses(pred, "")
    with pytest.raises(InputReadError, match=rf"^{re.escape(str(tmp_path))}: a folder, not a video file$"):
        VideoPoses(pred, tmp_path)
    assert "Assertion" not in capfd.readouterr().err


def test_a_fragmented_mp4_counts_no_frames_of_its_own(tmp_path):
    """review s64: a fragmented MP4 (OBS's, DASH, ``-movflags frag_keyframe``) lists its samples in fragments, not in
    ``moov``: OpenCV's count is then an estimate from the duration (audio included), not to be held against it."""
    from fasterpose_rt.inputs import counts_frames

    def box(kind, payload=b""):
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2mp41")
    plain = tmp_path / "plain.mp4"
    plain.write_bytes(ftyp + box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak")) + box(b"mdat", bytes(32)))
    fragmented = tmp_path / "fragmented.mp4"
    fragmented.write_bytes(ftyp + box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak") + box(b"mvex", box(b"trex")))
                           + box(b"moof", box(b"mfhd", bytes(8))) + box(b"mdat", bytes(32)))
    assert counts_frames(plain) and not counts_frames(fragmented)
    no_moov = tmp_path / "no_moov.mp4"  # (a recording cut before its index was written)
    no_moov.write_bytes(ftyp + box(b"mdat", bytes(32)))
    assert not counts_frames(no_moov) and not counts_frames(tmp_path / "absent.mp4")


def test_an_avi_cut_short_by_a_few_percent_is_named(pred, tmp_path):
    """review s64: a file missing up to a tenth of the frames its container counts passed as whole (a 10 %
    allowance meant for containers that only estimate a count); MP4, MOV and AVI count theirs: 1 % (2 frames at
    least) now. (OpenCV writes an MP4's sample tables after its data, so a cut one of its own does not open.)"""
    from fasterpose_rt.inputs import counts_frames

    whole = tmp_path / "whole.avi"
    w = cv2.VideoWriter(str(whole), cv2.VideoWriter.fourcc(*"MJPG"), 25, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(100):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))  # (frames of about one size)
    w.release()
    assert counts_frames(whole) and len(list(VideoPoses(pred, whole, search=False, refine_passes=0))) == 100
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size * 95 // 100])
    with pytest.raises(InputReadError, match=r"decoding stopped at frame 9\d of the 100 the file lists") as e:
        list(VideoPoses(pred, cut, search=False, refine_passes=0))
    assert str(e.value).startswith(f"{cut}: ")  # named, as an error opening it is (review s64)


def trimmed_mp4(path, frames=30, fps=10, start_s=1.0, shown_s=2.0):
    """An MP4 as a lossless trim leaves it: ``frames`` frames listed, its edit list showing ``shown_s`` seconds from
    ``start_s`` (OpenCV writes a one-entry edit list showing all; its entry is rewritten). Returns path."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        w.write(np.full((48, 64, 3), 8 * i, np.uint8))
    w.release()
    data = bytearray(path.read_bytes())
    elst, mdhd = data.find(b"elst"), data.find(b"mdhd")
    assert elst > 0 and mdhd > 0 and data[elst + 4] == 0 and data[mdhd + 4] == 0  # version-0 boxes
    movie_scale = struct.unpack_from(">I", data, data.find(b"mvhd") + 16)[0]
    media_scale = struct.unpack_from(">I", data, mdhd + 16)[0]
    struct.pack_into(">Ii", data, elst + 12, round(shown_s * movie_scale), round(start_s * media_scale))
    path.write_bytes(bytes(data))
    return path


def test_a_trimmed_mp4_is_whole_with_the_frames_its_edit_list_shows(pred, tmp_path):
    """A lossless trim lists the frames before its cut, which no decoder shows: 20 of 30 were read, then "decoding
    stopped at frame 20 of the 30 the file lists (damaged or cut off?)"."""
    from fasterpose_rt.mp4_edits import shown_seconds

    path = trimmed_mp4(tmp_path / "trim.mp4")
    assert shown_seconds(path) == 2.0 and int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    video = VideoPoses(pred, path)
    assert video.frame_count == 20
    assert [f.index for f in video] == list(range(20))
    untrimmed = tmp_path / "whole.mp4"
    trimmed_mp4(untrimmed, start_s=0.0, shown_s=3.0)  # an edit list that shows all: the count stands
    assert VideoPoses(pred, untrimmed).frame_count == 30


def test_an_mp4_of_sound_alone_is_named_as_one(pred, tmp_path):
    """review s66: an M4A renamed .mp4 (or a voice memo's MP4) was "cannot open as a video (unsupported format or
    corrupt file)"."""
    from fasterpose_rt.mp4_edits import has_video_track

    path = trimmed_mp4(tmp_path / "video.mp4")
    assert has_video_track(path) is True
    data = bytearray(path.read_bytes())
    at = data.find(b"vide", data.find(b"hdlr"))
    data[at:at + 4] = b"soun"  # its one track's handler: sound
    sound = tmp_path / "sound.mp4"
    sound.write_bytes(bytes(data))
    assert has_video_track(sound) is False
    with pytest.raises(InputReadError, match=r"sound.mp4: holds no video track \(an audio file\?\)$"):
        VideoPoses(pred, sound)
    (tmp_path / "other.mp4").write_bytes(b"RIFF" + bytes(100))
    assert has_video_track(tmp_path / "other.mp4") is None and has_video_track(tmp_path) is None


def test_edit_lists_of_other_files_are_none(tmp_path):
    from fasterpose_rt.mp4_edits import shown_seconds

    whole = trimmed_mp4(tmp_path / "a.mp4").read_bytes()
    for name, data in (("not_mp4.mp4", b"RIFF" + bytes(100)), ("empty.mp4", b""), ("cut.mp4", whole[:-300]),
                       ("boxes_of_nonsense.mp4", b"\x00\x00\x00\x08ftyp" + b"\xff" * 64)):
        (tmp_path / name).write_bytes(data)
        assert shown_seconds(tmp_path / name) is None, name
    assert shown_seconds(tmp_path) is None and shown_seconds(tmp_path / "missing.mp4") is None
    no_edits = bytearray(whole)
    no_edits[no_edits.find(b"edts"):no_edits.find(b"edts") + 4] = b"free"  # the box renamed: no edit list
    (tmp_path / "no_edits.mp4").write_bytes(bytes(no_edits))
    assert shown_seconds(tmp_path / "no_edits.mp4") is None
    at = whole.find(b"moov") - 4  # an empty mvhd box first in moov: an IndexError reached the user (review s68)
    size = int.from_bytes(whole[at:at + 4], "big") + 8
    empty_mvhd = whole[:at] + size.to_bytes(4, "big") + b"moov" + b"\x00\x00\x00\x08mvhd" + whole[at + 8:]
    (tmp_path / "empty_mvhd.mp4").write_bytes(empty_mvhd)
    assert shown_seconds(tmp_path / "empty_mvhd.mp4") is None


class ReorderingCapture:
    """A video file's capture, 10 fps, ``frames`` frames, whose read of each frame in ``damaged`` fails and uses up
    that frame and the next one too, as a codec that reorders frames (B-frames) does; frame i is filled with i."""

    def __init__(self, frames, damaged):
        self.frames, self.damaged, self.at, self.time = frames, set(damaged), 0, 0.0

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.frames, cv2.CAP_PROP_FPS: 10.0}.get(prop, self.time * 1000.0)

    def grab(self):
        if self.at >= self.frames:
            return False
        if self.at in self.damaged:
            self.at += 2
            return False
        self.time, self.at = self.at / 10.0, self.at + 1
        return True

    def retrieve(self):
        return True, np.full((4, 4, 3), self.at - 1, np.uint8)

    def read(self):
        ok = self.grab()
        return (ok, self.retrieve()[1]) if ok else (False, None)

    def release(self):
        pass


@pytest.mark.parametrize("every", [1, 2])
def test_frames_after_a_damaged_one_keep_their_numbers(every):
    """A failed read that used up two frames: the frames after it were numbered one too low (their times right),
    with nothing said. Each frame's own timestamp places it; both lost frames are named."""
    from fasterpose_rt.inputs import iter_video_frames

    got = []
    with pytest.raises(InputReadError) as e:
        for index, frame, _ in iter_video_frames(ReorderingCapture(20, [6]), every, 20, times=True):
            got.append((index, int(frame[0, 0, 0])))
    assert all(index == value for index, value in got), got  # each frame under its own number
    assert [i for i, _ in got] == [i for i in range(20) if i % every == 0 and i not in (6, 7)]
    assert str(e.value).startswith("frames 6 and 7 could not be decoded" if every == 1 else
                                   "frame 6 could not be decoded")


def test_constant_rate_times_stay_index_over_fps(tmp_path):
    """Matroska keeps times in whole milliseconds: a 29.97 fps file's are off index / fps by up to 0.5 ms."""
    from fasterpose_rt.inputs import iter_video_frames, open_video
    from fasterpose_rt.video import FrameClock

    w = cv2.VideoWriter(str(tmp_path / "c.mkv"), cv2.VideoWriter.fourcc(*"MJPG"), 29.97, (16, 16))
    for i in range(40):
        w.write(np.full((16, 16, 3), 5 * i, np.uint8))
    w.release()
    cap, count, fps = open_video(tmp_path / "c.mkv")
    clock = FrameClock(fps)
    stamps = [(i, t) for i, _, t in iter_video_frames(cap, 3, count, times=True)]
    assert len(stamps) == 14 and 0 < max(abs(t - i / fps) for i, t in stamps) < 0.001
    assert [clock(i, t) for i, t in stamps] == [i / fps for i, _ in stamps]


def test_the_frame_clock_takes_timestamps_that_depart_and_are_sane():
    from fasterpose_rt.video import FrameClock

    clock = FrameClock(10)
    times = [clock(i, t) for i, t in enumerate([5.0, 5.1, 5.2, 5.5, 5.6])]  # counted from the first
    assert times[:3] == [0.0, 0.1, 0.2] and np.allclose(times, [0.0, 0.1, 0.2, 0.5, 0.6])
    clock = FrameClock(0.0)  # no frame rate: 30 per second, whatever the timestamps say
    assert [clock(i, t) for i, t in enumerate([0.0, 0.5, 1.0])] == [0.0, 1 / 30, 2 / 30]
    clock = FrameClock(10)  # a clock that stands still, goes back or ticks at 100,000 per second: fps goes on
    times = [clock(i, t) for i, t in enumerate([0.0, 0.5, 0.5, 0.2, 0.50001, None, 1.0])]
    np.testing.assert_allclose(times, [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    clock = FrameClock(10)  # never back: a timestamp within the tolerance after one that departed
    assert [clock(i, t) for i, t in enumerate([0.0, 0.1, 0.3001, 0.3015])] == [0.0, 0.1, 0.3001, 0.3015]


def test_a_failed_frame_is_kept_when_asked(pred, clip, monkeypatch):
    real, seen = PoseTracker.__call__, []

    def fail_on_frame_2(self, frame, index=None):
        seen.append(None)
        if len(seen) == 3:
            raise RuntimeError("model exploded")
        return real(self, frame, index)

    monkeypatch.setattr(PoseTracker, "__call__", fail_on_frame_2)
    failed = []
    got = list(VideoPoses(pred, clip, on_error=lambda i, e: failed.append(i), keep_failed=True))
    assert failed == [2] and [f.index for f in got] == list(range(6))
    assert str(got[2].error) == "model exploded" and len(got[2].poses) == 0 and got[2].time == 0.2
    assert got[2].poses.track_ids.tolist() == [] and got[2].poses.keypoints.shape == (0, 4, 2)
    assert [len(f.poses) for f in got if f.index != 2] == [1] * 5 and all(f.error is None for f in got if f.index != 2)
    np.testing.assert_array_equal(got[2].image, read_video(clip)[2])


def test_video_boxes_with_a_score_column_or_bad_values_are_refused_when_given(pred, clip):
    """VideoPoses(boxes=) reshaped (N, 5) detector rows into other boxes (4 rows: 5 invented persons every frame),
    and a zero-width box failed only at the first frame (review s62); both are refused at once, tracked or not."""
    rows = np.array([[20, 20, 40, 80, 0.9]] * 4, np.float32)
    for track in (True, False):
        with pytest.raises(ValueError, match=r"\(4, 5\).*boxes\[:, :4\]"):
            VideoPoses(pred, clip, boxes=rows, track=track)
        with pytest.raises(ValueError, match="box 0"):
            VideoPoses(pred, clip, boxes=[[20, 20, 0, 80]], track=track)
    with pytest.raises(ValueError, match=r"\(1, 5\)"):
        list(VideoPoses(pred, clip, detector=lambda frame: rows[:1], track=False))
    assert len(next(iter(VideoPoses(pred, clip, boxes=rows[:1, :4], track=False))).poses) == 1


def test_a_video_file_that_cannot_be_opened_is_named_in_the_error(pred, tmp_path):
    """VideoPoses(pred, path) on a missing file said only "no such file" (review s62); the CLI, which names the
    input itself, keeps its one mention."""
    from clirunner import invoke

    from fasterpose_rt.cli import main

    missing = tmp_path / "gone.mp4"
    with pytest.raises(InputReadError, match=f"^{missing}: no such file$") as e:
        VideoPoses(pred, missing)
    assert e.value.reason == "no such file"
    (tmp_path / "text.mp4").write_text("not a video")
    r = invoke(main, ["predict", str(tmp_path / "text.mp4"), "--model", pred.model_path, "-q"])
    assert r.exit_code == 1 and r.stderr.count("text.mp4") == 1, r.stderr
