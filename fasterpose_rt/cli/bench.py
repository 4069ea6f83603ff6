"""``fasterpose bench``: latency tables (one model, both bundled models, or both engines), ``--profile``, hints."""
from __future__ import annotations

import json
from typing import List, Optional

import click

from ..metadata import plain_json
from ..session import BACKENDS, MAX_THREADS
from .common import MAX_BATCH, backend_option, debug_option, guarded, load_predictor, model_options, need_stdout

MAX_RUNS = 100_000  # calls per setting (timed, or warm-up): each keeps its times, and a profile every node's


def _int_list(ctx, param, value: str) -> Optional[List[int]]:
    """"1,2" -> [1, 2]: positive integers (threads at most MAX_THREADS, a batch at most MAX_BATCH: a larger one
    only fills the memory), an empty entry refused as a typo, a repeated one kept once."""
    if value is None:
        return None
    try:
        out = [int(v) for v in value.split(",")]  # int("") fails: "1,,2" is refused
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 1,2, got {value!r}") from None
    most = MAX_THREADS if param is not None and param.name == "threads" else MAX_BATCH
    if min(out) < 1 or max(out) > most:
        raise click.BadParameter(f"expected positive integers up to {most} like 1,2, got {value!r}")
    return list(dict.fromkeys(out))



@click.command()
@model_options
@backend_option
@click.option("--threads", default=None, callback=_int_list,
              help="Comma-separated thread counts [default: 1 and the physical cores].")
@click.option("--batch", default="1,8", show_default=True, callback=_int_list,
              help="Comma-separated persons per call.")
@click.option("--runs", type=click.IntRange(1, MAX_RUNS), default=20, show_default=True,
              help="Timed calls per setting.")
@click.option("--warmup", type=click.IntRange(0, MAX_RUNS), default=3, show_default=True, help="Untimed calls first.")
@click.option("--compare", is_flag=True,
              help="Benchmark both bundled models (default and fast) side by side, with their time ratios.")
@click.option("--compare-backends", is_flag=True,
              help="Benchmark the model on onnxruntime and on OpenVINO side by side, with their time ratios: which "
                   "engine is faster on this CPU (needs openvino: pip install \"openvino>=2024.0\").")
@click.option("--profile", is_flag=True,
              help="Instead of the latency table: where the time goes, operator by operator, as the engine measures "
                   "it (at the first --threads and --batch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@debug_option
@guarded
def bench(model, variant, backend, threads, batch, runs, warmup, compare, compare_backends, profile, as_json, quiet,
          debug):
    """Latency (p50/p90/p99 per call, p50 per person; --json: all of them per person too), persons/s and GFLOP/s of
    the runtime on a 640x480 photo. Models compared (--compare, --compare-backends) are timed side by side, their
    calls taken in turn, so their ratios are measured in the same moments."""
    from ..bench import (PHOTO_SIZE, advice, cpu_description, format_table, model_macs, run_bench_side_by_side,
                         speed_ratios)
    from ..predictor import DEFAULT_MODELS, DEFAULT_VARIANT
    from ..session import physical_cores

    need_stdout("measurements")
    if compare and (model is not None or variant):
        raise click.UsageError("--compare times the two bundled models; drop --model / --fast")
    if compare and compare_backends:
        raise click.UsageError("give --compare (two models) or --compare-backends (two engines), not both")
    if profile and (compare or compare_backends):
        raise click.UsageError("--profile looks inside one model on one engine: drop --compare / --compare-backends")
    if threads is None:
        threads = list(dict.fromkeys([1, max(1, physical_cores())]))
    if profile:
        _profile(model, variant, backend, threads[0], batch[0], runs, warmup, as_json, debug)
        return
    variants = [(name, None, name, backend) for name in DEFAULT_MODELS] if compare else \
        [(model.stem if model is not None else variant or DEFAULT_VARIANT, model, variant, backend)]
    if compare_backends:
        variants = [(f"{label} ({b})", path, var, b) for label, path, var, _ in variants for b in BACKENDS]
    # Load every model before timing anything: a missing one is a usage error, not a late surprise.
    firsts = [load_predictor(path, var, threads[0], max(batch), debug=debug, backend=b)
              for _, path, var, b in variants]
    makers, models = [], {}
    for (label, path, var, chosen), first in zip(variants, firsts):
        models[label] = {"path": first.model_path, "backend": first.backend,
                         "architecture": first.metadata.architecture,
                         "network": first.metadata.network,
                         "input_size": list(first.input_size),
                         "keypoints": first.metadata.num_keypoints, "macs_per_person": model_macs(first),
                         "validation": first.metadata.extra.get("validation"),
                         "int8_verification": _verification(first.metadata.extra)}

        def make(t, bs, _path=path, _var=var, _first=first, _backend=chosen):
            return _first if t == _first.threads else load_predictor(_path, _var, t, bs, debug=debug,
                                                                      backend=_backend)

        makers.append((label, make))
    # side by side: the models' calls alternate, so a change in the machine's load cannot skew their ratios
    rows = run_bench_side_by_side(makers, threads, batch, runs, warmup,
                                  progress=None if quiet else (lambda msg: click.echo(f"bench {msg}", err=True)))
    ratios = speed_ratios(rows, "default", "fast") if compare else None
    engine_ratios = speed_ratios(rows, variants[0][0], variants[1][0]) if compare_backends else None
    cpu = cpu_description()
    hints = advice(cpu["cpu_features"], [(m["path"], m["backend"]) for m in models.values()])
    if as_json:
        out = {"photo_size": list(PHOTO_SIZE), "runs": runs, "warmup": warmup, **cpu, "models": models,
               "rows": rows, "advice": hints}
        if ratios is not None:
            out["ratios"] = ratios
        if engine_ratios is not None:
            out["backend_ratios"] = engine_ratios
        click.echo(json.dumps(plain_json(out), indent=2, allow_nan=False))  # NaN (a ratio, a file's figure): null
        return
    for label, m in models.items():
        macs = m["macs_per_person"]
        macs = "n/a" if not macs else f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.3f} M"
        click.echo(f"{label}: {m['path']}  {m['network']}  input {m['input_size'][0]}x{m['input_size'][1]}  "
                   f"K={m['keypoints']}  MACs/person {macs}  backend {m['backend']}")
    click.echo(f"CPU {cpu['cpu']} ({cpu['cpu_features']}); photo {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, "
               f"{warmup} warm-up + {runs} timed calls per row")
    click.echo(format_table(rows))
    if engine_ratios is not None:
        click.echo("openvino / onnxruntime per person (below 1: OpenVINO is faster): " + ", ".join(
            f"threads={r['threads']} batch={r['batch']}: {r['wall']:.2f} wall"
            + ("" if r["cpu"] is None else f", {r['cpu']:.2f} CPU") for r in engine_ratios))
    if ratios is not None:
        click.echo("fast / default per person (below 1: fast is faster): " + ", ".join(
            f"threads={r['threads']} batch={r['batch']}: {r['wall']:.2f} wall"
            + ("" if r["cpu"] is None else f", {r['cpu']:.2f} CPU") for r in ratios))
        for label, m in models.items():
            click.echo(f"{label}: {_accuracy_line(m['validation'], m['int8_verification'])}")
    for hint in hints:
        click.echo(f"hint: {hint}")


def _profile(model, variant, backend, threads, batch, runs, warmup, as_json, debug) -> None:
    """bench --profile: the model's operators timed by its engine, as a table or JSON."""
    from ..bench import cpu_description
    from ..profiling import format_profile, profile_model

    pred = load_predictor(model, variant, threads, batch, debug=debug, backend=backend)  # a usable model, or exit 2
    label = model.name if model is not None else f"the bundled {variant or 'default'} model"
    result = profile_model(pred.model_path, threads, batch, runs, warmup, backend, input_size=pred.input_size)
    if as_json:
        click.echo(json.dumps({"model": str(pred.model_path), **cpu_description(), "profile": result}, indent=2))
        return
    cpu = cpu_description()
    click.echo(f"CPU {cpu['cpu']} ({cpu['cpu_features']})")
    click.echo(format_profile(result, label))


def _verification(extra: dict):
    """The int8 check the metadata ``extra`` records, or None (no quantization block, or not an object)."""
    quant = extra.get("quantization")
    return quant.get("verification") if isinstance(quant, dict) else None


def _accuracy_line(validation, verification) -> str:
    """What a bundled model's metadata records of its accuracy: the training run's validation PCK@0.2 (float, at
    the training's box padding) and the exporter's int8 check (int8 at the shipped padding)."""
    pck = validation.get("pck@0.2") if isinstance(validation, dict) else None
    head = f"validation PCK@0.2 at training time {pck:.3f}" if isinstance(pck, (int, float)) else \
        "no validation figures in the model's metadata"
    return head + "; " + verification_line(verification)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def verification_line(v) -> str:
    """The int8 model's accuracy check, as its exporter measured and stored it in the metadata (figures it holds
    in a form this runtime cannot read are shown as they are, marked)."""
    from ..model_card import marked, shown

    if v is not None and not isinstance(v, dict):
        return f"int8 accuracy: verification figures {marked(v)}"
    if not isinstance(v, dict):
        return "int8 accuracy: no verification figures in the model's metadata"
    moved = v.get("moved", float("nan"))
    line = (f"int8 accuracy, measured at export on {v.get('crops', '?')} crops of {v.get('source', '?')}: "
            f"keypoints moved {shown(v.get('mean_px', float('nan')), '.3f')} heatmap px on average, "
            f"{shown(100 * moved if _is_number(moved) else moved, '.1f')} % by more than 0.5 px")
    if "pck_float" in v and "pck_int8" in v:
        pck_float, pck_int8 = v["pck_float"], v["pck_int8"]
        drop = (f"drop {100 * (pck_float - pck_int8):.2f} points" if _is_number(pck_float) and _is_number(pck_int8)
                else "drop not known")
        line += f"; PCK@0.2 of its float source {shown(pck_float, '.3f')} vs int8 {shown(pck_int8, '.3f')} ({drop})"
    if "box_padding" in v:  # export.padding changed the padding after the check
        line += f"; measured at box padding {shown(v['box_padding'], 'g')}, not the model's present one"
    return line


