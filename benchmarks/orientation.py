"""Does the crop's orientation matter? Rotation test-time augmentation and upright alignment on LSPET val.

``python -m benchmarks.orientation [--model M.onnx] [--ann data/lspet_val.json] [--images DIR]``
-> ``benchmarks/results/orientation.{md,json}``.

Sports photos hold many persons sideways or upside down, and the bundled model scores them far below upright
ones. Two remedies that need no training are measured here, each against the flip-tested model on the same
persons (paired 95 % bootstrap interval of the PCK@0.2 difference, ``fasterpose_rt.metrics.pck_interval``):

1. Rotation test-time augmentation: every person is also cropped rotated by each of ``ANGLES`` (about the box
   centre, the same region size), each view flip-tested; the views' probability heatmaps are warped back into the
   upright crop's heatmap frame (one exact affine per view: heatmap -> crop -> photo -> other crop -> heatmap)
   and averaged, or the view with the highest mean keypoint score is kept.
2. Upright alignment (MediaPipe's idea): the crop is turned so that the body axis (hips' midpoint -> shoulders'
   midpoint) points up, the region re-fitted around the keypoints in that frame. With the labelled joints (an
   oracle: the upper bound of the idea) and with the model's own first-pass keypoints (two passes, a real
   product could do this). Per body-orientation bin as well, since the idea targets the tilted and inverted bins.
Also reported: the whole set seen through one rotated view at a time (how much the model depends on the angle).
Crops, sessions, flip test, decoding and metrics are the runtime's own code.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (BenchmarkParser, markdown_table, non_negative_int, positive_int, run_main,  # noqa: E402
                               shown_path, write_results)
from fasterpose_rt import DEFAULT_MODELS, PosePredictor  # noqa: E402
from fasterpose_rt.decode import decode_heatmaps  # noqa: E402
from fasterpose_rt.geometry import (apply_affine, box_centers_and_sizes, crop_affine, heatmap_to_crop,  # noqa: E402
                                    invert_affine, turned_extent)
from fasterpose_rt.metrics import pck, pck_by_orientation, pck_interval  # noqa: E402
from fasterpose_rt.preprocess import warp_crops  # noqa: E402

ANGLES = (0, 180, 30, -30, 90, -90, 60, -60, 120, -120, 150, -150)  # degrees; 0 must come first
TTA_SETS = ((0, 180), (0, 30, -30), (0, 180, 30, -30), (0, 30, -30, 90, -90), ANGLES)
DATA = ROOT / "data"
IMAGES = ROOT.parent / "shared" / "datasets" / "lspet" / "images"


def add_persons_args(ap) -> None:
    """--ann / --images / --limit: the labelled persons a benchmark scores models on (LSPET validation by default)."""
    ap.add_argument("--ann", type=Path, default=DATA / "lspet_val.json",
                    help="COCO keypoint file (default data/lspet_val.json: python -m models.data.lsp_to_coco ... --range 8001:9000)")
    ap.add_argument("--images", type=Path, default=IMAGES)
    ap.add_argument("--limit", type=non_negative_int, default=0, help="first N persons only (smoke runs; 0: all)")


def parse_model_comparison(ap, argv, models_help: str, rounds: int, rounds_help: str):
    """Options of a benchmark that compares several models on the same persons: --models (at least two), --flip,
    the persons' options (``add_persons_args``), --rounds, --results-dir. Returns the parsed namespace."""
    ap.add_argument("--models", nargs="+", required=True, help=models_help)
    ap.add_argument("--flip", action="store_true", help="flip-test every model")
    add_persons_args(ap)
    ap.add_argument("--rounds", type=positive_int, default=rounds, help=rounds_help)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    if len(a.models) < 2:
        raise SystemExit("error: --models needs at least two models")
    a.models = [resolve_model(m) for m in a.models]
    return a


def resolve_model(name: str) -> Path:
    """A model argument -> its file: a path, or the name of a bundled variant (``default``, ``fast``) when no file
    of that name exists. A missing file is refused here, by name, before any person is loaded."""
    path = Path(name)
    if not path.exists() and name in DEFAULT_MODELS:
        return DEFAULT_MODELS[name]
    if not path.is_file():
        raise SystemExit(f"error: model {name}: file not found (a path, or a bundled model: "
                         f"{', '.join(DEFAULT_MODELS)})")
    return path


def load_persons_args(a):
    """The persons of ``add_persons_args``' options: load_persons(a.ann), the first a.limit of them if given."""
    if not a.ann.is_file():
        raise SystemExit(f"error: {a.ann} not found: make it with python -m models.data.lsp_to_coco (see README)")
    names, gt, vis, boxes, files = load_persons(a.ann)
    n = a.limit or len(files)
    return names, gt[:n], vis[:n], boxes[:n], files[:n]


def read_photos(images: Path, files) -> list:
    """The photos ``files`` under ``images`` as (H, W, 3) uint8 BGR arrays; exits naming the first one that cannot
    be read."""
    missing = [f for f in files if not (Path(images) / f).is_file()]  # before OpenCV warns once per file
    if missing:
        raise SystemExit(f"error: cannot read the photos under {images} (first: {missing[0]}: no such file; wrong "
                         "--images folder?)")
    photos = [cv2.imread(str(Path(images) / f)) for f in files]
    bad = [f for f, p in zip(files, photos) if p is None]
    if bad:
        raise SystemExit(f"error: cannot read the photos under {images} (first: {bad[0]})")
    return photos


def load_persons(ann: Path):
    """COCO keypoint file -> (names K, gt (N, K, 2), visible (N, K), boxes (N, 4), photo file per person)."""
    data = json.loads(Path(ann).read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    anns = [a for a in data["annotations"] if a.get("num_keypoints", 1) > 0]
    kp = np.array([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in anns])
    boxes = np.array([a["bbox"] for a in anns], np.float64)
    return data["categories"][0]["keypoints"], kp[..., :2], kp[..., 2] > 0, boxes, [files[a["image_id"]] for a in anns]


def to3(m: np.ndarray) -> np.ndarray:
    """Affines (..., 2, 3) -> homogeneous (..., 3, 3)."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), m.shape[:-2] + (1, 3))
    return np.concatenate([m, bottom], axis=-2)


def heatmap_to_crop_affine(input_size, heatmap_size) -> np.ndarray:
    """(3, 3) map heatmap px -> crop px (convention 4 of fasterpose_rt/geometry.py as a matrix)."""
    sx, sy = input_size[0] / heatmap_size[0], input_size[1] / heatmap_size[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


class Views:
    """Flip-tested heatmaps of every person seen through several crops, all in one reference crop's frame."""

    def __init__(self, predictor: PosePredictor, images: Path, files, photos=None):
        self.pred, self.images, self.files = predictor, Path(images), files
        self.input_size = predictor.input_size
        self._photos = {} if photos is None else photos  # file name -> BGR photo; shareable between Views

    def photo(self, name: str) -> np.ndarray:
        if name not in self._photos:
            image = cv2.imread(str(self.images / name)) if (self.images / name).is_file() else None
            if image is None:
                raise SystemExit(f"error: cannot read {self.images / name} (wrong --images folder?)")
            self._photos[name] = image
        return self._photos[name]

    def heatmaps(self, affines: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """affines (N, V, 2, 3) photo -> crop of V views per person; reference (N, 2, 3) -> (V, N, K, h, w)
        probability heatmaps, each view's warped into the reference crop's heatmap frame (exact for V's own)."""
        n, v = affines.shape[:2]
        out = None
        for i in range(n):
            crops = warp_crops(self.photo(self.files[i]), affines[i], self.input_size)
            hm = self.pred._infer(self.pred._normalize(crops))[0]  # the predictor's own session + sigmoid + flip
            k, h, w = hm.shape[1:]
            if out is None:
                out = np.zeros((v, n, k, h, w), np.float32)
            h2c = heatmap_to_crop_affine(self.input_size, (w, h))
            # dst (reference heatmap px) -> src (view heatmap px): ref hm -> ref crop -> photo -> view crop -> view hm
            src = np.linalg.inv(h2c) @ to3(affines[i]) @ np.linalg.inv(to3(reference[i])) @ h2c
            for j in range(v):
                if np.allclose(affines[i, j], reference[i]):
                    out[j, i] = hm[j]
                    continue
                warped = cv2.warpAffine(np.ascontiguousarray(hm[j].transpose(1, 2, 0)), src[j, :2], (w, h),
                                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                out[j, i] = warped.reshape(h, w, k).transpose(2, 0, 1)
        return out

    def keypoints(self, heatmaps: np.ndarray, reference: np.ndarray):
        """heatmaps (N, K, h, w) in the reference crops' frame -> photo keypoints (N, K, 2), scores (N, K)."""
        xy, scores = decode_heatmaps(np.ascontiguousarray(heatmaps), edge_peaks=self.pred.metadata.edge_peaks)
        stride = (self.input_size[0] / heatmaps.shape[3], self.input_size[1] / heatmaps.shape[2])
        return apply_affine(heatmap_to_crop(xy, stride), invert_affine(reference)), scores


def body_axis_angles(keypoints: np.ndarray, names) -> np.ndarray:
    """Angle in degrees of the hips' midpoint -> shoulders' midpoint axis from photo-up (positive: leaning
    right, clockwise on screen). keypoints (N, K, 2) -> (N,), NaN where a point is NaN."""
    ix = {n: i for i, n in enumerate(names)}
    shoulders = 0.5 * (keypoints[:, ix["left_shoulder"]] + keypoints[:, ix["right_shoulder"]])
    hips = 0.5 * (keypoints[:, ix["left_hip"]] + keypoints[:, ix["right_hip"]])
    axis = shoulders - hips
    return np.degrees(np.arctan2(axis[:, 0], -axis[:, 1]))


def aligned_affines(points: np.ndarray, angles: np.ndarray, meta) -> np.ndarray:
    """Crops turned by ``angles`` (N,) degrees, each region fitted around its person's points (N, P, 2) in the
    turned frame (NaN points ignored), then given the model's aspect and box padding. Returns (N, 2, 3)."""
    centers, size = turned_extent(points, angles)
    c, s = box_centers_and_sizes(np.concatenate([centers - size / 2, size], 1), meta.input_size, meta.box_padding)
    return crop_affine(c, s, meta.input_size, angles)


def compare(name, xy, base_xy, gt, vis, names, rows, data):
    value = pck(xy, gt, vis, names)[0]
    lo, hi = pck_interval(xy, gt, vis, names, baseline=base_xy)
    base = pck(base_xy, gt, vis, names)[0]
    rows.append([name, f"{value:.4f}", f"{value - base:+.4f} ({lo:+.4f} to {hi:+.4f})"])
    data[name] = {"pck@0.2": value, "diff": value - base, "diff_interval": [lo, hi]}
    print(rows[-1], flush=True)


def write_comparison(name: str, title: str, intro: str, rows, data, results_dir=None, after: str = "") -> Path:
    """Write ``<name>.{md,json}``: ``intro``, then the table of :func:`compare`'s rows (variant, PCK@0.2, difference
    and its interval), then ``after``. Returns the Markdown file's path."""
    body = [intro, "", markdown_table(["variant", "PCK@0.2", "difference (interval)"], rows)] + (
        ["", after] if after else [])
    return write_results(name, title, "\n".join(body), data, results_dir=results_dir)


def _shown(path: Path) -> str:
    """The model's path relative to the repository when it lies inside it (results name no local folders)."""
    return shown_path(path)


def parse_one_model_args(ap, argv):
    """Options of a benchmark that scores one model's inference variants: --model, the persons' options
    (``add_persons_args``), --threads, --results-dir. Returns the parsed namespace."""
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    if a.model is not None:  # refused by name before any person is loaded; "default" / "fast" name bundled ones
        a.model = str(resolve_model(a.model))
    return a


def main(argv=None):
    a = parse_one_model_args(BenchmarkParser("benchmarks.orientation", description=__doc__.split("\n")[0]), argv)
    names, gt, vis, boxes, files = load_persons_args(a)
    pred = PosePredictor(a.model, threads=a.threads, flip_test=True)
    meta = pred.metadata
    views = Views(pred, a.images, files)
    n = len(files)
    reference = crop_affine(*box_centers_and_sizes(boxes, meta.input_size, meta.box_padding), meta.input_size)
    model_name = _shown(Path(pred.model_path))
    rows, data = [], {"model": model_name, "persons": n, "angles": list(ANGLES)}

    # Every person through every rotated view, flip-tested, in the upright crop's heatmap frame.
    centers, sizes = box_centers_and_sizes(boxes, meta.input_size, meta.box_padding)
    rotated = crop_affine(np.repeat(centers, len(ANGLES), 0), np.repeat(sizes, len(ANGLES), 0), meta.input_size,
                          np.tile(np.array(ANGLES, np.float64), n)).reshape(n, len(ANGLES), 2, 3)
    stack = views.heatmaps(rotated, reference)
    base_xy, base_scores = views.keypoints(stack[0], reference)
    compare("flip test (the baseline)", base_xy, base_xy, gt, vis, names, rows, data)
    single = {}
    for j, angle in enumerate(ANGLES):
        xy, scores = views.keypoints(stack[j], reference)
        single[angle] = (xy, scores)
    for angles in TTA_SETS:
        idx = [ANGLES.index(t) for t in angles]
        xy, _ = views.keypoints(stack[idx].mean(axis=0), reference)
        compare(f"TTA mean of views {list(angles)}", xy, base_xy, gt, vis, names, rows, data)
    confidence = np.stack([single[t][1].mean(axis=1) for t in ANGLES])  # (V, N)
    best = confidence.argmax(axis=0)
    xy = np.stack([single[ANGLES[b]][0][i] for i, b in enumerate(best)])
    compare(f"TTA most confident of {len(ANGLES)} views", xy, base_xy, gt, vis, names, rows, data)

    # Upright alignment: oracle (labelled joints) and two passes (the model's own first-pass keypoints).
    labelled = np.where(vis[..., None], gt, np.nan)
    oracle_angles = np.nan_to_num(body_axis_angles(labelled, names), nan=0.0)
    oracle = aligned_affines(labelled, oracle_angles, meta)
    oracle_xy, _ = views.keypoints(views.heatmaps(oracle[:, None], oracle)[0], oracle)
    compare("upright alignment, oracle (labelled body axis)", oracle_xy, base_xy, gt, vis, names, rows, data)
    first_angles = body_axis_angles(base_xy, names)
    for threshold in (0, 45, 90):
        turn = np.where(np.abs(first_angles) > threshold, first_angles, 0.0)
        second = aligned_affines(base_xy, turn, meta)
        xy, scores = views.keypoints(views.heatmaps(second[:, None], second)[0], second)
        compare(f"two passes, turned where the first pass's axis is beyond {threshold} deg", xy, base_xy, gt, vis,
                names, rows, data)
        keep = scores.mean(axis=1) > base_scores.mean(axis=1)
        compare("  ... keeping the more confident pass", np.where(keep[:, None, None], xy, base_xy), base_xy, gt,
                vis, names, rows, data)

    bins = pck_by_orientation(base_xy, gt, vis, names)
    bins_oracle = pck_by_orientation(oracle_xy, gt, vis, names)
    def shown_pck(v):  # None: no person of that orientation among those scored (small --limit runs)
        return "n/a" if v is None else f"{v:.4f}"

    bin_rows = [[b["orientation"], b["persons"], shown_pck(b["pck"]), shown_pck(o["pck"])]
                for b, o in zip(bins, bins_oracle)]
    data["by_orientation"] = {"baseline": bins, "oracle_upright": bins_oracle}
    angle_rows = [[f"{t:+d}", f"{pck(single[t][0], gt, vis, names)[0]:.4f}"] for t in ANGLES]
    data["single_view"] = {str(t): pck(single[t][0], gt, vis, names)[0] for t in ANGLES}

    intro = (f"Model: `{model_name}` ({n} persons of `{a.ann.name}`, ground-truth tight boxes, every view "
             "flip-tested). Differences are against the first row on the same persons, with the paired 95 % "
             "bootstrap interval.")
    after = "\n".join([
        "By body orientation of the labels (upright < 30°, tilted 30–90°, inverted > 90° from vertical):", "",
        markdown_table(["orientation", "persons", "PCK@0.2 as cropped", "PCK@0.2 turned upright (oracle)"],
                       bin_rows), "",
        "The whole set seen through one view turned by the angle (the person appears turned the other way):", "",
        markdown_table(["view angle (deg)", "PCK@0.2"], angle_rows)])
    path = write_comparison("orientation", "Crop orientation: rotation TTA and upright alignment (LSPET val)", intro,
                            rows, data, a.results_dir, after)
    print(f"wrote {path}")


if __name__ == "__main__":
    run_main(main)
