"""What a joint's score means: how often joints of each score are right, and how well the models' score tables
turn scores into chances, on persons the tables were not fitted on.

``python -m benchmarks.score_meaning [--models A.onnx B.onnx] [--ann data/lspet_val.json] [--images DIR]``
-> ``benchmarks/results/score_meaning.{md,json,png}``.

For each model (default: both bundled ones) every labelled person is run as the runtime runs it (``WAYS``): in its
tight labelled box (as ``fasterpose eval``), the same flip-tested, refined from that box (as detector boxes are),
and found without a box as ``fasterpose predict`` finds a photo's person (searched and refined, and with
``--refine 0``; the whole photo, refined and not). A joint is right when it lies within 0.2 torso of its label (PCK's rule). Two-fold cross-fitting
keeps the figures honest: a score table is fitted (``fasterpose_rt.confidence.cross_fitted``, as ``python -m
export.score_calibration`` fits the shipped ones) on the runs of every other person and read on the others, and
the other way round, so no joint is read through a table fitted on it; each way is read through the kind of table
the runtime reads it through (the boxes' for boxed and refined persons, the search's for searched ones), and once
more the searched persons through the boxes' table, to show why the search has its own. Reported per way: PCK,
the mean raw score and the mean confidence, and the calibration error (the joint-weighted |share right − mean
value| over tenths) of each; per keypoint for tight boxes; and the raw reliability bins. ``score_meaning.png``
draws raw scores and confidences against how often they are right.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkParser, markdown_table, run_main, write_results
from benchmarks.orientation import _shown, add_persons_args, load_persons_args, read_photos, resolve_model
from fasterpose_rt import DEFAULT_MODELS, PosePredictor, find_poses_batch
from fasterpose_rt.confidence import cross_fitted
from fasterpose_rt.metrics import _hits, score_reliability

# (row, run, the run whose table reads it): the runtime's tables are per run kind (fasterpose_rt/confidence.py)
WAYS = (
    ("tight box", "boxed", "boxed"),
    ("tight box, flip test", "boxed_flip", "boxed_flip"),
    ("tight box, refined (4 passes, as --detector boxes are)", "refined", "boxed"),
    ("searched and refined (fasterpose predict without boxes)", "searched", "searched"),
    ("searched and refined, read through the boxes' table", "searched", "boxed"),
    ("searched, not refined (--refine 0)", "searched_unrefined", "searched"),
    ("the whole photo, refined (--no-search)", "whole", "boxed"),
    ("the whole photo, not refined (--no-search --refine 0)", "whole_unrefined", "boxed"),
)
BATCH = 16


def _first(results, k: int):
    """(xy (P, K, 2), scores (P, K)) of each PoseResult's first person, NaN where it has none."""
    xy, sc = np.full((len(results), k, 2), np.nan), np.full((len(results), k), np.nan)
    for i, r in enumerate(results):
        if len(r):
            xy[i], sc[i] = r.keypoints[0], r.scores[0]
    return xy, sc


def _run(pred_plain, pred_flip, photos, boxes):
    """{run: (keypoints (N, K, 2), scores (N, K))}, NaN where the search reported nobody."""
    k = pred_plain.metadata.num_keypoints
    calls = {
        "boxed": lambda ims, bs: pred_plain.predict_batch(ims, bs),
        "boxed_flip": lambda ims, bs: pred_flip.predict_batch(ims, bs),
        "refined": lambda ims, bs: find_poses_batch(pred_plain, ims, bs, keep_all=True),
        # every guess (min_presence=0), as the tables are fitted: the presence rule reads them
        "searched": lambda ims, bs: find_poses_batch(pred_plain, ims, min_presence=0),
        "searched_unrefined": lambda ims, bs: find_poses_batch(pred_plain, ims, refine_passes=0, min_presence=0),
        "whole": lambda ims, bs: find_poses_batch(pred_plain, ims, search=False, min_presence=0),
        "whole_unrefined": lambda ims, bs: find_poses_batch(pred_plain, ims, search=False, refine_passes=0,
                                                            min_presence=0),
    }
    out = {}
    for run, call in calls.items():
        res: list = []
        for s in range(0, len(photos), BATCH):
            res += call(photos[s:s + BATCH], [b[None] for b in boxes[s:s + BATCH]])
        out[run] = _first(res, k)
    return out


def require_both_halves(use: np.ndarray, what: str) -> None:
    """Refuse (one line) when either half of the persons (even rows, odd rows) has no joint to fit a score table
    on: cross-fitting reads each half through a table fitted on the other (small ``--limit`` runs).
    use (N, K) bool: the joints that count."""
    half = np.arange(len(use)) % 2 == 0
    if not (use[half].any() and use[~half].any()):
        raise SystemExit(f"error: too few persons: {len(use)} persons leave a half of them without a joint "
                         f"to fit a score table on ({what}); cross-fitting needs both halves (raise --limit)")


def measure(pred_plain, pred_flip, photos, boxes, names, gt, vis) -> dict:
    runs = _run(pred_plain, pred_flip, photos, boxes)
    counted = {}
    for run, (xy, sc) in runs.items():
        hit, use = _hits(np.nan_to_num(xy), gt, vis, names, 0.2)
        counted[run] = (hit, use & np.isfinite(sc))
    for _, _, table_run in WAYS:  # a run may report nobody on a half's persons
        require_both_halves(counted[table_run][1], f"{table_run} run: persons found with a measurable torso")
    ways = {}
    for way, run, table_run in WAYS:
        xy, sc = runs[run]
        hit, use = counted[run]
        conf = cross_fitted(runs[table_run][1], *counted[table_run], sc)
        raw, cal = (score_reliability(np.nan_to_num(xy), gt, vis, names, np.where(use, v, np.nan))
                    for v in (sc, conf))
        per_kp = {n: {"pck": float(hit[:, k][use[:, k]].mean()), "confidence": float(conf[:, k][use[:, k]].mean())}
                  for k, n in enumerate(names)}
        ways[way] = {"run": run, "table": table_run, "pck": float(hit[use].mean()),
                     "mean_score": float(sc[use].mean()), "mean_confidence": float(conf[use].mean()),
                     "ece_raw": raw["ece"], "ece_table": cal["ece"], "joints": int(use.sum()),
                     "raw_bins": raw["bins"], "table_bins": cal["bins"], "per_keypoint": per_kp}
    return ways


def _plot(results: dict, path: Path) -> bool:
    """Draw ``score_meaning.png``; False (nothing drawn) without matplotlib, a dev dependency."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.6), squeeze=False)
    for ax, (model, ways) in zip(axes[0], results.items()):
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, label="a score that is the chance")
        for key, style, label in (("raw_bins", "o-", "raw score"), ("table_bins", "s-", "confidence (cross-fitted)")):
            bins = ways[WAYS[0][0]][key]
            ax.plot([b["mean_score"] for b in bins], [b["pck"] for b in bins], style, label=label)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("value given to a joint (bin mean)"), ax.set_ylabel("share within 0.2 torso of its label")
        ax.set_title(f"{Path(model).name}, tight boxes", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None):
    ap = BenchmarkParser("benchmarks.score_meaning", description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=[str(DEFAULT_MODELS["default"]), str(DEFAULT_MODELS["fast"])])
    add_persons_args(ap)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--results-dir", type=Path, default=None)
    a = ap.parse_args(argv)
    a.models = [str(resolve_model(m)) for m in a.models]  # a missing one refused by name before any work
    names, gt, vis, boxes, files = load_persons_args(a)
    require_both_halves(_hits(gt, gt, vis, names, 0.2)[1], "labelled joints of persons with a measurable torso")
    photos = read_photos(a.images, files)
    results, rows, kp_rows = {}, [], []
    for model in a.models:
        name = _shown(Path(model))
        ways = measure(PosePredictor(model, threads=a.threads), PosePredictor(model, threads=a.threads, flip_test=True),
                       photos, boxes, names, gt, vis)
        results[name] = ways
        for way, w in ways.items():
            rows.append([name, way, f"{w['pck']:.3f}", f"{w['mean_score']:.3f}", f"{w['mean_confidence']:.3f}",
                         f"{100 * w['ece_raw']:.1f}", f"{100 * w['ece_table']:.1f}", w["joints"]])
        kp_rows += [[name, n, f"{v['pck']:.2f}", f"{v['confidence']:.2f}", f"{v['confidence'] - v['pck']:+.2f}"]
                    for n, v in ways[WAYS[0][0]]["per_keypoint"].items()]
    out_dir = a.results_dir or Path(__file__).resolve().parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = _plot(results, out_dir / "score_meaning.png")
    first = next(iter(results))
    bins = [[f"{b['low']:.1f}-{b['high']:.1f}", b["joints"], f"{b['mean_score']:.3f}", f"{b['pck']:.3f}"]
            for b in results[first][WAYS[0][0]]["raw_bins"]]
    body = "\n\n".join([
        f"{len(files)} persons of `{a.ann.name}`; a joint is right within 0.2 torso of its label. Confidences are "
        "cross-fitted: each person's scores read through a table fitted on the other half of the persons (on the "
        "runs of the kind the runtime's table for that way is fitted on), never on the person itself. Calibration "
        "error: the joint-weighted mean of |share right - mean value| over bins of tenths, in points.",
        markdown_table(["model", "persons found by", "PCK@0.2", "mean raw score", "mean confidence",
                        "calibration error, raw", "calibration error, confidence", "joints"], rows),
        f"Raw scores of `{first}` (tight boxes): how often a joint of each score is right.",
        markdown_table(["raw score", "joints", "mean score", "share right"], bins),
        "Per keypoint (tight boxes): one table for all keypoints.",
        markdown_table(["model", "keypoint", "share right", "mean confidence", "confidence - share"], kp_rows),
        "![reliability](score_meaning.png)" if drawn else "(no picture: matplotlib is not installed)",
    ])
    path = write_results("score_meaning", "What a joint's score means", body,
                         {"ann": a.ann.name, "persons": len(files), "models": results}, results_dir=a.results_dir)
    print(path.read_text())


if __name__ == "__main__":
    run_main(main)
