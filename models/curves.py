"""Training curves: per-epoch logs (``log.jsonl``) -> one PNG of training loss, validation PCK@0.2 and OKS AP.

    python -m models.curves runs/a runs/b --out curves.png                 # two runs side by side
    python -m models.curves "default=runs/s1,runs/s2" runs/c --target 0.8  # stages chained into one curve

Each argument is a curve: a run folder (its ``log.jsonl``) or a log file, or several joined by commas, which are
stages of one training (each started from the one before) drawn end to end, epochs counted on, with a faint line
where a stage starts. ``label=`` names a curve (default: the run folder's or file's name). It also prints, per
curve, its epochs, last and best validation PCK@0.2 and last OKS AP. ``models.train`` draws its own run's
``curves.png`` after every epoch (when matplotlib is installed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

__all__ = ["read_log", "parse_curve", "chain", "plot_curves", "summary"]

PANELS = (("train_loss", "training loss"), ("val_pck@0.2", "validation PCK@0.2"), ("val_oks_ap", "validation OKS AP"))


def read_log(path: os.PathLike) -> List[dict]:
    """Entries of a per-epoch log: ``path`` is a ``log.jsonl`` file or a run folder holding one. Raises ValueError
    naming the file and line of a line that is not JSON, FileNotFoundError for a missing log."""
    p = Path(path)
    if p.is_dir():
        p = p / "log.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"no training log at {p}")
    entries = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{n}: not a JSON line ({e.msg})") from None
    return entries


def parse_curve(spec: str) -> Tuple[str, List[Path]]:
    """``[label=]path[,path...]`` -> (label, paths). The label defaults to the first path's run folder or stem."""
    label, sep, rest = spec.partition("=")
    if not sep:
        label, rest = "", spec
    paths = [Path(s) for s in rest.split(",") if s]
    if not paths:
        raise ValueError(f"no log in {spec!r}")
    if not label:
        first = paths[0]
        label = first.name if first.is_dir() else (first.parent.name if first.name == "log.jsonl" else first.stem)
    return label, paths


def chain(stages: Sequence[List[dict]]) -> Tuple[List[float], List[dict], List[float]]:
    """Stages' entries end to end -> (epochs (E,), entries (E,), stage starts (S - 1,)): each stage's epochs are
    counted on from the last epoch of the stage before (a stage resumed mid-way keeps its own numbering)."""
    epochs, entries, starts, offset = [], [], [], 0.0
    for i, stage in enumerate(stages):
        if i:
            starts.append(offset)
        last = offset
        for e in stage:
            last = offset + float(e.get("epoch", len(entries) + 1))
            epochs.append(last)
            entries.append(e)
        offset = last
    return epochs, entries, starts


def _value(entry: dict, key: str) -> float:
    v = entry.get(key)
    return float(v) if isinstance(v, (int, float)) else math.nan


def summary(curves: Sequence[Tuple[str, Sequence[List[dict]]]]) -> str:
    """A markdown table: per curve its stages, epochs, last and best validation PCK@0.2 (and when), last OKS AP."""
    rows = ["| curve | stages | epochs | last PCK@0.2 | best PCK@0.2 (epoch) | last OKS AP |", "|---|---|---|---|---|---|"]
    for label, stages in curves:
        epochs, entries, _ = chain(stages)
        pck = [_value(e, "val_pck@0.2") for e in entries]
        scored = [(p, ep) for p, ep in zip(pck, epochs) if not math.isnan(p)]
        last = f"{scored[-1][0]:.3f}" if scored else "—"
        best = "{:.3f} ({:g})".format(*max(scored)) if scored else "—"
        ap = [a for a in (_value(e, "val_oks_ap") for e in entries) if not math.isnan(a)]
        rows.append(f"| {label} | {len(stages)} | {epochs[-1] if epochs else 0:g} | {last} | {best} | "
                    f"{f'{ap[-1]:.3f}' if ap else '—'} |")
    return "\n".join(rows)


def plot_curves(curves: Sequence[Tuple[str, Sequence[List[dict]]]], out: os.PathLike, target: Optional[float] = None,
                title: Optional[str] = None) -> Path:
    """Draw the curves (label, stages) into a PNG at ``out`` (written atomically): one panel per PANELS entry,
    epochs on x, faint lines where chained stages start, and ``target`` as a dashed line on the PCK panel.
    Needs matplotlib (ImportError without it). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for (label, stages), color in zip(curves, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
        epochs, entries, starts = chain(stages)
        for ax, (key, _) in zip(axes, PANELS):
            ax.plot(epochs, [_value(e, key) for e in entries], color=color, lw=1.2, label=label)
            for s in starts:
                ax.axvline(s, color=color, alpha=0.15, lw=0.8)
    for ax, (key, name) in zip(axes, PANELS):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key == "train_loss":
            ax.set_yscale("log")
    if target is not None:
        axes[1].axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("curves", nargs="+", help="[label=]run-folder-or-log.jsonl[,next-stage,...]")
    ap.add_argument("--out", type=Path, default=Path("curves.png"), help="the PNG to write (default curves.png)")
    ap.add_argument("--target", type=float, help="a level to mark on the PCK@0.2 panel, e.g. 0.8")
    ap.add_argument("--title")
    a = ap.parse_args(argv)
    try:
        curves = [(label, [read_log(p) for p in paths]) for label, paths in map(parse_curve, a.curves)]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(curves))
    try:
        plot_curves(curves, a.out, a.target, a.title)
    except ImportError:
        print("error: drawing needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 1
    print(f"-> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
