"""Against MediaPipe Pose, the CPU pose tool many people reach for first: accuracy and time on the same photos, in
one run.

MediaPipe Pose (BlazePose GHUM, ``mediapipe`` 0.10.14's solution API, ``model_complexity=1`` "full": the landmark
model its wheel ships, so nothing is downloaded; ``static_image_mode``: its person detector runs on every photo)
and the FasterPose default, each given every photo in turn, the order alternating from photo to photo:

- **photos without boxes**: the whole photo. MediaPipe runs its detector, then its landmark model; FasterPose runs
  ``find_poses`` as ``fasterpose predict`` does (the window search, refined), and as ``--no-search`` does (the
  whole photo, refined: about a third of the search's time).
- **a person box**: the tight labelled box. FasterPose takes it as it is (what it is calibrated for); MediaPipe
  takes images, not boxes, so it gets the photo cut to the box enlarged ``--cut`` times (its detector then finds
  the person in the cut). The enlargement, 3, was chosen for MediaPipe on training persons (``--ann
  data/lspet_train1k.json --cut 1.5 2 3 4 5`` gives a row each; 3 scored best there, above the whole photo), not
  on the persons reported.

- **videos** (``--clips``, 100 by default): a clip per photo (the first ``--clips`` persons), 30 frames of a
  handheld camera over it (``benchmarks.tracking.make_clips``: zoom, pan, roll; the labels moved with it), at
  30 fps. FasterPose as ``fasterpose predict`` runs a video (``PoseTracker`` started by the search, joints steadied
  by ``KeypointSmoother``) and as ``--no-track`` (every frame searched); MediaPipe in its video mode
  (``static_image_mode=False``: its detector only where it has lost the person, its landmarks smoothed), a fresh
  one per clip. Frame by frame the engines take turns, the order alternating. Besides PCK and the share of frames
  with a person, the rows give ms per frame (mean, median, 95th percentile: a live feed feels the slow frames)
  and the ratio of mean times to MediaPipe's; the 95th percentile also without each clip's first frame, which
  every engine spends finding the person: 1 frame in 30 here, one in a whole live feed. Intervals resample whole
  clips.

Scored on the 12 joints both name (shoulders, elbows, wrists, hips, knees, ankles; LSP's neck and head top and
MediaPipe's face, hands and feet are left out): PCK@0.2 with the torso from the labels, as ``fasterpose eval``,
and the paired 95 % bootstrap intervals of the differences between rows; a photo where MediaPipe finds nobody scores
its joints as misses (the share is reported). Time per photo: wall clock and the process's CPU time, both engines
in one process, with each row's median per-photo ratio to MediaPipe's on the whole photo. MediaPipe's thread count
cannot be set, so for fewer cores run the benchmark under ``taskset -c 0`` (FasterPose then gets as many threads
as cores; the results file is named after them). The two engines count the same image coordinates
(MediaPipe's normalised x, y are scaled by the image size and moved half a pixel to OpenCV's pixel centres).

Needs ``mediapipe``, which is not a dependency: it pins numpy < 2 and protobuf < 5 and pulls jax, so it goes in a
venv of its own (benchmarks/README.md, "Measured claims"):

    python3 -m venv .mpvenv && . .mpvenv/bin/activate
    pip install --no-deps mediapipe==0.10.14 && pip install -r benchmarks/requirements-mediapipe.txt
    pip install --no-deps -e . && python -m benchmarks.vs_mediapipe    # or: taskset -c 0 python -m ...

-> ``benchmarks/results/vs_mediapipe.{md,json}`` (under ``taskset -c 0``: ``vs_mediapipe_1core``).

``--backend openvino`` runs FasterPose with OpenVINO (docs/performance.md, "Backends"; in that venv ``pip install --no-deps
openvino==2026.4.1 openvino-telemetry``, which keeps its numpy 1.26) -> ``vs_mediapipe_openvino``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, markdown_table, positive_int, run_main, write_results  # noqa: E402
from benchmarks.orientation import add_persons_args, load_persons_args, read_photos  # noqa: E402
from benchmarks.tracking import FRAMES, best_person, make_clips  # noqa: E402
from fasterpose_rt import KeypointSmoother, PosePredictor  # noqa: E402
from fasterpose_rt.metrics import pck, pck_interval  # noqa: E402
from fasterpose_rt.tracking import find_poses  # noqa: E402
from fasterpose_rt.video import video_tracker  # noqa: E402

# MediaPipe Pose's landmark index of each joint both models name (BlazePose's 33 landmarks; "left" is the
# person's left, as in LSP).
MEDIAPIPE_INDEX = {"right_ankle": 28, "right_knee": 26, "right_hip": 24, "left_hip": 23, "left_knee": 25,
                   "left_ankle": 27, "right_wrist": 16, "right_elbow": 14, "right_shoulder": 12,
                   "left_shoulder": 11, "left_elbow": 13, "left_wrist": 15}
MEDIAPIPE_PHOTO = "MediaPipe Pose, whole photo"
MEDIAPIPE_VIDEO = "MediaPipe Pose, video mode (tracking, smoothing)"
CLIP_FPS = 30.0


def shared_joints(names):
    """Indices (into ``names``) of the joints MediaPipe also gives, and their MediaPipe landmark indices."""
    ours = [i for i, n in enumerate(names) if n in MEDIAPIPE_INDEX]
    return np.array(ours, np.int64), np.array([MEDIAPIPE_INDEX[names[i]] for i in ours], np.int64)


def landmarks_to_pixels(normalized, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised landmarks (L, 2), x and y in [0, 1] of the image's width and height measured from its
    edges -> OpenCV pixel coordinates (pixel (i, j)'s centre at x=i, y=j): scaled, then moved half a pixel."""
    xy = np.asarray(normalized, np.float64) * np.array([width, height], np.float64)
    return xy - 0.5


def cut_around(image, box, enlarge: float):
    """The photo cut to ``box`` [x, y, w, h] enlarged ``enlarge`` times about its centre (clipped to the photo)
    -> (cut image, (x0, y0) of the cut in the photo)."""
    h, w = image.shape[:2]
    cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
    half_w, half_h = enlarge * box[2] / 2.0, enlarge * box[3] / 2.0
    x0, y0 = int(max(0, np.floor(cx - half_w))), int(max(0, np.floor(cy - half_h)))
    x1, y1 = int(min(w, np.ceil(cx + half_w))), int(min(h, np.ceil(cy + half_h)))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), np.array([x0, y0], np.float64)


class MediaPipePose:
    """MediaPipe's pose solution on BGR photos: ``(image) -> landmarks (33, 2)`` in its pixels, or None (nobody).
    video: its video mode (frames in order: it follows the person and smooths the landmarks); else every image on
    its own."""

    def __init__(self, video: bool = False):
        os.environ.setdefault("GLOG_minloglevel", "2")  # its C++ start-up chatter
        import mediapipe as mp

        self.version = mp.__version__
        self.pose = mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1, enable_segmentation=False)

    def close(self) -> None:
        self.pose.close()

    def __call__(self, image):
        found = self.pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).pose_landmarks
        if found is None:
            return None
        norm = np.array([[p.x, p.y] for p in found.landmark], np.float64)
        return landmarks_to_pixels(norm, image.shape[1], image.shape[0])


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run(images, boxes, names, cuts, threads: int, backend: str = "onnxruntime"):
    """Every photo through both engines in each setting, alternating which goes first. Returns
    {row label: {"xy": (N, 12, 2), "wall": (N,), "cpu": (N,), "found": (N,) bool}} and the MediaPipe version."""
    ours_idx, mp_idx = shared_joints(names)
    pred, mp_pose = PosePredictor(threads=threads, backend=backend), MediaPipePose()
    n, j = len(images), len(ours_idx)
    rows = {}

    def slot(label):
        rows[label] = {"xy": np.full((n, j, 2), np.nan), "wall": np.zeros(n), "cpu": np.zeros(n),
                       "found": np.zeros(n, bool)}
        return rows[label]

    ours_photo, ours_box = slot("FasterPose, whole photo (the CLI's search)"), slot("FasterPose, tight box")
    ours_quick = slot("FasterPose, whole photo refined (--no-search)")
    mp_photo = slot(MEDIAPIPE_PHOTO)
    mp_cut = {c: slot(f"MediaPipe Pose, photo cut to the box enlarged {c:g}×") for c in cuts}
    for _ in range(2):  # warm-up: first calls allocate
        find_poses(pred, images[0], min_presence=0)
        mp_pose(images[0])
    for i, (img, box) in enumerate(zip(images, boxes)):
        def ours_whole():  # every guess (min_presence=0), as this comparison was measured; None: nobody
            return _best_or_none(find_poses(pred, img, min_presence=0))

        def ours_tight():
            return pred.predict(img, box[None]).keypoints[0]

        def ours_no_search():
            return _best_or_none(find_poses(pred, img, search=False, min_presence=0))

        calls = [(ours_photo, ours_whole, None), (ours_quick, ours_no_search, None), (ours_box, ours_tight, None),
                 (mp_photo, lambda: mp_pose(img), 0.0)]
        for c, row in mp_cut.items():
            cut, offset = cut_around(img, box, c)
            calls.append((row, lambda cut=cut: mp_pose(cut), offset))
        for row, fn, offset in (calls if i % 2 == 0 else calls[::-1]):
            xy, row["wall"][i], row["cpu"][i] = _timed(fn)
            if xy is None:
                continue
            row["found"][i] = True
            row["xy"][i] = xy[ours_idx] if offset is None else xy[mp_idx] + offset
    return rows, mp_pose.version


def report(rows, gt, vis, names, cores: int, threads: int, version: str, persons: int, ann: str):
    ours_idx, _ = shared_joints(names)
    sub = [names[i] for i in ours_idx]
    gt, vis = gt[:, ours_idx], vis[:, ours_idx]
    base_label = "FasterPose, tight box"
    table, data = [], {"joints": sub, "persons": persons, "cores": cores, "threads": threads, "mediapipe": version,
                       "rows": {}}
    per_joint = []
    scores = {label: pck(row["xy"], gt, vis, sub) for label, row in rows.items()}  # NaN (nobody found): a miss
    for label, row in rows.items():
        xy = row["xy"]
        value, per_kp, _ = scores[label]
        vs = {}
        for other in ("FasterPose, whole photo (the CLI's search)", base_label, MEDIAPIPE_PHOTO):
            if other != label:
                lo, hi = pck_interval(xy, gt, vis, sub, baseline=rows[other]["xy"])
                vs[other] = (value - scores[other][0], lo, hi)
        d_photo = vs.get("FasterPose, whole photo (the CLI's search)")
        d_box, d_mp = vs.get(base_label), vs.get(MEDIAPIPE_PHOTO)
        fmt = (lambda d: "—" if d is None else f"{d[0]:+.3f} ({d[1]:+.3f} to {d[2]:+.3f})")
        found = row["found"]
        when_found = pck(xy[found], gt[found], vis[found], sub)[0] if found.any() else float("nan")
        ratio = float(np.median(row["wall"] / rows[MEDIAPIPE_PHOTO]["wall"]))  # per photo: the same moment's load
        table.append([label, f"{value:.3f}", fmt(d_photo), fmt(d_box), fmt(d_mp), f"{found.mean():.1%}",
                      f"{when_found:.3f}", f"{ratio:.2f}×",
                      f"{1e3 * np.median(row['wall']):.1f}", f"{1e3 * np.mean(row['wall']):.1f}",
                      f"{1e3 * np.mean(row['cpu']):.1f}"])
        per_joint.append([label] + [f"{v:.2f}" for v in per_kp])
        data["rows"][label] = {
            "pck@0.2": value, "per_joint": [float(v) for v in per_kp], "found": float(found.mean()),
            "pck@0.2_where_found": float(when_found), "ms_median": 1e3 * float(np.median(row["wall"])),
            "ms_mean": 1e3 * float(np.mean(row["wall"])), "cpu_ms_mean": 1e3 * float(np.mean(row["cpu"])),
            "time_vs_mediapipe_whole_photo": ratio, "vs": {k: list(map(float, v)) for k, v in vs.items()}}
    header = ["engine and input", "PCK@0.2 (12 joints)", "vs FasterPose whole photo (95 % interval)",
              "vs FasterPose tight box (95 % interval)", "vs MediaPipe whole photo (95 % interval)", "person found",
              "PCK@0.2 where found",
              "time / MediaPipe's on the whole photo (median per photo)", "ms per photo (median)",
              "ms per photo (mean)", "CPU ms per photo (mean)"]
    body = (f"{persons} persons of `{ann}`, one per photo; {cores} core{'s' if cores > 1 else ''} for both engines "
            f"(FasterPose with {threads} thread{'s' if threads > 1 else ''}); MediaPipe {version}, model_complexity 1, "
            f"static_image_mode. PCK@0.2 on the joints both name, torso from the labels; a photo where an engine "
            f"finds nobody scores as all misses.\n\n" + markdown_table(header, table) + "\n\nPCK@0.2 per joint:\n\n"
            + markdown_table(["engine and input"] + sub, per_joint) + "\n")
    return body, data



def run_clips(clips, names, pred, mediapipe_video):
    """Every clip's frames through FasterPose tracked and smoothed (the CLI's default), FasterPose searching every
    frame (--no-track), and ``mediapipe_video()`` (a fresh MediaPipePose(video=True)-like engine per clip, closed
    after it), frame by frame, the engines' order alternating. Returns {row label: {"xy": (F, 12, 2), "wall":
    (F,), "cpu": (F,), "found": (F,) bool}} over all F frames, clip after clip."""
    ours_idx, mp_idx = shared_joints(names)
    frames = sum(len(c[0]) for c in clips)
    rows = {label: {"xy": np.full((frames, len(ours_idx), 2), np.nan), "wall": np.zeros(frames),
                    "cpu": np.zeros(frames), "found": np.zeros(frames, bool)}
            for label in ("FasterPose, tracked and smoothed (the CLI's default for videos)",
                          "FasterPose, every frame searched (--no-track)", MEDIAPIPE_VIDEO)}
    tracked_row, searched_row, mp_row = rows.values()
    tracker = video_tracker(pred, min_presence=0)  # as VideoPoses follows a person without boxes, every guess
    smoother = KeypointSmoother(CLIP_FPS)
    f = 0
    for shots, _ in clips:
        tracker.reset()
        smoother.reset()
        engine = mediapipe_video()
        try:
            for i, shot in enumerate(shots):
                def tracked(shot=shot, t=i / CLIP_FPS):
                    return _best_or_none(smoother(tracker(shot), t))

                def searched(shot=shot):
                    return _best_or_none(find_poses(pred, shot, min_presence=0))

                calls = [(tracked_row, tracked, True), (searched_row, searched, True),
                         (mp_row, lambda shot=shot: engine(shot), False)]
                for row, fn, ours in (calls if f % 2 == 0 else calls[::-1]):
                    xy, row["wall"][f], row["cpu"][f] = _timed(fn)
                    if xy is not None:
                        row["found"][f] = True
                        row["xy"][f] = xy[ours_idx] if ours else xy[mp_idx]
                f += 1
        finally:
            engine.close()
    return rows


def _best_or_none(result):
    """The best person's keypoints (K, 2) of a PoseResult, or None where it reports nobody."""
    return best_person(result) if len(result) else None


def report_clips(rows, clip_labels, clip_vis, names, clips: int):
    """Markdown table and data of ``run_clips``' rows: labels (F, K, 2) and visible (F, K) per frame, frames grouped
    by clip (``clips`` clips of equal length) for the intervals."""
    ours_idx, _ = shared_joints(names)
    sub = [names[i] for i in ours_idx]
    gt, vis = clip_labels[:, ours_idx], clip_vis[:, ours_idx]
    groups = np.repeat(np.arange(clips), len(gt) // clips)
    later = np.arange(len(gt)) % (len(gt) // clips) > 0  # a live feed has one first frame; a clip, one in 30
    base = rows[MEDIAPIPE_VIDEO]
    scores = {label: pck(row["xy"], gt, vis, sub)[0] for label, row in rows.items()}  # NaN (nobody): a miss
    table, data = [], {}
    for label, row in rows.items():
        value = scores[label]
        lo, hi = pck_interval(row["xy"], gt, vis, sub, baseline=base["xy"], groups=groups)
        diff = "—" if row is base else f"{value - scores[MEDIAPIPE_VIDEO]:+.3f} ({lo:+.3f} to {hi:+.3f})"
        ms = 1e3 * row["wall"]
        ratio = float(np.mean(row["wall"]) / np.mean(base["wall"]))
        table.append([label, f"{value:.3f}", diff, f"{row['found'].mean():.1%}", f"{ms.mean():.1f}",
                      f"{np.median(ms):.1f}", f"{np.percentile(ms, 95):.1f}",
                      f"{np.percentile(ms[later], 95):.1f}", f"{ratio:.2f}×",
                      f"{1e3 * np.mean(row['cpu']):.1f}"])
        data[label] = {"pck@0.2": value, "vs_mediapipe_video": [value - scores[MEDIAPIPE_VIDEO], lo, hi],
                       "found": float(row["found"].mean()), "ms_mean": float(ms.mean()),
                       "ms_median": float(np.median(ms)), "ms_p95": float(np.percentile(ms, 95)),
                       "ms_p95_after_first_frames": float(np.percentile(ms[later], 95)),
                       "time_vs_mediapipe_video": ratio, "cpu_ms_mean": 1e3 * float(np.mean(row["cpu"]))}
    header = ["engine", "PCK@0.2 (12 joints)", "vs MediaPipe video mode (95 % interval, clips resampled)",
              "frames with a person", "ms per frame (mean)", "ms per frame (median)", "ms per frame (95th pct)",
              "95th pct, each clip's first frame left out",
              "mean time / MediaPipe's", "CPU ms per frame (mean)"]
    return markdown_table(header, table), data

def main(argv=None):
    ap = BenchmarkParser("benchmarks.vs_mediapipe", description=__doc__.split("\n")[0])
    add_persons_args(ap)
    # 3: the best of 1.5, 2, 3, 4 and 5 for MediaPipe on 1,000 training persons (0.586; 1.5: 0.524, 5: 0.575)
    ap.add_argument("--cut", type=float, nargs="+", default=[3.0],
                    help="MediaPipe's cut around the box, as the box enlarged this many times (several: a row each)")
    ap.add_argument("--threads", type=int, default=0,
                    help="FasterPose's threads (default: one per core this process may use; MediaPipe's cannot be set, "
                         "so restrict the cores instead: taskset -c 0 python -m benchmarks.vs_mediapipe)")
    ap.add_argument("--clips", type=positive_int, default=100,
                    help="videos: a clip of 30 frames over each of the first N photos")
    ap.add_argument("--backend", choices=["onnxruntime", "openvino"], default="onnxruntime",
                    help="FasterPose's inference engine (openvino: its results file is named vs_mediapipe_openvino)")
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        raise SystemExit("error: mediapipe is not installed: see this file's docstring (a venv of its own)") from None
    cores = len(os.sched_getaffinity(0))  # taskset's restriction holds for every thread either engine starts
    names, gt, vis, boxes, files = load_persons_args(a)
    images = read_photos(a.images, files)
    t0 = time.perf_counter()
    rows, version = run(images, boxes, names, a.cut, threads=a.threads or cores, backend=a.backend)
    print(f"{len(images)} photos in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    body, data = report(rows, gt, vis, names, cores, a.threads or cores, version, len(files), a.ann.name)
    data["backend"] = a.backend
    body = f"FasterPose's inference engine: {a.backend}.\n\n" + body
    if a.clips > 0:
        n = min(a.clips, len(images))
        clips = make_clips(images[:n], gt[:n])
        t0 = time.perf_counter()
        clip_rows = run_clips(clips, names, PosePredictor(threads=a.threads or cores, backend=a.backend),
                              lambda: MediaPipePose(video=True))
        print(f"{n} clips in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        table, data["videos"] = report_clips(clip_rows, np.concatenate([c[1] for c in clips]),
                                             np.repeat(vis[:n], FRAMES, axis=0), names, n)
        data["videos"]["clips"] = n
        body += (f"\n## Videos\n\n{n} clips of {FRAMES} frames at {CLIP_FPS:g} fps, a handheld camera over the "
                 f"first {n} photos (`benchmarks.tracking.make_clips`); the same cores. A frame where an engine "
                 f"reports nobody scores as all misses.\n\n{table}\n")
    print(body)
    name = "vs_mediapipe" + ("" if a.backend == "onnxruntime" else f"_{a.backend}") \
        + ("" if cores == os.cpu_count() else f"_{cores}core")
    write_results(name, "FasterPose against MediaPipe Pose on the same photos", body, data,
                  results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
