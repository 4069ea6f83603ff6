"""Parameters and MACs of FasterPose vs SimpleBaseline (ResNet-18 ... 152, 256×192 and 384×288 inputs).

``python -m benchmarks.complexity [--results-dir D]`` -> ``benchmarks/results/complexity.{md,json}`` (or D).
Models are built on the ``meta`` device: only shapes are traced, so this takes seconds and no memory. Counting
rules and the two conventions for transposed convolutions are documented in ``models/complexity.py``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from models.complexity import count_complexity
from models.pose import build_model

from .common import BenchmarkParser, markdown_table, run_main, write_results

DEPTHS = (18, 34, 50, 101, 152)
INPUT_SIZES = ((192, 256), (288, 384))  # (W, H)
NUM_KEYPOINTS = 17
# The only published figure we check against: SimpleBaseline-R50, 256x192, "8.9 GFLOPs" (as quoted in the
# FasterPose paper), produced by a counter that uses the "paper" convention and divides by 2^30.
QUOTED_SB_R50_256 = 8.9

NOTES = """\
Notes

- MACs = multiply-accumulates of Conv2d / ConvTranspose2d / Linear for one person crop (batch 1), 17 keypoints.
  BatchNorm, ReLU, pooling, PixelShuffle, additions and biases are not counted (parameters are: all of them).
- "ours": a transposed convolution costs input elements × out channels × k² / groups, the work it really does.
  "paper": it is priced over its output grid (output elements × in channels × k² / groups), as the counter
  shipped with the SimpleBaseline/HRNet code does; for SimpleBaseline's stride-2 4×4 deconvolutions that is 4×
  more. FasterPose has no transposed convolution, so its two counts are equal.
- G = 10⁹, except the column "paper /2³⁰": the published tables divide by 1024³. SimpleBaseline-R50 at
  256×192 is quoted at {quoted} GFLOPs in the FasterPose paper; our paper-convention count is {ours30:.2f}·2³⁰
  ({ours9:.2f}·10⁹), the quoted figure to within {gap:.1f} % (the tables appear to truncate). Its parameter
  count ({params:.1f} M) matches the published 34.0 M.
- Reduction = 1 − FasterPose / SimpleBaseline at the same depth and input size. FasterPose uses the default
  output stride 16 (backbone up to layer3, low-resolution head + PixelShuffle ×4).
"""


def _count(name: str, size):
    with torch.device("meta"):
        model = build_model(name, NUM_KEYPOINTS)
    ours = count_complexity(model, size, "ours")
    paper = count_complexity(model, size, "paper")
    return {"params": ours["params"], "macs_ours": ours["macs"], "macs_paper": paper["macs"]}


def run(results_dir=None):
    rows, results = [], []
    for w, h in INPUT_SIZES:
        for d in DEPTHS:
            fp, sb = _count(f"fasterpose_r{d}", (w, h)), _count(f"simplebaseline_r{d}", (w, h))
            red = {k: 100.0 * (1 - fp[k] / sb[k]) for k in ("params", "macs_ours", "macs_paper")}
            results.append({"depth": d, "input_size_wh": [w, h], "fasterpose": fp, "simplebaseline": sb,
                            "reduction_percent": red})
            rows.append([
                f"R{d}", f"{h}×{w}",
                f"{fp['params'] / 1e6:.2f}", f"{sb['params'] / 1e6:.2f}", f"{red['params']:.1f} %",
                f"{fp['macs_ours'] / 1e9:.2f}", f"{sb['macs_ours'] / 1e9:.2f}", f"{red['macs_ours']:.1f} %",
                f"{fp['macs_paper'] / 1e9:.2f}", f"{sb['macs_paper'] / 1e9:.2f}", f"{red['macs_paper']:.1f} %",
                f"{fp['macs_paper'] / 2**30:.2f} / {sb['macs_paper'] / 2**30:.2f}",
            ])
    header = ["ResNet", "input h×w", "FP params (M)", "SB params (M)", "params −",
              "FP MACs ours (G)", "SB MACs ours (G)", "MACs − ours",
              "FP MACs paper (G)", "SB MACs paper (G)", "MACs − paper", "FP / SB paper /2³⁰"]
    ref = next(r for r in results if r["depth"] == 50 and r["input_size_wh"] == [192, 256])
    sb30 = ref["simplebaseline"]["macs_paper"] / 2**30
    notes = NOTES.format(quoted=QUOTED_SB_R50_256, ours30=sb30, ours9=ref["simplebaseline"]["macs_paper"] / 1e9,
                         gap=100 * abs(sb30 - QUOTED_SB_R50_256) / QUOTED_SB_R50_256,
                         params=ref["simplebaseline"]["params"] / 1e6)
    body = "FasterPose (FP) vs SimpleBaseline (SB), per person crop.\n\n" + markdown_table(header, rows) + "\n\n" + notes
    data = {"num_keypoints": NUM_KEYPOINTS, "quoted_simplebaseline_r50_256x192_gflops": QUOTED_SB_R50_256,
            "rows": results}
    path = write_results("complexity", "Model complexity: FasterPose vs SimpleBaseline", body, data,
                         results_dir=results_dir)
    print(markdown_table(header, rows))
    print(f"\nwritten {path} and {path.with_suffix('.json')}")


def main(argv=None):
    ap = BenchmarkParser("benchmarks.complexity", description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where to write complexity.{md,json} (default benchmarks/results)")
    a = ap.parse_args(argv)
    run(a.results_dir)


if __name__ == "__main__":
    run_main(main)
