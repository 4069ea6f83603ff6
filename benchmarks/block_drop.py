"""Which blocks of a trained ResNet pose model to keep when shrinking it (``models.shrink``): each stage alone.

``python -m benchmarks.block_drop --checkpoint runs/default/last.pth --to fasterpose_r18 --ann data/lspet_val.json
--images IMGS`` -> ``benchmarks/results/block_drop.{md,json}``.

For each stage, every way to keep as many blocks as the smaller model has there (the first block stays where it
holds the downsample), the other stages whole: PCK@0.2 and OKS AP of the cut network on the persons, at the
checkpoint's input size, in float. Each cut network is made by ``models.shrink``'s own mapping; this only scores the
choices, stage by stage, so that ``--keep`` can take the best of each.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import BenchmarkParser, markdown_table, run_main, write_results  # noqa: E402
from models.pose import build_model  # noqa: E402
from models.shrink import load_source, shrink_state_dict, source_box_padding  # noqa: E402
from models.train import parse_blocks  # noqa: E402
from models.validate import checkpoint_scorer  # noqa: E402


def stage_blocks(to: str, options: dict) -> list:
    """Blocks per stage of the smaller network: a registered model's (``fasterpose_r18``) or a list (``1,2,6``)."""
    if to[:1].isdigit():
        return parse_blocks(to)
    model = build_model(to, 1, **options)
    return [len(getattr(model.backbone, f"layer{s}")) for s in range(1, model.backbone.num_stages + 1)]


def candidates(source, counts):
    """[(stage, kept block indices)]: per stage s of ``source``'s backbone, each subset of counts[s - 1] blocks."""
    out = []
    for s in range(1, source.backbone.num_stages + 1):
        layer = getattr(source.backbone, f"layer{s}")
        n = counts[s - 1]
        if n >= len(layer):
            continue  # nothing to cut in this stage
        fixed = layer[0].downsample is not None  # that block changes width or stride: it stays
        pool = range(1, len(layer)) if fixed else range(len(layer))
        for rest in itertools.combinations(pool, n - 1 if fixed else n):
            out.append((s, ([0] if fixed else []) + list(rest)))
    return out


def _figure(value, spec: str) -> str:
    """A score as the table shows it; "-" where there is none (no pycocotools, or no torso to measure PCK by)."""
    return "-" if value is None else format(value, spec)


def _gap(row: dict, whole: dict):
    """A cut's PCK against the whole network's; None when either has none."""
    return None if row["pck@0.2"] is None or whole["pck@0.2"] is None else row["pck@0.2"] - whole["pck@0.2"]


def main(argv=None) -> int:
    ap = BenchmarkParser("benchmarks.block_drop", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--to", required=True,
                    help="the smaller network: a registered model (fasterpose_r18) or blocks per stage (1,2,6)")
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--box-padding", type=float, default=None,
                    help="the crops' padding (default: the checkpoint's, as its export would take it)")
    ap.add_argument("--results-dir", type=Path, default=None, help="default: benchmarks/results")
    args = ap.parse_args(argv)
    try:
        source, ckpt, k = load_source(args.checkpoint)
        counts = stage_blocks(args.to, ckpt.meta.get("model_options", {}))
        if args.box_padding is None:
            args.box_padding = source_box_padding(ckpt.meta, str(args.checkpoint))
    except (ValueError, argparse.ArgumentTypeError) as e:  # ShrinkError is a ValueError
        raise SystemExit(f"error: {e}") from None
    meta, options = ckpt.meta, ckpt.meta.get("model_options", {})
    if len(counts) != source.backbone.num_stages:
        raise SystemExit(f"error: --to {args.to}: need a block count for each of {source.backbone.num_stages} stages")
    full_score, persons = checkpoint_scorer(meta, args.ann, args.images, args.box_padding, str(args.checkpoint))
    whole_blocks = [len(getattr(source.backbone, f"layer{s}")) for s in range(1, source.backbone.num_stages + 1)]

    def score(model):
        result = full_score(model)
        return {"pck@0.2": result["pck@0.2"], "oks_ap": result.get("oks_ap")}

    whole = score(source)
    rows = [{"stage": "all", "kept": "all blocks", **whole}]
    for stage, keep in candidates(source, counts):
        # the source with only this stage cut, made as models.shrink makes it
        kept = [list(range(n)) for n in whole_blocks]
        kept[stage - 1] = keep
        cut = build_model(meta["architecture"], k, **{**options, "blocks": [len(b) for b in kept]})
        cut.load_state_dict(shrink_state_dict(source, cut, kept))
        rows.append({"stage": stage, "kept": ",".join(map(str, keep)), **score(cut)})
        print(rows[-1], flush=True)
    table = markdown_table(["stage", "blocks kept", "PCK@0.2", "vs whole", "OKS AP"],
                           [[r["stage"], r["kept"], _figure(r["pck@0.2"], ".4f"), _figure(_gap(r, whole), "+.4f"),
                             _figure(r["oks_ap"], ".3f")] for r in rows])
    body = (f"{meta['architecture']} from `{args.checkpoint.name}` cut towards {args.to}, one stage at a time (the "
            f"others whole), scored in float on {persons} persons of `{args.ann.name}` at input "
            f"{meta['input_size'][0]}×{meta['input_size'][1]}, box padding {args.box_padding}.\n\n{table}\n")
    path = write_results("block_drop", "Which blocks to keep when shrinking a trained ResNet", body,
                         {"checkpoint": args.checkpoint.name, "to": args.to, "rows": rows},
                         results_dir=args.results_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
