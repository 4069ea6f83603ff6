"""Keypoint smoothing (fasterpose_rt.smoothing): the One-Euro filter's maths, its bookkeeping of persons by track
id, and the track ids PoseTracker gives them."""
import math

import numpy as np
import pytest

from fasterpose_rt import KeypointSmoother, PoseResult, PoseTracker
from fasterpose_rt.results import coco_entries

BOX = np.float32([[0, 0, 40, 90]])  # box size sqrt(40 * 90) = 60 px


def person(xy, ids=(1,), boxes=BOX):
    """A PoseResult of persons with keypoints xy (N, K, 2)."""
    xy = np.asarray(xy, np.float32)
    return PoseResult(xy, np.full(xy.shape[:2], 0.9, np.float32), np.asarray(boxes, np.float32),
                      [f"j{k}" for k in range(xy.shape[1])], np.asarray(ids, np.int64))


def one_euro_reference(xs, ts, size, min_cutoff, beta, d_cutoff):
    """The One-Euro filter written out per frame for one joint (xs (T, 2)), as in Casiez et al. 2012, with the
    speed taken as the 2-D speed's length over the box size."""
    def alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    out, x_hat, dx_hat = [], None, None
    for i, (x, t) in enumerate(zip(xs, ts)):
        if i == 0:
            x_hat, dx_hat = np.array(x, float), np.zeros(2)
        else:
            dt = t - ts[i - 1]
            dx_hat = dx_hat + alpha(d_cutoff, dt) * ((x - x_hat) / dt - dx_hat)
            cutoff = min_cutoff + beta * np.linalg.norm(dx_hat) / size
            x_hat = x_hat + alpha(cutoff, dt) * (x - x_hat)
        out.append(x_hat.copy())
    return np.array(out)


def test_filter_is_the_one_euro_filter():
    rng = np.random.default_rng(0)
    xs = np.cumsum(rng.normal(0, 3, (40, 2)), axis=0) + 100
    ts = np.cumsum(rng.uniform(0.02, 0.06, 40))  # uneven frame times, as --every and failed frames give
    smoother = KeypointSmoother(min_cutoff=0.7, beta=2.0, d_cutoff=1.5)
    got = np.array([smoother(person(x[None, None]), t).keypoints[0, 0] for x, t in zip(xs, ts)])
    np.testing.assert_allclose(got, one_euro_reference(xs, ts, 60.0, 0.7, 2.0, 1.5), rtol=0, atol=1e-3)


def test_still_joints_steady_and_moving_joints_follow():
    rng = np.random.default_rng(1)
    still = 100 + rng.normal(0, 0.5, (60, 2))  # a joint at rest in a 60 px box, wobbling 0.5 px
    smoother = KeypointSmoother(fps=30)
    out = np.array([smoother(person(x[None, None])).keypoints[0, 0] for x in still])
    raw_step = np.linalg.norm(np.diff(still[10:], axis=0), axis=1).mean()
    assert np.linalg.norm(np.diff(out[10:], axis=0), axis=1).mean() < 0.5 * raw_step  # 0.39x with the defaults
    moving = np.stack([np.arange(60) * 10.0, np.zeros(60)], 1)  # 300 px/s = 5 box sizes per second
    lags = {}
    for beta in (0.0, 30.0):
        smoother = KeypointSmoother(fps=30, min_cutoff=1.0, beta=beta)
        out = np.array([smoother(person(x[None, None])).keypoints[0, 0] for x in moving])
        lags[beta] = moving[-1, 0] - out[-1, 0]
    assert lags[30.0] < 2.0 < 20.0 < lags[0.0]  # beta: the faster the joint, the less it is smoothed


def test_speed_is_counted_in_box_sizes_so_near_and_far_persons_smooth_alike():
    rng = np.random.default_rng(2)
    xs = 50 + np.cumsum(rng.normal(0, 2, (20, 3, 2)), axis=0)
    near, far = KeypointSmoother(), KeypointSmoother()
    for x in xs:
        a = near(person(x[None])).keypoints
        b = far(person(10 * x[None], boxes=10 * BOX)).keypoints
        np.testing.assert_allclose(b, 10 * a, rtol=1e-5)


def test_persons_are_known_by_track_id():
    smoother = KeypointSmoother(fps=10)
    a, b = np.zeros((1, 2, 2)), np.full((1, 2, 2), 50.0)
    first = smoother(person(np.concatenate([a, b]), ids=[7, 3], boxes=np.repeat(BOX, 2, 0)))
    np.testing.assert_array_equal(first.keypoints, np.concatenate([a, b]))  # first sight: the raw keypoints
    swapped = smoother(person(np.concatenate([b + 1, a + 1]), ids=[3, 7], boxes=np.repeat(BOX, 2, 0)))
    assert np.all((swapped.keypoints[0] > 50) & (swapped.keypoints[0] < 51))  # each filtered with its own past
    assert np.all((swapped.keypoints[1] > 0) & (swapped.keypoints[1] < 1))
    np.testing.assert_array_equal(swapped.track_ids, [3, 7])
    new = smoother(person(a + 5, ids=[9]))  # an id never seen starts from its raw keypoints
    np.testing.assert_array_equal(new.keypoints, a + 5)
    back = smoother(person(a + 5, ids=[7]))  # 7 was not in the frame before: it starts afresh
    np.testing.assert_array_equal(back.keypoints, a + 5)


def test_restarts_lost_joints_and_repeated_times_and_leaves_its_input_alone():
    smoother = KeypointSmoother()
    smoother(person(np.zeros((1, 2, 2))), 0.0)
    broken = person(np.array([[[np.nan, np.nan], [1, 1]]]))
    out = smoother(broken, 0.1)
    assert np.isnan(out.keypoints[0, 0]).all() and 0 < out.keypoints[0, 1, 0] < 1
    after = smoother(person(np.full((1, 2, 2), 4.0)), 0.2)
    np.testing.assert_array_equal(after.keypoints[0, 0], [4, 4])  # the lost joint restarts, unpoisoned by NaN
    assert 0 < after.keypoints[0, 1, 0] < 4
    again = smoother(person(np.full((1, 2, 2), 8.0)), 0.2)  # the same time twice: no speed to speak of
    np.testing.assert_array_equal(again.keypoints, np.full((1, 2, 2), 8.0))
    raw = person(np.full((1, 2, 2), 9.0))
    smoother(raw, 0.3)
    np.testing.assert_array_equal(raw.keypoints, np.full((1, 2, 2), 9.0))
    assert len(smoother(person(np.zeros((0, 2, 2)), ids=[], boxes=np.zeros((0, 4))), 0.4)) == 0


def test_bad_use_is_a_clear_error():
    with pytest.raises(ValueError, match="track ids"):
        KeypointSmoother()(PoseResult(np.zeros((1, 2, 2)), np.zeros((1, 2)), BOX))
    for kwargs in ({"fps": -1}, {"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": 0}):
        with pytest.raises(ValueError, match="need fps"):
            KeypointSmoother(**kwargs)
    assert KeypointSmoother(fps=0).fps == 30.0  # a video that does not say its rate
    for kwargs in ({"fps": "30"}, {"beta": True}):  # review s58: float("30") took the string quietly
        with pytest.raises(TypeError, match="need numbers"):
            KeypointSmoother(**kwargs)
    smoother = KeypointSmoother(fps=np.float32(25))  # numpy's numbers are numbers
    with pytest.raises(TypeError, match="need a frame time t in seconds, a number; got '1.0'"):
        smoother(PoseResult(np.zeros((1, 2, 2)), np.ones((1, 2)), BOX, track_ids=np.array([1])), t="1.0")


def test_a_time_that_is_not_finite_is_refused_and_the_filter_goes_on():
    """A NaN or infinite t kept as the last time made every later dt NaN: each frame restarted, smoothing off."""
    smoother = KeypointSmoother(fps=10)
    smoother(person(np.zeros((1, 2, 2))), 0.0)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=f"need a finite frame time t in seconds; got t={bad}"):
            smoother(person(np.full((1, 2, 2), 5.0)), bad)
    steps = [smoother(person(np.full((1, 2, 2), 10.0))).keypoints[0, 0, 0] for _ in range(3)]  # t=None: 0.1 s on
    assert 0 < steps[0] < steps[1] < steps[2] < 10  # filtered from 0 towards 10, not restarted at 10


class Walkers:
    """A predictor seeing persons (P, 4, 2) whose joints' centre lies in a box, with their joints scoring
    ``scores[p]``; a box with nobody gets its centre at score 0.05 (too low to make a box of)."""

    def __init__(self, persons, scores):
        self.persons, self.scores = np.asarray(persons, np.float32), list(scores)

    def predict(self, image, boxes=None):
        b = np.array([[0, 0, 400, 200]], np.float32) if boxes is None else np.asarray(boxes, np.float32)
        kp, sc = np.zeros((len(b), 4, 2), np.float32), np.full((len(b), 4), 0.05, np.float32)
        centres = self.persons.mean(axis=1) if len(self.persons) else np.zeros((0, 2))
        for i, (x, y, w, h) in enumerate(b):
            inside = np.flatnonzero((np.abs(centres - [x + w / 2, y + h / 2]) <= [w / 2, h / 2]).all(axis=1))
            kp[i] = self.persons[inside[0]] if len(inside) else [x + w / 2, y + h / 2]
            sc[i] = self.scores[inside[0]] if len(inside) else 0.05
        return PoseResult(kp, sc, b, ["a", "b", "c", "d"])


PERSON = np.array([[40, 30], [30, 60], [50, 60], [40, 90]], np.float32)
FRAME = np.zeros((200, 400, 3), np.uint8)


@pytest.mark.parametrize("remember, returning_id", [(10, 1), (1, 3)])
def test_tracker_ids_stay_with_persons_and_nobody_is_not_reported(remember, returning_id):
    walkers = Walkers([PERSON, PERSON + [200, 0]], [0.9, 0.9])
    boxes = [[28, 28, 24, 64], [228, 28, 24, 64]]  # near the joints' boxes
    tracker = PoseTracker(walkers, acquire=lambda frame: boxes, refine_passes=0, reacquire_every=2, remember=remember)
    ids = lambda: tracker(FRAME).track_ids.tolist()  # noqa: E731
    assert ids() == [1, 2]  # frame 0: acquired
    walkers.scores[0] = 0.15  # person 1 fades: boxable joints, but a mean score under keep_score
    assert ids() == [1, 2] and tracker.ids.tolist() == [2]  # frame 1: reported, then lost
    assert ids() == [2, 1]  # frame 2 re-acquires: found where the frame before saw it, so still person 1
    walkers.persons, walkers.scores = walkers.persons[1:], [0.9]  # person 1 leaves
    assert ids() == [2]  # frame 3: only the followed one
    assert ids() == [2]  # frame 4 re-acquires: person 1's box holds nobody, which is not reported
    walkers.persons, walkers.scores = np.stack([PERSON + [200, 0], PERSON]), [0.9, 0.9]  # person 1 is back
    assert ids() == [2]  # frame 5: not looked for
    back = tracker(FRAME)  # frame 6 re-acquires where person 1 was last seen, 4 frames ago
    assert back.track_ids.tolist() == [2, returning_id]  # remembered for 10 frames: its id; for 1: a new one
    assert [e["track_id"] for e in coco_entries(back, 5, "clip.mp4", frame=6)] == [2, returning_id]
    tracker.reset()
    assert ids() == [1, 2]  # reset: a new video counts from 1
    assert "track_id" not in coco_entries(walkers.predict(FRAME, boxes), 1, "photo.jpg")[0]  # photos: no ids


def test_tracker_refinds_a_person_only_where_its_box_overlaps_enough():
    walkers = Walkers([PERSON, PERSON + [200, 0]], [0.9, 0.9])
    boxes = [[28, 28, 24, 64], [228, 28, 24, 64]]
    # 1.01 without the centre rules (refound_reach 0): no overlap is enough, a re-found person is new; with them,
    # the boxes' centres (one place) still re-find it
    for refound_iou, reach, second in ((0.3, 2.0, 1), (1.01, 0.0, 3), (1.01, 2.0, 1)):
        tracker = PoseTracker(walkers, acquire=lambda frame: boxes, refine_passes=0, reacquire_every=2,
                              refound_iou=refound_iou, refound_reach=reach)
        walkers.scores = [0.9, 0.9]
        tracker(FRAME)
        walkers.scores[0] = 0.15  # person 1 is lost after this frame
        tracker(FRAME)
        assert tracker(FRAME).track_ids.tolist() == [2, second]
