"""``python -m export``: FasterPose weights -> simplified, self-describing, verified ONNX.

Exit codes: 0 exported and verified; 1 export or verification failed (no file written); 2 bad input
(arguments, missing / unreadable / refused checkpoint, malformed checkpoint meta, weights that do not fit or
output NaN/inf, missing keypoint names, an --out that cannot be written or names the checkpoint, keypoint or
--calibration file).
With --int8 the float file is written first, then ``<out>_int8.onnx`` (export/quantize.py): 1 also when int8
quantisation fails or its PCK drop is refused (no int8 file written; the float file stays).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from fasterpose_rt.metadata import BOX_PADDING_RANGE

from .errors import ExportError, InputError
from .onnx_graph import MIN_OPSET


def _parse_size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise click.BadParameter(f"expected WxH in pixels, e.g. 192x256; got {value!r}")
    return int(m.group(1)), int(m.group(2))


def _parse_blocks(ctx, param, value):
    if value is None:
        return None
    try:
        blocks = [int(v) for v in value.split(",")]
    except ValueError:
        blocks = []
    if not blocks or min(blocks) < 1:
        raise click.BadParameter(f"expected comma-separated block counts of 1 or more, e.g. 1,2,6; got {value!r}")
    return blocks


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--arch", help="Registered architecture, e.g. fasterpose_r18 (default: the checkpoint's).")
@click.option("--num-keypoints", type=click.IntRange(min=1), help="K heatmaps (default: the checkpoint's).")
@click.option("--checkpoint", type=click.Path(dir_okay=True), help="Weights (.pth); omitted -> random weights.")
@click.option("--input-size", callback=_parse_size, metavar="WxH",
              help="Model input, width x height (default: the checkpoint's, else 192x256).")
@click.option("--keypoints-from", type=click.Path(), metavar="ANNOTATIONS.json",
              help="COCO keypoint file naming the keypoints when the checkpoint does not.")
@click.option("--opset", type=click.IntRange(min=MIN_OPSET), default=MIN_OPSET, show_default=True)
@click.option("--box-padding", type=click.FloatRange(*BOX_PADDING_RANGE),
              help="Context around person boxes, recorded for the runtime (default: the padding the checkpoint "
                   "was trained at, else 1.25).")
@click.option("--output", "output_kind", type=click.Choice(["logits", "probabilities"]),
              help="What the heatmaps are, for checkpoints that do not record their loss (default logits).")
@click.option("--head-width", type=click.IntRange(min=1), default=None,
              help="Channels of the head, as models.train --head-width built it (default: the checkpoint's, else 256).")
@click.option("--blocks", callback=_parse_blocks, metavar="N,N,N",
              help="FasterPose-R: residual blocks per stage, as models.train --blocks built it (default: the "
                   "checkpoint's, else the depth's).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--int8", is_flag=True, help="Also write an int8 model, OUT_int8.onnx (needs --calibration).")
@click.option("--calibration", type=click.Path(), metavar="DIR_OR_COCO_FILE",
              help="int8 calibration: photos folder (whole-photo boxes) or COCO keypoint file (person boxes).")
@click.option("--calibration-images", type=click.Path(file_okay=False), metavar="DIR",
              help="Photos of a COCO --calibration file (default: images/ beside it).")
@click.option("--calibration-size", type=click.IntRange(min=1), default=200, show_default=True,
              help="Person crops to calibrate on; others of the source verify the int8 model.")
@click.option("--max-pck-drop", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Refuse the int8 model when PCK@0.2 drops by more points than this.")
def main(arch, num_keypoints, checkpoint, input_size, keypoints_from, opset, box_padding, output_kind, head_width,
         blocks, out, int8, calibration, calibration_images, calibration_size, max_pck_drop):
    """Export FasterPose weights to ONNX, verify it against PyTorch, embed the 'fasterpose' metadata."""
    if int8 and calibration is None:
        raise click.UsageError("--int8 needs --calibration DIR_OR_COCO_FILE (photos to calibrate on)")
    if calibration is not None and not int8:
        raise click.UsageError("--calibration is only used with --int8")
    if int8:  # what --int8 reads and writes, checked before the float model is exported (not after)
        source = Path(calibration)
        if not source.exists():
            raise click.UsageError(f"--calibration {source}: no such file or folder")
        photos = Path(calibration_images) if calibration_images else source.parent / "images"
        if source.is_file() and not photos.is_dir():
            raise click.UsageError(f"--calibration {source}: its photos folder {photos} does not exist "
                                   "(give --calibration-images)")
    from .pipeline import (
        export_from_args,  # torch import after argument parsing: --help stays fast
    )

    if int8:
        from .outputs import check_writable
        from .quantize import default_int8_path

        read = [("the --calibration file", calibration), ("the --checkpoint", checkpoint),
                ("the --keypoints-from file", keypoints_from)]
        try:  # the float file is written first: it must not replace what the int8 step reads next
            check_writable(out, read[:1])
            check_writable(default_int8_path(out), read)
        except InputError as e:
            click.echo(f"error: --int8: {e}", err=True)
            sys.exit(2)

    if checkpoint is None:
        click.echo("warning: no --checkpoint given: exporting RANDOM weights (for benchmarking only)", err=True)
    try:
        result = export_from_args(out, arch=arch, num_keypoints=num_keypoints, checkpoint=checkpoint,
                                  input_size=input_size, keypoints_from=keypoints_from, opset=opset,
                                  box_padding=box_padding, output=output_kind,
                                  model_options={"head_width": head_width, "blocks": blocks})
    except InputError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except ExportError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    if keypoints_from and result.metadata.extra.get("keypoints_source", "").startswith("checkpoint"):
        click.echo("note: keypoint names taken from the checkpoint; --keypoints-from was not needed", err=True)
    click.echo(result.summary())
    if int8:
        from .quantize import default_int8_path, quantize_file, run_cli

        sys.exit(run_cli(lambda: quantize_file(
            result.path, default_int8_path(result.path), calibration, calibration_images, calibration_size,
            max_pck_drop=max_pck_drop, log=lambda m: click.echo(m, err=True)), click.echo))


if __name__ == "__main__":
    main(prog_name="python -m export")
