"""What an anamorphic video's squeeze costs, and what running its frames as shown wins back.

``python -m benchmarks.anamorphic_video [--model M.onnx] [--ann data/lspet_val.json] [--images DIR]``
-> ``benchmarks/results/anamorphic_video.{md,json}``.

Some videos store pixels that players show wider or narrower than tall (DV and DVD: 64:45 for PAL 16:9, 8:9 for
NTSC 4:3; HDV: 4:3). Decoded as stored, their people are squeezed. Each labelled person's photo is stored here as
such a video would store it (the shown picture resized to the stored pixels, ``cv2.INTER_AREA``), its tight box
mapped with it, and run through ``VideoPoses`` as a one-frame video (``track=False``) two ways: its capture
stating the sample aspect ratio, so the runtime runs the frame as shown (``VideoPoses.square_factors``), and
stating none, as the runtime ran every video before session 66 (the model given squeezed people). Keypoints
come back in the stored frame's px and are mapped to the photo's to be scored (PCK@0.2; paired 95 % bootstrap
intervals against the photo itself, and between the two ways).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.common import BenchmarkParser, run_main
from benchmarks.orientation import (_shown, compare, load_persons_args, parse_one_model_args, read_photos,
                                    write_comparison)
from fasterpose_rt import PosePredictor, VideoPoses
from fasterpose_rt.geometry import rescale_boxes, rescale_points
from fasterpose_rt.metrics import pck, pck_interval

# (name, sample aspect ratio: a stored pixel's shown width / height)
ASPECTS = (("PAL DV / DVD, 16:9", Fraction(64, 45)), ("HDV 1440x1080", Fraction(4, 3)),
           ("NTSC DV / DVD, 4:3", Fraction(8, 9)))


class OneFrame:
    """A capture-like source (``VideoPoses`` takes one) of one decoded frame that states a sample aspect ratio
    (None: states none, as most files do)."""

    def __init__(self, frame: np.ndarray, aspect):
        self.frame, self.aspect, self.given = frame, aspect, False

    def read(self):
        if self.given:
            return False, None
        self.given = True
        return True, self.frame

    def grab(self) -> bool:
        return not self.given

    def release(self) -> None:
        pass

    def get(self, prop):
        if self.aspect is not None and prop == cv2.CAP_PROP_SAR_NUM:
            return float(self.aspect.numerator)
        if self.aspect is not None and prop == cv2.CAP_PROP_SAR_DEN:
            return float(self.aspect.denominator)
        return 0.0


def stored(photo: np.ndarray, aspect) -> tuple:
    """The photo as a video of pixels ``aspect`` wide stores it -> (frame, (fx, fy) photo px -> frame px)."""
    h, w = photo.shape[:2]
    size = (round(w / aspect), h) if aspect >= 1 else (w, round(h * aspect))
    frame = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    return frame, (size[0] / w, size[1] / h)


def video_keypoints(pred: PosePredictor, frame: np.ndarray, box: np.ndarray, aspect) -> np.ndarray:
    """(K, 2) keypoints of the one person in ``box`` (4,) of a one-frame video, in the frame's px."""
    frames = list(VideoPoses(pred, OneFrame(frame, aspect), boxes=box[None], track=False, smooth=False, read_ahead=0))
    return frames[0].poses.keypoints[0]


def main(argv=None):
    a = parse_one_model_args(BenchmarkParser("benchmarks.anamorphic_video", description=__doc__.split("\n")[0]),
                             argv)
    names, gt, vis, boxes, files = load_persons_args(a)
    photos = read_photos(a.images, files)
    pred = PosePredictor(a.model, threads=a.threads)
    n = len(files)
    base = np.concatenate([pred.predict(photo, [box]).keypoints for photo, box in zip(photos, boxes)])
    model_name = _shown(Path(pred.model_path))
    rows: list = []
    data = {"model": model_name, "persons": n, "ann": a.ann.name, "aspects": {}}
    compare("the photo itself (the baseline)", base, base, gt, vis, names, rows, data)
    for label, aspect in ASPECTS:
        ways = {"as stored": [], "as shown": []}
        for photo, box in tqdm(list(zip(photos, boxes)), desc=f"{label} ({aspect})", leave=False):
            frame, f = stored(photo, aspect)
            frame_box = rescale_boxes(box, f).astype(np.float32)
            for way, said in (("as stored", None), ("as shown", aspect)):
                kp = video_keypoints(pred, frame, frame_box, said)
                ways[way].append(rescale_points(kp, (1 / f[0], 1 / f[1])))  # frame px -> photo px
        xy = {way: np.stack(v) for way, v in ways.items()}
        for way in ways:
            compare(f"{label} ({aspect.numerator}:{aspect.denominator}) run {way}", xy[way], base, gt, vis, names,
                    rows, data)
        gain = pck(xy["as shown"], gt, vis, names)[0] - pck(xy["as stored"], gt, vis, names)[0]
        lo, hi = pck_interval(xy["as shown"], gt, vis, names, baseline=xy["as stored"])
        data["aspects"][label] = {"sample_aspect_ratio": f"{aspect.numerator}:{aspect.denominator}",
                                  "gain": gain, "gain_interval": [lo, hi]}
        rows.append([f"gain of running it as shown ({aspect.numerator}:{aspect.denominator})", "",
                     f"{gain:+.4f} ({lo:+.4f} to {hi:+.4f})"])
        print(rows[-1], flush=True)

    intro = (f"Model: `{model_name}` ({n} persons of `{a.ann.name}`, ground-truth tight boxes, no flip test). Each "
             "photo stored as an anamorphic video stores it, run through `VideoPoses` as a one-frame video: "
             "\"as stored\" is the squeezed frame given to the model as decoded (the runtime before session 66), "
             "\"as shown\" the runtime now (the frame widened to square pixels, keypoints mapped back). Differences "
             "are against the first row on the same persons, and the gain rows between the two ways, with paired "
             "95 % bootstrap intervals. What running as shown cannot win back is the detail the stored frame "
             "dropped.")
    path = write_comparison("anamorphic_video", "Anamorphic video: run as stored or as shown", intro, rows, data,
                            a.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
