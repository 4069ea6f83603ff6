"""Reading frames in a thread: what it gains on video files, and what live reading does for a camera's latency.

``python -m benchmarks.frame_reading [--model M.onnx] [--ann data/lspet_val.json] [--clips 10] [--rounds 3]``
-> ``benchmarks/results/frame_reading.{md,json}``.

The video: ``--clips`` of ``benchmarks.tracking``'s handheld-camera clips (30 frames each, one per validation
photo), each frame placed in a 1280 x 720 picture (scaled to fit, grey around it; the labels moved with it), written
one after another as one MPEG-4 Part 2 file at 30 fps (what OpenCV's writer makes everywhere; an H.264 camera
costs more to decode). Every frame is followed as ``fasterpose predict`` follows a video (tracked and smoothed;
``--no-track``: each frame searched on its own).

1. **Video files, every frame in order.** ``VideoPoses`` reading in the caller's thread between model calls
   (``read_ahead=0``, the runtime before session 45) against a thread decoding ahead (the default), on 1 and 2
   threads, runs interleaved in ``--rounds`` rounds (the order alternating); the ratio is ``common.paired_ratio``
   (the median over pairs of consecutive rounds, each way once first, of the geometric mean of their ratios; one
   round alone: its ratio). The two must give the same poses (checked on every run).
2. **A live source.** The same file played as a camera at 30 fps (``SimulatedCamera``): frame i exists from i/30 s
   after the first read on, a read waits for the next frame and a late reader gets the frames it missed, oldest
   first, as an RTSP stream's buffer delivers them. Read in order (``--no-live``) or live (the newest frame each
   time, the CLI's default for cameras and streams). Latency: from the moment a frame exists to the moment its
   poses are out. PCK@0.2 over the frames processed (a dropped frame is not scored).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, paired_ratio, positive_int, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos
from benchmarks.tracking import FRAMES, best_person, make_clips
from fasterpose_rt import PosePredictor, VideoPoses
from fasterpose_rt.metrics import pck

SIZE = (1280, 720)  # (w, h) of the video's frames
FPS = 30.0


def place(frame, size=SIZE, scale=None, origin=None) -> tuple:
    """``frame`` scaled by ``scale`` (None: to fit a ``size`` (w, h) picture) with its corner at ``origin`` (x, y)
    (None: centred), on grey -> (picture, affine (2, 3) frame -> picture in OpenCV's pixel-centre coordinates,
    for the labels)."""
    h, w = frame.shape[:2]
    s = min(size[0] / w, size[1] / h) if scale is None else float(scale)
    x0, y0 = ((size[0] - s * w) / 2, (size[1] - s * h) / 2) if origin is None else origin
    m = np.array([[s, 0.0, 0.5 * s - 0.5 + x0], [0.0, s, 0.5 * s - 0.5 + y0]])
    return cv2.warpAffine(frame, m, tuple(size), flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128)), m


def write_clips_video(clips, path: Path, size=SIZE, fps: float = FPS) -> np.ndarray:
    """The clips one after another in one video at ``size`` -> the labels (frames, K, 2) in its pixels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {path}")
    labels = []
    for frames, gt in clips:
        for frame, g in zip(frames, gt):
            picture, m = place(frame, size)
            writer.write(picture)
            labels.append(g @ m[:, :2].T + m[:, 2])
    writer.release()
    return np.stack(labels)


class SimulatedCamera:
    """A video file played as a live source at ``fps``: frame i exists from ``start + i / fps`` on (start: the
    first read). ``read()`` waits for the next frame when it does not exist yet and otherwise returns at once, so
    a reader that fell behind gets every frame it missed, oldest first (a stream's buffer). ``born[i]``: when
    frame i came to exist (time.perf_counter())."""

    def __init__(self, path, fps: float = FPS):
        self.cap, self.period, self.start, self.index = cv2.VideoCapture(str(path)), 1.0 / fps, None, 0
        self.born: list = []

    def read(self):
        if self.start is None:
            self.start = time.perf_counter()
        due = self.start + self.index * self.period
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        ok, frame = self.cap.read()
        if ok:
            self.born.append(due)
            self.index += 1
        return ok, frame

    def grab(self):
        return self.read()[0]

    def get(self, prop):
        return 1.0 / self.period if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.cap.release()


def run_file(pred, path, read_ahead: int, track: bool):
    """Every frame of the video through VideoPoses -> (seconds, keypoints (frames, K, 2) of the best person)."""
    t0 = time.perf_counter()
    out = [best_person(f.poses) for f in VideoPoses(pred, path, read_ahead=read_ahead, track=track,
                                                   min_presence=0)]
    return time.perf_counter() - t0, np.stack(out)


def run_live(pred, path, live: bool, track: bool) -> dict:
    """The video as a 30 fps camera through VideoPoses -> frame indices processed, their latencies (s) and best
    persons' keypoints, frames dropped, seconds in all."""
    camera = SimulatedCamera(path)
    video = VideoPoses(pred, camera, live=live, track=track, min_presence=0)
    indices, done, keypoints = [], [], []
    t0 = time.perf_counter()
    for f in video:
        done.append(time.perf_counter())
        indices.append(f.index)
        keypoints.append(best_person(f.poses))
    seconds = time.perf_counter() - t0
    latency = np.array(done) - np.array(camera.born)[indices]
    return {"indices": np.array(indices), "latency": latency, "keypoints": np.stack(keypoints),
            "dropped": video.dropped_frames, "seconds": seconds}


def decode_fps(path) -> float:
    """Frames per second of decoding the whole video alone (no model): what reading ahead can hide at most."""
    cap, frames = cv2.VideoCapture(str(path)), 0
    t0 = time.perf_counter()
    while cap.read()[0]:
        frames += 1
    cap.release()
    return frames / (time.perf_counter() - t0)


def file_table(pred_by_threads, path, rounds: int, frames: int):
    """Part 1 -> (markdown, rows)."""
    rows, md_rows = [], []
    for threads, pred in pred_by_threads.items():
        for track in (True, False):
            times = {0: [], 4: []}
            reference = None
            run_file(pred, path, 4, track)  # warm-up: the model's first calls, the file in the OS cache
            for r in range(rounds):
                for ahead in ((0, 4) if r % 2 == 0 else (4, 0)):
                    seconds, kp = run_file(pred, path, ahead, track)
                    times[ahead].append(seconds)
                    if reference is None:
                        reference = kp
                    elif not np.array_equal(kp, reference, equal_nan=True):
                        raise SystemExit("reading ahead changed the poses")
            inline, ahead = np.array(times[0]), np.array(times[4])
            ratio = paired_ratio(ahead, inline)
            row = {"threads": threads, "track": track, "inline_fps": frames / float(np.median(inline)),
                   "ahead_fps": frames / float(np.median(ahead)), "time_ratio_ahead_vs_inline": ratio,
                   "inline_seconds": inline.tolist(), "ahead_seconds": ahead.tolist()}
            rows.append(row)
            md_rows.append([threads, "tracked (default)" if track else "`--no-track`", f"{row['inline_fps']:.1f}",
                            f"{row['ahead_fps']:.1f}", f"{ratio:.2f}×"])
            print(f"file, {threads} thread(s), track={track}: {row['inline_fps']:.1f} -> {row['ahead_fps']:.1f} "
                  f"frames/s ({ratio:.2f}x the time)", flush=True)
    header = ["threads", "following", "frames/s, read between model calls", "frames/s, read ahead by a thread",
              "time, ahead vs between (paired over rounds)"]
    return markdown_table(header, md_rows), rows


def live_table(pred_by_threads, path, labels, vis, names):
    """Part 2 -> (markdown, rows)."""
    rows, md_rows = [], []
    for threads, pred in pred_by_threads.items():
        for track in (True, False):
            for live in (False, True):
                got = run_live(pred, path, live, track)
                lat = got["latency"] * 1e3
                score = pck(got["keypoints"], labels[got["indices"]], vis[got["indices"]], names)[0]
                n = len(got["indices"])
                row = {"threads": threads, "track": track, "live": live, "processed": n, "dropped": got["dropped"],
                       "latency_ms_mean": float(lat.mean()), "latency_ms_p95": float(np.percentile(lat, 95)),
                       "latency_ms_last": float(lat[-1]), "seconds": got["seconds"], "pck": float(score)}
                rows.append(row)
                md_rows.append([threads, "tracked (default)" if track else "`--no-track`",
                                "live (default)" if live else "`--no-live`", f"{n} / {len(labels)}",
                                f"{lat.mean():.0f} / {np.percentile(lat, 95):.0f} / {lat[-1]:.0f}",
                                f"{got['seconds']:.1f}", f"{score:.3f}"])
                print(f"camera, {threads} thread(s), track={track}, live={live}: {n} frames, latency mean "
                      f"{lat.mean():.0f} ms, last {lat[-1]:.0f} ms, PCK {score:.3f}", flush=True)
    header = ["threads", "following", "reading", "frames processed", "latency ms: mean / 95th pct. / last frame",
              "seconds to the end", "PCK@0.2 (processed frames)"]
    return markdown_table(header, md_rows), rows


def main(argv=None):
    ap = BenchmarkParser("benchmarks.frame_reading", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--clips", type=positive_int, default=10, help="clips made from the first N photos")
    ap.add_argument("--frames", type=positive_int, default=FRAMES, help="frames per clip")
    ap.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="the video's frame size, WxH")
    ap.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds of part 1")
    ap.add_argument("--threads", default="1,2", help="model threads, comma-separated")
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    names, gt, vis, _, files = load_persons_args(a)
    c = min(a.clips, len(files))
    images = read_photos(a.images, files[:c])
    size = tuple(int(v) for v in a.size.lower().split("x"))
    preds = {int(t): PosePredictor(a.model, threads=int(t)) for t in a.threads.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clips.mp4"
        labels = write_clips_video(make_clips(images, gt[:c], frames=a.frames), path, size)
        frame_vis = np.repeat(vis[:c], a.frames, axis=0)
        decoding = float(np.median([decode_fps(path) for _ in range(3)]))
        file_md, file_rows = file_table(preds, path, a.rounds, len(labels))
        live_md, live_rows = live_table(preds, path, labels, frame_vis, names)
    model_name = _shown(Path(next(iter(preds.values())).model_path))
    body = "\n".join([
        f"Model: `{model_name}`. The video: {c} handheld-camera clips of `{a.ann.name}` photos, {len(labels)} frames "
        f"at {size[0]}×{size[1]}, MPEG-4 Part 2, {FPS:g} fps (see the module's docstring).", "",
        "## Video files: every frame, read between model calls or by a thread ahead of them", "",
        f"{a.rounds} interleaved rounds; the poses are identical either way. Decoding alone runs at {decoding:.0f} "
        f"frames/s ({1e3 / decoding:.1f} ms a frame): what a thread can take off the model's path at most.", "",
        file_md, "",
        f"## The same video as a {FPS:g} fps camera: every frame in order, or the newest each time", "",
        "Latency: from the moment a frame exists to the moment its poses are out. A source that queues its frames "
        "(a stream's buffer) makes a reader slower than it fall further behind with every frame. Each row's PCK "
        "scores the frames it processed, so it does not compare the rows' accuracy.", "", live_md, ""])
    write_results("frame_reading", "Reading frames in a thread: video files and live sources", body,
                  {"model": model_name, "clips": c, "frames": len(labels), "size": size, "fps": FPS,
                   "decode_only_fps": decoding, "file": file_rows, "live": live_rows},
                  results_dir=a.results_dir)


if __name__ == "__main__":
    run_main(main)
