"""Runtime overheads, measured in one run: what PosePredictor adds to bare inference, what batching saves, and
what vectorised decoding saves.

``python -m benchmarks.bench_runtime [--rounds 25] [--model X.onnx] [--results-dir D]``
-> ``benchmarks/results/runtime.{md,json}`` (or D; named ``runtime``, not after the module, as committed).

Ratios (targets from the runtime issue):
  1. ``predict`` with one box / a bare ``session.run`` of the same session on a ready (1, 3, H, W) tensor: ≤ 1.15
  2. one ``predict`` with eight boxes / eight one-box ``predict`` calls: ≤ 0.95
  3. decoding 16 persons × 17 keypoints, vectorised / a per-keypoint Python loop of the same maths: ≤ 0.25
Model: the bundled default model if present, else a random-weights FasterPose-R18 (17 keypoints, input 144×192)
exported by ``python -m export --input-size 144x192`` when that exporter exists, else by ``torch.onnx.export``
here. Random weights time the same as trained ones. Everything is timed interleaved, round by round
(``common.interleaved_times``: each measured thing once per round, the order rotated by one every round, so each
holds every position equally often); a ratio is ``common.paired_ratio``: the median, over every run of as many
consecutive rounds as things timed together, of the geometric mean of their per-round ratios, so neither slow
drifts of the load from other processes nor a position in the round favour one.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # models/ and export/ come from the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (BenchmarkParser, interleaved_times, markdown_table, paired_ratio,  # noqa: E402
                               positive_int, run_main, shown_path, write_results)
from benchmarks.decoding import decode_dark_loop  # noqa: E402
from fasterpose_rt import PosePredictor, decode_heatmaps  # noqa: E402
from fasterpose_rt.metadata import ModelMetadata  # noqa: E402
from fasterpose_rt.predictor import DEFAULT_MODELS, _sigmoid  # noqa: E402
from fasterpose_rt.skeletons import COCO17  # noqa: E402

ARCH, INPUT_SIZE = "fasterpose_r18", (144, 192)  # (w, h)
TARGETS = {"predict_1_over_run": 1.15, "predict_8_over_8x1": 0.95, "decode_vectorised_over_loop": 0.25}


def _torch_export(out: Path) -> None:
    """Random-weights FasterPose-R18 -> ONNX with a dynamic batch axis and ``fasterpose`` metadata."""
    import warnings

    import onnx
    import torch

    from models import build_model

    model = build_model(ARCH, len(COCO17["keypoints"])).eval()
    x = torch.zeros(1, 3, INPUT_SIZE[1], INPUT_SIZE[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(out), input_names=["image"], output_names=["heatmaps"],
                          dynamic_axes={"image": {0: "N"}, "heatmaps": {0: "N"}}, opset_version=17, dynamo=False)
    meta = ModelMetadata(input_size=INPUT_SIZE, keypoints=COCO17["keypoints"], skeleton=COCO17["skeleton"],
                         flip_pairs=COCO17["flip_pairs"], architecture=ARCH, extra={"weights": "random"})
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "fasterpose", meta.to_json()
    onnx.save(proto, str(out))


def get_model(tmp: Path, given=None):
    """(path, how it was obtained, naming the file)."""
    if given:
        if not Path(given).is_file():  # checked up front: a one-line refusal, not onnxruntime's traceback
            raise SystemExit(f"error: --model {given}: file not found")
        return Path(given), f"`{shown_path(given)}` (given on the command line)"
    if DEFAULT_MODELS["default"].is_file():
        return DEFAULT_MODELS["default"], f"the bundled default model (`{shown_path(DEFAULT_MODELS['default'])}`)"
    out = tmp / f"{ARCH}_random.onnx"
    if (ROOT / "export" / "__main__.py").is_file():
        cmd = [sys.executable, "-m", "export", "--arch", ARCH, "--num-keypoints", "17",
               "--input-size", f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]}", "--out", str(out)]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode == 0 and out.is_file():
            return out, f"random-weights {ARCH} from `python -m export`"
        print(f"`python -m export` failed (exit {r.returncode}); exporting with torch.onnx here", file=sys.stderr)
    _torch_export(out)
    return out, f"random-weights {ARCH} from torch.onnx.export (dynamo=False) in this benchmark"


def _spinning_session(path, threads):
    """A session like the runtime's but with onnxruntime's default idle spinning of intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def person_boxes(rng, shape_hw, n):
    """n plausible person boxes (n, 4) [x, y, w, h] inside a photo of shape (H, W)."""
    h, w = shape_hw
    bw, bh = rng.uniform(0.15, 0.3, n) * w, rng.uniform(0.5, 0.9, n) * h
    return np.stack([rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh], axis=1)


def synthetic_heatmaps(rng, n, k, h, w, sigma=2.0):
    """Noisy Gaussian probability maps (n, k, h, w) float32 (3 % multiplicative noise), peaks >= 4 px from the border."""
    cx, cy = rng.uniform(4, w - 5, (n, k)), rng.uniform(4, h - 5, (n, k))
    d2 = (np.arange(w) - cx[..., None, None]) ** 2 + (np.arange(h)[:, None] - cy[..., None, None]) ** 2
    hm = np.exp(-d2 / (2 * sigma**2)) * (1 + 0.03 * rng.standard_normal((n, k, h, w)))
    return np.clip(hm, 0, None).astype(np.float32)


def run(rounds: int, model=None, results_dir=None):
    if rounds < 1:
        raise SystemExit(f"error: rounds must be >= 1, got {rounds}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path, source = get_model(Path(tmp), model)
        model_path = None if Path(tmp) in path.parents else shown_path(path)  # None: made here, random weights
        pred = PosePredictor(path)  # default threads: physical cores
        w, h = pred.input_size
        photo = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        boxes = person_boxes(rng, photo.shape[:2], 8)
        ready = rng.standard_normal((1, 3, h, w)).astype(np.float32)
        feed = {pred._session.get_inputs()[0].name: ready}
        feed8 = {next(iter(feed)): np.repeat(ready, 8, axis=0)}
        session = pred._session
        heatmaps = session.run(None, {next(iter(feed)): np.repeat(ready, 16, axis=0)})[0]
        hm_h, hm_w = heatmaps.shape[2:]
        times = interleaved_times({
            "session.run, 1 ready tensor": lambda: session.run(None, feed),
            "predict, 1 box": lambda: pred.predict(photo, boxes[:1]),
            "predict, 8 boxes in one call": lambda: pred.predict(photo, boxes),
            "predict, 8 one-box calls": lambda: [pred.predict(photo, boxes[i:i + 1]) for i in range(8)],
            "session.run, 8 ready tensors in one run": lambda: session.run(None, feed8),
            "session.run, 8 runs of 1 ready tensor": lambda: [session.run(None, feed) for _ in range(8)],
        }, rounds, warmup=2)
        probs = synthetic_heatmaps(rng, 16, 17, hm_h, hm_w)
        times.update(interleaved_times({
            "decode 16×17, vectorised": lambda: decode_heatmaps(probs),
            "decode 16×17, per-keypoint loop": lambda: decode_dark_loop(probs),
            "sigmoid 16×17 maps": lambda: _sigmoid(heatmaps),
            "sigmoid 1×17 maps": lambda: _sigmoid(heatmaps[:1]),
        }, max(5, rounds // 3), warmup=2))
        threads = pred.threads
        # The runtime's sessions do not spin while idle; onnxruntime's default does. Timed alone (its idle
        # spinning would steal the cores from anything interleaved with it), for the record of that choice.
        spinning = _spinning_session(path, threads)
        times.update(interleaved_times({"session.run, 1 ready tensor, spinning threads (onnxruntime default)":
                                        lambda: spinning.run(None, feed)}, rounds, warmup=2))
        spinning = None  # its spinning threads stop with it

    def paired(a, b):
        return paired_ratio(times[a], times[b])

    ratios = {
        "predict_1_over_run": paired("predict, 1 box", "session.run, 1 ready tensor"),
        "predict_8_over_8x1": paired("predict, 8 boxes in one call", "predict, 8 one-box calls"),
        "decode_vectorised_over_loop": paired("decode 16×17, vectorised", "decode 16×17, per-keypoint loop"),
    }
    # Context for ratio 2: what batching saves inside onnxruntime itself, without any of our code.
    bare_batching = paired("session.run, 8 ready tensors in one run", "session.run, 8 runs of 1 ready tensor")
    spread = {name: [float(np.percentile(t, 25)), float(np.percentile(t, 75))] for name, t in times.items()}
    times = {name: float(np.median(t)) for name, t in times.items()}
    labels = {
        "predict_1_over_run": "`predict` 1 box / bare `session.run`",
        "predict_8_over_8x1": "`predict` 8 boxes / 8 one-box calls",
        "decode_vectorised_over_loop": "decode 16×17 vectorised / per-keypoint loop",
    }
    met = {k: ratios[k] <= TARGETS[k] for k in ratios}
    ratio_rows = [[labels[k], f"{ratios[k]:.3f}", f"≤ {TARGETS[k]:g}", "met" if met[k] else "NOT met"] for k in ratios]
    time_rows = [[name, f"{t * 1e3:.3f}", f"{spread[name][0] * 1e3:.3f} – {spread[name][1] * 1e3:.3f}"]
                 for name, t in times.items()]
    md = [
        f"Model: {source}; input {w}×{h} (w×h), heatmaps {hm_w}×{hm_h}, {threads} intra-op threads "
        f"(the default: physical cores). Photo 640×480, boxes of 15–30 % × 50–90 % of it. "
        f"Timed interleaved over {rounds} rounds (decoding/sigmoid: {max(5, rounds // 3)}), each thing once per "
        "round in turns, the order rotated by one every round; a ratio is the median, over every window of "
        "consecutive rounds in which each thing held every position once, of the window's geometric-mean ratio. "
        "On a shared machine (see the load average) absolute times are indicative, the ratios are the point.",
        "", "## Ratios", "", markdown_table(["ratio", "measured", "target", ""], ratio_rows),
        "", f"Context for the batching ratio: onnxruntime alone, one run of 8 ready tensors / 8 runs of one: "
        f"{bare_batching:.3f}. `predict` batches all boxes of a call into one run (up to `batch_size`), so its "
        "ratio can only be as good as this one: whatever batching saves happens inside onnxruntime's kernels, and "
        "on a CPU whose cores are taken by other work (see the load average) it saves little or nothing.",
        "", "## Times", "", markdown_table(["what", "median ms", "quartiles ms"], time_rows), "",
        "Idle spinning: the runtime's sessions let idle intra-op threads sleep "
        "(`session.intra_op.allow_spinning = 0`); the row marked *spinning threads* times a session with "
        "onnxruntime's default instead, on its own after the rest. On a machine whose cores are busy with "
        "other work, spinning threads fight that work for the cores.", "",
        "The sigmoid runs on whole maps (in place, `1/(1+exp(-x))`): its cost is shown above for scale; "
        "a patch-only sigmoid would not be measurably faster next to inference and would complicate flip-test "
        "averaging, which needs probabilities on whole maps.", "",
    ]
    data = {
        "model": source, "model_path": model_path, "input_size": [w, h], "heatmap_size": [int(hm_w), int(hm_h)],
        "threads": threads, "rounds": rounds, "median_seconds": times, "quartile_seconds": spread, "ratios": ratios, "targets": TARGETS,
        "met": met,
        "bare_run_8_over_8x1": bare_batching,
    }
    # Named runtime.{md,json} (not after the module): the committed results and the README's links use that name.
    path = write_results("runtime", "Runtime overheads: predict vs bare inference, batching, decoding", "\n".join(md),
                         data, results_dir=results_dir)
    print(markdown_table(["ratio", "measured", "target", ""], ratio_rows))
    print(markdown_table(["what", "median ms", "quartiles ms"], time_rows))
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.bench_runtime", description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--rounds", type=positive_int, default=25, help="interleaved timing rounds (default 25)")
    ap.add_argument("--model", help="ONNX model to time (default: bundled model, else a random-weights R18)")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where to write runtime.{md,json} (default benchmarks/results)")
    args = ap.parse_args(argv)
    run(args.rounds, args.model, args.results_dir)


if __name__ == "__main__":
    run_main(main)
