"""Fakes: a pose predictor whose persons are known, so the rules built on predictions (refine, tracking, the search)
show on their own; a video source whose frames the test hands over."""
import queue

import numpy as np

from fasterpose_rt import PoseResult


class FakePredictor:
    """Persons with known joints (P, K, 2); a box sees the first person whose joints' centre lies inside it and who
    is at least ``fill`` of the box's height tall (the real model, too, misses a person much smaller than its crop):
    score 0.9 per joint inside the box, 0.3 outside; otherwise nobody (joints at the box centre, score ``nobody``).
    ``calls``: the boxes (M, 4) of every ``predict`` call."""

    def __init__(self, persons, nobody=0.05, fill=0.0):
        self.persons = np.asarray(persons, np.float32).reshape(-1, 4, 2)  # K = 4 joints, named a-d
        self.nobody, self.fill, self.calls = nobody, fill, []

    def predict(self, image, boxes=None):
        h, w = image.shape[:2]
        b = np.array([[-0.5, -0.5, w, h]], np.float32) if boxes is None else np.asarray(boxes, np.float32)
        b = b.reshape(-1, 4)
        self.calls.append(b.copy())
        k = 4
        kp, sc = np.zeros((len(b), k, 2), np.float32), np.full((len(b), k), self.nobody, np.float32)
        centres = self.persons.mean(axis=1) if len(self.persons) else np.zeros((0, 2))
        tall = np.ptp(self.persons[..., 1], axis=1) if len(self.persons) else np.zeros(0)
        for i, (x, y, bw, bh) in enumerate(b):
            inside = np.flatnonzero((centres[:, 0] >= x) & (centres[:, 0] <= x + bw)
                                    & (centres[:, 1] >= y) & (centres[:, 1] <= y + bh) & (tall >= self.fill * bh))
            if len(inside):
                p = self.persons[inside[0]]
                kp[i] = p
                seen = (p[:, 0] >= x) & (p[:, 0] <= x + bw) & (p[:, 1] >= y) & (p[:, 1] <= y + bh)
                sc[i] = np.where(seen, 0.9, 0.3)
            else:
                kp[i] = [x + bw / 2, y + bh / 2]
        return PoseResult(kp, sc, b, ["a", "b", "c", "d"])


class GatedSource:
    """A capture whose frames the test hands over one by one: ``send(i)`` (a 4 x 6 frame of grey level i) or
    ``send(frame)``; ``send(None)`` ends it; an exception is raised by ``read``. ``reads`` counts read() calls;
    ``released`` says whether release() ran."""

    def __init__(self):
        self.pending, self.reads, self.released = queue.Queue(), 0, False

    def send(self, item):
        self.pending.put(item)

    def read(self):
        item = self.pending.get(timeout=10)
        self.reads += 1
        if isinstance(item, Exception):
            raise item
        if item is None:
            return False, None
        return True, (item if isinstance(item, np.ndarray) else np.full((4, 6, 3), item, np.uint8))

    def grab(self):
        return self.read()[0]

    def release(self):
        self.released = True
