"""Recover a trainable checkpoint from an exported FasterPose / SimpleBaseline ONNX file.

    python -m models.from_onnx --model fasterpose_default.onnx --ann train.json --images imgs/ --out start.pth
    python -m models.train ... --init start.pth        # a new schedule from those weights

``--ann`` may hold any keypoint set (its person crops only give BatchNorm statistics), and ``--init`` matches
keypoints by name: a model for COCO's 17 keypoints starts from the bundled 14-joint LSP model with its 12 shared
joints already trained (models/head_transfer.py).

Why: the exported file is often the only copy of a model's weights that survives (we commit ONNX files, never
checkpoints). Export folds every BatchNorm into the convolution before it, so each conv holds W' = W·γ/σ and a
bias b'. Here each conv gets (W', b') back and its BatchNorm is rebuilt so that:
- in eval mode the network computes exactly what the ONNX file computes (checked before writing);
- its running statistics and (γ, β) describe the real activations of training crops (``--ann``), so that
  training-mode batch statistics start close to what the folded network saw: with γ = σ_c, β = b' + μ_c,
  running (μ_c, σ_c²) = the per-channel mean and variance of the conv output x·W' on those crops, batch
  normalisation gives back x·W' + b' for batches like them.
An int8 (QDQ) file works too: its weights are dequantised, (q − zero point) · scale per channel, which is close to
but not exactly the float original (the check then compares the outputs as signals: a few % RMS apart).
The optimizer state is not in an ONNX file: continue with ``--init`` (new schedule), not ``--resume``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.checkpoint import save_checkpoint
from export.errors import ExportError, InputError
from export.outputs import check_writable
from export.metadata import read_metadata
from fasterpose_rt.metadata import MetadataError

from .data.coco_keypoints import TopDownDataset, load_coco_keypoints
from .pose import build_model


class RecoveryError(ValueError):
    """The ONNX file cannot be mapped back onto a registered architecture."""


def _module_path(onnx_output_name: str) -> str:
    """'/backbone/layer1/layer1.0/conv1/Conv_output_0' -> 'backbone.layer1.0.conv1' (torch.onnx scope names)."""
    scopes = onnx_output_name.strip("/").split("/")[:-1]
    return ".".join(s.split(".")[-1] for s in scopes)


def _conv_bn_pairs(model: nn.Module) -> dict:
    """{conv module name: name of the BatchNorm registered right after it} (ResNet and both heads register so)."""
    named = list(model.named_modules())
    pairs = {}
    for (name, mod), (next_name, next_mod) in zip(named, named[1:]):
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(next_mod, nn.BatchNorm2d):
            pairs[name] = next_name
    return pairs


def _dequantized_constants(proto, weights: dict) -> dict:
    """{output name: float32 array} of each DequantizeLinear on constant inputs: ``(q - zero_point) · scale``,
    per channel along ``axis`` (int8 weights, int32 biases of a quantised model); {} for a float model."""
    out = {}
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in weights:
            continue
        q = weights[node.input[0]].astype(np.float64)
        scale = weights[node.input[1]].astype(np.float64)
        zero = weights[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else np.zeros(1)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:  # per channel: broadcast along the quantisation axis
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        out[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return out


def load_folded(path) -> tuple:
    """ONNX file -> (model in eval mode with folded weights and identity BatchNorms, metadata dict, {conv: bn})."""
    import onnx
    from onnx import numpy_helper

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise RecoveryError(f"{path} is not an ONNX file: {type(e).__name__}") from None
    try:  # the exporter's reader: validated by the runtime's class, provenance fields kept
        meta = json.loads(read_metadata(proto).to_json())
    except (ExportError, MetadataError) as e:
        raise RecoveryError(f"{path}: {e}; not a usable FasterPose export") from None
    arch = meta.get("architecture")
    try:
        model = build_model(arch, len(meta["keypoints"]), **meta.get("model_options", {}))
    except (TypeError, ValueError) as e:
        raise RecoveryError(f"{path}: architecture {arch!r} cannot be rebuilt: {e}") from None
    model.eval()
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    weights.update(_dequantized_constants(proto, weights))  # an int8 (QDQ) file: its weights, dequantised
    state = model.state_dict()
    modules = dict(model.named_modules())
    bn_of = _conv_bn_pairs(model)
    seen, folded = set(), {}
    for node in proto.graph.node:
        if node.op_type == "BatchNormalization":
            raise RecoveryError(f"{path}: unfolded BatchNormalization nodes; only simplified exports are supported")
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        # int8 files fuse Conv+ReLU (the output takes the ReLU's name); node names keep the layer's scope
        name = _module_path(node.name or node.output[0])
        if name not in modules or name + ".weight" not in state:
            raise RecoveryError(f"{path}: graph node {node.output[0]!r} matches no layer of {arch}")
        w = weights.get(node.input[1])
        b = weights.get(node.input[2]) if len(node.input) > 2 else None
        if w is None or tuple(w.shape) != tuple(state[name + ".weight"].shape):
            raise RecoveryError(f"{path}: weights of {name} missing or of another shape than {arch}'s")
        state[name + ".weight"] = torch.from_numpy(w.copy())
        seen.add(name)
        if name + ".bias" in state:  # a conv with its own bias (the final 1x1): nothing was folded into it
            if b is None:
                raise RecoveryError(f"{path}: {name} has no bias in the graph")
            state[name + ".bias"] = torch.from_numpy(b.copy())
            continue
        if name not in bn_of:
            raise RecoveryError(f"{path}: {name} has no BatchNorm to restore in {arch}")
        bn = bn_of[name]
        channels = state[bn + ".weight"].shape[0]
        bias = torch.zeros(channels) if b is None else torch.from_numpy(b.copy())
        state[bn + ".weight"] = torch.ones(channels)
        state[bn + ".bias"] = bias
        state[bn + ".running_mean"] = torch.zeros(channels)
        state[bn + ".running_var"] = torch.full((channels,), 1.0 - modules[bn].eps)  # sqrt(var + eps) = 1
        folded[name] = bn
    convs = {n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    if seen != convs:
        raise RecoveryError(f"{path}: layers of {arch} not found in the graph: {sorted(convs - seen)[:5]}")
    model.load_state_dict(state)
    return model, meta, folded


@torch.no_grad()
def restore_batchnorm_statistics(model: nn.Module, folded: dict, crops: torch.Tensor) -> None:
    """Give each restored BatchNorm the per-channel mean/variance of its conv's output on crops (N, 3, H, W).

    The eval-mode function is unchanged: γ = sqrt(var + eps) and β = b + mean cancel the normalisation exactly.
    """
    modules = dict(model.named_modules())
    stats = {}

    def hook(name):
        def record(_module, _inputs, out):
            stats[name] = (out.mean((0, 2, 3)), out.var((0, 2, 3), unbiased=False))
        return record

    handles = [modules[c].register_forward_hook(hook(c)) for c in folded]
    try:
        model.eval()(crops)
    finally:
        for h in handles:
            h.remove()
    for conv, bn_name in folded.items():
        mean, var = stats[conv]
        bn = modules[bn_name]
        bn.bias.add_(mean)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)


def recover(model_path, ann_file, images_dir, out_path, crops: int = 256, seed: int = 0) -> dict:
    """Write a checkpoint ({"model", "meta"}) for ``--init`` from an ONNX export; returns a summary dict."""
    import onnxruntime as ort

    if isinstance(crops, bool) or not isinstance(crops, int) or crops < 1:  # no crop: no statistics to restore
        raise RecoveryError(f"--crops must be a positive number of crops, got {crops!r}")
    try:  # before the work: often the ONNX file is all that is left of a model
        check_writable(out_path, [("the --model file", model_path), ("the --ann file", ann_file)])
    except InputError as e:
        raise RecoveryError(str(e)) from None
    model, meta, folded = load_folded(model_path)
    samples, data_meta = load_coco_keypoints(ann_file, images_dir)  # any person crops: only the photos count
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(crops, len(samples)), replace=False)
    torch.manual_seed(seed)
    ds = TopDownDataset([samples[i] for i in pick], data_meta, tuple(meta["input_size"]), train=True,
                        half_body_prob=meta.get("recipe", {}).get("augment", {}).get("half_body", 0.0), cache=False)
    x = torch.stack([torch.as_tensor(ds[i][0]) for i in range(len(ds))])

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    check = x[:16]
    reference = session.run(None, {session.get_inputs()[0].name: check.numpy()})[0]
    restore_batchnorm_statistics(model, folded, x)
    with torch.no_grad():
        delta = model.eval()(check).numpy() - reference
    error, scale = float(np.abs(delta).max()), float(np.abs(reference).max())
    quantized = bool(meta.get("quantization"))
    if quantized:  # the int8 file quantises activations too: compare as signals (a mis-mapped layer gives ~100 %)
        relative = float(np.sqrt((delta ** 2).mean() / (reference ** 2).mean()))
        if not relative <= 0.05:
            raise RecoveryError(f"recovered network differs from {model_path}: relative RMS difference "
                                f"{100 * relative:.1f} % (an int8 file should give a few %)")
    elif not error <= 1e-3 * max(1.0, scale):
        raise RecoveryError(f"recovered network differs from {model_path}: max |Δ| {error:.3g} (outputs up to {scale:.3g})")
    # the keypoint set, the file's box padding (calibrated, maybe, unlike the recipe's), what its heatmaps are and
    # how its edge peaks are decoded: re-exports keep them
    out_meta = {k: meta[k] for k in ("architecture", "input_size", "loss", "model_options", "recipe", "validation",
                                      "keypoints", "skeleton", "flip_pairs", "sigmas", "box_padding", "output", "edge_peaks")
                if k in meta}
    out_meta["recovered_from"] = {"file": Path(model_path).name, "max_abs_difference": error,
                                  "weights": "dequantised from int8" if quantized else "exact",
                                  "batchnorm_statistics": f"{len(ds)} augmented crops of {Path(ann_file).name}"}
    out_meta["val"] = meta.get("validation", {})
    out_path = save_checkpoint(out_path, model.state_dict(), out_meta)
    return {"out": str(out_path), "layers": len(folded) + 1, "batchnorms": len(folded), "max_abs_difference": error,
            "int8": quantized}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.from_onnx", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path,
                    help="ONNX file written by `python -m export` (float32: exact; int8: dequantised weights)")
    ap.add_argument("--ann", required=True, type=Path,
                    help="COCO keypoint file (any keypoint set): its person crops give the BatchNorm statistics")
    ap.add_argument("--images", required=True, type=Path, help="folder of that file's photos")
    ap.add_argument("--out", required=True, type=Path, help="checkpoint to write (use with models.train --init)")
    ap.add_argument("--crops", type=int, default=256, help="training crops the BatchNorm statistics are measured on")
    args = ap.parse_args(argv)
    if args.crops < 1:  # before any work
        print(f"error: --crops must be at least 1, got {args.crops}", file=sys.stderr)
        return 2
    try:
        summary = recover(args.model, args.ann, args.images, args.out, args.crops)
    except (ValueError, OSError, KeyError) as e:  # RecoveryError, EvalError, JSONDecodeError, unreadable photos
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {summary['out']}: {summary['batchnorms']} BatchNorms restored, eval output matches the ONNX file "
          f"to {summary['max_abs_difference']:.2g}"
          + (" (an int8 file: its weights dequantised, its activation rounding not replayed)" if summary["int8"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
