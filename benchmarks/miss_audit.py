"""Whose fault is a miss? Panels of a random sample of a model's missed joints, for a person to judge by eye.

``python -m benchmarks.miss_audit --panels DIR [--model M.onnx] [--ann data/lspet_val.json] [--sample 48]``
writes ``DIR/panels_NN.png`` (four misses per picture) and ``DIR/misses.csv`` (one row per sampled miss, with an
empty ``verdict`` column). ``python -m benchmarks.miss_audit --summarise VERDICTS.csv`` counts the verdicts filled
in by hand and writes ``benchmarks/results/miss_audit.{md,json}``.

A miss is a labelled joint that the model puts more than 0.2 torso from its label (the PCK@0.2 of the issue). The
sample is drawn uniformly from all misses with a fixed seed, so it is the same for everyone who runs this. Each
miss shows the person's crop twice, with the labelled skeleton and with the predicted one, in the runtime's
overlay colours (left side orange, right side blue), the missed joint ringed in yellow in both. Verdicts, one per
miss: ``label`` (the label is wrong: it is not on the joint its name says, or on the other side's joint),
``model`` (the label is right and the model is wrong), ``unclear`` (hidden or ambiguous in the photo; neither can
be called wrong). The panels show LSPET photos: they are for the person judging, never committed (the dataset's
photos stay in ``../shared``); the verdicts are.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, markdown_table, run_main, write_results  # noqa: E402
from benchmarks.orientation import _shown, add_persons_args, load_persons_args  # noqa: E402
from fasterpose_rt import PosePredictor  # noqa: E402
from fasterpose_rt.draw import draw_poses  # noqa: E402
from fasterpose_rt.metrics import mirror_hits, torso_sizes  # noqa: E402

VERDICTS = ("label", "model", "unclear")
PANEL_H, PANEL_W, PER_PICTURE = 360, 300, 4
NEAR = 0.35  # torso: a near miss, within reach of the threshold 0.2
FIELDS = ["n", "file", "joint", "distance_torso", "mirror_hit", "score", "verdict", "why"]


def find_misses(pred, gt, vis, names, flip_pairs):
    """Missed joints: (person, joint) index pairs (M, 2) of labelled joints the model puts beyond 0.2 torso, their
    distances in torsos (M,), whether each is a left/right confusion (M,) as `fasterpose eval` counts them (the
    mirror partner's prediction lands on this label), and the number of joints counted."""
    hit, mirrored, use = mirror_hits(pred, gt, vis, names, flip_pairs)
    miss = np.argwhere(use & ~hit)
    torso = torso_sizes(gt, vis, names)
    dist = np.linalg.norm(pred - gt, axis=-1)[miss[:, 0], miss[:, 1]] / torso[miss[:, 0]]
    return miss, dist, mirrored[miss[:, 0], miss[:, 1]], int(use.sum())


def panel(photo, gt, vis, pred, joint, skeleton, names, title):
    """One miss as two views of the person's crop, upscaled: the labels (left) and the prediction (right), each
    skeleton in the runtime's overlay colours (left side orange, right side blue), the missed joint ringed in
    yellow in both. Returns (PANEL_H, 2 * PANEL_W, 3) uint8 BGR."""
    pts = np.concatenate([gt[vis], pred])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = (lo + hi) / 2
    half = max(hi[0] - lo[0], (hi[1] - lo[1]) * PANEL_W / PANEL_H) * 0.65 + 10
    k = PANEL_W / (2 * half)
    m = np.array([[k, 0, PANEL_W / 2 - k * center[0]], [0, k, PANEL_H / 2 - k * center[1]]])
    crop = cv2.warpAffine(photo, m, (PANEL_W, PANEL_H), flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40))
    views = []
    for kp, shown in ((gt, vis.astype(np.float64)), (pred, np.ones(len(pred)))):
        xy = kp @ m[:, :2].T + m[:, 2]
        view = draw_poses(crop, xy[None], shown[None], skeleton, names, threshold=0.5)
        cv2.circle(view, tuple(int(round(v)) for v in xy[joint]), 9, (0, 255, 255), 2, cv2.LINE_AA)
        views.append(view)
    out = np.concatenate(views, axis=1)
    cv2.line(out, (PANEL_W, 0), (PANEL_W, PANEL_H), (255, 255, 255), 2)
    cv2.rectangle(out, (0, 0), (2 * PANEL_W, 22), (0, 0, 0), -1)
    cv2.putText(out, title + "   labels | model", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def make_panels(a):
    names, gt, vis, boxes, files = load_persons_args(a)
    pred_model = PosePredictor(a.model, threads=a.threads)
    meta = pred_model.metadata
    photos = {f: cv2.imread(str(a.images / f)) for f in dict.fromkeys(files)}
    results = [pred_model.predict(photos[f], [b]) for f, b in zip(files, boxes)]
    pred = np.concatenate([r.keypoints for r in results])
    scores = np.concatenate([r.scores for r in results])
    miss, dist, mirror_hit, counted = find_misses(pred, gt, vis, names, meta.flip_pairs)
    rng = np.random.default_rng(a.seed)
    pick = np.sort(rng.choice(len(miss), size=min(a.sample, len(miss)), replace=False))
    a.panels.mkdir(parents=True, exist_ok=True)
    rows, tiles = [], []
    for s, r in enumerate(pick):
        n, j = (int(v) for v in miss[r])
        title = f"#{s} {Path(files[n]).stem} {names[j]} {dist[r]:.2f}t"
        tiles.append(panel(photos[files[n]], gt[n], vis[n], pred[n], j, meta.skeleton, names, title))
        rows.append({"n": s, "file": files[n], "joint": names[j], "distance_torso": f"{dist[r]:.3f}",
                     "mirror_hit": int(mirror_hit[r]), "score": f"{scores[n, j]:.3f}", "verdict": "", "why": ""})
    for start in range(0, len(tiles), PER_PICTURE):
        group = tiles[start:start + PER_PICTURE]
        group += [np.zeros_like(tiles[0])] * (PER_PICTURE - len(group))
        grid = np.concatenate([np.concatenate(group[:2], 1), np.concatenate(group[2:], 1)], 0)
        cv2.imwrite(str(a.panels / f"panels_{start // PER_PICTURE:02d}.png"), grid)
    with open(a.panels / "misses.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(miss)} misses of {counted} counted joints ({int(mirror_hit.sum())} where the mirror joint's "
          f"prediction lands on the label); {len(rows)} sampled -> {a.panels}")
    return len(miss), counted, _shown(Path(pred_model.model_path))


def wilson_interval(k: int, n: int, z: float = 1.96):
    """95 % Wilson score interval (low, high) of a share k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def summarise(path: Path, results_dir=None):
    rows = list(csv.DictReader(open(path)))
    bad = [r["n"] for r in rows if r["verdict"] not in VERDICTS]
    if bad:
        raise SystemExit(f"error: {path}: rows {', '.join(bad)} have no verdict among {', '.join(VERDICTS)}")
    total = len(rows)
    table, data = [], {"sampled_misses": total, "source": _shown(path)}
    for v in VERDICTS:
        group = [r for r in rows if r["verdict"] == v]
        mirror = sum(int(r["mirror_hit"]) for r in group)
        near = sum(float(r["distance_torso"]) < NEAR for r in group)
        lo, hi = wilson_interval(len(group), total)
        table.append([v, len(group), f"{len(group) / total:.0%} ({lo:.0%}–{hi:.0%})", mirror, near])
        data[v] = {"misses": len(group), "share": len(group) / total, "share_interval_95": [lo, hi],
                   "mirror_hits": mirror, f"within_{NEAR}_torso": near}
    body = [f"{total} misses drawn at random from the model's missed joints, each judged by eye on its panel "
            "by one person (`label`: the label is not on the joint it names; `model`: the label is right, the "
            "prediction wrong; `unclear`: hidden or ambiguous, neither can be called wrong). Share with its 95 % "
            "Wilson interval (the sample is small). A left/right confusion: the mirror joint's prediction lands on "
            "this joint's label, as `fasterpose eval` counts them. Per-miss verdicts and reasons: `"
            + _shown(path) + "`.", "",
            markdown_table(["verdict", "misses", "share (95 % interval)", "left/right confusions",
                            f"within {NEAR} torso of the label"], table)]
    out = write_results("miss_audit", "Whose fault is a miss? A judged sample of validation misses",
                        "\n".join(body), data, results_dir=results_dir)
    print(f"wrote {out}")
    return data


def main(argv=None):
    ap = BenchmarkParser("benchmarks.miss_audit", description=__doc__.split("\n")[0])
    ap.add_argument("--panels", type=Path, help="folder for the panels and misses.csv (not in the repository)")
    ap.add_argument("--summarise", type=Path, help="a misses.csv with verdicts filled in: count them")
    ap.add_argument("--model", help="ONNX model (default: the bundled default model)")
    add_persons_args(ap)
    ap.add_argument("--sample", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    if (a.panels is None) == (a.summarise is None):
        raise SystemExit("error: give --panels DIR (draw a sample) or --summarise VERDICTS.csv (count it)")
    if a.summarise is not None:
        return summarise(a.summarise, a.results_dir)
    return make_panels(a)


if __name__ == "__main__":
    run_main(main)
