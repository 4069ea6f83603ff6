"""What a model file says about itself (``fasterpose info``): the runtime's settings and the provenance the
exporter wrote into its ``fasterpose`` metadata, including every training stage it records (each stage's recipe
holds the one it started from under ``init``).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from .metadata import ModelMetadata

__all__ = ["model_card", "training_stages", "format_card"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_stages(recipe: Any, validation: Any = None, architecture: str = "",
                    trained: Any = None) -> List[Dict[str, Any]]:
    """The training stages a recipe records, newest first: each {architecture, epochs (the schedule's), trained
    (the epoch its weights come from, when recorded: ``trained`` for the newest), optimizer, lr,
    weight_decay, amp, ema, drop_path, input_size, teacher (file name or None), pretrained, init (the file it
    started from, or None), validation (its training-time dict, or None)}. A stage's ``init`` holds the stage
    before it (file, architecture, recipe, val). Returns [] when nothing is recorded."""
    stages: List[Dict[str, Any]] = []
    seen = set()
    while isinstance(recipe, dict) and id(recipe) not in seen:  # a chain, never a cycle; guard anyway
        seen.add(id(recipe))
        init = recipe.get("init") if isinstance(recipe.get("init"), dict) else None
        teacher = recipe.get("distill") if isinstance(recipe.get("distill"), dict) else None
        stages.append({
            "architecture": architecture or None,
            "epochs": recipe.get("epochs"),
            "trained": trained if isinstance(trained, int) and not isinstance(trained, bool) else None,
            "optimizer": recipe.get("optimizer"),
            "lr": recipe.get("lr"),
            "weight_decay": recipe.get("weight_decay"),
            "amp": recipe.get("amp"),
            "ema": recipe.get("ema"),
            "drop_path": recipe.get("drop_path"),
            "input_size": recipe.get("input_size"),
            "teacher": None if teacher is None else teacher.get("file"),
            "pretrained": recipe.get("pretrained"),
            "init": None if init is None else init.get("file"),
            "validation": validation if isinstance(validation, dict) else None,
        })
        if init is None:
            break
        recipe, validation, architecture = init.get("recipe"), init.get("val"), init.get("architecture") or ""
        trained = init.get("epoch")
    return stages


def model_card(path, metadata: ModelMetadata) -> Dict[str, Any]:
    """A model's self-description as one dict: file (path, bytes, sha256), network, input, keypoints, skeleton,
    flip pairs, box padding and its calibration, the score table (what a joint's score means), size (parameters,
    MACs per person), training data and loss, the recorded training stages (``training_stages``), training-time
    validation, the int8 check, the exporter; ``unrecorded``: the runtime settings the file does not record,
    whose defaults stand in (e.g. ["box_padding", "edge_peaks"]).
    Provenance fields the metadata does not record are None."""
    p = Path(path)
    extra = metadata.extra
    quant = extra.get("quantization")
    quant = quant if isinstance(quant, dict) else {}
    return {
        "file": {"path": str(p), "bytes": p.stat().st_size, "sha256": _sha256(p)},
        "format": metadata.format,
        "network": metadata.network,
        "input": {"size_wh": list(metadata.input_size), "color": metadata.color, "mean": list(metadata.mean),
                  "std": list(metadata.std), "output": metadata.output},
        "keypoints": list(metadata.keypoints),
        "skeleton": [list(b) for b in metadata.skeleton],
        "flip_pairs": [list(p) for p in metadata.flip_pairs],
        "box_padding": metadata.box_padding,
        "unrecorded": list(metadata.unrecorded),
        "box_padding_calibration": extra.get("box_padding_calibration"),
        "edge_peaks": metadata.edge_peaks,
        "edge_peaks_choice": extra.get("edge_peaks_choice"),
        "score_calibration": extra.get("score_calibration"),
        "presence": extra.get("presence"),
        "params": extra.get("params"),
        "macs_per_person": extra.get("macs"),
        "weights": extra.get("weights"),
        "loss": extra.get("loss"),
        "training_data": extra.get("training_data"),
        "stages": training_stages(extra.get("recipe"), extra.get("validation"), metadata.architecture,
                                  extra.get("epoch")),
        "validation": extra.get("validation"),
        "int8_verification": quant.get("verification"),
        "exported_at": extra.get("exported_at"),
        "exporter": extra.get("exporter"),
    }


def _num(value, fmt: str) -> Optional[str]:
    """``value`` formatted, or None for anything but a finite number (a NaN in a file is no figure)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return format(value, fmt) if math.isfinite(value) else None
    except OverflowError:  # an integer beyond a float's range, from a hand-edited file
        return None


def marked(value) -> str:
    """A provenance field in a form this runtime cannot read, shown as it is and marked. The loader checks only
    what inference needs, so a hand-edited or foreign file may hold anything in the rest."""
    return f"{value!r} (malformed)"


def shown(value, fmt: str) -> str:
    """A number formatted with ``fmt``; anything else ``marked``."""
    return _num(value, fmt) or marked(value)


def _stage_line(stage: Dict[str, Any]) -> str:
    epochs, trained = stage["epochs"], stage.get("trained")
    parts = [str(stage["architecture"] or "network not recorded"),
             None if epochs is None else f"{epochs} epochs" if isinstance(epochs, int) else f"epochs {marked(epochs)}"]
    if isinstance(epochs, int) and trained is not None and trained != epochs:  # best.pth, or a run stopped early
        parts[1] = f"{trained} epochs of a {epochs}-epoch schedule"
    size = stage["input_size"]
    if size:
        parts.append("input {}x{}".format(*size) if isinstance(size, (list, tuple)) and len(size) == 2 and all(
            _num(v, "d") for v in size) else f"input {marked(size)}")
    lr, wd = _num(stage["lr"], "g"), _num(stage["weight_decay"], "g")
    if lr:
        parts.append(f"{stage['optimizer'] or ''} lr {lr}".strip() + (f", weight decay {wd}" if wd else ""))
    elif stage["lr"] is not None:
        parts.append(f"lr {marked(stage['lr'])}")
    if stage["amp"]:
        parts.append(f"amp {stage['amp']}")
    if stage["ema"]:
        parts.append(f"EMA {shown(stage['ema'], 'g')}")
    if stage["drop_path"]:
        parts.append(f"drop-path {shown(stage['drop_path'], 'g')}")
    parts.append(f"from {stage['init']}" if stage["init"] else
                 "from ImageNet weights" if stage["pretrained"] else "no starting weights recorded")
    if stage["teacher"]:
        parts.append(f"taught by {stage['teacher']}")
    v = stage["validation"] or {}
    figures = [f"{name} {value}" for name, value in (("PCK@0.2", _num(v.get("pck@0.2"), ".3f")),
                                                     ("AP", _num(v.get("oks_ap"), ".3f"))) if value]
    if figures:  # (either may be missing: keypoints without a torso have no PCK, a category without sigmas no AP)
        parts.append("val " + ", ".join(figures))
    return ", ".join(p for p in parts if p)


def format_card(card: Dict[str, Any], verification_line: str = "") -> str:
    """``model_card``'s dict as the lines ``fasterpose info`` prints."""
    f, i = card["file"], card["input"]
    rows = [("model", f"{f['path']} ({f['bytes'] / 1e6:.1f} MB, sha256 {f['sha256'][:16]}..., {card['format']})")]
    params, macs = card["params"], card["macs_per_person"]
    size = ""
    if params is not None and macs is not None:
        size = ": " + ", ".join(f"{format(v / unit, fmt)} {prefix} {what}" if _num(v, "g") else f"{what} {marked(v)}"
                                for v, unit, fmt, prefix, what in ((params, 1e6, ".2f", "M", "parameters"),
                                                                   (macs, 1e9, ".3f", "G", "MACs per person")))
    rows.append(("network", card["network"] + size))
    unrecorded = set(card.get("unrecorded") or ())
    rows.append(("input", "{}x{} (w x h), {}, mean {}, std {}; the network outputs {}".format(
        *i["size_wh"], i["color"], _short(i["mean"]), _short(i["std"]), i["output"]) + _defaults_note(
        unrecorded & {"color", "mean", "std", "output"})))
    names = card["keypoints"]
    rows.append(("keypoints", f"{len(names)}: {', '.join(names)}"))
    rows.append(("skeleton", f"{len(card['skeleton'])} bones; flip pairs: " + (", ".join(
        f"{names[a]}/{names[b]}" for a, b in card["flip_pairs"]) or "none")))
    cal = card["box_padding_calibration"]
    padding = f"{card['box_padding']:g}" + _defaults_note(unrecorded & {"box_padding"})
    if isinstance(cal, dict) and isinstance(cal.get("pck@0.2"), dict):
        sweep = ", ".join(f"{k} {shown(v, '.3f')}" for k, v in cal["pck@0.2"].items())
        padding += f", chosen on {cal.get('persons', '?')} persons of {cal.get('source', '?')} (PCK@0.2: {sweep})"
    rows.append(("box padding", padding))
    choice, edge = card["edge_peaks_choice"], f"{card['edge_peaks']} (heatmap peaks next to the map's edge)"
    edge += _defaults_note(unrecorded & {"edge_peaks"})
    if isinstance(choice, dict) and all(isinstance(choice.get(f"pck@{t}"), dict) for t in ("0.2", "0.1")):
        measured = "; ".join(f"{way}: PCK@0.2 {shown(choice['pck@0.2'].get(way), '.4f')}, PCK@0.1 "
                             f"{shown(choice['pck@0.1'].get(way), '.4f')}" for way in choice["pck@0.2"])
        edge += f", chosen on {choice.get('persons', '?')} persons of {choice.get('source', '?')} ({measured})"
    rows.append(("edge peaks", edge))
    rows.append(("scores", _scores_line(card.get("score_calibration"))))
    rows.append(("presence", _presence_line(card.get("presence"))))
    data = card["training_data"] if isinstance(card["training_data"], dict) else {}
    if data or card["loss"]:
        source = f" ({data['train_file']})" if data.get("train_file") else ""
        rows.append(("training", ", ".join(x for x in (
            data.get("name") and f"data {data['name']}{source}", card["loss"] and f"loss {card['loss']}",
            card["weights"] and f"weights {card['weights']}") if x)))
    stages = card["stages"]
    if stages:
        epochs = [s["trained"] if s.get("trained") is not None else s["epochs"] for s in stages
                  if isinstance(s["epochs"], int)]
        root = stages[-1]
        start = (f"starts from {root['init']}" if root["init"] else "starts from ImageNet weights"
                 if root["pretrained"] else "records no starting weights (pretrained: no)")
        rows.append(("stages", f"{len(stages)} recorded, {sum(epochs)} epochs in all; the oldest {start}; "
                               "newest first:"))
        rows += [("", f"{n}. {_stage_line(s)}") for n, s in enumerate(stages, 1)]
    v = card["validation"] if isinstance(card["validation"], dict) else {}
    figures = [f"{name} {value}" for name, value in (("PCK@0.2", _num(v.get("pck@0.2"), ".3f")),
                                                     ("OKS AP", _num(v.get("oks_ap"), ".3f"))) if value]
    if figures:
        rows.append(("validation", ", ".join(figures) + " at training time (float, the training's box padding)"))
    if verification_line:
        rows.append(("int8", verification_line))
    exporter = card["exporter"] if isinstance(card["exporter"], dict) else {}
    if card["exported_at"] or exporter:
        tools = ", ".join(f"{k} {v}" for k, v in exporter.items() if k != "tool")
        rows.append(("exported", " ".join(str(x) for x in (card["exported_at"], exporter.get("tool") and
                                                            f"by {exporter['tool']}", tools and f"({tools})") if x)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _scores_line(block: Any) -> str:
    """What the model's joint scores mean, from its score table (``confidence.py``)."""
    if not isinstance(block, dict) or not isinstance(block.get("plain"), dict):
        return "heatmap peaks, not measured as chances (no score table: python -m export.score_calibration)"
    modes = [m for m in ("plain", "flip") if isinstance(block.get(m), dict)]
    errors = "; ".join(
        f"{m} {100 * block[m]['ece_raw']:.1f} -> {100 * block[m]['ece_cross_fitted']:.1f}" for m in modes
        if _num(block[m].get("ece_raw"), "g") and _num(block[m].get("ece_cross_fitted"), "g"))
    within = _num(block.get("within"), "g") or "?"
    return (f"confidences = the chance a joint is within {within} torso of its label, measured on "
            f"{block.get('persons', '?')} persons of {block.get('source', '?')}"
            + (f" (calibration error in points, raw -> table, cross-fitted: {errors})" if errors else ""))


def _presence_line(block: Any) -> str:
    """Whether the model says if a person is there at all, from its presence block (``presence.py``)."""
    if not isinstance(block, dict):
        return "no presence head (python -m export.presence_head): --min-presence reads the joints' confidences"
    crossed = block.get("cross_fitted")
    crossed = crossed if isinstance(crossed, dict) else {}
    shares = "; ".join(f"{g} {100 * v['called_a_person']:.1f} %" for g, v in crossed.items()
                       if isinstance(v, dict) and _num(v.get("called_a_person"), "g"))
    threshold = _num(block.get("threshold"), "g") or "?"
    return (f"a head gives the chance a person is in the crop at all (--min-presence reads it), fitted on "
            f"{block.get('photos', '?')} photos of {block.get('source', '?')} and {block.get('negative_photos', '?')} "
            f"photos of nobody" + (f"; called a person at {threshold}, cross-fitted: {shares}" if shares else ""))


def _defaults_note(fields) -> str:
    """A note for settings the file does not record, shown with the runtime's defaults that stand in for them:
    another tool's file may have been made for other ones."""
    if not fields:
        return ""
    return f" ({', '.join(sorted(fields))} not recorded in the file: this runtime's default{'s' * (len(fields) > 1)})"


def _short(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
