"""Is a person there at all? A model's presence head: one logit per crop beside its heatmaps.

The joint scores alone cannot say it: the better half of a half-seen person's joints (a portrait, a webcam) score
as low as the best guess on a photo of nobody (docs/usage.md, "Photos of nobody"). So a model may carry a second output,
``presence`` (N,) logits: a logistic read of the features its heatmaps are made from and of an earlier layer's
(mean- and max-pooled) and of its sorted joint peaks, fitted on crops of persons (whole and waist up) against crops
of nobody by ``python -m export.presence_head``. Its metadata block (``PRESENCE_KEY``) names the output and records
what it was fitted on, how well it held on crops it had not seen, and the chance it calls a person at
(``threshold``: the runtime's default ``min_presence`` for the model, ``search.head_min_presence``).

``PosePredictor`` runs it in the same ``session.run`` as the heatmaps (a few hundred multiply-adds per crop) and
puts ``PoseResult.presence`` (N,) in [0, 1]; ``search.keep_present`` reads it.
"""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, cast

__all__ = ["PRESENCE_KEY", "PRESENCE_OUTPUT", "presence_problem", "presence_output"]

PRESENCE_KEY = "presence"  # the metadata block
PRESENCE_OUTPUT = "presence"  # the graph output the exporter writes


def presence_problem(block: Any) -> Optional[str]:
    """Why a ``presence`` metadata block is unusable, or None when it is sound: {"output": the graph output's name,
    "kind": "logits" or "probabilities", ...provenance}."""
    if not isinstance(block, dict):
        return f"{PRESENCE_KEY} must be an object"
    if not isinstance(block.get("output"), str) or not block["output"]:
        return f"{PRESENCE_KEY}.output must name the graph output holding one presence value per crop"
    if block.get("kind", "logits") not in ("logits", "probabilities"):
        return f"{PRESENCE_KEY}.kind must be 'logits' or 'probabilities', got {block.get('kind')!r}"
    threshold = block.get("threshold")  # optional: without one the runtime reads the head at its own default
    # numpy's scalars (float32, ...) too, not a bool; 0 < t < 1 also refuses NaN, the infinities and any huge int
    if threshold is not None and not (isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
                                      and 0 < cast(float, threshold) < 1):
        return f"{PRESENCE_KEY}.threshold must be a number in (0, 1), got {threshold!r}"
    return None


def presence_output(extra: dict, output_names: Sequence[str]) -> Optional[str]:
    """The graph output holding the presence logits (or probabilities) of a model whose metadata ``extra`` has a
    ``presence`` block, None for a model without one. Raises ValueError when the block names an output the graph
    does not have (a file edited by hand or by an old tool)."""
    block = extra.get(PRESENCE_KEY)
    if block is None:
        return None
    name = block["output"]
    if name not in output_names:
        raise ValueError(f"its metadata names a presence output '{name}' the graph does not have "
                         f"(outputs: {', '.join(output_names)})")
    return name
