"""Poses through a video, frame by frame, as ``fasterpose predict`` finds them (the CLI runs this very loop).

Persons are followed from frame to frame (PoseTracker: each frame's boxes are the joints' boxes of the frame
before) and their joints steadied (KeypointSmoother, timed by the video's own frame times). Without tracking,
every frame is a photo on its own.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Callable, Generator, Iterator, Optional, Tuple

import cv2
import numpy as np

from .frame_reader import FrameReader
from .geometry import rescale_boxes
from .inputs import (MAX_FPS, InputReadError, capture_info, counts_frames, ends_early, iter_video_frames, open_video,
                     pixel_aspect)
from .predictor import PoseResult
from .preprocess import box_array, check_boxes, detector_boxes
from .prefetch import READ_AHEAD
from .smoothing import DEFAULT_FPS, KeypointSmoother
from .tracking import REFINE_PASSES, PoseTracker, find_poses

__all__ = ["VideoFrame", "VideoPoses", "FrameClock", "video_tracker", "REACQUIRE_EVERY", "TIME_TOLERANCE"]

# with a detector (or a search for several persons), tracking also looks for new persons every this many processed
# frames
REACQUIRE_EVERY = 30

# A frame's own timestamp replaces index / fps when the two differ by more than this (s): a variable frame rate.
# Within it they are one time: a millisecond time base (Matroska, WebM, FLV) rounds a constant rate's times by up
# to 0.5 ms, which must not move a constant-rate video's times off index / fps.
TIME_TOLERANCE = 0.002


class FrameClock:
    """The times of a video's frames in seconds: index / fps (times of a constant frame rate, as ever), or the
    frame's own timestamp (``inputs.iter_video_frames(times=True)``) where it departs from that by more than
    TIME_TOLERANCE or a quarter frame (a variable frame rate: a phone's or a screen recording's frames are not
    evenly spaced). Timestamps count from the first frame's (taken as its index / fps). A timestamp that is
    missing, or not later than the frame before's time by at least 1 / MAX_FPS per frame (a clock that stands
    still, goes back, or ticks at a container's rate, not the frames'), is not used: the time goes on from the
    frame before's at fps. Times never go back. A video that does not say its frame rate counts DEFAULT_FPS
    frames a second and its timestamps are not used: a container that cannot say its rate (or gives a clock's, as
    RTSP's 90,000) is no judge of its frames' times either, and its --vis video, drawn at DEFAULT_FPS, keeps in
    step."""

    def __init__(self, fps: float):
        self.rate = float(fps) or DEFAULT_FPS
        self.stamped = bool(fps)  # timestamps are used
        self.tolerance = min(TIME_TOLERANCE, 0.25 / self.rate)
        self._origin: Optional[float] = None  # the timestamp of time 0
        self._offset = 0.0  # the last time given minus its index / fps: 0.0 while they agree
        self._last: Optional[Tuple[int, float]] = None  # (index, time) of the frame before

    def __call__(self, index: int, stamp: Optional[float] = None) -> float:
        nominal = index / self.rate
        stamp = stamp if self.stamped else None
        if stamp is not None and self._origin is None:
            self._origin = stamp - nominal
        own = None if stamp is None or self._origin is None else stamp - self._origin
        if own is not None and self._last is not None and own < self._last[1] + (index - self._last[0]) / MAX_FPS:
            own = None
        if own is None:  # on from the last time at fps
            time = nominal + self._offset if self._offset else nominal
        elif abs(own - nominal) > self.tolerance or (self._last is not None and nominal <= self._last[1]):
            time = own  # departed (or next to one that did, which index / fps might not follow)
        else:
            time = nominal
        self._offset = time - nominal if time != nominal else 0.0
        self._last = (index, time)
        return time


def video_tracker(predictor, boxes=None, detect: Optional[Callable] = None, refine_passes: int = REFINE_PASSES,
                  search: bool = True, max_persons: int = 1, min_presence: Optional[float] = None,
                  start_passes: Optional[int] = None) -> PoseTracker:
    """The PoseTracker a video's persons are followed with (``VideoPoses``, so ``fasterpose predict``): started by
    ``boxes`` (N, 4) [x, y, w, h] in the first frame (a person lost later is searched for again, up to N); else by
    ``detect(frame)`` -> boxes (N, 4) or None (nobody found: the frame is searched), which also runs every
    REACQUIRE_EVERY frames for new arrivals; else by a search of the frame (``search=False``: the whole frame)
    for up to ``max_persons``, run again every REACQUIRE_EVERY frames while fewer are followed when more than one
    is asked for; persons found
    without boxes must be there (``search.keep_present``, ``min_presence``). refine_passes: on persons found by a
    search, the whole frame or ``detect``; start_passes: on the ``boxes``' persons (None: ``refine_passes``)."""
    if boxes is not None:  # the first frame's persons; one lost later is searched for, as without boxes (the
        count = len(box_array(boxes))  # given box, where it started, found only ghosts once it
        if not count:  # had walked away); no boxes: nobody, in every frame
            return PoseTracker(predictor, acquire=lambda frame: boxes, refine_passes=refine_passes)
        return PoseTracker(predictor, start=boxes, refine_passes=refine_passes, start_passes=start_passes,
                           search=search, max_persons=count,
                           min_presence=min_presence, reacquire_every=REACQUIRE_EVERY if search and count > 1 else None)
    if detect is not None:
        return PoseTracker(predictor, acquire=detect, refine_passes=refine_passes, reacquire_every=REACQUIRE_EVERY,
                           search=search, max_persons=max_persons, min_presence=min_presence)
    several = search and max_persons > 1  # the search also looks for new arrivals
    return PoseTracker(predictor, refine_passes=refine_passes, search=search, max_persons=max_persons,
                       reacquire_every=REACQUIRE_EVERY if several else None, min_presence=min_presence)

@dataclass(frozen=True)
class VideoFrame:
    """One processed frame. index: its number in the video (0-based); time: seconds from the start (index / fps,
    or the frame's own timestamp in a variable-frame-rate video: ``FrameClock``); image: (H, W, 3) uint8 BGR, as
    decoded (an anamorphic video's stored pixels: ``VideoPoses.as_shown``); poses: a PoseResult in its px (with
    track_ids when tracked); error: None, or for a frame whose prediction failed (yielded with
    ``VideoPoses(keep_failed=True)`` only) the exception, its poses then holding no person."""

    index: int
    time: float
    image: np.ndarray
    poses: PoseResult
    error: Optional[Exception] = None


class VideoPoses:
    """Iterate over the poses in a video: ``for frame in VideoPoses(predictor, "clip.mp4"): frame.poses``.

    source: a video file, or an opened cv2.VideoCapture (e.g. a camera's or a stream's, ``inputs.open_stream``;
    released at the end like a file's), or any object with its ``read()``, ``grab()`` and ``release()`` (and
    ``get()`` for the frame rate).
    every: process frames 0, every, 2·every, ... (the others are only grabbed, not decoded). max_frames: stop
    after this many processed frames (None: at the video's end; a camera has none).
    live: for cameras and streams, process only the newest frame each time (``FrameReader(latest=True)``): frames
    that arrive while the model is busy are dropped (``dropped_frames``; results keep their frame index and time),
    so results keep pace with the source instead of falling behind it. Else every frame is processed, read by a
    thread ``read_ahead`` frames ahead of the model (0: read between model calls, in the caller's thread).
    track: follow persons from frame to frame (a PoseTracker; ids in ``poses.track_ids``); False: every frame on
    its own, like a photo. smooth: with track, steady each followed person's joints (a KeypointSmoother).
    boxes: (N, 4) [x, y, w, h] person boxes that start the tracking (track=False: used on every frame), as given.
    detector: frame (H, W, 3) -> boxes (N, 4), or (boxes, scores) as HogPeopleDetector gives; it starts the
    tracking, again when nobody is followed and every REACQUIRE_EVERY frames for new arrivals (track=False: on
    every frame). No boxes and no detector (or a detector finding nobody): the frame is searched for one person,
    or up to ``max_persons`` (see ``find_poses``; search=False: one box over the whole frame); with
    ``max_persons`` > 1 the search also runs every REACQUIRE_EVERY frames while fewer are followed. With
    ``min_presence`` > 0 a person found without boxes who is there with less than that chance is nobody
    (``search.keep_present``: the model's presence head, else its joints' confidences; 0: the best guess always;
    None: the threshold a model's presence head records, else 0).
    refine_passes: extra passes on persons just found (see ``refine``); None: 0 for given ``boxes`` (tracked: for
    the first frame's, a person lost later being searched for with REFINE_PASSES), else REFINE_PASSES.
    on_error: None: a frame whose prediction fails raises; a function (index, exception): called, and that frame
    is skipped, or with ``keep_failed`` yielded with its ``error`` and no person (so a video drawn of the frames
    keeps every one in its place).

    Frame times are the frames' own (``FrameClock``): index / fps, or a variable-frame-rate video's timestamps.
    An anamorphic video (pixels shown wider or narrower than tall: ``pixel_aspect`` other than 1) is run on its
    frames as shown, the narrow axis stretched (``square_factors``), so the model sees people in their proportions;
    poses, boxes given and a detector's boxes are in the decoded frame's px all the same (``as_shown`` maps a
    frame and its poses to the picture a player shows; ``tracker.boxes`` are the model's frame's).
    Attributes: fps (the video's frame rate, 0.0 when it does not say; times then count 30 frames per second),
    frame_count (the container's frame count, None when it does not say), expected_frames (how many frames the
    iteration should yield, None when unknown). Iterate once; ``close()`` (or ``with``) releases the video early.
    Raises InputReadError when the video cannot be opened, or (while iterating) when no frame decodes, or (after
    the frames read) when a video file stops well short of the frames its container lists.
    """

    def __init__(self, predictor, source, every: int = 1, track: bool = True, smooth: bool = True, boxes=None,
                 detector: Optional[Callable] = None, refine_passes: Optional[int] = None,
                 on_error: Optional[Callable[[int, Exception], None]] = None, search: bool = True,
                 max_persons: int = 1, max_frames: Optional[int] = None, live: bool = False,
                 read_ahead: int = READ_AHEAD, min_presence: Optional[float] = None, keep_failed: bool = False):
        for name, value, least in (("every", every, 1), ("max_frames", 1 if max_frames is None else max_frames, 1),
                                   ("read_ahead", read_ahead, 0), ("max_persons", max_persons, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be a {'positive' if least else 'non-negative'} integer, got {value!r}")
        self.live, self.read_ahead = bool(live), int(read_ahead)
        self.max_frames = None if max_frames is None else int(max_frames)
        if boxes is not None and detector is not None:
            raise ValueError("give either boxes or a detector, not both")
        self.predictor, self.every, self.on_error = predictor, int(every), on_error
        self.keep_failed = bool(keep_failed)
        # checked now (shape and values), not at the first frame
        self._boxes = None if boxes is None else check_boxes(boxes, (0, 0)).astype(np.float32)
        self._detector, self.search, self.max_persons = detector, bool(search), int(max_persons)
        self.min_presence = min_presence
        self.refine_passes = int(refine_passes) if refine_passes is not None else (
            0 if boxes is not None else REFINE_PASSES)
        if isinstance(source, cv2.VideoCapture) or all(hasattr(source, a) for a in ("read", "grab", "release")):
            if hasattr(source, "isOpened") and not source.isOpened():
                raise InputReadError("the video capture is not open")
            self._cap, (self.frame_count, self.fps) = source, capture_info(source)
            self._listed = None  # a camera or stream lists no frames to check against
            self._counted, self._path = False, None
        elif isinstance(source, (str, os.PathLike)):
            try:
                self._cap, self.frame_count, self.fps = open_video(source)
            except InputReadError as e:  # a caller of this class may open several: the message names the file
                raise InputReadError(e.reason, source) from None
            self._listed, self._path = self.frame_count, source
            # OpenCV's count is the file's own (MP4, MOV, AVI), or an estimate not to hold it to unless it is cut off
            self._counted = counts_frames(source) or ends_early(source)
        else:
            raise TypeError(f"source must be a video file path or a cv2.VideoCapture, got {type(source).__name__}")
        self.pixel_aspect = pixel_aspect(self._cap)  # the decoded pixel's shown width / height
        # decoded frame -> the frame the model sees, square pixels: the narrow axis widened, no detail dropped
        self.square_factors = (self.pixel_aspect, 1.0) if self.pixel_aspect >= 1 else (1.0, 1.0 / self.pixel_aspect)
        self._stored: Optional[np.ndarray] = None  # the decoded frame being run (a detector is given this one)
        self._square: Optional[np.ndarray] = None  # ... and as the model sees it (as_shown draws on it again)
        model_boxes = self._to_square(self._boxes)
        self._reader: Optional[FrameReader] = None
        self._direct: Optional[Generator] = None  # the frames read in the caller's thread (read_ahead=0)
        searched_passes = REFINE_PASSES if refine_passes is None else int(refine_passes)  # lost persons' searches
        self.tracker = video_tracker(predictor, model_boxes, self._detect if detector is not None else None,
                                     searched_passes, self.search, self.max_persons, self.min_presence,
                                     start_passes=self.refine_passes) if track else None
        self.smoother = KeypointSmoother(self.fps) if track and smooth else None
        self._used = False

    @property
    def expected_frames(self) -> Optional[int]:
        whole = None if self.frame_count is None else (self.frame_count + self.every - 1) // self.every
        return self.max_frames if whole is None else min(whole, self.max_frames or whole)

    @property
    def _anamorphic(self) -> bool:
        return self.pixel_aspect != 1.0

    def _to_square(self, boxes: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Boxes (N, 4) in the decoded frame's px -> the model's frame's (square pixels)."""
        if boxes is None or not self._anamorphic:
            return boxes
        return rescale_boxes(boxes, self.square_factors).astype(np.float32)

    def as_shown(self, image: np.ndarray, poses: Optional[PoseResult] = None):
        """(image (H, W, 3) as decoded, its poses) -> (the image with square pixels, as a player shows it, the
        poses in its px); both as they are for a video of square pixels. What --vis and --show draw on."""
        if not self._anamorphic:
            return image, poses
        shown = self._square if image is self._stored and self._square is not None else self._to_square_frame(image)
        return shown, (None if poses is None else poses.rescaled(self.square_factors))

    def _to_square_frame(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) as decoded -> with square pixels (``square_factors``; geometry.py convention 5)."""
        return cv2.resize(image, (0, 0), fx=self.square_factors[0], fy=self.square_factors[1],
                          interpolation=cv2.INTER_LINEAR)

    def _detect(self, frame):
        """The detector's boxes (N, 4) for the model's ``frame`` (square pixels), or None (nobody found: the
        whole frame). The detector is given the frame as decoded, and its boxes are in that frame's px."""
        if self._detector is None:
            return None
        found = detector_boxes(self._detector(frame if self._stored is None else self._stored))  # or (boxes, scores)
        return self._to_square(found) if found is not None and len(found) else None

    def _poses(self, frame, index: int) -> PoseResult:
        """The poses in ``frame`` (the video's frame ``index``) as decoded, in the px of the frame the model sees
        (``square_factors``)."""
        if self._anamorphic:
            self._stored = frame
            frame = self._square = self._to_square_frame(frame)
        if self.tracker is not None:
            if isinstance(self.tracker, PoseTracker):  # frames apart with every, or a live source's dropped ones
                return self.tracker(frame, index)
            return self.tracker(frame)  # (one's own in its place)
        boxes = self._detect(frame) if self._detector is not None else self._to_square(self._boxes)
        return find_poses(self.predictor, frame, boxes, self.refine_passes, keep_all=self._boxes is not None,
                          search=self.search, max_persons=self.max_persons, min_presence=self.min_presence)

    def _nobody(self) -> PoseResult:
        """A result without persons, shaped as the predictor's (a failed frame's, ``keep_failed``)."""
        names = list(getattr(self.predictor, "keypoint_names", None) or [])
        k = len(names)
        return PoseResult(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32), np.zeros((0, 4), np.float32),
                          names, track_ids=None if self.tracker is None else np.zeros(0, np.int64))

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._used:
            raise RuntimeError("a VideoPoses can be iterated once; make a new one to read the video again")
        self._used = True
        clock = FrameClock(self.fps)
        if self.live or self.read_ahead:
            self._reader = FrameReader(self._cap, self.every, latest=self.live, ahead=max(self.read_ahead, 1),
                                       expected=self._listed, times=True, counted=self._counted)
            frames: Iterator = iter(self._reader)
        else:
            frames = self._direct = iter_video_frames(self._cap, self.every, self._listed, times=True,
                                                      counted=self._counted)
        if self.max_frames is not None:  # stop right after the last one: a camera would block for one more
            frames = itertools.islice(frames, self.max_frames)
        try:
            for index, frame, stamp in frames:
                time = clock(index, stamp)
                try:
                    poses = self._poses(frame, index)
                except Exception as e:  # a bad box, or the model (or OpenCV) failing on this frame
                    if self.on_error is None:
                        raise
                    self.on_error(index, e)
                    if self.keep_failed:
                        yield VideoFrame(index, time, frame, self._nobody(), e)
                    continue
                if self.smoother is not None:  # the frame's own time: skipped and failed frames keep the pace
                    poses = self.smoother(poses, time)
                if self._anamorphic:  # back to the decoded frame's px
                    poses = poses.rescaled((1.0 / self.square_factors[0], 1.0 / self.square_factors[1]))
                yield VideoFrame(index, time, frame, poses)
        except InputReadError as e:  # cut off, or frames that failed: named, as opening errors are
            if self._path is None or str(e) != e.reason:
                raise
            raise InputReadError(e.reason, self._path) from None
        finally:  # islice, an error or a kept traceback would leave the reader thread, and the capture, running
            self.close()

    @property
    def dropped_frames(self) -> int:
        """Frames a live source delivered while the model was busy, dropped for newer ones (0 unless ``live``)."""
        return 0 if self._reader is None else self._reader.dropped

    def close(self) -> None:
        """Release the video (iterating to the end does it too; so may a loop that calls it)."""
        if self._reader is not None:
            self._reader.close()  # its thread releases the capture once no read is in progress
        elif self._direct is not None:
            self._direct.close()  # releases the capture; a video closed part-way is not a cut-off file
        else:
            self._cap.release()

    def __enter__(self) -> "VideoPoses":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
