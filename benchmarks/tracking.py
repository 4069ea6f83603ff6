"""Where do the person boxes come from when the user gives none? Whole photo, HOG, or the model's own poses.

``python -m benchmarks.tracking [--model M.onnx] [--ann data/lspet_val.json] [--images DIR] [--clips 100]
[--frames 30]`` -> ``benchmarks/results/tracking.{md,json}``.

The model is calibrated for tight boxes around a person's joints (``fasterpose eval`` feeds it exactly those).
A user without boxes gets one box over the whole photo, or OpenCV's HOG detector. ``fasterpose_rt.tracking``
makes the box from the model's own joints instead. Measured here on labelled persons, each strategy against the
whole-photo box on the same persons (paired 95 % bootstrap interval of the PCK@0.2 difference):

1. Photos: the whole photo, then ``refine`` passes (each one more model call) on the box around the joints
   found: every pass run (the curve), and up to ``REFINE_PASSES`` (a person stopping once its box settles:
   ``--no-search``); the search (``fasterpose_rt/search.py``: the whole photo and a grid of windows in one call,
   the best few refined, the best kept; the CLI's default), alone and refined; HOG's best box (else the whole
   photo), alone and refined; and the tight labelled box (the upper bound, what ``fasterpose eval`` reports),
   alone and refined. Close-ups (the persons' upper bodies cut out, a portrait's framing): the whole photo,
   refined, and the search.
2. Videos: a clip per photo (the first ``--clips`` persons), ``--frames`` frames of a handheld camera over the
   still photo: a smooth zoom (1 to 1.4x), pan (up to 12 % of the frame) and roll (up to 6 degrees), random
   per clip, edges replicated; the labels move with the same affine. Then the same photos in a fast pan
   (``pan_path``: each slides 0.8 of its width across the clip, as a person crossing the frame would). Strategies: the whole frame every frame
   (the CLI's video behaviour before tracking), every frame on its own refined (``--no-track``: from the whole
   frame, a search or HOG's box), ``PoseTracker`` (the CLI's default; acquiring by search, on the whole frame or
   with HOG), the tight labelled box every frame. Intervals resample whole clips. Where a strategy returns
   several persons, the one with the highest mean score is scored; where it returns nobody (the tracker, on a
   frame where no joints could be boxed), every joint is a miss. Tracked rows also count the track ids each clip
   was given. The persons hold still (only the camera moves): a clip tests finding and keeping a person, not
   following fast limbs.
3. Identities: clips over two photos side by side (``pair_clips``), tracked with the re-finding defaults and two
   other settings: track ids per clip, and id swaps (an id moving from one labelled person to the other).
4. Several persons in a photo (``several``): every two photos side by side (``pair_photos``), and the photos of a
   COCO keypoint file (``--coco``, by default ``../shared/datasets/coco-mini``, scored on the keypoints both sets
   name): the search reporting one person or up to 2 or 5 (``--max-persons``), and HOG's boxes refined; labelled
   persons found, other persons reported, PCK@0.2 over every labelled person.
Times are wall time per photo or frame (2 threads unless ``--threads``), detector included; costs are counted
as model calls and as person crops run (a search runs its windows in one call).
"""
from __future__ import annotations

import os
import warnings
import time
from typing import Optional
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons, load_persons_args, read_photos
from fasterpose_rt import PosePredictor
from fasterpose_rt.boxes import HogPeopleDetector
from fasterpose_rt.geometry import apply_affine
from fasterpose_rt.metrics import pck, pck_interval, torso_sizes
from fasterpose_rt.search import SEARCH_CANDIDATES
from fasterpose_rt.tracking import (JOINT_SCORE, REFINE_PASSES, REFOUND_IOU, REMEMBER, SETTLED_IOU, PoseTracker,
                                  find_poses, refine)
from fasterpose_rt.video import REACQUIRE_EVERY

FIXED_PASSES = 3  # the pass curve: whole photo + 1..FIXED_PASSES passes, every one run
CLOSE_UP_CUT, CLOSE_UP_MARGIN = 0.6, 0.15  # close-ups: cut 60 % of the way neck -> hips, 15 % margin elsewhere
SWEEP_JOINT_SCORES = (0.0, 0.1, 0.2, 0.3)  # --sweep: refine's joint_score ...
SWEEP_SETTLED = (0.7, 0.8, 0.9, 1.01)  # ... and settled_iou (1.01: never settles)
FRAMES = 30  # frames per synthetic clip (--frames' default)
COCO_MINI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco-mini"
SEARCH_LABEL = (f"search: whole photo and windows, the best {SEARCH_CANDIDATES} refined (up to {REFINE_PASSES} "
                "passes), the best kept")


def hog_boxes(hog, image):
    """As the CLI's --detector hog: every box HOG finds in ``image`` (N, 4), or None (nobody: no boxes given)."""
    boxes, _ = hog(image)
    return boxes if len(boxes) else None


def best_person(result) -> np.ndarray:
    """Keypoints (K, 2) of the person with the highest mean score in a PoseResult; NaN (every joint a miss) when it
    holds nobody (a tracker reports nobody where it cannot box any joints)."""
    if not len(result):
        return np.full(result.keypoints.shape[1:], np.nan)
    return result.keypoints[int(np.argmax(result.scores.mean(axis=1)))]


def camera_path(width: int, height: int, frames: int, rng) -> np.ndarray:
    """A handheld camera over a still photo: affines (frames, 2, 3) photo -> frame of the same size."""
    t = np.linspace(0.0, 1.0, frames)
    phase = rng.uniform(0, 2 * np.pi, 4)
    zoom = 1.0 + 0.2 * (1 - np.cos(2 * np.pi * t + phase[0]))  # 1.0 .. 1.4
    shift = 0.12 * np.stack([np.sin(2 * np.pi * t + phase[1]) * width, np.sin(2 * np.pi * t + phase[2]) * height], 1)
    roll = 6.0 * np.sin(2 * np.pi * t + phase[3])
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    out = np.empty((frames, 2, 3))
    for f in range(frames):  # one 2x3 matrix per frame
        m = cv2.getRotationMatrix2D(centre, float(roll[f]), float(zoom[f]))
        m[:, 2] += shift[f]
        out[f] = m
    return out


def pan_path(width: int, height: int, frames: int, rng, span: float = 0.8) -> np.ndarray:
    """A fast pan: the photo slides ``span`` of its width across the frame at a steady pace, one way or the other
    (a person crossing the frame, the background with it): affines (frames, 2, 3) photo -> frame."""
    out = np.zeros((frames, 2, 3))
    out[:, 0, 0] = out[:, 1, 1] = 1.0
    out[:, 0, 2] = span * width * np.linspace(-0.5, 0.5, frames) * rng.choice([-1.0, 1.0])
    return out


class Scorer:
    """Collects each strategy's keypoints, wall time and model calls, then scores them against a baseline."""

    def __init__(self, names, gt, vis, groups=None, torso=None):
        self.names, self.gt, self.vis, self.groups, self.torso = names, gt, vis, groups, torso
        self.xy, self.seconds, self.calls, self.crops, self.notes = {}, {}, {}, {}, {}

    def add(self, label: str, xy, seconds: float, calls: int, crops: Optional[int] = None) -> None:
        """A strategy's keypoints, wall time, model calls and person crops run (None: one per call)."""
        self.xy[label] = np.asarray(xy, np.float64)
        self.seconds[label], self.calls[label] = seconds, calls
        self.crops[label] = calls if crops is None else crops
        print(f"{label}: PCK@0.2 {self.pck(self.xy[label]):.4f}", flush=True)

    def pck(self, xy) -> float:
        return pck(xy, self.gt, self.vis, self.names, torso=self.torso)[0]

    def table(self, baseline: str, unit: str):
        n = len(self.gt)
        rows, data = [], {"notes": dict(self.notes)}
        base = self.pck(self.xy[baseline])
        for label, xy in self.xy.items():
            value = self.pck(xy)
            lo, hi = pck_interval(xy, self.gt, self.vis, self.names, baseline=self.xy[baseline], groups=self.groups,
                                  torso=self.torso)
            ms, calls, crops = 1000.0 * self.seconds[label] / n, self.calls[label] / n, self.crops[label] / n
            diff = "—" if label == baseline else f"{value - base:+.3f} ({lo:+.3f} to {hi:+.3f})"
            rows.append([label, f"{value:.3f}", diff, f"{calls:.2f}", f"{crops:.2f}", f"{ms:.1f}"])
            data[label] = {"pck@0.2": value, "diff_interval": [lo, hi], f"model_calls_per_{unit}": calls,
                           f"crops_per_{unit}": crops, f"ms_per_{unit}": ms}
        header = ["boxes", "PCK@0.2", f"vs {baseline} (95 % interval)", f"model calls per {unit}",
                  f"person crops per {unit}", f"ms per {unit}"]
        notes = "".join(f"\n\n{k} {v}." for k, v in self.notes.items())
        return markdown_table(header, rows) + notes, data


class Counting:
    """A PosePredictor that counts its model calls (``predict`` calls) and the person crops they run."""

    def __init__(self, pred):
        self.pred, self.calls, self.crops = pred, 0, 0
        # searched persons read the search's score table; who is there follows the model's default rule
        self.searched_calibration = getattr(pred, "searched_calibration", None)
        self.has_presence = getattr(pred, "has_presence", False)

    def predict(self, image, boxes=None):
        self.calls += 1
        self.crops += 1 if boxes is None else len(np.asarray(boxes).reshape(-1, 4))
        return self.pred.predict(image, boxes)

    def reset(self) -> None:
        self.calls = self.crops = 0


def photos(pred, hog, images, names, gt, vis, boxes):
    """Strategy -> keypoints (N, K, 2) on the photos themselves; returns a Scorer."""
    score = Scorer(names, gt, vis)
    counting = Counting(pred)

    def run(label, first, passes, settled_iou=SETTLED_IOU, extra_seconds=0.0):
        """first(i) -> PoseResult of photo i; then ``refine``; scored with the time and calls of both (plus
        extra_seconds, e.g. the detector's)."""
        counting.reset()
        t0 = time.perf_counter()
        results = [refine(counting, img, first(i), passes, settled_iou) for i, img in enumerate(images)]
        score.add(label, [r.keypoints[0] for r in results], extra_seconds + time.perf_counter() - t0, counting.calls,
                  counting.crops)

    def searched(label, passes):
        """``find_poses`` without boxes: the search (the CLI's default)."""
        counting.reset()
        t0 = time.perf_counter()
        results = [find_poses(counting, img, None, passes) for img in images]
        score.add(label, [best_person(r) for r in results], time.perf_counter() - t0, counting.calls,
                  counting.crops)  # nobody reported (the presence rule): every joint a miss

    run("whole photo", lambda i: counting.predict(images[i], None), 0)
    for p in range(1, FIXED_PASSES + 1):  # every pass run, to show the curve (each from the whole photo again)
        run(f"whole photo + {p} refine pass{'es' if p > 1 else ''}, every one run",
            lambda i: counting.predict(images[i], None), p, settled_iou=1.01)
    run(f"whole photo + refine (up to {REFINE_PASSES} passes, until the box settles; --no-search)",
        lambda i: counting.predict(images[i], None), REFINE_PASSES)
    searched("search: whole photo and windows, the best not refined (--refine 0)", 0)
    searched(f"{SEARCH_LABEL}; the CLI's default", REFINE_PASSES)

    t0 = time.perf_counter()
    found = [hog(img)[0][:1] for img in images]  # HOG's best box per photo, found once for both HOG rows
    t_hog = time.perf_counter() - t0

    def hog_first(i):
        return counting.predict(images[i], found[i] if len(found[i]) else None)

    run("HOG's best box (else whole photo)", hog_first, 0, extra_seconds=t_hog)
    run(f"HOG's best box + refine (up to {REFINE_PASSES} passes, until the box settles)", hog_first, REFINE_PASSES,
        extra_seconds=t_hog)
    run("tight labelled box (upper bound)", lambda i: counting.predict(images[i], boxes[i]), 0)
    run(f"tight labelled box + refine (up to {REFINE_PASSES} passes, until the box settles)",
        lambda i: counting.predict(images[i], boxes[i]), REFINE_PASSES)
    score.notes["HOG found somebody in"] = f"{np.mean([len(b) > 0 for b in found]):.1%} of the photos"
    return score


def close_up_crops(images, names, gt, vis):
    """Each upright person's upper body cut out of its photo, so the person fills the picture (a portrait, a
    webcam). Returns (crops: list of (H, W, 3) photos, labels (M, K, 2) in the crops' pixels, visible (M, K):
    labelled and inside the crop, torso (M,): from the full labels, kept (M,): which persons these are); M may be
    0 (no upright person among them: arrays of those shapes, empty; callers refuse with ``require_close_ups``)."""
    idx = {n: i for i, n in enumerate(names)}
    need = [idx[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "neck", "head_top")]
    upper = [i for i, n in enumerate(names) if not any(w in n for w in ("hip", "knee", "ankle"))]
    crops, offsets, kept = [], [], []
    for n, (img, g, v) in enumerate(zip(images, gt, vis)):
        hip_y = g[[idx["left_hip"], idx["right_hip"]], 1].mean()
        if not v[need].all() or g[idx["neck"], 1] >= hip_y:  # upright persons with a measurable torso
            continue
        u = g[upper][v[upper]]
        cut = g[idx["neck"], 1] + CLOSE_UP_CUT * (hip_y - g[idx["neck"], 1])
        (x0, y0), x1 = u.min(axis=0), u[:, 0].max()
        mx, my = CLOSE_UP_MARGIN * (x1 - x0), CLOSE_UP_MARGIN * (cut - y0)
        x0, x1 = int(max(0, x0 - mx)), int(min(img.shape[1], x1 + mx))
        y0, y1 = int(max(0, y0 - my)), int(min(img.shape[0], cut))
        if x1 - x0 >= 32 and y1 - y0 >= 32:
            crops.append(np.ascontiguousarray(img[y0:y1, x0:x1]))
            offsets.append([x0, y0])
            kept.append(n)
    kept = np.array(kept, np.int64)
    if not len(kept):  # nobody upright: empty arrays of the shapes below (np.array([]) would be 1-D)
        k = np.asarray(gt).shape[1]
        return [], np.zeros((0, k, 2)), np.zeros((0, k), bool), np.zeros(0), kept
    torso = torso_sizes(gt[kept], vis[kept], names)
    shifted = gt[kept] - np.array(offsets, np.float64).reshape(-1, 1, 2)
    h_w = np.array([c.shape[:2] for c in crops], np.float64).reshape(-1, 1, 2)
    inside = ((shifted >= -0.5) & (shifted <= h_w[..., ::-1] - 0.5)).all(axis=2)
    return crops, shifted, vis[kept] & inside, torso, kept


def require_close_ups(crops, persons: int) -> None:
    """Refuse (one line) a run whose persons give no close-up to score: none of them is upright with its torso
    labelled (small ``--limit`` runs)."""
    if not len(crops):
        raise SystemExit(f"error: too few persons: none of the {persons} persons is upright with shoulders, hips, "
                         "neck and head top labelled, so there is no close-up to score (raise --limit)")


def close_ups(pred, images, names, gt, vis):
    """Photos cut to each upright person's upper body (``close_up_crops``): does ``refine`` still help when the
    whole photo is already about the right box? Returns a Scorer."""
    crops, shifted, visible, torso, kept = close_up_crops(images, names, gt, vis)
    require_close_ups(crops, len(images))
    score, counting = Scorer(names, shifted, visible, torso=torso), Counting(pred)
    score.notes["Close-ups made of"] = f"{len(crops)} of the {len(images)} persons"
    for label, passes, search in (
            ("whole photo", 0, False),
            (f"whole photo + refine (up to {REFINE_PASSES} passes, until the box settles; --no-search)",
             REFINE_PASSES, False),
            (f"{SEARCH_LABEL}; the CLI's default", REFINE_PASSES, True)):
        counting.reset()
        t0 = time.perf_counter()
        out = [find_poses(counting, c, None, passes, search=search) for c in crops]
        score.add(label, [best_person(r) for r in out], time.perf_counter() - t0, counting.calls, counting.crops)
    return score


def sweep(pred, images, names, gt, vis):
    """``refine``'s two settings on the whole-photo start: which joints shape the box, when a person settles."""
    score, counting = Scorer(names, gt, vis), Counting(pred)
    t0 = time.perf_counter()
    whole = [pred.predict(img) for img in images]  # the first pass, shared: its time is added to every row
    t_whole = time.perf_counter() - t0
    for joint_score in SWEEP_JOINT_SCORES:
        for settled in SWEEP_SETTLED:
            counting.calls = counting.crops = len(images)
            t0 = time.perf_counter()
            out = [refine(counting, img, r, REFINE_PASSES, settled, joint_score) for img, r in zip(images, whole)]
            label = (f"joints scoring >= {joint_score:g}, settled at IoU {settled:g}" if settled <= 1 else
                     f"joints scoring >= {joint_score:g}, never settled")
            score.add(label, [r.keypoints[0] for r in out], t_whole + time.perf_counter() - t0, counting.calls,
                      counting.crops)
    return score


def track_clips(tracker, clips):
    """Each clip's frames through ``tracker``, reset before each clip. Returns (results: one list of PoseResults per
    clip, restarts: the frames after a clip's first on which nobody was followed, so the tracker acquired again)."""
    per_clip, restarts = [], 0
    for frames, *_ in clips:
        tracker.reset()
        results = []
        for i, f in enumerate(frames):
            restarts += i > 0 and not len(tracker.boxes)
            results.append(tracker(f))
        per_clip.append(results)
    return per_clip, restarts


def track_ids(results) -> int:
    """How many track ids a clip's PoseResults gave out."""
    return len(np.unique(np.concatenate([r.track_ids for r in results])))


def per_frame_poses(predictor, clips, box_for, passes: int = 0, search: bool = False) -> list:
    """Every frame on its own, as ``find_poses`` does: boxes from box_for(frame, index, clip) (None: the whole
    frame, or with ``search`` a search), then ``refine``. Returns the best person's keypoints (K, 2) per frame."""
    return [best_person(find_poses(predictor, f, box_for(f, i, c), passes, search=search))
            for c, (frames, *_) in enumerate(clips) for i, f in enumerate(frames)]


def make_clips(images, gt, seed: int = 0, frames: int = FRAMES, path=camera_path, noise: float = 0.0):
    """A synthetic clip per photo: (frames list of (H, W, 3) uint8, labels (frames, K, 2)) each.

    path(width, height, frames, rng) -> affines (frames, 2, 3) photo -> frame (default: ``camera_path``); noise:
    standard deviation of the Gaussian noise (grey levels) added to every frame afresh, as a camera's sensor does.
    """
    rng = np.random.default_rng(seed)
    clips = []
    for img, g in zip(images, gt):
        h, w = img.shape[:2]
        affines = path(w, h, frames, rng)
        shots = [cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                 for m in affines]
        if noise > 0:
            shots = [np.clip(s + rng.normal(0.0, noise, s.shape), 0, 255).astype(np.uint8) for s in shots]
        clips.append((shots, apply_affine(np.broadcast_to(g, (frames,) + g.shape), affines)))
    return clips


def videos(pred, hog, images, names, gt, vis, seed: int = 0, frames: int = FRAMES, path=camera_path):
    """The synthetic clips (``frames`` each, along ``path``: ``make_clips``) through each video strategy; returns a
    Scorer over all frames (grouped by clip)."""
    clips = make_clips(images, gt, seed, frames, path=path)
    all_gt = np.concatenate([c[1] for c in clips])
    all_vis = np.repeat(vis, frames, axis=0)
    score = Scorer(names, all_gt, all_vis, groups=np.repeat(np.arange(len(clips)), frames))

    counting = Counting(pred)

    def hog_best(frame):
        b, _ = hog(frame)
        return b[:1] if len(b) else None

    def per_frame(label, box_for, passes=0, search=False):
        """Every frame on its own: boxes from box_for(frame, index, clip) (None: the whole frame, or with
        ``search`` a search), then ``refine``, as ``find_poses`` does."""
        counting.reset()
        t0 = time.perf_counter()
        out = per_frame_poses(counting, clips, box_for, passes, search)
        score.add(label, out, time.perf_counter() - t0, counting.calls, counting.crops)

    def tracked(label, acquire, search=False, motion=True):
        tracker = PoseTracker(counting, acquire=acquire, search=search, motion=motion)
        counting.reset()
        t0 = time.perf_counter()
        per_clip, _ = track_clips(tracker, clips)
        seconds = time.perf_counter() - t0
        out = [best_person(r) for results in per_clip for r in results]
        ids = [track_ids(results) for results in per_clip]
        nobody = sum(not len(r) for results in per_clip for r in results)
        score.add(label, out, seconds, counting.calls, counting.crops)
        score.notes[f"{label}:"] = (f"{np.mean(ids):.2f} track ids per clip (1: the person kept one id throughout; "
                                    f"median {np.median(ids):g}, most {max(ids)}), nobody reported in "
                                    f"{nobody / len(out):.1%} of the frames")

    def tight_box(f, i, c):
        labelled = vis[c]
        lo, hi = clips[c][1][i][labelled].min(0), clips[c][1][i][labelled].max(0)
        return [[*lo, *np.maximum(hi - lo, 1.0)]]

    per_frame("whole frame, every frame (the CLI before tracking)", lambda f, i, c: None)
    per_frame("whole frame + refine, every frame (--no-track --no-search)", lambda f, i, c: None, REFINE_PASSES)
    per_frame("search + refine, every frame (--no-track)", lambda f, i, c: None, REFINE_PASSES, search=True)
    per_frame("HOG + refine, every frame (--no-track --detector hog --no-search)", lambda f, i, c: hog_best(f),
              REFINE_PASSES)
    tracked("tracking, acquired on the whole frame (--no-search)", None)
    tracked("tracking, acquired by search (the CLI's default)", None, search=True)
    tracked("tracking, acquired by search, boxes not moved on (motion=False: before session 58)", None, search=True,
            motion=False)
    tracked("tracking, acquired with HOG (--detector hog --no-search)", hog_best)
    per_frame("tight labelled box, every frame (upper bound)", tight_box)
    return score


def pair_photos(images, gt, vis):
    """Two photos side by side, scaled to one height: a photo with two labelled persons (and whoever else the
    photos show, unlabelled). Photos are paired in order (0 with 1, 2 with 3, ...). Returns per pair (photo,
    labels (2, K, 2), visible (2, K))."""
    out = []
    for i in range(0, len(images) - 1, 2):
        h = max(images[i].shape[0], images[i + 1].shape[0])
        scales = [h / images[j].shape[0] for j in (i, i + 1)]
        left, right = (cv2.resize(images[j], (round(images[j].shape[1] * f), h)) for j, f in zip((i, i + 1), scales))
        labels = np.stack([gt[i] * [left.shape[1] / images[i].shape[1], h / images[i].shape[0]],
                           gt[i + 1] * [right.shape[1] / images[i + 1].shape[1], h / images[i + 1].shape[0]]
                           + [left.shape[1], 0]])
        out.append((np.concatenate([left, right], axis=1), labels, vis[[i, i + 1]]))
    return out


def pair_clips(images, gt, vis, seed: int = 2, frames: int = FRAMES):
    """``pair_photos`` under ``camera_path``: a clip of ``frames`` frames with two labelled persons. Returns per clip
    (frames list, labels (frames, 2, K, 2), visible (2, K))."""
    rng = np.random.default_rng(seed)
    out = []
    for photo, labels, visible in pair_photos(images, gt, vis):
        (shots, moved), = make_clips([photo], labels.reshape(1, -1, 2), seed=int(rng.integers(1 << 31)),
                                     frames=frames)
        out.append((shots, moved.reshape(frames, 2, -1, 2), visible))
    return out


def match_persons(keypoints, labels, visible, names, near: float = 0.5, exclusive: bool = True):
    """Which labelled person each reported one is: keypoints (N, K, 2) reported, labels (P, K, 2) with visible
    (P, K). A reported person is the labelled one whose labelled joints lie nearest (median distance, in torso
    lengths), if below ``near`` and (``exclusive``) not taken by a nearer one; exclusive=False: several reported
    persons may be one labelled person. Returns (N,) labelled index or -1 (nobody labelled: an extra)."""
    torso = torso_sizes(labels, visible, names)  # (P,)
    dist = np.linalg.norm(np.asarray(keypoints, np.float64)[:, None] - labels[None], axis=3)  # (N, P, K)
    dist = np.where(visible[None], dist, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a labelled person without labelled joints: all NaN
        near_torsos = np.nanmedian(dist, axis=2) / torso[None]  # (N, P)
    near_torsos = np.where(np.isfinite(near_torsos), near_torsos, np.inf)
    if not exclusive:
        nearest = near_torsos.argmin(axis=1) if near_torsos.size else np.zeros(len(near_torsos), np.int64)
        return np.where(near_torsos.min(axis=1, initial=np.inf) < near, nearest, -1).astype(np.int64)
    owner = np.full(len(near_torsos), -1, np.int64)
    while near_torsos.size and near_torsos.min() < near:  # nearest pairs first; a few persons a photo
        n, q = np.unravel_index(np.argmin(near_torsos), near_torsos.shape)
        owner[n], near_torsos[n, :], near_torsos[:, q] = q, np.inf, np.inf
    return owner


def several(pred, hog, photos, names):
    """Photos of several labelled persons without boxes: the search reporting one person (the default) or up to
    2 or 5 (``--max-persons``), and HOG's boxes refined (``--detector hog``: every box, a search where it finds
    nobody). photos: (photo, labels (P, K, 2), visible (P, K)) each; names: the labels' K keypoint names, matched by
    name to the model's. Per strategy: labelled persons found per photo, extra persons per photo, PCK@0.2 over
    every labelled person (a person nobody was matched to: every joint a miss), ms per photo. Returns (markdown
    table, data)."""
    model_names = list(pred.keypoint_names)
    shared = [n for n in model_names if n in names]
    mi, li = [model_names.index(n) for n in shared], [list(names).index(n) for n in shared]

    # min_presence=0: every guess the search reports; None: the default rule (the presence head, where the model
    # has one, drops the persons it does not believe are there)
    strategies = [("search, the best person, every guess (--min-presence 0)", dict(max_persons=1, min_presence=0), None),
                  ("search, the best person if there (the default)", dict(max_persons=1, min_presence=None), None),
                  ("search, up to 2 persons (--max-persons 2), every guess", dict(max_persons=2, min_presence=0), None),
                  ("search, up to 2 persons, those there", dict(max_persons=2, min_presence=None), None),
                  ("search, up to 5 persons (--max-persons 5), every guess", dict(max_persons=5, min_presence=0), None),
                  ("search, up to 5 persons, those there", dict(max_persons=5, min_presence=None), None),
                  ("HOG's boxes + refine (--detector hog)", dict(min_presence=0), lambda photo: hog_boxes(hog, photo))]
    rows, data = [], {}
    labelled = sum(len(lab) for _, lab, _ in photos)
    for label, options, boxes_for in strategies:
        found = extra = 0
        xy = [np.full((len(lab), len(shared), 2), np.nan) for _, lab, _ in photos]
        t0 = time.perf_counter()
        for n, (photo, lab, vis) in enumerate(photos):
            res = find_poses(pred, photo, None if boxes_for is None else boxes_for(photo), **options)
            owner = match_persons(res.keypoints[:, mi], lab[:, li], vis[:, li], shared)
            for person, q in enumerate(owner):
                if q >= 0:
                    xy[n][q] = res.keypoints[person][mi]
            found, extra = found + int((owner >= 0).sum()), extra + int((owner < 0).sum())
        seconds = time.perf_counter() - t0
        all_gt = np.concatenate([lab[:, li] for _, lab, _ in photos])
        all_vis = np.concatenate([vis[:, li] for _, _, vis in photos])
        value = pck(np.concatenate(xy), all_gt, all_vis, shared)[0]
        n = len(photos)
        rows.append([label, f"{found / n:.2f}", f"{extra / n:.2f}", f"{value:.3f}", f"{1000 * seconds / n:.1f}"])
        data[label] = {"labelled_found_per_photo": found / n, "extra_per_photo": extra / n, "pck@0.2": value,
                       "ms_per_photo": 1000 * seconds / n}
    header = ["persons from", f"labelled persons found per photo (of {labelled / len(photos):.2f})",
              "extra persons per photo", "PCK@0.2 over the labelled persons", "ms per photo"]
    return markdown_table(header, rows), data


def coco_photos(ann: Path, images: Path, min_joints: int = 6):
    """A COCO keypoint file's photos with their labelled persons (those with at least ``min_joints`` labelled
    keypoints): (names K, [(photo, labels (P, K, 2), visible (P, K)), ...]), in the order the file first names each
    photo. Photos with nobody so labelled are left out."""
    names, gt, vis, _, files = load_persons(ann)
    enough = vis.sum(axis=1) >= min_joints
    out = []
    for name in dict.fromkeys(f for f, ok in zip(files, enough) if ok):
        rows = [i for i, f in enumerate(files) if f == name and enough[i]]
        photo = cv2.imread(str(Path(images) / name))
        if photo is not None:
            out.append((photo, gt[rows], vis[rows]))
    return names, out


def identities(pred, hog, clips, names):
    """Do ids stay with persons? PoseTracker on two-person clips, for the re-finding defaults and two other
    settings, acquiring by search (the default), on the whole frame (--no-search), with HOG (the CLI's
    --detector: also every REACQUIRE_EVERY frames; a search where it finds nobody), or by a search for up to 2
    persons (--max-persons 2: also every REACQUIRE_EVERY frames while fewer are followed).
    A reported person is the labelled person whose labelled joints lie nearest (median distance < 0.5 torso), else
    nobody; an id swap is an id moving from one labelled person to the other. Who is there follows the CLI's
    default (``min_presence`` None: the presence head at 0.3, where the model has one). Returns (markdown table,
    data)."""
    settings = [(REFOUND_IOU, REMEMBER, "the default"), (0.5, 1, "the frame before only"),
                (0.1, REMEMBER, "looser")]
    rows, data = [], {}
    frames = sum(len(shots) for shots, *_ in clips)  # every clip's frames: the share of found persons is per frame
    for acquire_label, acquire, search, most in (("search", None, True, 1), ("whole frame", None, False, 1),
                                                 ("HOG", lambda frame: hog_boxes(hog, frame), True, 1),
                                                 ("search for up to 2 persons (--max-persons 2)", None, True, 2)):
        for refound, remember, what in settings:
            again = acquire is not None or most > 1  # a detector, or a search for several: also for new arrivals
            tracker = PoseTracker(pred, acquire=acquire, reacquire_every=REACQUIRE_EVERY if again else None,
                                  refound_iou=refound, remember=remember, search=search, max_persons=most)
            ids, swaps, found = [], 0, 0
            per_clip, _ = track_clips(tracker, clips)
            for results, (_, labels, visible) in zip(per_clip, clips):
                owner = {}
                for r, gf in zip(results, labels):
                    for tid, who in zip(r.track_ids.tolist(), match_persons(r.keypoints, gf, visible, names,
                                                                            exclusive=False).tolist()):
                        if who >= 0:
                            swaps += owner.get(tid, who) != who
                            owner[tid], found = who, found + 1
                ids.append(track_ids(results))
            label = f"{acquire_label}; re-found at IoU >= {refound:g} within {remember} frames ({what})"
            rows.append([label, f"{np.mean(ids):.2f}", str(swaps), f"{found / frames:.2f}"])
            data[label] = {"track_ids_per_clip": float(np.mean(ids)), "id_swaps": swaps,
                           "labelled_persons_found_per_frame": found / frames}
    header = ["acquisition; re-finding", "track ids per clip", "id swaps",
              "labelled persons found per frame (of 2)"]
    return markdown_table(header, rows), data


def main(argv=None):
    ap = BenchmarkParser("benchmarks.tracking", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--clips", type=positive_int, default=100, help="videos made from the first N persons' photos")
    ap.add_argument("--frames", type=positive_int, default=FRAMES,
                    help=f"frames per synthetic clip, single- and two-person (default {FRAMES}; fewer: a quicker, "
                         "rougher run)")
    ap.add_argument("--sweep", action="store_true",
                    help="only refine's settings on photos (-> tracking_sweep.{md,json}); run it on training persons")
    ap.add_argument("--coco", type=Path, default=COCO_MINI / "person_keypoints.json",
                    help="a COCO keypoint file of photos with several persons (default: ../shared/datasets/coco-mini; "
                         "its section is left out when the file is absent)")
    ap.add_argument("--coco-images", type=Path, default=COCO_MINI / "images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, boxes, files = load_persons_args(a)
    pred = PosePredictor(a.model, threads=a.threads)
    hog = HogPeopleDetector()
    images = read_photos(a.images, files)
    if not a.sweep:  # the close-ups' section needs an upright person: refused now, not after the photos' section
        require_close_ups(close_up_crops(images, names, gt, vis)[0], len(files))
    model_name = _shown(Path(pred.model_path))
    if a.sweep:
        table, data = sweep(pred, images, names, gt, vis).table(
            f"joints scoring >= {JOINT_SCORE:g}, settled at IoU {SETTLED_IOU:g}", "photo")
        write_results("tracking_sweep", "refine's settings: which joints make the box, when a person settles",
                      f"Model: `{model_name}`, {pred.threads} threads; {len(files)} persons of `{a.ann.name}`, each "
                      f"from the whole photo, up to {REFINE_PASSES} passes; differences against the runtime's defaults."
                      f"\n\n{table}\n", {"model": model_name, "persons": len(files), "photos": data},
                      results_dir=a.results_dir)
        return
    photo_table, photo_data = photos(pred, hog, images, names, gt, vis, boxes).table("whole photo", "photo")
    close_table, close_data = close_ups(pred, images, names, gt, vis).table("whole photo", "photo")
    c = min(a.clips, len(files))
    video_table, video_data = videos(pred, hog, images[:c], names, gt[:c], vis[:c], frames=a.frames).table(
        "whole frame, every frame (the CLI before tracking)", "frame")
    pan_table, pan_data = videos(pred, hog, images[:c], names, gt[:c], vis[:c], frames=a.frames,
                                 path=pan_path).table("whole frame, every frame (the CLI before tracking)", "frame")
    pairs = pair_clips(images[:2 * c], gt[:2 * c], vis[:2 * c], frames=a.frames)
    id_table, id_data = identities(pred, hog, pairs, names)
    two = pair_photos(images, gt, vis)
    several_table, several_data = several(pred, hog, two, names)
    coco_data = None
    if a.coco.is_file():
        coco_names, coco_list = coco_photos(a.coco, a.coco_images)
        coco_table, coco_data = several(pred, hog, coco_list, coco_names)
        labelled = sum(len(lab) for _, lab, _ in coco_list)
        shown = os.path.relpath(a.coco, Path(__file__).resolve().parents[1])
        coco_section = [f"## Photos of several persons: `{shown}`, {len(coco_list)} photos, {labelled} persons "
                        "with at least 6 labelled keypoints, scored on the keypoints both sets name", "",
                        coco_table, ""]
    else:
        coco_section = [f"(No COCO section: {a.coco} not found.)", ""]
    body = "\n".join([
        f"Model: `{_shown(Path(pred.model_path))}` (box padding {pred.box_padding:g}), {pred.threads} threads.", "",
        f"## Photos: {len(files)} labelled persons of `{a.ann.name}`, one per photo", "", photo_table, "",
        f"## Close-ups: the same photos cut to the upright persons' upper bodies (cut {CLOSE_UP_CUT:.0%} of the way "
        f"from neck to hips, {CLOSE_UP_MARGIN:.0%} margin around arms and head), scored on the labelled joints "
        f"inside the cut, torso from the full labels", "", close_table, "",
        f"## Videos: {c} synthetic clips of {a.frames} frames (a moving camera over each of the first {c} photos)", "",
        video_table, "",
        f"## Videos, a fast pan: the same {c} photos, each sliding 0.8 of its width across {a.frames} frames (a "
        "person crossing the frame, the background with it)", "", pan_table, "",
        f"## Identities: {len(pairs)} synthetic clips of {a.frames} frames, each over two of the first "
        f"{2 * len(pairs)} photos side by side", "", id_table, "",
        f"## Photos of two persons: the {2 * len(two)} photos side by side in pairs, no boxes (a reported person is "
        "the labelled one whose labelled joints lie within a median 0.5 torso, else an extra: somebody unlabelled, "
        "a person seen twice, or nobody)", "", several_table, "",
        *coco_section,
    ])
    write_results("tracking", "Person boxes without a detector: whole photo, HOG, or the model's own poses", body,
                  {"model": _shown(Path(pred.model_path)), "persons": len(files), "clips": c,
                   "frames_per_clip": a.frames, "photos": photo_data, "close_ups": close_data, "videos": video_data,
                   "videos_fast_pan": pan_data,
                   "identities": id_data, "two_person_photos": several_data, "coco_photos": coco_data},
                  results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
