"""``fasterpose info``: what a model says about itself."""
from __future__ import annotations

import json

import click

from ..metadata import plain_json
from .bench import verification_line
from .common import debug_option, guarded, load_predictor, model_options, need_stdout, printable


@click.command()
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole description as JSON, metadata included.")
@debug_option
@guarded
def info(model, variant, as_json, debug):
    """What a model says about itself: network, input, keypoints, box padding, training stages, accuracy."""
    from ..model_card import format_card, marked, model_card

    need_stdout("model's description")
    pred = load_predictor(model, variant, threads=1, debug=debug)
    card = model_card(pred.model_path, pred.metadata)
    if as_json:
        card["metadata"] = json.loads(pred.metadata.to_json())
        click.echo(json.dumps(plain_json(card), indent=2, allow_nan=False))  # NaN from a file: null, strict JSON
        return
    verification = card["int8_verification"]
    quant = pred.metadata.extra.get("quantization")
    line = verification_line(verification) if verification else ""
    if quant is not None and not isinstance(quant, dict):  # provenance is not checked on loading: say, never fail
        line = f"quantization {marked(quant)}"
    click.echo(format_card(_printable(card), line))


def _printable(value):
    """``value`` (the card: dicts, lists, strings, numbers) with every string's control characters escaped: a
    keypoint name holding a newline split its line, and one holding ESC reached the terminal."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_printable(v) for v in value)
    return value


