"""int8 static quantisation of a FasterPose ONNX model, verified against the float model before it is written.

Recipe: onnxruntime's ``quantize_static`` in QDQ format, int8 weights per output channel, activations calibrated
(MinMax) on real person crops cut by the runtime's own preprocessing (``export.crops``). The result keeps the
float model's ``fasterpose`` metadata plus ``quantization``: the recipe, the calibration data and the
verification figures.

Verification, on crops not used for calibration: decoded keypoints of both models (DARK, heatmap px) -> mean
distance and the share that move more than 0.5 heatmap px; PCK@0.2 of both against the ground truth when the
crops have it. Without ground truth, PCK@0.2 of the int8 model is measured against the float model's own
keypoints (float = 100 by definition): stricter, since disagreement on persons both get wrong counts too.
The file is refused (VerificationError, nothing written) when PCK drops by more than ``max_pck_drop`` points.

Python API::

    result = quantize_file("model.onnx", "model_int8.onnx", calibration="lspet_train.json",
                           calibration_images="lspet/images", eval_file="lspet_val.json")
    print(result.summary())

Command line: ``python -m export.quantize --help``; ``python -m export ... --int8 --calibration SRC`` does the
same right after a float export.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

from fasterpose_rt.confidence import CALIBRATION_KEY
from fasterpose_rt.presence import PRESENCE_KEY
from fasterpose_rt.metadata import ModelMetadata
from fasterpose_rt.metrics import pck
from fasterpose_rt.session import ModelError, open_session
from fasterpose_rt.skeletons import TORSO_NAMES, torso_pairs

from .checkpoint import file_provenance
from .crops import CropSet, crop_keypoints, list_persons, load_crops
from .errors import ExportError, InputError, VerificationError
from .metadata import embed_metadata, save_with_metadata
from .onnx_graph import check_graph
from .outputs import check_writable, same_file

__all__ = ["Recipe", "Agreement", "Int8Result", "heatmap_convs", "quantize_model", "compare_models",
           "quantize_file", "default_int8_path", "run_cli", "main"]

DEFAULT_VERIFY = 500  # held-out persons of the calibration source when no evaluation file is given
MOVED_PX = 0.5  # heatmap px: a keypoint "moves" when int8 and float disagree by more than this
PCK_THRESHOLD = 0.2
_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
_PASS_THROUGH = {"DepthToSpace", "Reshape", "Transpose", "Identity"}  # ops between the last conv and the output


@dataclass(frozen=True)
class Recipe:
    """How to quantise (MinMax calibration, int8 symmetric weights, QDQ format).

    activations: "uint8" (u8s8 kernels, the fast x86 path) or "int8" (s8s8: slower on x86 without VNNI);
    per_channel: one weight scale per output channel; reduce_range: 7-bit weights, so that the u8s8 kernels of
    AVX2 / AVX-512 CPUs without VNNI (vpmaddubsw) cannot saturate their 16-bit pair sums; keep_head_float: leave
    the convolution that produces the heatmaps in float (its logits keep sub-pixel detail for DARK decoding, at
    ~1.5% of the compute); keep_float: further node names left in float.
    """

    activations: str = "uint8"
    per_channel: bool = True
    reduce_range: bool = True
    keep_head_float: bool = True
    keep_float: Tuple[str, ...] = ()

    def check(self) -> "Recipe":
        if self.activations not in _TYPES:
            raise InputError(f"activations must be one of {sorted(_TYPES)}, got {self.activations!r}")
        return self

    def float_nodes(self, model: onnx.ModelProto) -> List[str]:
        """Names of the nodes of the float ``model`` this recipe leaves in float."""
        return list(self.keep_float) + (heatmap_convs(model) if self.keep_head_float else [])

    def to_dict(self, model: Optional[onnx.ModelProto] = None) -> dict:
        """The recipe as JSON-able values; with the float ``model``, also the node names it kept in float."""
        d = asdict(self)
        d.update(format="QDQ", weights="int8 symmetric", calibration_method="MinMax", keep_float=list(self.keep_float),
                 tool=f"onnxruntime.quantization.quantize_static (onnxruntime {onnxruntime.__version__})")
        if model is not None:
            d["float_nodes"] = self.float_nodes(model)
        return d


def heatmap_convs(model: onnx.ModelProto) -> List[str]:
    """Names of the Conv nodes whose outputs become the graph outputs through pass-through ops (DepthToSpace...)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for graph_out in model.graph.output:
        node = producer.get(graph_out.name)
        while node is not None and node.op_type in _PASS_THROUGH:
            node = producer.get(node.input[0])
        if node is not None and node.op_type == "Conv":
            found.append(node.name)
    return found


class _Reader(CalibrationDataReader):
    """Feeds the calibration crops to onnxruntime's calibrator in batches of (n, 3, H, W) float32."""

    def __init__(self, crops: CropSet, meta: ModelMetadata, input_name: str):
        self._batches = crops.batches(meta)
        self._name = input_name

    def get_next(self):
        x = next(self._batches, None)
        return None if x is None else {self._name: x}


def quantize_model(float_path, crops: CropSet, meta: ModelMetadata, recipe: Recipe = Recipe()) -> onnx.ModelProto:
    """Static int8 QDQ model of the float ONNX file at ``float_path``, calibrated on ``crops`` (N >= 1)."""
    recipe.check()
    graph = onnx.load(str(float_path))
    input_name = graph.graph.input[0].name
    keep = recipe.float_nodes(graph)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the tool logs advice (pre-processing, formats) at WARNING
    try:
        with tempfile.TemporaryDirectory(prefix="fasterpose-int8-") as tmp:
            out = Path(tmp) / "int8.onnx"
            # quantize_static writes <model>-inferred.onnx beside the model it is given, and removes it: a copy
            # here, so a user's file of that name beside theirs is not replaced, and a failed run leaves nothing
            source = Path(tmp) / "float.onnx"
            shutil.copyfile(float_path, source)
            quantize_static(
                str(source), str(out), _Reader(crops, meta, input_name), quant_format=QuantFormat.QDQ,
                per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
                activation_type=_TYPES[recipe.activations], weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep,
            )  # no CalibMaxIntermediateOutputs: onnxruntime drops the batches it clears (onnxruntime#18893), and
            # its calibration model keeps only each batch's min and max, so memory does not grow with the crops
            return onnx.load(str(out))
    except (ValueError, RuntimeError, onnx.checker.ValidationError) as e:
        raise ExportError(f"quantisation failed: {str(e).strip().splitlines()[0] if str(e).strip() else e}") from None
    except OSError as e:  # e.g. a full disk under its temporary folder
        raise ExportError(f"quantisation failed: {e.strerror or e}") from None
    except Exception as e:  # protobuf's DecodeError for a file cut short, and such
        raise ExportError(f"quantisation failed: {type(e).__name__}: {e}") from None
    finally:
        logging.getLogger().setLevel(quiet)


@dataclass
class Agreement:
    """int8 vs float on N verification crops. mean_px / p95_px: keypoint distance in heatmap px over all N x K;
    moved: share of keypoints farther apart than MOVED_PX; pck_float / pck_int8 in [0, 1] (None if not measured);
    reference "ground truth" | "float keypoints" (what PCK was measured against)."""

    crops: int
    mean_px: float
    p95_px: float
    moved: float
    pck_float: Optional[float]
    pck_int8: Optional[float]
    joints: int
    reference: str
    source: str

    @property
    def pck_drop(self) -> Optional[float]:
        """float - int8 PCK@0.2 in points (percent), or None."""
        if self.pck_float is None or self.pck_int8 is None:
            return None
        return 100.0 * (self.pck_float - self.pck_int8)

    def summary(self) -> str:
        pck_text = "PCK not measured" if self.pck_drop is None else (
            f"PCK@{PCK_THRESHOLD:g} vs {self.reference}: float {100 * self.pck_float:.2f}, "
            f"int8 {100 * self.pck_int8:.2f} (drop {self.pck_drop:+.2f} points, {self.joints} joints)")
        return (f"verified on {self.crops} held-out crops: keypoints move {self.mean_px:.3f} hm px on average "
                f"(p95 {self.p95_px:.3f}), {100 * self.moved:.2f}% by more than {MOVED_PX:g} hm px; {pck_text}")


def compare_models(float_path, int8_path, crops: CropSet, threads: Optional[int] = None) -> Agreement:
    """Run both models on ``crops`` and measure their agreement (see :class:`Agreement`)."""
    try:
        s_float, meta = open_session(float_path, threads)
        s_int8, _ = open_session(int8_path, threads)
    except ModelError as e:
        raise ExportError(str(e)) from None
    xy_f, shape = crop_keypoints(s_float, crops, meta)
    xy_q, _ = crop_keypoints(s_int8, crops, meta)
    dist = np.linalg.norm(xy_f.astype(np.float64) - xy_q, axis=2)  # (N, K) heatmap px
    photo_f = crops.to_photo(xy_f, shape, meta)  # (N, K, 2) photo px
    photo_q = crops.to_photo(xy_q, shape, meta)
    names = list(meta.keypoints)
    pck_f = pck_q = None
    joints, reference = 0, "ground truth"
    if crops.keypoints is not None and torso_pairs(names) is not None:
        pck_f, _, joints = pck(photo_f, crops.keypoints, crops.visible, names, PCK_THRESHOLD)
        pck_q, _, _ = pck(photo_q, crops.keypoints, crops.visible, names, PCK_THRESHOLD)
    elif torso_pairs(names) is not None:
        reference = "float keypoints"
        vis = np.ones(dist.shape, bool)
        pck_f, _, joints = pck(photo_f, photo_f, vis, names, PCK_THRESHOLD)
        pck_q, _, _ = pck(photo_q, photo_f, vis, names, PCK_THRESHOLD)
    if joints == 0:
        pck_f = pck_q = None
    return Agreement(len(crops), float(dist.mean()), float(np.percentile(dist, 95)), float((dist > MOVED_PX).mean()),
                     pck_f, pck_q, joints, reference, crops.source)


@dataclass
class Int8Result:
    path: Path
    float_path: Path
    recipe: Recipe
    calibration_crops: int
    agreement: Agreement
    size_bytes: int
    float_size_bytes: int
    metadata: ModelMetadata = field(repr=False, default=None)

    def summary(self) -> str:
        r = self.recipe
        acts = f"{r.activations} activations, int8 {'per-channel' if r.per_channel else 'per-tensor'} weights" + (
            ", reduce_range" if r.reduce_range else "")
        return (f"{self.path}: int8 QDQ ({acts}, MinMax calibration on {self.calibration_crops} "
                f"crops); {self.float_size_bytes / 1e6:.1f} MB -> {self.size_bytes / 1e6:.1f} MB; "
                f"{self.agreement.summary()}")


def default_int8_path(float_path) -> Path:
    """``model.onnx`` -> ``model_int8.onnx`` beside it (the runtime's naming of its bundled pair)."""
    p = Path(float_path)
    return p.with_name(f"{p.stem}_int8{p.suffix or '.onnx'}")


def _spread(n: int, k: Optional[int]) -> np.ndarray:
    """k indices (all n when k is None or >= n) spread evenly over range(n)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _crop_sets(meta, calibration, calibration_images, calibration_size, eval_file, eval_images, verify_size,
               seed, log) -> Tuple[CropSet, CropSet]:
    """(calibration crops, verification crops) as :func:`quantize_file` describes; never overlapping."""
    k, warn = list(meta.keypoints), lambda w: log(f"warning: {w}")  # ground truth matched by name
    persons = list_persons(calibration, k, calibration_images, warn)
    order = np.random.default_rng(seed).permutation(len(persons))
    calib = load_crops(persons, order[:calibration_size], meta)
    if eval_file is not None and not same_file(calibration, eval_file):
        if eval_images is None and not (Path(eval_file).parent / "images").is_dir():
            eval_images = calibration_images  # e.g. train and val files of one dataset, photos in one folder
        held = list_persons(eval_file, k, eval_images, warn)
        verify = load_crops(held, _spread(len(held), verify_size), meta)
    else:
        held = persons
        rest = order[calibration_size:calibration_size + (verify_size or DEFAULT_VERIFY)]
        if rest.size == 0:
            other = ("an evaluation file other than the calibration file (the same file verifies on its persons "
                     "left over)" if eval_file is not None else
                     "an evaluation file (python -m export.quantize --eval, after the float export)")
            raise InputError(f"{calibration} has {len(persons)} persons, all used for calibration: none is left "
                             f"to verify on; give a --calibration-size under {len(persons)}, or {other}")
        verify = load_crops(persons, rest, meta)
    for crops in (calib, verify):
        if crops.skipped:
            log(f"warning: {crops.skipped} persons of {crops.source} skipped (photo missing or unreadable)")
    if verify.keypoints is None:
        log(f"no ground truth in {held.source} ({held.note}): PCK is measured against the float model's keypoints")
    return calib, verify


def quantize_file(model_path, out_path=None, calibration=None, calibration_images=None, calibration_size: int = 200,
                  eval_file=None, eval_images=None, verify_size: Optional[int] = None, max_pck_drop: float = 1.0,
                  recipe: Recipe = Recipe(), threads: Optional[int] = None, seed: int = 0,
                  log=lambda msg: None) -> Int8Result:
    """Quantise the float FasterPose ONNX file ``model_path`` into ``out_path`` (default ``<stem>_int8.onnx``).

    calibration: photo folder or COCO keypoint file; ``calibration_size`` persons drawn from it (seeded) are the
    calibration crops. Verification crops: ``eval_file`` (COCO, photos in ``eval_images``, default ``images/``
    beside it if present, else ``calibration_images``), all of its persons or ``verify_size`` spread over them; without it, up to ``verify_size`` (default
    DEFAULT_VERIFY = 500) further persons of the calibration source, never those calibrated on.
    Raises InputError for bad arguments or data, VerificationError when PCK@0.2 drops by more than
    ``max_pck_drop`` points (or cannot be measured), ExportError when quantisation fails. Nothing is written
    unless the model passes. ``log(msg)`` receives progress lines.
    """
    if calibration is None:
        raise InputError("int8 quantisation needs calibration data: a photo folder or a COCO keypoint file")
    if isinstance(calibration_size, bool) or not isinstance(calibration_size, int) or calibration_size < 1:
        raise InputError(f"calibration size must be a positive integer, got {calibration_size!r}")
    if verify_size is not None and (not isinstance(verify_size, int) or verify_size < 1):
        raise InputError(f"verification size must be a positive integer, got {verify_size!r}")
    if not max_pck_drop >= 0:
        raise InputError(f"max PCK drop must be >= 0 points, got {max_pck_drop!r}")
    recipe.check()
    model_path = Path(model_path)
    out = Path(out_path) if out_path is not None else default_int8_path(model_path)
    if same_file(model_path, out):
        raise InputError(f"the int8 output {out} would overwrite the float model")
    check_writable(out, [("the --calibration file", calibration), ("the --eval file", eval_file)])  # before the work
    try:
        _, meta = open_session(model_path, threads)
    except ModelError as e:
        raise InputError(str(e)) from None
    if "quantization" in meta.extra:
        raise InputError(f"{model_path} is already quantised; give the float model")
    if PRESENCE_KEY in meta.extra:  # its head was fitted on the float features, and would be quantised blind
        raise InputError(f"{model_path} has a presence head: quantise the model without it, then fit the head on "
                         "the int8 file (python -m export.presence_head)")
    if torso_pairs(list(meta.keypoints)) is None:  # refused now, not after the quantisation
        raise InputError(f"{model_path}: the int8 model is verified by PCK@{PCK_THRESHOLD:g}, which needs "
                         f"{TORSO_NAMES}")

    calib, verify = _crop_sets(meta, calibration, calibration_images, calibration_size, eval_file, eval_images,
                               verify_size, seed, log)
    log(f"calibrating on {len(calib)} crops from {calibration} ...")
    qmodel = quantize_model(model_path, calib, meta, recipe)
    check_graph(qmodel, meta.input_size, meta.num_keypoints)
    qmeta = copy.deepcopy(meta)
    qmeta.extra.pop(CALIBRATION_KEY, None)  # the float model's score table does not describe the int8 one
    qmeta.extra["quantization"] = {
        "recipe": recipe.to_dict(onnx.load(str(model_path))),
        "calibration": {"source": Path(calibration).name, "crops": len(calib), "seed": seed,
                        "preprocessing": "fasterpose_rt.preprocess (box_padding, affine crop, mean/std)"},
        "float_model": file_provenance(model_path),
        "max_pck_drop": float(max_pck_drop),
        "quantized_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same directory: the final rename is atomic
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(embed_metadata(qmodel, qmeta), str(tmp))
        log(f"verifying on {len(verify)} crops from {verify.source} ...")
        agreement = compare_models(model_path, tmp, verify, threads)
        drop = agreement.pck_drop
        if drop is None:
            raise VerificationError(f"cannot verify accuracy: PCK needs {TORSO_NAMES}; {agreement.summary()}")
        if not drop <= max_pck_drop:  # `not <=` also refuses NaN
            hint = ("" if agreement.reference == "ground truth" else " (no ground truth: measured against the float "
                    "model's keypoints, which also counts persons both models get wrong; give a COCO file with "
                    "keypoints to measure true PCK)")
            raise VerificationError(f"int8 model refused: PCK@{PCK_THRESHOLD:g} drops {drop:.2f} points "
                                    f"> {max_pck_drop:g} allowed{hint}; {agreement.summary()}")
        qmeta.extra["quantization"]["verification"] = {
            key: (round(v, 6) if isinstance(v, float) else v) for key, v in asdict(agreement).items()}
        qmeta.extra["quantization"]["verification"].update(source=Path(verify.source).name, pck_drop=round(drop, 4))
        save_with_metadata(qmodel, qmeta, tmp)
        os.replace(tmp, out)
    except OSError as e:  # e.g. the disk filled up: one line, not a traceback
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return Int8Result(out, model_path, recipe, len(calib), agreement, out.stat().st_size,
                      model_path.stat().st_size, qmeta)


def model_and_persons_options(click, ann_help: str):
    """The click options of the tools that measure a model on labelled persons and rewrite its metadata
    (export.padding, export.score_calibration): --model, --ann (``ann_help``), --images, --out."""
    options = [
        click.option("--model", required=True, type=click.Path(dir_okay=False), help="FasterPose ONNX file (float or int8)."),
        click.option("--ann", required=True, type=click.Path(dir_okay=False), metavar="COCO_FILE", help=ann_help),
        click.option("--images", type=click.Path(file_okay=False), metavar="DIR",
                     help="Its photos (default: images/ beside it)."),
        click.option("--out", type=click.Path(dir_okay=False), help="File to write (default: MODEL, in place)."),
    ]

    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command
    return apply


def run_cli(fn, echo) -> int:
    """Call fn(); map errors to the exporter's exit codes (2 bad input, 1 failed or refused), echoing the message."""
    try:
        result = fn()
    except InputError as e:
        echo(f"error: {e}", err=True)
        return 2
    except ExportError as e:
        echo(f"error: {e}", err=True)
        return 1
    echo(result.summary())
    return 0


def main(argv=None) -> None:
    """``python -m export.quantize``: quantise an existing float FasterPose ONNX file (click is imported here only)."""
    import click

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--model", required=True, type=click.Path(dir_okay=False), help="Float FasterPose ONNX file.")
    @click.option("--out", type=click.Path(dir_okay=False), help="int8 file to write (default: MODEL_int8.onnx).")
    @click.option("--calibration", required=True, type=click.Path(), metavar="DIR_OR_COCO_FILE",
                  help="Photos folder (whole-photo boxes) or COCO keypoint file (its person boxes).")
    @click.option("--calibration-images", type=click.Path(file_okay=False), metavar="DIR",
                  help="Photos of a COCO calibration file (default: images/ beside it).")
    @click.option("--calibration-size", type=click.IntRange(min=1), default=200, show_default=True,
                  help="Person crops to calibrate on (drawn at random, seed 0).")
    @click.option("--eval", "eval_file", type=click.Path(dir_okay=False), metavar="COCO_FILE",
                  help="Held-out COCO keypoint file to verify on (default: other persons of --calibration).")
    @click.option("--eval-images", type=click.Path(file_okay=False), metavar="DIR",
                  help="Photos of --eval (default: images/ beside it, else --calibration-images).")
    @click.option("--verify-size", type=click.IntRange(min=1),
                  help="Verification crops (default: all of --eval, else 500 held-out calibration persons).")
    @click.option("--max-pck-drop", type=click.FloatRange(min=0), default=1.0, show_default=True,
                  help="Refuse the int8 model when PCK@0.2 drops by more points than this.")
    @click.option("--activations", type=click.Choice(sorted(_TYPES)), default="uint8", show_default=True)
    @click.option("--reduce-range/--no-reduce-range", default=True, show_default=True,
                  help="7-bit weights (avoids u8s8 saturation on CPUs without VNNI).")
    @click.option("--threads", type=click.IntRange(min=1), help="Verification threads (default: physical cores).")
    def cli(model, out, calibration, calibration_images, calibration_size, eval_file, eval_images, verify_size,
            max_pck_drop, activations, reduce_range, threads):
        """Quantise a float FasterPose ONNX model to int8; refuse it if PCK@0.2 drops too much.

        Exit codes: 0 written; 1 quantisation failed or the model was refused (nothing written); 2 bad input.
        """
        recipe = Recipe(activations=activations, reduce_range=reduce_range)
        sys.exit(run_cli(lambda: quantize_file(
            model, out, calibration, calibration_images, calibration_size, eval_file, eval_images, verify_size,
            max_pck_drop, recipe, threads, log=lambda m: click.echo(m, err=True)), click.echo))

    cli.main(args=argv, prog_name="python -m export.quantize")


if __name__ == "__main__":
    main()
