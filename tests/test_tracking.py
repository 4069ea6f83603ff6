"""Boxes from poses (fasterpose_rt.tracking): the box maths, refine passes and the video tracker's rules.

The tracker's rules are tested with a fake predictor whose persons are known, so each rule shows on its own;
the real runtime with a stand-in ONNX model follows a moving blob at the end.
"""
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import FakePredictor
from standin import paint_blobs

from fasterpose_rt import DEFAULT_MODELS, PosePredictor, PoseResult
from fasterpose_rt.boxes import box_iou
from fasterpose_rt.metrics import pck_interval
from fasterpose_rt.search import search_windows
from fasterpose_rt.tracking import (PoseTracker, boxes_from_poses, drop_duplicates, find_poses, find_poses_batch,
                                    refine, refine_batch)


def test_boxes_from_poses_is_the_tight_box_of_the_confident_joints():
    kp = np.array([[[10, 20], [30, 60], [20, 40], [500, 500]],   # the far joint scores low: left out
                   [[5, 5], [6, 6], [7, 7], [8, 8]]], np.float32)
    sc = np.array([[0.9, 0.5, 0.2, 0.05],
                   [0.9, 0.9, 0.05, 0.05]], np.float32)           # only 2 confident joints: no box
    boxes, ok = boxes_from_poses(kp, sc, min_joints=3)
    np.testing.assert_allclose(boxes[0], [10, 20, 20, 40])
    assert ok.tolist() == [True, False]
    boxes, ok = boxes_from_poses(kp, sc, min_joints=2)
    assert ok.tolist() == [True, True] and boxes[1, 2] == 1.0 and boxes[1, 3] == 1.0  # sides at least 1 px
    _, ok = boxes_from_poses(kp + 1000, sc, frame_shape=(100, 100, 3), min_joints=2)
    assert not ok.any()  # a box whose centre left the frame means nothing
    empty, ok = boxes_from_poses(np.zeros((0, 4, 2)), np.zeros((0, 4)))
    assert empty.shape == (0, 4) and ok.shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        boxes_from_poses(np.zeros((2, 4)), np.zeros((2, 4)))


PERSON = np.array([[40, 30], [30, 60], [50, 60], [40, 90]], np.float32)
FRAME = np.zeros((120, 200, 3), np.uint8)


def test_refine_moves_boxes_to_the_joints_and_keeps_persons_it_cannot_box():
    fake = FakePredictor([PERSON])
    first = fake.predict(FRAME, [[0, 0, 100, 120], [150, 0, 50, 50]])  # the person; nobody (centre joints, 0.05)
    out = refine(fake, FRAME, first, passes=3, settled_iou=1.01)  # never settles: all three passes run
    np.testing.assert_allclose(out.boxes[0], [30, 30, 20, 60])
    np.testing.assert_allclose(out.boxes[1], [150, 0, 50, 50])  # no confident joint: box and pose kept
    assert len(fake.calls) == 4 and fake.calls[1].shape == (1, 4)  # only the boxable person is run again
    fake.calls.clear()
    again = refine(fake, FRAME, first, passes=3)  # the second box would be the first again: it stops
    assert len(fake.calls) == 1 and np.array_equal(again.boxes, out.boxes)
    np.testing.assert_allclose(first.boxes[0], [0, 0, 100, 120])  # the input result is not changed
    fake.calls.clear()
    out = refine(fake, FRAME, first, passes=1, rows=[1])  # refine only person 1: nothing to do
    assert fake.calls == [] and np.array_equal(out.boxes, first.boxes)
    assert refine(fake, FRAME, first, passes=0) is not first


def test_refine_rows_may_be_a_bool_mask_and_must_name_persons_there_are():
    """A bool mask was taken as the indices 0 and 1 (the wrong persons, silently); a negative index in refine_batch
    reached into the photo before; an index past the end was a bare IndexError."""
    fake = FakePredictor([PERSON, PERSON + [100, 0]])
    first = fake.predict(FRAME, [[0, 0, 100, 120], [100, 0, 100, 120]])
    out = refine(fake, FRAME, first, passes=1, rows=np.array([False, True]))  # person 1 only
    np.testing.assert_allclose(out.boxes, [[0, 0, 100, 120], [130, 30, 20, 60]])
    assert np.array_equal(refine(fake, FRAME, first, passes=1, rows=[-1]).boxes, out.boxes)  # from the end
    fake.calls.clear()
    assert np.array_equal(refine(fake, FRAME, first, passes=1, rows=[1, 1, -1]).boxes, out.boxes)
    assert [len(c) for c in fake.calls] == [1]  # a person named twice runs once
    two = refine_batch(fake, [FRAME, FRAME], [first, first], passes=1, rows=[[-1], np.zeros(2, bool)])
    np.testing.assert_allclose(two[0].boxes, out.boxes)
    np.testing.assert_allclose(two[1].boxes, first.boxes)  # photo 1 untouched: -1 stays in photo 0
    for rows, match in (([5], r"rows names persons \[5\], but the result has 2"),
                        ([-3], r"persons \[-3\]"),
                        (np.array([True, False, True]), r"bool mask must hold one value per person \(2\)"),
                        ([0.5], "person indices or a bool mask")):
        with pytest.raises(ValueError, match=match):
            refine(fake, FRAME, first, rows=rows)
    with pytest.raises(ValueError, match=r"rows\[1\] names persons \[2\]"):
        refine_batch(fake, [FRAME, FRAME], [first, first], rows=[[0], [2]])
    with pytest.raises(ValueError, match=r"one entry per photo \(2\), got 1"):
        refine_batch(fake, [FRAME, FRAME], [first, first], rows=[[0]])


def test_refine_batch_runs_the_photos_unsettled_persons_together_and_equals_photo_by_photo(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    shapes = [(120, 80), (150, 120), (120, 80)]
    photos = [paint_blobs(shape, PERSON + shift) for shape, shift in zip(shapes, ([0, 0], [30, 20], [5, 10]))]
    boxes = [None, [[0, 0, 120, 150], [100, 0, 20, 20]], np.zeros((0, 4))]  # whole photo; a person and a corner
    firsts = pred.predict_batch(photos, boxes)
    calls = []
    real = PosePredictor.predict_batch

    class Counting(PosePredictor):
        def predict_batch(self, images, boxes=None):
            calls.append(len(images))
            return real(self, images, boxes)

    counting = Counting(standin_path, threads=1)
    together = refine_batch(counting, photos, firsts, passes=3)
    assert calls and calls[0] == 2  # pass 1: the two photos with persons, in one call
    for photo, first, got in zip(photos, firsts, together):
        alone = refine(pred, photo, first, passes=3)
        np.testing.assert_allclose(got.keypoints, alone.keypoints, atol=1e-4)
        np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-4)
    np.testing.assert_allclose(together[1].boxes[0], [60, 50, 20, 60], atol=0.5)  # the joints' box in photo 2
    found = find_poses_batch(pred, photos, boxes)
    assert [len(r) for r in found] == [1, 2, 0]
    for photo, b, got in zip(photos, boxes, found):
        np.testing.assert_allclose(got.keypoints, find_poses(pred, photo, b).keypoints, atol=1e-4)
    only = refine_batch(pred, photos, firsts, passes=1, rows=[[], [1], []])  # rows per photo: just the corner
    assert np.array_equal(only[0].boxes, firsts[0].boxes) and np.array_equal(only[1].boxes[0], firsts[1].boxes[0])
    assert refine_batch(pred, [], [], passes=2) == []
    # bad photos are named as predict names them; one photo given as the batch was a silent no-op (review s61)
    with pytest.raises(TypeError, match="use refine\\(predictor, image, result\\) for one"):
        refine_batch(pred, photos[1], [firsts[1]])
    with pytest.raises(TypeError, match="decoded image array, got the path"):
        refine(pred, "photo.jpg", firsts[1])
    with pytest.raises(ValueError, match="image is None"):
        refine(pred, None, firsts[1])
    with pytest.raises(ValueError, match="2 photos but 1 results"):
        refine_batch(pred, photos[:2], firsts[:1])
    gray = refine(pred, photos[1][..., 1], firsts[1], passes=1)  # any layout predict takes
    assert len(gray) == len(firsts[1])


def test_tracker_follows_moving_person_and_acquires_again_when_lost():
    fake = FakePredictor([PERSON], nobody=0.15)  # boxable joints, but a mean score under keep_score (0.2)
    tracker = PoseTracker(fake, refine_passes=0, search=False)
    first = tracker(FRAME)
    np.testing.assert_allclose(fake.calls[-1], [[-0.5, -0.5, 200, 120]])  # nobody followed: the whole frame
    np.testing.assert_allclose(first.boxes[0], [30, 30, 20, 60])  # reported: where the person is
    for step in range(1, 4):  # the person moves 5 px a frame; each frame uses the box of the frame before, moved
        fake.persons = PERSON[None] + [5 * step, 0]  # on by its last shift (none yet after the first frame)
        res = tracker(FRAME)
        np.testing.assert_allclose(fake.calls[-1], [[30 + 5 * step if step > 1 else 30, 30, 20, 60]])
        np.testing.assert_allclose(res.keypoints[0], fake.persons[0])
        # reported: where the person is in this frame (it was the box looked in, 5 px behind in the second frame)
        np.testing.assert_allclose(res.boxes[0], [30 + 5 * step, 30, 20, 60])
    fake.persons = np.zeros((0, 4, 2), np.float32)  # the person leaves: lost after this frame
    tracker(FRAME)
    assert len(tracker.boxes) == 0
    tracker(FRAME)
    np.testing.assert_allclose(fake.calls[-1], [[-0.5, -0.5, 200, 120]])  # acquires on the whole frame again


def test_a_frame_of_another_size_drops_the_boxes_of_the_frames_before():
    """A stream that changes resolution: the followed box, in the old frame's px, was run on the new frame (the
    person lost, then shrunk to a sliver: review s59); now the new frame is looked at whole."""
    fake = FakePredictor([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, search=False)
    tracker(FRAME)
    tracker(FRAME)
    assert len(tracker.boxes) == 1
    big = np.zeros((FRAME.shape[0] * 2, FRAME.shape[1] * 2, 3), np.uint8)
    fake.persons = PERSON[None] * 2
    res = tracker(big)
    np.testing.assert_allclose(fake.calls[-1], [[-0.5, -0.5, big.shape[1], big.shape[0]]])  # whole, not the old box
    np.testing.assert_allclose(res.keypoints[0], fake.persons[0])


def test_a_due_search_does_not_add_a_followed_person_again_where_it_is_now():
    """--max-persons 2: the search for new arrivals left out only persons overlapping the boxes the followed were
    looked for in, which a moving person has left: it was reported twice, and took a new id (review s58)."""
    fake = FakePredictor([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, reacquire_every=1, max_persons=2, motion=False)
    assert len(tracker(FRAME)) == 1
    fake.persons = PERSON[None] + [9, 0]  # still inside its box, which now overlaps it by IoU 0.38 only
    res = tracker(FRAME)
    assert len(res) == 1 and res.track_ids.tolist() == [1]
    np.testing.assert_allclose(res.keypoints[0], fake.persons[0])


def test_tracker_merges_two_boxes_on_one_person_and_reacquires_new_arrivals():
    second = PERSON + [100, 0]
    fake = FakePredictor([PERSON, second])
    calls = []

    def acquire(frame):
        calls.append(1)
        return [[25, 25, 30, 70], [28, 28, 26, 66]]  # a detector's two boxes on the first person only

    tracker = PoseTracker(fake, acquire=acquire, refine_passes=0, reacquire_every=3)
    res = tracker(FRAME)
    assert len(res) == 1 and len(tracker.boxes) == 1  # two boxes on one person: one person
    tracker(FRAME)
    tracker(FRAME)
    assert len(calls) == 1

    def acquire_both(frame):
        calls.append(1)
        return [[28, 28, 24, 64], [125, 25, 30, 70]]  # the followed person again, and a new one

    tracker.acquire = acquire_both
    res = tracker(FRAME)  # frame 3: the re-acquisition keeps the followed box and adds only the new person
    assert len(calls) == 2 and len(res) == 2 and len(fake.calls[-1]) == 2  # the re-found one is not run twice
    np.testing.assert_allclose(res.keypoints[1], second)
    assert len(tracker.boxes) == 2
    with pytest.raises(ValueError, match="reacquire_every"):
        PoseTracker(fake, reacquire_every=5, search=False)  # nothing to re-acquire with
    with pytest.raises(ValueError, match="reacquire_every"):
        PoseTracker(fake, acquire=acquire, reacquire_every=0)


def test_tracker_search_adds_new_arrivals_up_to_max_persons():
    second = PERSON + [100, 0]
    fake = FakePredictor([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, max_persons=2, reacquire_every=3)
    assert len(tracker(FRAME)) == 1  # frame 0: the search finds the one person there
    fake.persons = np.stack([PERSON, second])  # somebody arrives
    for _ in range(2):  # frames 1, 2: the followed person only, one box a call
        assert len(tracker(FRAME)) == 1 and len(fake.calls[-1]) == 1
    res = tracker(FRAME)  # frame 3: the search runs again and adds the one nobody follows
    assert len(res) == 2 and res.track_ids.tolist() == [1, 2]
    np.testing.assert_allclose(res.keypoints[1], second)
    res = tracker(FRAME)
    assert len(res) == 2 and len(fake.calls[-1]) == 2  # both followed: no search
    fake.calls.clear()
    for _ in range(3):  # frames 5-7: max_persons followed, so the due search at frame 6 is skipped
        tracker(FRAME)
    assert all(len(c) == 2 for c in fake.calls)


def test_a_person_lost_beside_a_followed_one_is_searched_for_in_the_next_frame_and_keeps_its_id():
    """review s68: with --max-persons 2, a still person lost for one frame (its box slid off on jittery joints) while
    another was followed stayed unreported until the due search, up to 30 frames later."""
    second = PERSON + [100, 0]
    fake = FakePredictor([PERSON, second])
    tracker = PoseTracker(fake, refine_passes=0, max_persons=2, reacquire_every=30)
    assert tracker(FRAME, 0).track_ids.tolist() == [1, 2]
    assert tracker(FRAME, 1).track_ids.tolist() == [1, 2]
    fake.persons = PERSON[None]  # frame 2: the second one is not where it is looked for
    assert tracker(FRAME, 2).track_ids.tolist() == [1]
    fake.persons = np.stack([PERSON, second])
    res = tracker(FRAME, 3)  # searched again at once, not at frame 30
    assert res.track_ids.tolist() == [1, 2] and len(fake.calls[-2]) > 2  # (the search's windows)
    np.testing.assert_allclose(res.keypoints[1], second)
    fake.calls.clear()
    for index in range(4, 9):  # both followed again: no search
        assert len(tracker(FRAME, index)) == 2
    assert all(len(c) == 2 for c in fake.calls)


def test_tracker_acquire_returning_no_boxes_means_nobody():
    fake = FakePredictor([PERSON])
    tracker = PoseTracker(fake, acquire=lambda frame: np.zeros((0, 4)))
    assert len(tracker(FRAME)) == 0 and len(tracker.boxes) == 0
    fake.calls.clear()
    tracker = PoseTracker(fake, acquire=lambda frame: None, search=False)  # None: the whole frame
    assert len(tracker(FRAME)) == 1 and np.array_equal(fake.calls[0], [[-0.5, -0.5, 200, 120]])
    fake.calls.clear()
    tracker = PoseTracker(fake, acquire=lambda frame: None)  # None, and search on: the frame is searched
    assert len(tracker(FRAME)) == 1 and np.array_equal(fake.calls[0], search_windows(FRAME.shape))


class HeadedFake(FakePredictor):
    """FakePredictor with a presence head: every person it returns has presence ``presence``, and its joints'
    scores are multiplied by ``sureness`` (0.1: no joint reaches the tracker's 0.1, so no box can be made)."""

    presence, sureness, has_presence = 0.9, 1.0, True

    def predict(self, image, boxes=None):
        res = super().predict(image, boxes)
        return replace(res, scores=res.scores * self.sureness, presence=np.full(len(res), self.presence, np.float32))


def test_tracker_reports_an_unsure_person_the_presence_head_sees_and_re_finds_it_by_its_best_joint():
    fake = HeadedFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0)
    first = tracker(FRAME)
    assert first.track_ids.tolist() == [1] and len(tracker.boxes) == 1
    followed = tracker.boxes.copy()
    fake.sureness = 0.1  # too unsure to box, but the head sees somebody: reported in the box it was run on, lost
    res = tracker(FRAME)
    assert res.track_ids.tolist() == [1] and np.array_equal(res.boxes, followed) and len(tracker.boxes) == 0
    res = tracker(FRAME)  # searched afresh, still unsure: its best joint lies where it was last boxed: id 1
    assert res.track_ids.tolist() == [1] and len(tracker.boxes) == 0
    assert not np.array_equal(res.boxes, followed)  # a search window
    fake.sureness = 1.0  # sure again: re-found by the box its joints made before, not the window's
    res = tracker(FRAME)
    assert res.track_ids.tolist() == [1] and len(tracker.boxes) == 1
    fake.sureness, fake.presence = 0.1, 0.2  # unsure, and the head does not see anybody either: nobody
    assert len(tracker(FRAME)) == 0 and len(tracker.boxes) == 0
    fake.presence = 0.9  # somebody unsure far from anyone seen: a new id
    fake.persons = PERSON[None] + [120, 0]
    assert tracker(FRAME).track_ids.tolist() == [2]
    tracker = PoseTracker(fake, refine_passes=0, min_presence=0.95)  # asked for more than the head gives: nobody
    assert len(tracker(FRAME)) == 0


class GhostFake(HeadedFake):
    """HeadedFake whose persons left of ``ghosts_left_of`` (their joints' mean x) are ghosts: joints the model is
    fairly sure of (0.45 each, enough to box and follow), but a presence head that sees nobody (0.05)."""

    ghosts_left_of = -1.0

    def predict(self, image, boxes=None):
        res = super().predict(image, boxes)
        ghost = res.keypoints[..., 0].mean(axis=1) < self.ghosts_left_of
        return replace(res, scores=np.where(ghost[:, None], res.scores * 0.5, res.scores),
                       presence=np.where(ghost, 0.05, res.presence).astype(np.float32))


def test_a_followed_person_the_presence_head_rules_out_is_nobody_and_the_frame_is_searched_at_once():
    """review s66: after a cut, the person followed before was still reported (joints scoring above the tracker's
    thresholds on whatever the new shot held, presence 0.0), and the person the new shot shows was missed until
    that ghost's scores fell."""
    fake = GhostFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0)
    assert tracker(FRAME).track_ids.tolist() == [1]
    fake.persons, fake.ghosts_left_of = np.stack([PERSON, PERSON + [120, 0]]), 100.0  # the cut: a ghost, and B
    res = tracker(FRAME)
    assert res.track_ids.tolist() == [2] and res.keypoints[0, 0, 0] > 100  # B, found in this very frame
    assert len(tracker.boxes) == 1 and tracker.boxes[0, 0] > 100  # and followed on
    fake.ghosts_left_of = -1.0
    two = PoseTracker(fake, refine_passes=0, start=np.array([[20, 20, 40, 80], [140, 20, 40, 80]], np.float32))
    assert two(FRAME).track_ids.tolist() == [1, 2]
    fake.ghosts_left_of = 100.0  # one of two followed persons gone: the other is reported and followed alone
    res = two(FRAME)
    assert len(res) == 1 and res.keypoints[0, 0, 0] > 100 and len(two.boxes) == 1
    for rule in ({"min_presence": 0.0}, {"keep_presence": 0.01}):  # every guess stays; kept down to 0.01
        no_rule = PoseTracker(fake, refine_passes=0, **rule)
        fake.ghosts_left_of = -1.0
        no_rule(FRAME)
        fake.ghosts_left_of = 100.0
        res = no_rule(FRAME)
        assert len(res) == 1 and res.keypoints[0, 0, 0] < 100 and len(no_rule.boxes) == 1, rule  # A, followed on


def test_a_person_a_cut_shows_near_where_a_ruled_out_one_stood_is_somebody_new():
    """review s67: the tracker knew the cut (the followed person ruled out by the presence head) and acquired the
    frame afresh, but gave the person it found there the old id by the rule for persons lost the frame before
    (centre within the old box grown twice), and the smoother blended the two. A later frame may still re-find a
    ruled-out person (lose_and_find_again)."""
    fake = GhostFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0)
    assert tracker(FRAME).track_ids.tolist() == [1]
    fake.persons, fake.ghosts_left_of = np.stack([PERSON + [15, 0], PERSON]), 50.0  # the cut: B, and A a ghost
    res = tracker(FRAME)
    assert res.track_ids.tolist() == [2] and res.keypoints[0, 0, 0] == PERSON[0, 0] + 15

    class Misfiring(HeadedFake):  # the head rules the followed person out once, then sees it again
        misfires = 0

        def predict(self, image, boxes=None):
            res = super().predict(image, boxes)
            if self.misfires:
                self.misfires -= 1
                res = replace(res, presence=np.full(len(res), 0.05, np.float32))
            return res

    fake = Misfiring([PERSON])
    tracker = PoseTracker(fake, refine_passes=0)
    assert tracker(FRAME).track_ids.tolist() == [1]
    fake.misfires = 1  # the same person found again where it stood, its box the same: the strict rules keep its id
    assert tracker(FRAME).track_ids.tolist() == [1]


def test_frames_are_counted_by_their_index_in_the_video_where_given():
    """review s67: the memory of lost persons and the due search counted calls, so with --every 5 a person who left
    40 frames before was remembered (8 calls) and gave its id to a newcomer, and the search for new arrivals ran
    every 30 calls (150 frames)."""
    fake = HeadedFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, search=False)
    assert tracker(FRAME, 0).track_ids.tolist() == [1]
    fake.persons, fake.presence = np.zeros((0, 4, 2), np.float32), 0.0
    for index in range(5, 60, 5):  # gone for 55 frames, 11 calls
        assert len(tracker(FRAME, index)) == 0
    fake.persons, fake.presence = PERSON[None], 0.9
    assert tracker(FRAME, 60).track_ids.tolist() == [2]  # somebody new where it stood
    fake.persons, fake.presence = np.zeros((0, 4, 2), np.float32), 0.0
    assert len(tracker(FRAME, 80)) == 0  # missed in one processed frame, 20 frames apart
    fake.persons, fake.presence = PERSON[None], 0.9
    assert tracker(FRAME, 100).track_ids.tolist() == [2]  # remembered until the next one
    fake = FakePredictor([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, max_persons=2, reacquire_every=30)
    found = {}
    for index in range(0, 80, 7):
        if index == 7:
            fake.persons = np.stack([PERSON, PERSON + [100, 0]])  # somebody arrives
        found[index] = len(tracker(FRAME, index))
    assert [i for i, n in found.items() if n == 2][0] == 35  # the first frame at or past frame 30


class PickedGhostFake(FakePredictor):
    """A predictor with a presence head: a box sees the person whose joints' centre is inside it and nearest its
    centre (joints 0.9, presence 0.9), or, for the persons at indices ``ghosts``, a ghost (joints 0.45, presence
    0.05); a box that sees nobody: joints at its centre scoring 0.05, presence 0.05."""

    has_presence, ghosts = True, ()

    def predict(self, image, boxes=None):
        h, w = image.shape[:2]
        b = np.array([[-0.5, -0.5, w, h]], np.float32) if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4)
        kp = np.repeat((b[:, None, :2] + b[:, None, 2:] / 2), 4, axis=1)
        sc, there = np.full((len(b), 4), 0.05, np.float32), np.full(len(b), 0.05, np.float32)
        centres = self.persons.mean(axis=1)
        for i, (x, y, bw, bh) in enumerate(b):
            inside = np.flatnonzero((centres[:, 0] >= x) & (centres[:, 0] <= x + bw) & (centres[:, 1] >= y)
                                    & (centres[:, 1] <= y + bh))
            if len(inside):
                j = inside[np.argmin(np.linalg.norm(centres[inside] - [x + bw / 2, y + bh / 2], axis=1))]
                kp[i], sc[i], there[i] = self.persons[j], 0.45 if j in self.ghosts else 0.9, \
                    0.05 if j in self.ghosts else 0.9
        return PoseResult(kp.astype(np.float32), sc, b, ["a", "b", "c", "d"], presence=there)


def test_a_due_search_finds_a_person_where_a_followed_one_was_ruled_out():
    """review s66: on a frame the search was due, a person found where a followed one (ruled out by the presence
    head in that very frame) stood was dropped as that person's duplicate, and nobody was reported."""
    fake = PickedGhostFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, max_persons=2, reacquire_every=2)
    assert tracker(FRAME).track_ids.tolist() == [1]  # frame 0 (due): A
    assert tracker(FRAME).track_ids.tolist() == [1]  # frame 1: A followed
    # frame 2 (due): A a ghost, B where A stood (their boxes overlapping by IoU 0.67, over SAME_PERSON_IOU)
    fake.persons, fake.ghosts = np.stack([PERSON, PERSON + [4, 0]]), (0,)
    res = tracker(FRAME)
    assert len(res) == 1 and res.keypoints[0, 0, 0] == PERSON[0, 0] + 4 and len(tracker.boxes) == 1


def lose_and_find_again(tracker, fake, again, sureness=1.0):
    """Frame 1: ``fake``'s person, found on the whole frame (id 1); frame 2: nobody (lost); frame 3: persons
    ``again`` (P, 4, 2), their joints' scores times ``sureness``. Returns frame 3's result."""
    assert tracker(FRAME).track_ids.tolist() == [1]
    fake.persons, fake.presence = np.zeros((0, 4, 2), np.float32), 0.0
    assert len(tracker(FRAME)) == 0 and len(tracker.boxes) == 0
    fake.persons, fake.presence, fake.sureness = np.asarray(again, np.float32).reshape(-1, 4, 2), 0.9, sureness
    return tracker(FRAME)


def test_tracker_re_finds_a_person_whose_new_box_overlaps_little_but_shares_its_centre():
    # PERSON's box is [30, 30, 20, 60]; crouched, its joints make [25, 50, 30, 20]: IoU 0.29, under refound_iou
    # (0.3), but each box's centre lies inside the other box
    crouched = np.array([[25, 50], [55, 50], [25, 70], [55, 70]], np.float32)
    for again, expected in ((crouched, [1]), (crouched + [30, 0], [2])):  # beside: its centre outside the old box
        fake = HeadedFake([PERSON])
        res = lose_and_find_again(PoseTracker(fake, refine_passes=0, search=False), fake, again)
        assert res.track_ids.tolist() == expected


def test_tracker_re_finds_a_person_lost_the_frame_before_within_its_old_box_grown():
    # frame 2: every joint at 0.135 (0.9 x 0.15): boxed and reported, but a mean under 0.2, so lost; frame 3: the
    # person 15 px to the right, found afresh on the whole frame. Its box overlaps frame 2's ([30, 30, 20, 60]) by
    # IoU 0.14 and neither box holds the other's centre, but it was seen the frame before and its centre lies within
    # the old box grown twice around its centre (x 20-60): the same person. With refound_reach 1, 25 px away, or
    # seen two frames before: somebody new
    for shift, reach, expected in ((15, 2.0, [1]), (15, 1.0, [2]), (25, 2.0, [2])):
        fake = HeadedFake([PERSON])
        tracker = PoseTracker(fake, refine_passes=0, search=False, refound_reach=reach)
        assert tracker(FRAME).track_ids.tolist() == [1]
        fake.sureness = 0.15
        res = tracker(FRAME)
        assert res.track_ids.tolist() == [1] and res.boxes[0].tolist() == [30, 30, 20, 60] and not len(tracker.boxes)
        fake.sureness, fake.persons = 1.0, PERSON[None] + [shift, 0]
        assert tracker(FRAME).track_ids.tolist() == expected
    fake = HeadedFake([PERSON])
    tracker = PoseTracker(fake, refine_passes=0, search=False)
    tracker(FRAME)
    fake.sureness = 0.15
    tracker(FRAME)
    fake.persons, fake.presence = np.zeros((0, 4, 2), np.float32), 0.0  # a frame with nobody between
    assert len(tracker(FRAME)) == 0
    fake.persons, fake.presence, fake.sureness = PERSON[None] + [15, 0], 0.9, 1.0
    assert tracker(FRAME).track_ids.tolist() == [2]


def test_tracker_re_finds_an_unsure_person_by_its_best_joint_near_where_the_lost_one_stood():
    # too unsure to box (every joint 0.9 x 0.1), so its best joint, the first, stands for it: at x 55 outside the
    # old box (x 30-50), inside it grown twice around its centre (x 20-60, refound_reach 2); at x 65 beyond both
    for shift, reach, expected in ((15, 2.0, [1]), (15, 1.0, [2]), (25, 2.0, [2])):
        fake = HeadedFake([PERSON])
        tracker = PoseTracker(fake, refine_passes=0, search=False, refound_reach=reach)
        res = lose_and_find_again(tracker, fake, PERSON + [shift, 0], sureness=0.1)
        assert res.track_ids.tolist() == expected and len(tracker.boxes) == 0  # reported, not followed


def test_tracker_with_the_real_runtime_follows_a_moving_blob(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    tracker = PoseTracker(pred, refine_passes=1)
    points = np.array([[100, 30], [90, 60], [110, 60], [100, 90]], np.float64)  # centred: whole-frame start
    for step in range(6):
        moved = points + [6 * step, 2 * step]
        res = tracker(paint_blobs((140, 200), moved.tolist()))
        assert len(res) == 1
        np.testing.assert_allclose(res.keypoints[0], moved, atol=0.6)
        if step > 1:  # the box of the joints found one frame before, moved on as it moved: where it is now
            np.testing.assert_allclose(res.boxes[0], [90 + 6 * step, 30 + 2 * step, 20, 60], atol=0.8)
    tracker.reset()
    assert len(tracker.boxes) == 0
    still = PoseTracker(pred, refine_passes=1, motion=False)  # motion off: the box of the frame before, as it was
    for step in range(2):
        res = still(paint_blobs((140, 200), (points + [6 * step, 2 * step]).tolist()))
    np.testing.assert_allclose(still.boxes[0], [90 + 6, 30 + 2, 20, 60], atol=0.6)  # the next frame's: not moved on
    res = still(paint_blobs((140, 200), (points + [12, 4]).tolist()))
    np.testing.assert_allclose(res.boxes[0], [90 + 12, 30 + 4, 20, 60], atol=0.6)  # reported: where it is now


def test_pck_interval_resamples_groups_together():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = np.tile(np.array([[0, 0], [10, 0], [0, 20], [10, 20]], np.float64), (6, 1, 1))
    vis = np.ones((6, 4), bool)
    pred = gt.copy()
    pred[3:] += 100  # persons 3..5 miss every joint
    lo, hi = pck_interval(pred, gt, vis, names, groups=[0, 0, 0, 1, 1, 1])
    assert (lo, hi) == (0.0, 1.0)  # two groups: a resample holds all hits, none, or half
    lo_p, hi_p = pck_interval(pred, gt, vis, names)
    assert 0.0 < lo_p < 0.5 < hi_p < 1.0  # six persons on their own: a narrower interval


def test_drop_duplicates_keeps_the_better_scored_of_overlapping_persons_in_order():
    kp = np.zeros((3, 4, 2), np.float32)
    scores = np.array([[0.3] * 4, [0.9] * 4, [0.5] * 4], np.float32)
    boxes = np.array([[10, 10, 20, 60], [11, 10, 20, 60], [100, 10, 20, 60]], np.float32)
    res = drop_duplicates(PoseResult(kp, scores, boxes, ["a", "b", "c", "d"]))
    np.testing.assert_array_equal(res.boxes, boxes[[1, 2]])  # person 0 is person 1 seen twice; order kept
    np.testing.assert_array_equal(res.scores, scores[[1, 2]])
    one = PoseResult(kp[:1], scores[:1], boxes[:1], ["a", "b", "c", "d"])
    assert drop_duplicates(one) is one


def test_a_path_instead_of_a_photo_gets_the_predictors_clear_error(standin_path):
    """find_poses (its search) and the tracker read the photo's shape first; they say what predict says."""
    pred = PosePredictor(standin_path, threads=1)
    for call in (lambda: find_poses(pred, "photo.jpg"), lambda: PoseTracker(pred)("photo.jpg")):
        with pytest.raises(TypeError, match="cv2.imread"):
            call()


def test_a_detector_box_refined_onto_a_followed_person_is_that_person():
    """Asked again for new arrivals, a detector draws a loose box around a person already followed (too unlike the
    box around the joints to count as the same); refined, it lands on that person. It must not take the person's
    place with a new id, even where its pose happens to score a little better."""
    class LaterCallsScoreHigher(FakePredictor):  # which of two poses of one person scores better is chance
        def predict(self, image, boxes=None):
            res = super().predict(image, boxes)
            return replace(res, scores=res.scores + 0.001 * len(self.calls))

    fake = LaterCallsScoreHigher([PERSON])
    loose = np.array([[0, 0, 110, 119]], np.float32)  # around the person, IoU 0.15 with the box of its joints
    tracker = PoseTracker(fake, acquire=lambda frame: loose, reacquire_every=3)
    ids = [tracker(FRAME).track_ids.tolist() for _ in range(7)]  # the detector runs at frames 0, 3 and 6
    assert ids == [[1]] * 7


def test_a_scouts_whole_photo_pick_runs_through_the_model_in_the_whole_photo():
    """With a scout (PosePredictor's search_with), the whole photo, when it is among the picks, goes through the
    model itself in its own box, as in the model's own search, not only around the scout's joints."""
    scout, main_model = FakePredictor([PERSON]), FakePredictor([PERSON])
    main_model.search_with = scout
    find_poses(main_model, FRAME)
    whole = search_windows(FRAME.shape)[0]
    assert scout.calls[0][0].tolist() == whole.tolist()  # the scout's whole-photo row scores best: picked
    assert whole.tolist() in main_model.calls[0].tolist()


@pytest.mark.skipif(not all(p.is_file() for p in DEFAULT_MODELS.values()), reason="a bundled model is absent")
def test_the_fast_models_windows_find_the_demo_photos_astronaut_as_the_search_does():
    """--fast-search had reported the helmet: the default scored the whole photo only in the box around the fast
    model's joints (0.17, against 0.34 in the whole photo itself), and the helmet's window won."""
    photo = cv2.imread(str(Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"))
    plain = find_poses(PosePredictor(threads=2), photo)
    scouted = find_poses(PosePredictor(threads=2, search_with=PosePredictor(variant="fast", threads=2)), photo)
    assert len(plain) == len(scouted) == 1 and box_iou(scouted.boxes, plain.boxes)[0] > 0.5, scouted.boxes


def test_find_poses_batch_refuses_more_box_lists_than_photos():
    with pytest.raises(ValueError, match="1 photos but 2 box lists"):
        find_poses_batch(FakePredictor([PERSON]), [FRAME], [None, [[0, 0, 10, 10]]])


@pytest.mark.parametrize("count", [1.5, 2.0, True, float("nan"), float("inf"), 0, "2"])
def test_max_persons_must_be_a_whole_number_of_at_least_one(count):
    fake = FakePredictor([PERSON])
    for call in (lambda: find_poses(fake, FRAME, max_persons=count), lambda: PoseTracker(fake, max_persons=count)):
        with pytest.raises(ValueError, match="max_persons must be a whole number"):
            call()
    assert len(find_poses(fake, FRAME, max_persons=np.int64(2))) == 1  # numpy's integers are whole numbers
    assert PoseTracker(fake, max_persons=np.int64(2)).max_persons == 2


@pytest.mark.parametrize("passes", [None, -1, 1.5, True, "2"])
def test_refine_passes_must_be_a_whole_number_of_at_least_zero(passes):
    """int() made 1.5 one pass and -1 none quietly, and None a TypeError from inside (review s68)."""
    fake = FakePredictor([PERSON])
    result = find_poses(fake, FRAME, [[20, 20, 40, 80]], refine_passes=0)
    for call in [lambda: find_poses(fake, FRAME, refine_passes=passes), lambda: PoseTracker(fake, refine_passes=passes),
                 lambda: refine(fake, FRAME, result, passes)] + ([] if passes is None else  # None: refine_passes'
                                                                 [lambda: PoseTracker(fake, start_passes=passes)]):
        with pytest.raises(ValueError, match="passes must be a whole number of at least 0"):
            call()
    assert len(find_poses(fake, FRAME, refine_passes=np.int64(2))) == 1


def test_start_boxes_begin_each_clip_and_a_box_its_joints_did_not_make_is_not_moved_on():
    """Review s58: the given boxes were used once per tracker, not once per clip (reset); a person followed on its
    presence alone, in the box it was looked for in (already moved on), was moved on again every frame."""
    fake = FakePredictor([PERSON, PERSON + [100, 0]])
    tracker = PoseTracker(fake, start=[[125, 25, 30, 70]], refine_passes=0, search=False)
    for _ in range(2):
        res = tracker(FRAME)
        assert len(res) == 1 and res.keypoints[0, 0, 0] == 140  # the given box's person, not the first found
        tracker.reset()
    tracker(FRAME)
    tracker.ids, tracker._centres = np.array([1]), np.array([[40.0, 60.0]], np.float32)
    moved, _ = tracker._ahead(np.array([[40, 30, 20, 60]], np.float32), np.array([1]), np.array([True]))
    kept, _ = tracker._ahead(np.array([[40, 30, 20, 60]], np.float32), np.array([1]), np.array([False]))
    assert moved[0, 0] == 40 + 10 and kept[0, 0] == 40  # joints' box: on by its shift; the box looked in: as it is


def test_boxes_with_a_score_column_are_refused_by_the_tracker_as_by_predict_not_cut_into_other_boxes():
    """A detector's [x, y, w, h, score] rows (N, 5): reshaped to (-1, 4), four of them made five invented boxes
    (review s62); now every entry point refuses them as predict does, naming the fix."""
    fake = FakePredictor([PERSON])
    rows = np.array([[30, 20, 30, 80, 0.9]] * 4, np.float32)
    with pytest.raises(ValueError, match=r"shape \(N, 4\).*\(4, 5\).*boxes\[:, :4\]"):
        PoseTracker(fake, start=rows)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        PoseTracker(fake, acquire=lambda frame: rows)(FRAME)
    with pytest.raises(ValueError, match="width or height <= 0"):
        PoseTracker(fake, start=[[30, 20, 0, 80]])  # the values are checked when given, not at the first frame
    assert len(PoseTracker(fake, start=rows[:, :4])(FRAME)) >= 1


@pytest.mark.parametrize("count", [1, 3])
def test_a_detectors_boxes_and_scores_pair_given_as_boxes_names_the_fix(standin_path, count):
    """HogPeopleDetector's (boxes, scores), which PoseTracker's acquire takes, given to find_poses as boxes: numpy's
    "inhomogeneous shape" error said nothing of it (review s68)."""
    found = (np.array([[30, 20, 30, 80]] * count, np.float32), np.full(count, 0.9))
    pred = PosePredictor(standin_path, threads=1)
    for call in (lambda: find_poses(pred, FRAME, found), lambda: pred.predict(FRAME, found)):
        with pytest.raises(ValueError, match=r"detector's \(boxes, scores\) pair.*found\[0\]"):
            call()
    assert len(find_poses(pred, FRAME, found[0], keep_all=True)) == count


def test_the_tracker_takes_a_detector_giving_boxes_and_scores_as_video_poses_does():
    """HogPeopleDetector returns (boxes, scores): VideoPoses(detector=) took that pair, PoseTracker(acquire=)
    failed on it with numpy's 'inhomogeneous shape' (review s62)."""
    fake = FakePredictor([PERSON])
    box = np.array([[20, 20, 40, 80]], np.float32)
    tracked = PoseTracker(fake, acquire=lambda frame: (box, np.array([0.8])), search=False)(FRAME)
    assert len(tracked) == 1 and np.array_equal(fake.calls[0], box)
    fake.calls.clear()  # a tuple of two boxes is two boxes, not (boxes, scores)
    two = ((20, 20, 40, 80), (120, 20, 40, 80))
    PoseTracker(fake, acquire=lambda frame: two, search=False, max_persons=2)(FRAME)
    assert np.array_equal(fake.calls[0], two)


def test_take_and_rescaled_refuse_what_names_no_person_or_no_scale():
    res = FakePredictor([PERSON]).predict(FRAME, [[20, 20, 40, 80], [100, 20, 40, 80]])
    assert len(res.take([True, False])) == 1 and len(res.take(-1)) == 1 and len(res.take([])) == 0
    assert np.array_equal(res.take(slice(1, None)).boxes, res.boxes[1:])
    for rows, match in (([True], "one value per person"), ([2], "names persons"), ([0.5], "indices or a bool")):
        with pytest.raises(ValueError, match=match):
            res.take(rows)
    assert np.allclose(res.rescaled(2).boxes[:, 2:], res.boxes[:, 2:] * 2)
    for factor in (0, -1, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="factor must be a finite number > 0"):
            res.rescaled(factor)


def test_search_with_must_be_a_predictor(standin_path):
    with pytest.raises(TypeError, match="search_with must be a PosePredictor"):
        PosePredictor(standin_path, search_with="fast")
