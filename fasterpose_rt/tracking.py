"""Person boxes from poses: follow persons through a video, or sharpen a photo's boxes, with the pose model alone.

The model's box padding is calibrated for the tightest box around a person's joints (how the training persons'
boxes were made). The box around the joints it has just found is that box, so one frame's poses give the next
frame's boxes (ROI tracking, as MediaPipe's pose tracker does), and a rough box (the whole photo, a detector's)
gets better with every pass. ``python -m benchmarks.tracking`` measures both.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, List, Optional, cast

import numpy as np

from .boxes import box_iou, nms
from .image import to_bgr_uint8
from .predictor import person_rows
from .preprocess import check_boxes, detector_boxes
from .search import SEARCH_CANDIDATES, best_rows, keep_present, min_presence_for, pick_persons, search_windows

if TYPE_CHECKING:
    from .predictor import PoseResult

__all__ = ["boxes_from_poses", "refine", "refine_batch", "drop_duplicates", "find_poses", "find_poses_batch",
           "PoseTracker", "REFINE_PASSES"]

# Defaults first looked at on LSPET validation persons, then checked on 1,000 training persons:
# python -m benchmarks.tracking --sweep --ann data/lspet_train1k.json (docs/usage.md, "Videos: tracking and smoothing").
JOINT_SCORE = 0.1  # joints scoring lower do not shape the box; 0.1 keeps nearly all of a found person's joints
MIN_JOINTS = 4  # a box from fewer joints says too little about where the person is
KEEP_SCORE = 0.2  # mean joint score below which a followed person counts as lost (no person: ~0.14 median)
SETTLED_IOU = 0.8  # refine stops for a person whose next box would overlap its last one this much
SAME_PERSON_IOU = 0.6  # two persons' boxes overlapping more than this are one person seen twice
REFOUND_IOU = 0.3  # a person acquired where a lost one was last seen (joints' boxes overlapping so) is that one ...
REMEMBER = 10  # ... if it was seen within this many frames (IoU 0.1 swapped ids of persons side by side: docs/usage.md)
REFOUND_REACH = 2.0  # ... or an unsure or just-lost person's centre lies within the lost one's box grown this much
REFINE_PASSES = 4  # most refine passes for a rough box; with SETTLED_IOU about 2 are run from a whole LSPET photo


def boxes_from_poses(keypoints, scores, frame_shape=None, joint_score: float = JOINT_SCORE,
                     min_joints: int = MIN_JOINTS):
    """The tightest box around each person's joints that score at least ``joint_score``.

    keypoints (N, K, 2) photo px; scores (N, K); frame_shape (H, W, ...), or (N, 2) each person's photo's (H, W),
    or None. Returns boxes (N, 4) float32
    [x, y, w, h] (sides at least 1 px) and ok (N,) bool: False where fewer than ``min_joints`` joints score that
    high, or (with frame_shape) where the box's centre lies outside the frame; those boxes mean nothing.
    """
    kp = np.asarray(keypoints, np.float64)
    sc = np.asarray(scores, np.float64)
    if kp.ndim != 3 or kp.shape[2] != 2 or sc.shape != kp.shape[:2]:
        raise ValueError(f"keypoints must be (N, K, 2) and scores (N, K), got {kp.shape} and {sc.shape}")
    use = (sc >= joint_score) & np.isfinite(kp).all(axis=2)
    lo = np.where(use[..., None], kp, np.inf).min(axis=1)
    hi = np.where(use[..., None], kp, -np.inf).max(axis=1)
    ok = use.sum(axis=1) >= max(int(min_joints), 1)
    lo, hi = np.where(ok[:, None], lo, 0.0), np.where(ok[:, None], hi, 1.0)
    centers, sizes = (lo + hi) / 2.0, np.maximum(hi - lo, 1.0)
    if frame_shape is not None:
        hw = np.asarray(frame_shape, np.float64)
        hw = hw[:, :2] if hw.ndim == 2 else hw[:2]  # (N, 2) per person, or (2,) for all
        inside = (centers >= -0.5) & (centers <= hw[..., ::-1] - 0.5)
        ok &= inside.all(axis=1)
    return np.concatenate([centers - sizes / 2.0, sizes], axis=1).astype(np.float32), ok


def refine(predictor, image, result, passes: int = 1, settled_iou: float = SETTLED_IOU,
           joint_score: float = JOINT_SCORE, min_joints: int = MIN_JOINTS, rows=None) -> PoseResult:
    """Run persons again, up to ``passes`` times, on the boxes around the joints ``result`` found in ``image``.

    A person stops early once the box around its joints overlaps the box it was just run on by IoU >=
    ``settled_iou`` (another pass would see nearly the same crop; 1.0: never stop early), or when its box cannot
    be made (fewer than ``min_joints`` joints scoring ``joint_score``: it keeps its pose and box).
    predictor: a PosePredictor; result: its PoseResult for ``image`` (any boxes); rows: the persons to refine,
    as indices (negative ones count from the end) or an (N,) bool mask (None: all). One model call per pass for
    all unsettled persons together. Returns a new PoseResult with the same persons in the same order (``result``
    is not changed). Raises ValueError for rows that name no person of ``result``.
    """
    return refine_batch(predictor, [image], [result], passes, settled_iou, joint_score, min_joints,
                        None if rows is None else [person_rows(rows, len(result), "rows")])[0]


def refine_batch(predictor, images, results, passes: int = 1, settled_iou: float = SETTLED_IOU,
                 joint_score: float = JOINT_SCORE, min_joints: int = MIN_JOINTS, rows=None,
                 rerun=None) -> List[PoseResult]:
    """``refine`` for several photos at once: each pass runs the unsettled persons of all of them in one
    ``predict_batch`` call. images, results: P photos and their PoseResults; rows: P index lists or bool masks
    (as ``refine``'s rows), or None (all).
    rerun: P bools, or None: in the first pass these photos' persons all run, settled or not, and in their own box
    where too few joints say where they are (another model's guesses that this one must see itself).
    Returns P new PoseResults."""
    if isinstance(images, np.ndarray) and images.ndim < 4:  # one photo: its rows would pass for P photos
        raise TypeError("refine_batch takes a sequence of photos; use refine(predictor, image, result) for one")
    passes = _pass_count(passes, "passes")
    images = [to_bgr_uint8(im) for im in images]  # a path or an odd layout gets its clear error before any .shape
    results = list(results)
    if len(images) != len(results):
        raise ValueError(f"{len(images)} photos but {len(results)} results")
    counts = np.array([len(r) for r in results], np.int64)
    if rows is not None:
        rows = list(rows)
        if len(rows) != len(results):
            raise ValueError(f"rows must hold one entry per photo ({len(results)}), got {len(rows)}")
        rows = [person_rows(r, int(c), f"rows[{p}]") for p, (r, c) in enumerate(zip(rows, counts))]
    if not counts.sum():
        return [replace(r, keypoints=r.keypoints.copy(), scores=r.scores.copy(), boxes=r.boxes.copy(),
                        presence=None if r.presence is None else r.presence.copy()) for r in results]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    owner = np.repeat(np.arange(len(results)), counts)
    hw = np.array([im.shape[:2] for im in images], np.float64).reshape(-1, 2)[owner]  # (persons, 2)
    keypoints = np.concatenate([r.keypoints for r in results])
    scores = np.concatenate([r.scores for r in results])
    boxes = np.concatenate([r.boxes for r in results])
    # presence (the model's presence head) follows its person's crop; None when any result lacks it
    there = None if any(r.presence is None for r in results) else np.concatenate([r.presence for r in results])
    todo = np.arange(counts.sum()) if rows is None else np.concatenate(
        [start + r for start, r in zip(starts, rows)]).astype(np.int64)
    todo = np.unique(todo)  # photo by photo, so each photo's boxes are one slice; a person named twice runs once
    forced = None if rerun is None else np.repeat(np.asarray(rerun, bool), counts)
    for step in range(passes):
        new_boxes, placed = boxes_from_poses(keypoints[todo], scores[todo], hw[todo], joint_score, min_joints)
        ok = placed & (box_iou(new_boxes, boxes[todo]) < settled_iou)
        if step == 0 and forced is not None:
            must = forced[todo]
            new_boxes = np.where((must & ~placed)[:, None], boxes[todo], new_boxes)
            ok |= must
        if not ok.any():
            break
        todo, new_boxes = todo[ok], new_boxes[ok]
        photos, first = np.unique(owner[todo], return_index=True)
        again = _predict_batch(predictor, [images[p] for p in photos], np.split(new_boxes, first[1:]))
        keypoints[todo] = np.concatenate([a.keypoints for a in again])
        scores[todo] = np.concatenate([a.scores for a in again])
        boxes[todo] = np.concatenate([a.boxes for a in again])
        if there is not None and any(a.presence is None for a in again):
            there = None  # a predictor that does not always report it (a wrapper): none at all
        if there is not None:
            there[todo] = np.concatenate([a.presence for a in again])
    return [replace(r, keypoints=keypoints[s:s + c], scores=scores[s:s + c], boxes=boxes[s:s + c],
                    presence=None if there is None else there[s:s + c])
            for r, s, c in zip(results, starts, counts)]


def _predict_batch(predictor, images, boxes) -> list:
    """predictor.predict_batch, or one ``predict`` per photo for predictors that only have that (e.g. wrappers)."""
    if hasattr(predictor, "predict_batch"):
        return predictor.predict_batch(images, boxes)
    return [predictor.predict(image, b) for image, b in zip(images, boxes)]


def drop_duplicates(result, iou_threshold: float = SAME_PERSON_IOU) -> PoseResult:
    """``result`` without the persons whose box overlaps a better-scored person's box by IoU > ``iou_threshold``
    (e.g. two detector boxes that refine moved onto one person). Keeps the order; returns a new PoseResult, or
    ``result`` itself when it has fewer than 2 persons."""
    if len(result) < 2:
        return result
    return result.take(np.sort(nms(result.boxes, result.scores.mean(axis=1), iou_threshold)))


def find_poses(predictor, image, boxes=None, refine_passes: int = REFINE_PASSES, keep_all: bool = False,
               search: bool = True, max_persons: int = 1, min_presence: Optional[float] = None) -> PoseResult:
    """Poses in a photo as ``fasterpose predict`` finds them: the persons in ``boxes`` (N, 4) [x, y, w, h], run
    again up to ``refine_passes`` times on the boxes around their joints (see ``refine``), then persons that
    refining moved onto one are reported once (``drop_duplicates``) unless ``keep_all`` (boxes the user gave:
    every person they name stays). Boxes given but empty (a detector that found nobody) mean nobody: no search runs
    (pass None for one, as the CLI's ``--detector`` does where its detector finds nobody).

    boxes None: one person, found by a ``search`` (``search.py``: the whole photo and a grid of windows, the best
    few refined, the best of them kept), or with ``max_persons`` > 1 up to that many (``search.pick_persons``);
    search=False: one box over the whole photo, refined. ``min_presence`` > 0: without boxes a person is reported
    only when it is there with at least that chance (``search.keep_present``: the model's presence head, else its
    better half of joints' confidences), so a photo of nobody has no person; 0: the best guess always; None: the
    threshold a model's presence head records (0.3 for both bundled models), else 0 (``search.min_presence_for``).
    Returns a PoseResult."""
    return find_poses_batch(predictor, [image], [boxes], refine_passes, keep_all, search, max_persons,
                            min_presence)[0]


def find_poses_batch(predictor, images, boxes=None, refine_passes: int = REFINE_PASSES, keep_all: bool = False,
                     search: bool = True, max_persons: int = 1,
                     min_presence: Optional[float] = None) -> List[PoseResult]:
    """``find_poses`` for several photos at once, their persons (and search windows) sharing the model's batches
    (faster for many small photos). images: P photos; boxes: P entries (each (N_p, 4) or None) or None.
    Returns P PoseResults."""
    if isinstance(images, np.ndarray) and images.ndim < 4:  # one photo: its rows would pass for gray photos
        raise TypeError("find_poses_batch takes a sequence of photos; use find_poses(predictor, image) for one")
    refine_passes = _pass_count(refine_passes)
    images = [to_bgr_uint8(im) for im in images]  # a path or an odd layout gets its clear error before any .shape
    per_photo = [None] * len(images) if boxes is None else list(boxes)
    if len(per_photo) != len(images):  # zip below would drop the extra ones unseen
        raise ValueError(f"{len(images)} photos but {len(per_photo)} box lists")
    searched = [search and b is None for b in per_photo]
    results = _find_batch(predictor, images, per_photo, searched, refine_passes, max_persons=max_persons,
                          min_presence=min_presence_for(predictor, min_presence))

    def finish(result, was_searched: bool):
        if was_searched or keep_all or not refine_passes:  # a search has picked its persons already
            return result
        return drop_duplicates(result)

    return [finish(r, s) for r, s in zip(results, searched)]


def _find_batch(predictor, images, boxes, searched, passes: int, joint_score: float = JOINT_SCORE,
                min_joints: int = MIN_JOINTS, max_persons: int = 1, min_presence: float = 0.0) -> list:
    """One call for every photo's boxes, or for the searched photos (``searched`` P bools) their search windows
    keeping the SEARCH_CANDIDATES x ``max_persons`` best; then ``refine_batch``; then, for a searched photo, the
    persons ``search.pick_persons`` reports (best first); a searched or whole-photo person stays only if
    ``search.keep_present(result, min_presence)`` keeps it. Returns P PoseResults."""
    max_persons = _person_count(max_persons)
    scout = getattr(predictor, "search_with", None)  # a faster model for the windows (PosePredictor's search_with)
    scouting = scout is not None and any(searched)
    if scouting:  # the windows go through the scout; its persons are this model's to refine from here on
        none = np.zeros((0, 4), np.float32)
        first = _predict_batch(scout, images, [search_windows(im.shape) if s else none
                                               for im, s in zip(images, searched)])
        first = [replace(r, calibration=getattr(predictor, "calibration", None)) for r in first]
        if not all(searched):  # the photos with boxes (or none to search) go to the model itself
            plain = _predict_batch(predictor, images, [none if s else b for b, s in zip(boxes, searched)])
            first = [f if s else r for f, r, s in zip(first, plain, searched)]
    else:
        first = _predict_batch(predictor, images, [search_windows(im.shape) if s else b
                                                    for im, b, s in zip(images, boxes, searched)])
    keep = SEARCH_CANDIDATES * max_persons
    picks = [best_rows(r.scores, keep) if s else None for r, s in zip(first, searched)]
    if scouting:
        # The whole photo (the windows' row 0), if picked, goes through the model itself in its own box, as in its own
        # search: around the scout's joints it can miss the person the whole photo shows it (examples/astronaut.jpg:
        # mean score 0.17 in the fast model's 474 x 406 box, where the helmet then won; 0.34 in the whole photo).
        # With its scores zeroed its joints place no box, so refine_batch's rerun runs it there (no extra crop).
        first = [_scores_zeroed(r, 0) if s else r for r, s in zip(first, searched)]
    first = [r.take(p) if s else r for r, p, s in zip(first, picks, searched)]
    # With a scout every pick runs through the model itself in the first pass, even at passes=0 (then only theirs).
    rows = [np.arange(len(r) if s or passes else 0) for r, s in zip(first, searched)] if scouting else None
    refined = refine_batch(predictor, images, first, max(passes, 1) if scouting else passes,
                           joint_score=joint_score, min_joints=min_joints, rows=rows,
                           rerun=searched if scouting else None)
    # A searched person is the best-scoring of several windows: its scores read through the search's own table.
    table = getattr(predictor, "searched_calibration", None)
    return [keep_present(replace(r.take(pick_persons(r.keypoints, r.scores, r.boxes, max_persons,
                                                     presence=r.presence)),
                                 calibration=table or r.calibration), min_presence) if s
            else keep_present(r, min_presence) if b is None else r
            for r, s, b in zip(refined, searched, boxes)]


class PoseTracker:
    """Follows persons through the frames of a video with the pose model alone.

    Each frame's boxes are the boxes around the joints found in the frame before, moved on by how far each
    person's box moved between the two frames before (``motion``; off: where it was, which a walking person or a
    panning camera leaves behind: ``python -m benchmarks.tracking``'s clips); frames where nobody is
    followed (the first, or after everyone was lost) take their boxes from ``acquire``. A result whose box cannot
    be made (fewer than ``min_joints`` joints scoring ``joint_score``) is lost. It is still reported, as a photo's
    search would report it, where the model's presence head gives it at least ``min_presence`` (its box: the one
    it was run on); without a head it is nobody. A person is also lost when its mean joint score falls below
    ``keep_score`` (it is still reported in that frame). A followed person whom the presence head gives less than
    ``min_presence`` (or ``keep_presence``, where lower) is nobody, however well its joints score (the camera cut
    away, or the person left): neither reported nor followed on, and in that frame re-found by the strict rules
    below alone, not the loose one for persons lost the frame before (after a cut, whoever stands near where it
    stood is somebody else); where that leaves nobody followed, the frame is
    acquired afresh, as the first is (a person the ``acquire`` function's box starts is reported as found there,
    as a detector's persons on photos are; a due search does not keep new persons away from where one so lost
    was).
    ``keep_presence`` (off by default), with a model that has
    a presence head: a followed person the head still gives that much is neither; it is reported and followed on
    (in the box it was found in, where its joints are too unsure to make one), however low its joints score. On
    waist-up close-up videos it restarts less often and costs less time, but scores lower than restarting
    (``python -m benchmarks.close_up_videos --keep-presence 0.3``), so it is not the default. Two persons whose
    boxes overlap by IoU > ``iou_threshold`` are one person (the better-scored stays).

    predictor: a PosePredictor. start: boxes (N, 4) [x, y, w, h] for the first frame (after each ``reset``: a
    video's given persons; no boxes: nobody there), after which persons are acquired as below.
    acquire: frame (H, W, 3) -> boxes (N, 4) [x, y, w, h] or None (None: one box
    over the whole frame; no boxes: nobody in this frame); acquire=None: as if it always gave None. Where it
    gives None and nobody is followed, one person (up to ``max_persons``) is found by a ``search`` of the frame,
    as ``find_poses`` finds a photo's (search=False: one box over the whole frame), and a person acquired so whom
    ``search.keep_present(result, min_presence)`` drops is nobody (None: ``search.min_presence_for``, the
    threshold a model's presence head records, else 0).
    refine_passes: extra passes on persons just acquired (see ``refine``), so a rough first box does not cost
    the first frames. start_passes: those passes for the ``start`` boxes' persons (None: ``refine_passes``; 0 for
    boxes as tight as a photo's given boxes: a person lost later is still found with ``refine_passes``).
    reacquire_every: with ``acquire``, also run it every that many frames and add the persons it finds that nobody
    follows (new arrivals); where it gives None (or without ``acquire``) and fewer than ``max_persons`` are
    followed, the search does so, up to ``max_persons`` in all; None: only when nobody is followed.

    Frames are counted by their index in the video where ``tracker(frame, index)`` is given it (VideoPoses does:
    with ``every`` or a live source's dropped frames the calls are frames apart), else by the calls. A person is
    remembered for ``remember`` frames, and at least until the processed frame after the one it was missed in;
    ``reacquire_every`` counts frames alike (due at the first call at or past each multiple).

    ``tracker(frame)`` -> PoseResult for that frame, its boxes (N, 4) where each person is in it (the box around
    its joints; where they are too unsure to make one, the box it was run on), with track_ids (N,): a person keeps
    its id (1, 2, ...) while it is followed, and when it is lost but acquired again within ``remember`` frames where
    it was last seen (the boxes around its joints then and now overlapping by IoU >= ``refound_iou``, or each box's
    centre inside the other; for a person reported on its presence alone, or one lost the frame before, its centre
    (best joint, if unsure) inside the box where the lost one was last seen, grown ``refound_reach`` times around
    its centre; refound_reach=0: IoU alone). A new person never gets an id
    used before ``reset``; re-finding can, rarely, hand a lost person's id to someone standing where it stood
    (``python -m benchmarks.tracking`` counts such swaps). ``tracker.boxes`` (M, 4) and ``tracker.ids`` (M,):
    what the next frame will use (M = 0: it acquires); ``tracker.reset()`` before an unrelated video.
    """

    def __init__(self, predictor, acquire: Optional[Callable] = None, refine_passes: int = REFINE_PASSES,
                 reacquire_every: Optional[int] = None, keep_score: float = KEEP_SCORE,
                 joint_score: float = JOINT_SCORE, min_joints: int = MIN_JOINTS,
                 iou_threshold: float = SAME_PERSON_IOU, refound_iou: float = REFOUND_IOU, remember: int = REMEMBER,
                 refound_reach: float = REFOUND_REACH,
                 search: bool = True, max_persons: int = 1, min_presence: Optional[float] = None,
                 keep_presence: Optional[float] = None, motion: bool = True, start=None,
                 start_passes: Optional[int] = None):
        if reacquire_every is not None and ((acquire is None and not search) or reacquire_every < 1):
            raise ValueError("reacquire_every needs an acquire function or the search, and a positive number of "
                             "frames")
        self.predictor, self.acquire = predictor, acquire
        self.refine_passes, self.reacquire_every = _pass_count(refine_passes), reacquire_every
        self.keep_score, self.joint_score, self.min_joints = keep_score, joint_score, min_joints
        self.iou_threshold, self.refound_iou, self.remember = iou_threshold, refound_iou, int(remember)
        self.refound_reach = float(refound_reach)
        self.search, self.max_persons = bool(search), _person_count(max_persons)
        self.min_presence = min_presence_for(predictor, min_presence)
        self.keep_presence = keep_presence
        self.motion = bool(motion)
        # boxes (N, 4) for the first frame after a reset, then acquire / the search (checked now, not at frame 1)
        self.start = None if start is None else check_boxes(start, (0, 0)).astype(np.float32)
        self.start_passes = self.refine_passes if start_passes is None else _pass_count(start_passes, "start_passes")
        self.reset()

    def reset(self) -> None:
        self._forget_where()
        self._started = False  # a frame done since the reset: the start boxes, if any, were used
        self._frames = self._last_id = 0
        self._at = -1  # the frame being run: its index in the video (or the call's number)
        self._before = -1  # ... and the one run before it (-1: none)
        self._next_due = 0  # the frame at or after which the due search (reacquire_every) runs next
        self._ruled_out = np.zeros(0, np.int64)
        self._shape: Optional[tuple] = None  # (h, w) of the last frame

    def _forget_where(self) -> None:
        """No person followed or remembered: where they were is in another frame's px (or none yet)."""
        self.boxes = np.zeros((0, 4), np.float32)
        self.ids = np.zeros(0, np.int64)
        self._centres = np.zeros((0, 2), np.float32)  # where each followed person's joints were centred last frame
        # persons reported in the last ``remember`` frames: where each was last seen, its id, and when
        self._seen_boxes = np.zeros((0, 4), np.float32)
        self._seen_ids, self._seen_at = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._seen_sure = np.zeros(0, bool)  # the box was made by its joints (else: the box it was run on)

    def __call__(self, frame, index: Optional[int] = None) -> PoseResult:
        """The persons in ``frame`` (H, W, 3), the video's frame ``index`` (None: counted by the calls)."""
        frame = to_bgr_uint8(frame)
        if self._shape is not None and frame.shape[:2] != self._shape:  # a stream that changed its resolution:
            self._forget_where()  # the boxes are in the old frame's px; persons are searched for afresh (new ids)
        self._shape = frame.shape[:2]
        followed = self.boxes
        self._before, self._at = self._at, self._frames if index is None else max(int(index), self._at + 1)
        self._ruled_out = np.zeros(0, np.int64)  # followed persons the presence head rules out in this frame
        self._frames += 1
        every = self.reacquire_every
        due = every is not None and self._at >= self._next_due
        if every is not None and due:
            self._next_due = (self._at // every + 1) * every
        from_start = self.start is not None and not self._started  # the given boxes, not a search's or detector's
        found = None if len(followed) and not due else self._acquire(frame)
        result = self.predictor.predict(frame, followed) if len(followed) and not due else None
        if result is not None and self._absent(result).all():  # everyone followed is gone (a cut, or they left):
            self._rule_out(np.ones(len(followed), bool))  # this frame is acquired afresh, as the first is
            followed, result, found = self.boxes, None, self._acquire(frame)
        if result is not None:  # the followed persons, found where they are now
            ids = self.ids
        elif found is None and self.search and len(followed) < self.max_persons:  # no boxes: search the frame
            searched = _find_batch(self.predictor, [frame], [None], [True], self.refine_passes, self.joint_score,
                                   self.min_joints, self.max_persons, self.min_presence)[0]
            kept = self.predictor.predict(frame, followed) if len(followed) else None
            here = None if kept is None else ~self._absent(kept)
            if kept is not None and here is not None and not here.all():  # gone: no bar to persons found where
                kept = kept.take(np.flatnonzero(here))  # they were
                self._rule_out(~here)
                followed = self.boxes
            if kept is not None:  # a due search: add the persons nobody follows, up to max_persons in all
                boxes = self._person_boxes(searched, frame.shape)[0]
                # nobody followed where they are now, nor where they were looked for
                there = np.concatenate([followed, self._person_boxes(kept, frame.shape)[0]])
                searched = searched.take(np.flatnonzero(_overlap(boxes, there) <= self.iou_threshold)[
                    :self.max_persons - len(followed)])
            result = _concat(kept, searched) if kept is not None else searched
            ids = np.concatenate([self.ids, self._ids_for(searched, frame.shape)])
        else:  # acquire; with persons followed, add only the ones nobody follows (a whole-frame box is no one new)
            if len(followed):
                new = np.zeros((0, 4), np.float32) if found is None else found[
                    _overlap(found, followed) <= self.iou_threshold]
                found = np.concatenate([followed, new])
            whole_frame = found is None  # nobody followed and no boxes to start from
            result = self.predictor.predict(frame, found)
            passes = self.start_passes if from_start else self.refine_passes
            result = refine(self.predictor, frame, result, passes, joint_score=self.joint_score,
                            min_joints=self.min_joints, rows=np.arange(len(followed), len(result)))  # the new ones
            if len(followed):  # a detector box refined onto a followed person is that person, who keeps its id
                fresh = np.arange(len(followed), len(result))
                same = _overlap(result.boxes[fresh], result.boxes[:len(followed)]) > self.iou_threshold
                result = result.take(np.concatenate([np.arange(len(followed)), fresh[~same]]))
            if whole_frame:
                result = keep_present(result, self.min_presence)
            ids = np.concatenate([self.ids, self._ids_for(result.take(slice(len(followed), None)), frame.shape)])
        result = drop_duplicates(replace(result, track_ids=ids), self.iou_threshold)
        # (a person a detector's box just started is the detector's, reported as on photos: only followed ones)
        gone = np.isin(cast(np.ndarray, result.track_ids), self.ids) & self._absent(result)
        if gone.any():  # followed persons the presence head now rules out: nobody, not reported nor followed on
            result = result.take(np.flatnonzero(~gone))
        boxes, reported, boxed = self._person_boxes(result, frame.shape)
        there = np.zeros(len(result), bool)  # followed persons the presence head still sees
        if self.keep_presence is not None and result.presence is not None:
            there = np.isin(cast(np.ndarray, result.track_ids), self.ids) & (result.presence >= self.keep_presence)
            boxes = np.where((there & ~boxed)[:, None], result.boxes, boxes)  # unsure joints: the same box again
            reported = reported | there
        result, boxes, there, boxed = result.take(reported), boxes[reported], there[reported], boxed[reported]
        # followed on: persons whose joints make a box and score well enough (two that meet: the next frame's
        # drop_duplicates); a person reported on its presence alone is searched for afresh in the next frame
        follow = (boxed & (result.scores.mean(axis=1) >= self.keep_score)) | there
        ids = cast(np.ndarray, result.track_ids)  # (set above)
        self._remember(ids, boxes, boxed)
        lost = len(self.ids) > int(np.isin(self.ids, ids[follow]).sum())  # a person followed into this frame
        if lost and every is not None and self.search and int(follow.sum()) < self.max_persons:
            # not followed on: the next frame is searched, as a frame with nobody followed is, not only the due
            # frame up to ``reacquire_every`` later (review s68: a still person dropped for up to 30 frames while
            # another was followed); a person re-found there keeps its id (``remember``)
            self._next_due = min(self._next_due, self._at + 1)
        self.boxes, self.ids = self._ahead(boxes[follow], ids[follow], boxed[follow])
        self._started = True
        # Reported: where each person is in this frame (the box around its joints), not the box it was looked for
        # in, which was guessed from the frames before and lags a moving person.
        return replace(result, boxes=np.asarray(boxes, np.float32))

    def _ahead(self, boxes, ids, boxed):
        """Where to look for the persons ``ids`` (N,) found in ``boxes`` (N, 4) in the next frame: each box moved
        on by its centre's shift since the frame before (``motion``; 0 for a person not followed then, and for one
        whose joints made no box, ``boxed`` (N,) False: its box is the one it was looked for in, already moved on),
        so a person walking at a steady pace is met where it will be. Returns (boxes (N, 4) float32, ids)."""
        centres = (boxes[:, :2] + boxes[:, 2:] / 2.0).astype(np.float32)
        shift = np.zeros_like(centres)
        if self.motion and len(self.ids) and len(ids):
            before = np.flatnonzero(np.isin(ids, self.ids) & boxed)
            at = np.argsort(self.ids)[np.searchsorted(np.sort(self.ids), ids[before])]
            shift[before] = centres[before] - self._centres[at]
        self._centres = centres
        ahead = boxes.astype(np.float32).copy()
        ahead[:, :2] += shift
        return ahead, ids

    def _remember(self, ids, boxes, boxed) -> None:
        """Where the persons just reported (ids (N,), boxes (N, 4), boxed (N,): their joints made the box) were
        seen, for re-finding them. A box its joints did not make says little, so such a person stays remembered
        where its joints last made one, if they did within ``remember`` frames."""
        again = ~boxed & np.isin(ids, self._seen_ids)
        if again.any():
            order = np.argsort(self._seen_ids)
            at = order[np.searchsorted(self._seen_ids[order], ids[again])]
            again[again] = self._seen_sure[at]  # a box its joints made
            boxes = boxes.copy()
            boxes[again] = self._seen_boxes[at[self._seen_sure[at]]]
        sure = boxed | again
        # remembered for ``remember`` frames, and at least until the processed frame after the one it was missed in
        window = max(self.remember, 2 * (self._at - self._before) + 1) if self._before >= 0 else self.remember
        kept = ~np.isin(self._seen_ids, ids) & (self._at - self._seen_at < window)
        self._seen_boxes = np.concatenate([boxes, self._seen_boxes[kept]])
        self._seen_ids = np.concatenate([ids, self._seen_ids[kept]])
        self._seen_at = np.concatenate([np.full(len(boxes), self._at), self._seen_at[kept]])
        self._seen_sure = np.concatenate([sure, self._seen_sure[kept]])

    def _acquire(self, frame):
        """Boxes (N, 4) float32 from the acquire function (``start`` until a frame is done), or None for one
        whole-frame box."""
        if self.start is not None and not self._started:
            return self.start
        return None if self.acquire is None else detector_boxes(self.acquire(frame))

    def _absent(self, result) -> np.ndarray:
        """(N,) bool: the persons of ``result`` whom the model's presence head gives less than ``min_presence``
        (or ``keep_presence``, where that is lower), all False without a head or with that threshold 0. A followed
        person so ruled out is nobody however its joints score: the camera cut away, or the person left faster
        than the joints' scores fell."""
        least = self.min_presence if self.keep_presence is None else min(self.min_presence, self.keep_presence)
        if result.presence is None or least <= 0:
            return np.zeros(len(result), bool)
        return np.asarray(result.presence) < least

    def _rule_out(self, rows: np.ndarray) -> None:
        """The followed persons ``rows`` (M,) bool of the M followed, whom the presence head rules out: nobody,
        not followed on, and in this frame re-found by ``_ids_for``'s strict rules alone (after a cut, whoever
        stands near where they stood is somebody else: the loose rule handed such a person their id)."""
        self._ruled_out = np.concatenate([self._ruled_out, self.ids[rows]])
        self.boxes, self.ids, self._centres = self.boxes[~rows], self.ids[~rows], self._centres[~rows]

    def _person_boxes(self, result, frame_shape):
        """Where each of ``result``'s N persons is, and whether it is somebody. Returns boxes (N, 4) (the box
        around its joints, or the box it was run on where its joints are too unsure to make one), reported (N,)
        bool (its joints make a box, or the presence head gives it at least ``min_presence``: a person, as a
        photo's search would report it; else nobody) and boxed (N,) bool (its joints make a box)."""
        boxes, boxed = boxes_from_poses(result.keypoints, result.scores, frame_shape, self.joint_score,
                                        self.min_joints)
        if result.presence is None:  # no presence head: unsure joints are nobody
            return boxes, boxed, boxed
        present = ~boxed & (result.presence >= self.min_presence)
        return np.where(present[:, None], result.boxes, boxes), boxed | present, boxed

    def _ids_for(self, acquired, frame_shape) -> np.ndarray:
        """Ids (N,) for the persons just acquired: the id of a person seen in the last ``remember`` frames whom
        nobody follows now, where the boxes around its joints then and now overlap by IoU >= ``refound_iou`` (the
        best pairs first), else a new one (0 for nobody). Boxes made from a few unsure joints jump from frame to
        frame, so two more cases count as that much overlap: each box's centre inside the other box; and where
        either box is one its joints did not make (the box a person reported on its presence alone was run on), or
        the lost one was last seen in the frame before (reported, but with too low a mean score to be followed),
        the new person's centre (its best joint, if unsure) inside the old box grown ``refound_reach`` times around
        its centre (``refound_reach`` 0: neither case, IoU alone)."""
        boxes, somebody, boxed = self._person_boxes(acquired, frame_shape)
        lost = ~np.isin(self._seen_ids, self.ids)
        candidates, seen = self._seen_ids[lost], self._seen_boxes[lost]
        iou = box_iou(boxes[:, None, :], seen[None, :, :])
        if self.refound_reach > 0:  # the centre rules (0: IoU alone)
            best = acquired.keypoints[np.arange(len(acquired)), np.argmax(acquired.scores, axis=1)]  # (N, 2)
            centre = np.where(boxed[:, None], boxes[:, :2] + boxes[:, 2:] / 2.0, best)  # (N, 2)
            seen_centre, seen_half = seen[:, :2] + seen[:, 2:] / 2.0, seen[:, 2:] / 2.0  # (M, 2)
            offset = np.abs(centre[:, None] - seen_centre[None])  # (N, M, 2)
            within = (offset <= seen_half[None]).all(axis=2)
            mutual = within & (offset <= boxes[:, None, 2:] / 2.0).all(axis=2)
            reach = (offset <= seen_half[None] * self.refound_reach).all(axis=2)
            just_lost = self._seen_at[lost] >= self._before  # (M,) last seen in the frame run before
            loose = ~boxed[:, None] | ~self._seen_sure[lost][None, :] | just_lost[None, :]
            loose &= ~np.isin(candidates, self._ruled_out)[None, :]  # ruled out this frame: the strict rules alone
            iou = np.where(np.where(loose, reach, mutual), np.maximum(iou, self.refound_iou), iou)
        iou = np.where(somebody[:, None], iou, 0.0)
        ids = np.zeros(len(acquired), np.int64)  # 0: nobody, dropped from the frame's result
        while iou.size and iou.max() >= self.refound_iou:  # one pass per re-found person
            i, j = np.unravel_index(np.argmax(iou), iou.shape)
            ids[i], iou[i, :], iou[:, j] = candidates[j], 0.0, 0.0
        fresh = (ids == 0) & somebody
        ids[fresh] = np.arange(self._last_id + 1, self._last_id + 1 + fresh.sum())
        self._last_id += int(fresh.sum())
        return ids


def _scores_zeroed(result, row: int):
    """``result`` with person ``row``'s joint scores 0 (a copy)."""
    scores = result.scores.copy()
    scores[row] = 0.0
    return replace(result, scores=scores)


def _pass_count(passes, name: str = "refine_passes") -> int:
    """A number of refine passes as an int: a whole number (numpy's too) of at least 0, else ValueError (int() would
    make 1.5 one pass and -1 none quietly, and None an unclear TypeError)."""
    if isinstance(passes, (bool, np.bool_)) or not isinstance(passes, (int, np.integer)) or passes < 0:
        raise ValueError(f"{name} must be a whole number of at least 0, got {passes!r}")
    return int(passes)


def _person_count(max_persons) -> int:
    """``max_persons`` as an int: a whole number (numpy's too) of at least 1, else ValueError (int() would make 1.5
    or True one person quietly, and NaN an unclear error)."""
    if isinstance(max_persons, (bool, np.bool_)) or not isinstance(max_persons, (int, np.integer)) or max_persons < 1:
        raise ValueError(f"max_persons must be a whole number of at least 1, got {max_persons!r}")
    return int(max_persons)


def _concat(a, b):
    """PoseResults a and b (persons of one frame) as one, a's persons first. A result has one score table: b's
    persons (a due search's newcomers) take a's, the boxes' one, for the frame they join in."""
    there = None if a.presence is None or b.presence is None else np.concatenate([a.presence, b.presence])
    return replace(a, keypoints=np.concatenate([a.keypoints, b.keypoints]),
                   scores=np.concatenate([a.scores, b.scores]), boxes=np.concatenate([a.boxes, b.boxes]),
                   track_ids=None, presence=there)


def _overlap(boxes, others) -> np.ndarray:
    """Largest IoU of each of boxes (N, 4) with any of others (M, 4). Returns (N,)."""
    if not len(others):
        return np.zeros(len(boxes))
    return box_iou(np.asarray(boxes)[:, None, :], np.asarray(others)[None, :, :]).max(axis=1)
