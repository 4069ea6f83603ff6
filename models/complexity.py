"""Parameter and multiply-accumulate (MAC) counts of a network, per module and in total.

One forward pass of a ``(1, 3, H, W)`` zeros tensor under ``no_grad`` with forward hooks on every module; the
model may live on the ``meta`` device (``with torch.device("meta"): build_model(...)``), which makes counting
free: hooks only need shapes. What is counted, per call of a module (batch 1):

* ``Conv2d``: output elements × in_channels/groups × kh·kw.
* ``Linear``: in_features × out_features per input row.
* ``ConvTranspose2d``, two conventions:
  - ``"ours"``: input elements × out_channels/groups × kh·kw: the multiplications a transposed convolution
    really performs (every input value is scattered into a k×k window of every output channel of its group).
  - ``"paper"``: output elements × in_channels/groups × kh·kw, i.e. the layer priced as if it were a dense
    convolution on the *output* grid. This is how the counter shipped with the SimpleBaseline/HRNet code
    (``get_model_summary``: weight elements × output spatial size) prices it, which overstates a stride-2
    transposed conv by stride² = 4×.
* Ignored (no MACs, but their parameters still count): BatchNorm, ReLU, pooling, PixelShuffle, additions and
  biases. They are a few percent of the work at most and the published figures ignore them too.

Why the SimpleBaseline-R50 figure in the papers reads 8.9 "GFLOPs" at 256×192: those tables come from that
counter, which (a) uses the "paper" convention above and (b) divides by 1024³, not 10⁹. Our "paper" count is
9.65·10⁹ MACs = 8.99·2³⁰, the quoted figure to within 1 % (the tables seem to truncate; parameters agree exactly
at 34.0 M). In our own ("ours", 10⁹) units the model costs 5.4 G MACs.
FasterPose has no transposed convolution, so both conventions give it the same ≈3.7 G MACs (R50, 256×192).

CLI: ``python -m models.complexity --arch fasterpose_r50 --input-size 192x256`` (input size is W×H).
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from torch import nn

__all__ = ["count_complexity", "CONVENTIONS"]

CONVENTIONS = ("ours", "paper")


def _kernel_area(m: nn.Module) -> int:
    kh, kw = m.kernel_size
    return int(kh) * int(kw)


def _module_macs(m: nn.Module, inp: torch.Tensor, out: torch.Tensor, convention: str) -> int:
    """MACs of one call of a counted module; inp/out are its first input and its output tensors."""
    if isinstance(m, nn.ConvTranspose2d):
        if convention == "ours":
            return inp.numel() * (m.out_channels // m.groups) * _kernel_area(m)
        return out.numel() * (m.in_channels // m.groups) * _kernel_area(m)
    if isinstance(m, nn.Conv2d):
        return out.numel() * (m.in_channels // m.groups) * _kernel_area(m)
    if isinstance(m, nn.Linear):
        return (inp.numel() // m.in_features) * m.in_features * m.out_features
    return 0


def _check_input_size(input_size) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (width, height), got {input_size!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    return w, h


def count_complexity(model: nn.Module, input_size=(192, 256), convention: str = "ours") -> Dict:
    """Count parameters and MACs of ``model`` for one ``(1, 3, H, W)`` input, ``input_size = (W, H)``.

    Returns a dict:
      ``params`` (int, all parameters incl. BatchNorm), ``macs`` (int), ``convention``, ``input_size`` (W, H),
      ``parts``: {top-level child name (e.g. "backbone", "head"): {"params", "macs"}},
      ``modules``: list of {"name", "type", "params", "macs", "output_shape"} for every counted
      Conv2d / ConvTranspose2d / Linear, in call order (MACs summed over repeated calls).
    The model's train/eval mode is restored afterwards (it runs in eval mode, so BN statistics are untouched).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {CONVENTIONS}")
    w, h = _check_input_size(input_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    names = {m: n for n, m in model.named_modules()}
    rows: "OrderedDict[str, Dict]" = OrderedDict()

    def hook(m, inputs, output):
        name = names[m]
        macs = _module_macs(m, inputs[0], output, convention)
        row = rows.setdefault(
            name,
            {
                "name": name,
                "type": type(m).__name__,
                "params": sum(p.numel() for p in m.parameters(recurse=False)),
                "macs": 0,
                "output_shape": list(output.shape),
            },
        )
        row["macs"] += int(macs)

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    parts: "OrderedDict[str, Dict]" = OrderedDict()
    for child_name, child in model.named_children():
        parts[child_name] = {"params": sum(p.numel() for p in child.parameters()), "macs": 0}
    for row in rows.values():
        top = row["name"].split(".", 1)[0]
        if top in parts:
            parts[top]["macs"] += row["macs"]
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "macs": sum(r["macs"] for r in rows.values()),
        "convention": convention,
        "input_size": (w, h),
        "parts": dict(parts),
        "modules": list(rows.values()),
    }


def _parse_size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 192x256, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"input size must be positive, got {text!r}")
    return w, h


def main(argv=None) -> int:
    from .pose import build_model, list_models

    ap = argparse.ArgumentParser(prog="python -m models.complexity", description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="fasterpose_r18", help=f"one of: {', '.join(list_models())}")
    ap.add_argument("--input-size", type=_parse_size, default=(192, 256), help="W x H, e.g. 192x256")
    ap.add_argument("--num-keypoints", type=int, default=17)
    ap.add_argument("--top", type=int, default=8, help="list the N most expensive layers (0: none)")
    args = ap.parse_args(argv)
    try:
        with torch.device("meta"):  # shapes only: no memory, no arithmetic
            model = build_model(args.arch, args.num_keypoints)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = {c: count_complexity(model, args.input_size, c) for c in CONVENTIONS}
    ours, paper = res["ours"], res["paper"]
    w, h = args.input_size
    print(f"{args.arch}, K={args.num_keypoints}, input {w}x{h} (WxH)")
    print(f"{'part':<10} {'params (M)':>11} {'MACs ours (G)':>14} {'MACs paper (G)':>15}")
    for part, d in ours["parts"].items():
        print(f"{part:<10} {d['params'] / 1e6:>11.2f} {d['macs'] / 1e9:>14.3f} {paper['parts'][part]['macs'] / 1e9:>15.3f}")
    print(f"{'total':<10} {ours['params'] / 1e6:>11.2f} {ours['macs'] / 1e9:>14.3f} {paper['macs'] / 1e9:>15.3f}")
    print(f"(paper convention in 2^30 units, as the published tables: {paper['macs'] / 2**30:.2f})")
    if args.top > 0:
        print("\nmost expensive layers (ours):")
        for row in sorted(ours["modules"], key=lambda r: -r["macs"])[: args.top]:
            print(f"  {row['name']:<28} {row['type']:<16} {row['macs'] / 1e6:>9.1f} M  out {row['output_shape']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
