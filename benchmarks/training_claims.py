"""The paper's training claims on real data (LSPET), at an equal, small budget and seed:

(a) RCE vs MSE on FasterPose-R18: validation PCK@0.2 per epoch (does RCE converge faster?);
(b) FasterPose-R18 (low-resolution head) vs SimpleBaseline-R18 (high-resolution deconvolution head), both
    trained with RCE: accuracy per MAC and per millisecond (ONNX export of the trained weights under
    onnxruntime, 1 thread, batch 1).

``python -m benchmarks.training_claims [--epochs 8 --steps-per-epoch 80 --batch-size 32 --input-size 96x128]``
-> ``benchmarks/results/training_claims.{md,json,png}`` (``--quick``: a smoke run into a temporary folder).

Three ``python -m models.train`` runs, one after the other on all cores, fp32 (``--amp off``): FP-R18 + RCE
(shared by (a) and (b)), FP-R18 + MSE, SB-R18 + RCE. Same seed, data, schedule (AdamW, warm-up + cosine) and
augmentation; no pretrained weights (none can be downloaded here). Data: LSPET photos 1-8000 for training,
8001-9000 for validation (its first ``--val-limit`` persons), as COCO files converted with
``python -m models.data.lsp_to_coco`` into the cache folder when not given. Runs are kept in the cache folder
and reused when their configuration matches (a finished run is not repeated; an unfinished one resumes).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ come from the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, interleaved_times, markdown_table, run_main, write_results  # noqa: E402

LSPET = ROOT.parent / "shared" / "datasets" / "lspet"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "fasterpose_bench_cache"
RUNS = {  # name -> (architecture, loss)
    "fp_r18_rce": ("fasterpose_r18", "rce"),
    "fp_r18_mse": ("fasterpose_r18", "mse"),
    "sb_r18_rce": ("simplebaseline_r18", "rce"),
}
LABELS = {"fp_r18_rce": "FasterPose-R18, RCE", "fp_r18_mse": "FasterPose-R18, MSE",
          "sb_r18_rce": "SimpleBaseline-R18, RCE"}
LATENCY_ROUNDS = 60


def parse_size(text: str):
    """'96x128' -> (96, 128) (w, h), both multiples of 32 (SimpleBaseline's output stride)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 96x128, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise argparse.ArgumentTypeError(f"width and height must be positive multiples of 32 "
                                         f"(SimpleBaseline's stride), got {text!r}")
    return w, h


def refuse_missing_annotations(train_ann, val_ann) -> None:
    """A --train-ann / --val-ann that is given must exist: it is read, never made (only the cache's own files are
    converted from LSPET). Checked before anything runs."""
    for flag, given in (("--train-ann", train_ann), ("--val-ann", val_ann)):
        if given is not None and not Path(given).is_file():
            raise SystemExit(f"error: {flag} {given}: file not found (leave it out to convert LSPET into the cache "
                             "folder)")


def ensure_annotations(cache: Path, train_ann, val_ann):
    """(train.json, val.json): the given files, else LSPET 1:8000 / 8001:9000 converted into ``cache``."""
    refuse_missing_annotations(train_ann, val_ann)
    if train_ann and val_ann:
        return Path(train_ann), Path(val_ann)
    if not (LSPET / "joints.mat").is_file() or not (LSPET / "images").is_dir():
        raise SystemExit(f"error: LSPET not found at {LSPET} (needs joints.mat and images/): this benchmark needs "
                         "the shared datasets folder beside the repository, or --train-ann and --val-ann")
    out = []
    for name, rng, given in (("lspet_train.json", "1:8000", train_ann), ("lspet_val.json", "8001:9000", val_ann)):
        path = Path(given) if given else cache / name
        if not path.is_file():  # only the cache's own file: a given one exists (refused above otherwise)
            print(f"converting LSPET {rng} -> {path} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, "-m", "models.data.lsp_to_coco", "--joints", str(LSPET / "joints.mat"),
                   "--images", str(LSPET / "images"), "--out", str(path), "--range", rng]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"error: `{' '.join(cmd)}` exited {r.returncode}: {r.stderr.strip()[-800:]}")
        out.append(path)
    return out[0], out[1]


def train_args(arch, loss, budget, train_ann, val_ann, work_dir: Path):
    """The ``python -m models.train`` argument list of one run."""
    images = str(LSPET / "images")
    w, h = budget["input_size"]
    args = ["--train-ann", str(train_ann), "--train-images", images, "--val-ann", str(val_ann),
            "--val-images", images, "--arch", arch, "--loss", loss, "--input-size", f"{w}x{h}",
            "--epochs", str(budget["epochs"]), "--steps-per-epoch", str(budget["steps_per_epoch"]),
            "--batch-size", str(budget["batch_size"]), "--val-limit", str(budget["val_limit"]),
            "--seed", str(budget["seed"]), "--amp", "off", "--work-dir", str(work_dir)]
    if budget.get("no_cache"):
        args.append("--no-cache")
    return args


def read_log(work_dir: Path):
    """Entries of ``log.jsonl``, one dict per finished epoch in epoch order, [] if absent. An epoch logged twice
    (a run stopped between its log line and its checkpoint, then resumed) keeps its last entry."""
    log = work_dir / "log.jsonl"
    if not log.is_file():
        return []
    by_epoch = {}
    for line in log.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            by_epoch[entry["epoch"]] = entry
    return [by_epoch[k] for k in sorted(by_epoch)]


def train_run(name, arch, loss, budget, train_ann, val_ann, runs_dir: Path):
    """Run (or reuse, or resume) one training; returns {"log": [...], "seconds": wall time of this call, "reused"}."""
    work = runs_dir / name
    args = train_args(arch, loss, budget, train_ann, val_ann, work)
    config = {"args": args}
    cfg_path = work / "benchmark_config.json"
    same = cfg_path.is_file() and json.loads(cfg_path.read_text()) == config
    log = read_log(work) if same else []
    if same and len(log) >= budget["epochs"] and (work / "last.pth").is_file():
        print(f"{name}: reusing the finished run in {work}", file=sys.stderr, flush=True)
        return {"log": log[: budget["epochs"]], "seconds": 0.0, "reused": True}
    resume = same and (work / "last.pth").is_file()
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cfg_path.write_text(json.dumps(config, indent=1))
    print(f"{name}: training{' (resuming)' if resume else ''} -> {work} (output in train.log)", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with open(work / "train.log", "a") as out:
        r = subprocess.run([sys.executable, "-m", "models.train", *args, *(["--resume"] if resume else [])],
                           cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        tail = (work / "train.log").read_text()[-1500:]
        raise SystemExit(f"error: training {name} exited {r.returncode}; end of {work / 'train.log'}:\n{tail}")
    log = read_log(work)
    if len(log) < budget["epochs"]:
        raise SystemExit(f"error: training {name} logged {len(log)} of {budget['epochs']} epochs; see {work / 'train.log'}")
    print(f"{name}: done in {seconds / 60:.1f} min, final val PCK@0.2 {log[-1].get('val_pck@0.2', float('nan')):.3f}",
          file=sys.stderr, flush=True)
    return {"log": log, "seconds": seconds, "reused": False}


def export_and_time(runs_dir: Path, names, size, rounds: int):
    """Export each run's last.pth to ONNX and time it: onnxruntime, 1 thread, batch 1, interleaved.

    Returns {name: {"median_ms", "p90_ms", "macs", "onnx": path}}.
    """
    from benchmarks.latency import macs
    from export import export_from_args
    from fasterpose_rt.session import open_session

    out, fns = {}, {}
    rng = np.random.default_rng(0)
    w, h = size
    x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
    for name in names:
        onnx_path = runs_dir / name / "last.onnx"
        result = export_from_args(onnx_path, checkpoint=runs_dir / name / "last.pth")
        sess, meta = open_session(result.path, threads=1)
        feed, outs = {sess.get_inputs()[0].name: x}, [sess.get_outputs()[0].name]
        fns[name] = lambda s=sess, f=feed, o=outs: s.run(o, f)
        out[name] = {"macs": macs(meta.architecture, meta.num_keypoints, size), "onnx": str(result.path)}
    times = interleaved_times(fns, rounds, warmup=3)
    for name, t in times.items():
        out[name].update(median_ms=float(np.median(t) * 1e3), p90_ms=float(np.percentile(t, 90) * 1e3))
    return out


def plot(runs, path: Path, budget):
    """PCK@0.2 per epoch: (a) RCE vs MSE, (b) FasterPose vs SimpleBaseline; PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    panels = (("(a) loss, FasterPose-R18", ("fp_r18_rce", "fp_r18_mse")),
              ("(b) head, both RCE", ("fp_r18_rce", "sb_r18_rce")))
    colors = {"fp_r18_rce": "tab:blue", "fp_r18_mse": "tab:orange", "sb_r18_rce": "tab:green"}
    for ax, (title, names) in zip(axes, panels):
        for name in names:
            log = runs[name]["log"]
            ax.plot([e["epoch"] for e in log], [e.get("val_pck@0.2", np.nan) for e in log], marker="o",
                    color=colors[name], label=LABELS[name])
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"epoch ({budget['steps_per_epoch']} steps × {budget['batch_size']} crops)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("validation PCK@0.2")
    w, h = budget["input_size"]
    fig.suptitle(f"LSPET, input {h}×{w} (h×w), seed {budget['seed']}, validation on {budget['val_limit']} persons")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pck(entry):
    value = entry.get("val_pck@0.2")  # absent, or None where validation counted no joint
    return float("nan") if value is None else float(value)


def _first_epoch_reaching(log, level):
    return next((e["epoch"] for e in log if _pck(e) >= level), None)


def run(budget, train_ann, val_ann, cache: Path, runs_dir: Path, results_dir=None):
    train_ann, val_ann = ensure_annotations(cache, train_ann, val_ann)
    runs = {}
    t0 = time.perf_counter()
    for name, (arch, loss) in RUNS.items():
        runs[name] = train_run(name, arch, loss, budget, train_ann, val_ann, runs_dir)
    train_minutes = (time.perf_counter() - t0) / 60
    print("exporting and timing the trained models ...", file=sys.stderr, flush=True)
    lat = export_and_time(runs_dir, ("fp_r18_rce", "sb_r18_rce"), budget["input_size"], budget["latency_rounds"])

    results_dir = Path(results_dir) if results_dir is not None else None
    from benchmarks.common import RESULTS_DIR

    out_dir = results_dir or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "training_claims.png"
    plot(runs, png, budget)

    # Per-epoch table.
    epochs = budget["epochs"]
    names = list(RUNS)
    table = []
    for i in range(epochs):
        row = [i + 1]
        for name in names:
            log = runs[name]["log"]
            row.append(f"{_pck(log[i]):.3f}" if i < len(log) else "–")
        table.append(row)

    # (a) RCE vs MSE.
    rce, mse = runs["fp_r18_rce"]["log"], runs["fp_r18_mse"]["log"]
    ahead = sum(_pck(a) > _pck(b) for a, b in zip(rce, mse))
    best = max(max(_pck(e) for e in rce), max(_pck(e) for e in mse))
    half = 0.5 * best
    reach = {n: _first_epoch_reaching(runs[n]["log"], half) for n in ("fp_r18_rce", "fp_r18_mse")}
    claim_a = {"epochs_rce_ahead": ahead, "epochs": len(rce), "final_rce": _pck(rce[-1]), "final_mse": _pck(mse[-1]),
               "half_of_best_level": half, "first_epoch_reaching_half_of_best": reach}
    text_a = (f"RCE is ahead of MSE at {ahead} of {len(rce)} epochs; final PCK@0.2 RCE {claim_a['final_rce']:.3f} vs "
              f"MSE {claim_a['final_mse']:.3f}. First epoch reaching half of the best PCK seen "
              f"({half:.3f}): RCE {reach['fp_r18_rce'] or 'never'}, MSE {reach['fp_r18_mse'] or 'never'}.")

    # (b) FasterPose vs SimpleBaseline, both RCE.
    b_rows, claim_b = [], {}
    for name in ("fp_r18_rce", "sb_r18_rce"):
        final = _pck(runs[name]["log"][-1])
        best_pck = max(_pck(e) for e in runs[name]["log"])
        g = lat[name]["macs"] / 1e9
        ms = lat[name]["median_ms"]
        claim_b[name] = {"final_pck": final, "best_pck": best_pck, "gmacs": g, "median_ms": ms,
                         "p90_ms": lat[name]["p90_ms"], "pck_per_gmac": final / g, "pck_per_ms": final / ms}
        b_rows.append([LABELS[name], f"{final:.3f}", f"{best_pck:.3f}", f"{g:.3f}", f"{ms:.2f}",
                       f"{lat[name]['p90_ms']:.2f}", f"{final / g:.3f}", f"{final / ms:.4f}"])
    fp, sb = claim_b["fp_r18_rce"], claim_b["sb_r18_rce"]
    text_b = (f"FasterPose-R18 costs {fp['gmacs'] / sb['gmacs']:.2f}× the MACs and {fp['median_ms'] / sb['median_ms']:.2f}× "
              f"the time of SimpleBaseline-R18 for {fp['final_pck'] / sb['final_pck']:.2f}× its final PCK@0.2 "
              f"({fp['final_pck']:.3f} vs {sb['final_pck']:.3f}).")

    w, h = budget["input_size"]
    seconds = {n: r["seconds"] for n, r in runs.items()}
    steps = budget["epochs"] * budget["steps_per_epoch"]
    body = "\n".join([
        f"**Budget** (the same for every run): {budget['epochs']} epochs × {budget['steps_per_epoch']} steps × batch "
        f"{budget['batch_size']} = {steps} steps, {steps * budget['batch_size']} training crops "
        f"(LSPET training set: 8000 photos); input {h}×{w} (h×w); seed {budget['seed']}; fp32; models.train's default "
        f"recipe otherwise (AdamW lr 2e-3, warm-up 1 epoch + cosine, its augmentation); from scratch (no pretrained "
        f"backbone). Validation: PCK@0.2 (torso-size normalised) on the first {budget['val_limit']} persons of LSPET "
        f"8001-9000 after every epoch. One seed: differences of a few PCK points are within run-to-run noise.",
        "", f"Training time: {train_minutes:.1f} min in this invocation "
        f"({', '.join(f'{n} {s / 60:.1f} min' + (' (reused)' if runs[n]['reused'] else '') for n, s in seconds.items())}).",
        "", "![PCK curves](training_claims.png)", "",
        "## Validation PCK@0.2 per epoch", "",
        markdown_table(["epoch", *[LABELS[n] for n in names]], table),
        "", "## (a) RCE vs MSE, FasterPose-R18", "", text_a,
        "", "## (b) FasterPose-R18 vs SimpleBaseline-R18, both RCE", "",
        f"Latency: each run's last.pth exported with `export.export_from_args` and run under onnxruntime, 1 thread, "
        f"batch 1, {budget['latency_rounds']} interleaved rounds. MACs: `models.complexity`, \"ours\" convention, "
        f"at {h}×{w}.", "",
        markdown_table(["model", "final PCK@0.2", "best PCK@0.2", "GMACs", "median ms", "p90 ms", "PCK / GMAC",
                        "PCK / ms"], b_rows), "", text_b,
    ])
    data = {"budget": budget, "train_ann": str(train_ann), "val_ann": str(val_ann), "runs_dir": str(runs_dir),
            "runs": {n: {"architecture": RUNS[n][0], "loss": RUNS[n][1], "log": r["log"], "seconds": r["seconds"],
                         "reused": r["reused"]} for n, r in runs.items()},
            "claim_a_rce_vs_mse": claim_a, "claim_b_fp_vs_sb": claim_b, "latency": lat,
            "plot": png.name}
    path = write_results("training_claims", "Training claims on LSPET: RCE vs MSE, FasterPose vs SimpleBaseline",
                         body, data, results_dir=out_dir)
    print(body)
    print(f"\nwritten {path}, {path.with_suffix('.json')} and {png}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.training_claims", description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8, help="epochs per run (default 8)")
    ap.add_argument("--steps-per-epoch", type=int, default=80, help="training steps per epoch (default 80)")
    ap.add_argument("--batch-size", type=int, default=32, help="crops per step (default 32)")
    ap.add_argument("--input-size", type=parse_size, default=(96, 128), help="WxH, multiples of 32 (default 96x128)")
    ap.add_argument("--val-limit", type=int, default=500, help="validation persons (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-ann", type=Path, help="LSPET training COCO file (default: converted into the cache)")
    ap.add_argument("--val-ann", type=Path, help="LSPET validation COCO file (default: converted into the cache)")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                    help=f"converted annotations and training runs (default {DEFAULT_CACHE})")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 epochs × 2 steps, batch 4, 64x64, 16 validation persons, temporary results")
    ap.add_argument("--results-dir", type=Path, help="where to write the results (default benchmarks/results)")
    args = ap.parse_args(argv)
    refuse_missing_annotations(args.train_ann, args.val_ann)
    budget = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
              "input_size": list(args.input_size), "val_limit": args.val_limit, "seed": args.seed,
              "latency_rounds": LATENCY_ROUNDS}
    if args.quick:
        budget.update(epochs=2, steps_per_epoch=2, batch_size=4, input_size=[64, 64], val_limit=16,
                      latency_rounds=5, no_cache=True)
    for key in ("epochs", "steps_per_epoch", "batch_size", "val_limit"):
        if budget[key] < 1:
            ap.error(f"--{key.replace('_', '-')} must be >= 1")
    tmp = Path(tempfile.mkdtemp(prefix="training_claims_quick_")) if args.quick else None
    runs_dir = (tmp / "runs") if args.quick else args.cache_dir / "training_claims"
    results_dir = args.results_dir or (tmp if args.quick else None)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    run(budget, args.train_ann, args.val_ann, args.cache_dir, runs_dir, results_dir)


if __name__ == "__main__":
    run_main(main)
