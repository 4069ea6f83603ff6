"""The ``fasterpose`` metadata: built from the spec, keypoint set and checkpoint; embedded in / read from ONNX.

Always written and read through :class:`fasterpose_rt.metadata.ModelMetadata`, the class the runtime uses.
Provenance fields (``extra``): weights ("trained" | "random"), loss, model_options, keypoints_source,
training_data, sigmas, recipe, validation, epoch, source_checkpoint {file, sha256}; the exporter adds
exported_at and exporter (tool versions, opset) when it writes the file.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import onnx
import torch

from fasterpose_rt.metadata import (DEFAULT_BOX_PADDING, IMAGENET_MEAN, IMAGENET_STD, METADATA_KEY, MetadataError,
                                    ModelMetadata, BOX_PADDING_RULE, is_box_padding)

from .checkpoint import Checkpoint
from .errors import ExportError, InputError
from .keypoints import KeypointSet
from .spec import ModelSpec

__all__ = ["build_metadata", "embed_metadata", "read_metadata", "save_with_metadata", "jsonable"]


def jsonable(value: Any) -> Any:
    """Plain JSON types from checkpoint meta values (tensors / numpy scalars become numbers or lists)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def checkpoint_box_padding(meta: dict) -> float:
    """The box padding a checkpoint's model crops at: its own ``box_padding`` (models.from_onnx: its source file's,
    calibrated maybe), else the padding it was trained at (its recipe's), else DEFAULT_BOX_PADDING. The exporter,
    models.shrink and benchmarks.block_drop all take it from here. Raises InputError on malformed meta."""
    recipe = meta.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        raise InputError(f"checkpoint meta recipe must be a dict, got {type(recipe).__name__} {recipe!r}")
    for where, value in (("box_padding", meta.get("box_padding")),
                         ("recipe.box_padding", (recipe or {}).get("box_padding"))):
        if value is not None:
            if not is_box_padding(value):
                raise InputError(f"checkpoint meta {where} must be {BOX_PADDING_RULE}, got {value!r} (export with "
                                 "--box-padding)")
            return float(value)
    return DEFAULT_BOX_PADDING


def build_metadata(spec: ModelSpec, keypoints: KeypointSet, checkpoint: Optional[Checkpoint] = None,
                   box_padding: Optional[float] = None) -> ModelMetadata:
    """ImageNet RGB normalisation, the spec's size/output/architecture, names from ``keypoints``, provenance.
    box_padding None -> the checkpoint's ``box_padding`` (models.from_onnx: its source file's), else the padding it
    was trained at (its recipe), else DEFAULT_BOX_PADDING. Raises InputError on malformed checkpoint meta."""
    meta = checkpoint.meta if checkpoint is not None else {}
    recipe = meta.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        raise InputError(f"checkpoint meta recipe must be a dict, got {type(recipe).__name__} {recipe!r}")
    if box_padding is None:
        box_padding = checkpoint_box_padding(meta)
    extra = {
        "weights": "trained" if checkpoint is not None else "random",
        "loss": spec.loss,
        "model_options": jsonable(spec.model_options),
        "keypoints_source": keypoints.source,
    }
    if keypoints.info:
        extra["training_data" if keypoints.source.startswith("checkpoint") else "keypoint_set"] = jsonable(keypoints.info)
    if keypoints.sigmas is not None:
        extra["sigmas"] = [float(s) for s in keypoints.sigmas]
    for src, dst in (("recipe", "recipe"), ("val", "validation")):
        if meta.get(src):
            extra[dst] = jsonable(meta[src])
    size = meta.get("input_size")  # models.train keeps it beside the recipe: the size training saw (and validated at)
    if isinstance(extra.get("recipe"), dict) and "input_size" not in extra["recipe"] and isinstance(size, (list, tuple)) \
            and len(size) == 2:
        extra["recipe"] = {**extra["recipe"], "input_size": jsonable(list(size))}
    for lineage in ("souped_from", "shrunk_from", "recovered_from"):  # where the weights came from, if not trained
        if meta.get(lineage):
            extra[lineage] = jsonable(meta[lineage])
    if checkpoint is not None:
        extra["epoch"] = checkpoint.epoch
        extra["source_checkpoint"] = {"file": checkpoint.path.name if checkpoint.path else None,
                                      "sha256": checkpoint.sha256}
    return ModelMetadata(
        input_size=tuple(spec.input_size), keypoints=list(keypoints.keypoints),
        skeleton=[list(p) for p in keypoints.skeleton], flip_pairs=[list(p) for p in keypoints.flip_pairs],
        color="RGB", mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), output=spec.output,
        box_padding=float(box_padding), architecture=spec.architecture, extra=extra,
        edge_peaks=meta.get("edge_peaks", "blurred"),  # models.from_onnx keeps its source file's decoding
    )


def embed_metadata(model: onnx.ModelProto, meta: ModelMetadata) -> onnx.ModelProto:
    """Set ``metadata_props[METADATA_KEY]`` to ``meta.to_json()`` (replacing any previous entry), in place."""
    meta._validate()  # refuse to write what the runtime would refuse to read
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    return model


def read_metadata(model: onnx.ModelProto) -> ModelMetadata:
    """The ``fasterpose`` metadata of an ONNX model, parsed by the runtime's class."""
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            return ModelMetadata.from_json(p.value)
    raise ExportError(f"model has no '{METADATA_KEY}' metadata")


def save_with_metadata(model: onnx.ModelProto, meta: ModelMetadata, path) -> None:
    """Embed ``meta`` in ``model``, save it to ``path`` and check that the file's metadata reads back equal."""
    onnx.save(embed_metadata(model, meta), str(path))
    if read_metadata(onnx.load(str(path), load_external_data=False)).to_json() != meta.to_json():
        raise ExportError("metadata does not round-trip through ModelMetadata")


def open_to_measure(model_path, out_path, annotations, threads: Optional[int] = None):
    """The start of a tool that measures PCK of ``model_path`` on the labelled persons of ``annotations`` and
    rewrites its metadata to ``out_path`` (None: in place): -> (out Path, onnxruntime session, ModelMetadata).
    The output is checked before any measuring, not after it. Raises InputError (an output that cannot be written
    or is the annotation file, a model the runtime refuses, keypoints without a torso for PCK)."""
    from fasterpose_rt.session import ModelError, open_session
    from fasterpose_rt.skeletons import TORSO_NAMES, torso_pairs

    from .outputs import check_writable

    out = check_writable(out_path if out_path is not None else Path(model_path), [("the --ann file", annotations)])
    try:
        session, meta = open_session(Path(model_path), threads)
    except ModelError as e:
        raise InputError(str(e)) from None
    if torso_pairs(list(meta.keypoints)) is None:
        raise InputError(f"{model_path}: PCK needs {TORSO_NAMES}")
    return out, session, meta


def rewrite_metadata(model_path, meta: ModelMetadata, out,
                     graph: Optional[Callable[[onnx.ModelProto], onnx.ModelProto]] = None) -> None:
    """Write the ONNX file ``model_path`` to ``out`` with ``meta`` as its metadata, weights and graph untouched
    unless ``graph`` (ModelProto -> ModelProto) changes them: through a temporary file in ``out``'s folder, renamed
    over it (atomic), so ``out`` may be ``model_path``. Raises ExportError when it cannot be written."""
    out = Path(out)
    model = onnx.load(str(model_path))
    if graph is not None:
        model = graph(model)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same directory: the final rename is atomic
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_with_metadata(model, meta, tmp)
        os.replace(tmp, out)
    except OSError as e:  # after the tool's measuring: one line, not a traceback
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    except MetadataError as e:  # a block a tool made that the runtime would refuse: nothing written
        raise ExportError(f"not written: {out} would carry metadata the runtime refuses: {e}") from None
    finally:
        with contextlib.suppress(OSError):  # e.g. its folder is a file: there is no temporary file to remove
            tmp.unlink(missing_ok=True)

