"""The ``fasterpose`` metadata an ONNX model carries about itself: the only thing the runtime needs.

Written by ``export/`` into the ONNX ``metadata_props`` under :data:`METADATA_KEY` as one JSON object,
read and validated here. A different major ``format`` string is refused, so future versions are detectable.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, field, replace
from typing import Any, Dict, List, Tuple

import numpy as np

from .confidence import CALIBRATION_KEY, table_problem
from .decode import EDGE_PEAKS
from .presence import PRESENCE_KEY, presence_problem

METADATA_KEY = "fasterpose"
FORMAT = "fasterpose-onnx/1"
DEFAULT_BOX_PADDING = 1.25  # context around a person box, as SimpleBaseline/mmpose crop; models record their own

IMAGENET_MEAN = [123.675, 116.28, 103.53]  # RGB, 0..255 pixel scale
IMAGENET_STD = [58.395, 57.12, 57.375]


class MetadataError(ValueError):
    """The model's ``fasterpose`` metadata is missing or malformed."""


def plain_json(value: Any) -> Any:
    """``value`` in the types ``json.dumps(allow_nan=False)`` writes: numpy scalars as Python's (``.item()``),
    arrays and tuples as lists, non-finite floats as None; dict keys numpy gave as Python's."""
    if isinstance(value, dict):
        return {(k.item() if isinstance(k, np.generic) else k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, np.floating):
        value = float(value)  # .item() keeps a long double numpy's
    elif isinstance(value, np.generic):
        value = value.item()  # np.int64 -> int, np.bool_ -> bool, np.str_ -> str
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


BOX_PADDING_RANGE = (0.5, 4.0)  # a region from half the person's box to four times it: beyond, no model's crop
BOX_PADDING_RULE = f"a number from {BOX_PADDING_RANGE[0]:g} to {BOX_PADDING_RANGE[1]:g}"  # what error messages say


def is_box_padding(value) -> bool:
    """A usable box padding: a number within BOX_PADDING_RANGE (not a bool; numpy's numbers too), whether a model
    records it or a caller overrides it (0 cuts no crop, below 0 a mirrored one, 1000 a crop of nothing)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and BOX_PADDING_RANGE[0] <= float(value) <= BOX_PADDING_RANGE[1])


MAX_INPUT_SIDE = 4096  # px: a pose model's crop is a few hundred; a side beyond this is a broken or hostile file

@dataclass
class ModelMetadata:
    """The ``fasterpose`` JSON's fields, validated where they cross a file's edge: when read (:meth:`from_dict`) and
    when written (``export.metadata.embed_metadata``), not on construction. ``extra`` keeps provenance fields (data,
    recipe, metrics...)."""

    input_size: Tuple[int, int]  # (w, h) in pixels
    keypoints: List[str]
    skeleton: List[List[int]]
    flip_pairs: List[List[int]]
    color: str = "RGB"
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))
    output: str = "logits"
    box_padding: float = DEFAULT_BOX_PADDING
    edge_peaks: str = "blurred"  # how peaks one pixel from the heatmap's edge are refined (decode.EDGE_PEAKS)
    architecture: str = ""
    format: str = FORMAT
    extra: Dict[str, Any] = field(default_factory=dict)
    # the optional fields the file does not record, so the runtime's defaults above stand in (`fasterpose info`
    # marks them); not part of the metadata itself
    unrecorded: Tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def network(self) -> str:
        """``architecture`` plus its residual blocks per stage when the export records non-standard ones
        (``model_options.blocks``, e.g. ``fasterpose_r34 (blocks 2/3/5)``): two files of one architecture name can
        be different networks."""
        options = self.extra.get("model_options")
        blocks = options.get("blocks") if isinstance(options, dict) else None
        name = self.architecture or "?"
        if isinstance(blocks, list) and blocks and all(isinstance(b, int) for b in blocks):
            return f"{name} (blocks {'/'.join(map(str, blocks))})"
        return name

    def chosen(self, **changes) -> "ModelMetadata":
        """A copy with ``changes`` to its fields, which the file will then record as its own (``unrecorded`` loses
        them): what a tool that chooses a setting writes."""
        return replace(self, **changes, unrecorded=tuple(f for f in self.unrecorded if f not in changes))

    def to_json(self) -> str:
        """The metadata as strict JSON: numpy's scalars and arrays (box_padding and the extra blocks take them)
        written as plain numbers and lists; NaN and the infinities, which JSON has no word for, as null. A field
        the file it was read from did not record (``unrecorded``) stays out while it holds the runtime's default,
        so a tool rewriting another's file does not pass the defaults off as that file's choice."""
        d = asdict(self)
        extra = d.pop("extra")
        for name in d.pop("unrecorded"):
            spec = self.__dataclass_fields__[name]
            default = spec.default_factory() if spec.default is MISSING else spec.default  # type: ignore[misc,operator]
            if d[name] == default:
                del d[name]
        d["input_size"] = list(d["input_size"])
        return json.dumps(plain_json({**extra, **d}), sort_keys=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise MetadataError(f"'{METADATA_KEY}' metadata is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise MetadataError(f"'{METADATA_KEY}' metadata must be a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelMetadata":
        d = dict(d)
        fmt = d.get("format")
        if not isinstance(fmt, str) or not fmt.startswith("fasterpose-onnx/"):
            raise MetadataError(f"unknown metadata format {fmt!r}; expected {FORMAT!r}")
        if fmt.split("/", 1)[1].split(".")[0] != FORMAT.split("/", 1)[1]:
            raise MetadataError(f"metadata format {fmt!r} is newer than this runtime ({FORMAT}); upgrade fasterpose")
        for key in ("input_size", "keypoints", "skeleton", "flip_pairs"):  # what the runtime cannot guess
            if key not in d:
                raise MetadataError(f"'{METADATA_KEY}' metadata lacks required field '{key}'")
        known = {f for f in cls.__dataclass_fields__ if f not in ("extra", "unrecorded")}
        kwargs = {k: d.pop(k) for k in list(d) if k in known}
        meta = cls(**kwargs, extra=d, unrecorded=tuple(sorted(known - set(kwargs) - {"architecture"})))
        meta._validate()
        return meta

    def _validate(self) -> None:
        def bad(msg):
            raise MetadataError(f"'{METADATA_KEY}' metadata: {msg}")

        def whole(v) -> bool:  # a JSON integer: true and false are not (Python's bool is an int)
            return isinstance(v, int) and not isinstance(v, bool)

        size = self.input_size
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(whole(v) and v > 0 for v in size)):
            bad(f"input_size must be [w, h] positive integers, got {size!r}")
        if max(size) > MAX_INPUT_SIDE:  # a batch of crops that size would take gigabytes (review s68: 27.9 GiB a photo)
            bad(f"input_size must be at most {MAX_INPUT_SIDE} px a side, got {list(size)!r}")
        self.input_size = (int(size[0]), int(size[1]))
        names = self.keypoints
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            bad("keypoints must be a non-empty list of names")
        k = len(self.keypoints)
        for name in ("skeleton", "flip_pairs"):
            pairs = getattr(self, name)
            if not isinstance(pairs, list) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 and all(whole(i) and 0 <= i < k for i in p)
                for p in pairs
            ):
                bad(f"{name} must be a list of index pairs in [0, {k})")
        flipped = [i for p in self.flip_pairs for i in p]
        if len(set(flipped)) != len(flipped):  # else mirroring is no permutation and the flip test mixes channels
            bad(f"flip_pairs must name each keypoint at most once, got {self.flip_pairs!r}")
        if self.color not in ("RGB", "BGR"):
            bad(f"color must be 'RGB' or 'BGR', got {self.color!r}")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if not (isinstance(v, list) and len(v) == 3 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
                bad(f"{name} must be 3 finite numbers, got {v!r}")
        if any(s <= 0 for s in self.std):
            bad("std values must be positive")
        if self.output not in ("logits", "probabilities"):
            bad(f"output must be 'logits' or 'probabilities', got {self.output!r}")
        if not is_box_padding(self.box_padding):
            bad(f"box_padding must be {BOX_PADDING_RULE}, got {self.box_padding!r}")
        if not (isinstance(self.edge_peaks, str) and self.edge_peaks in EDGE_PEAKS):
            bad(f"edge_peaks must be one of {', '.join(EDGE_PEAKS)}, got {self.edge_peaks!r}")
        for key, check in ((CALIBRATION_KEY, table_problem), (PRESENCE_KEY, presence_problem)):
            if key in self.extra:
                problem = check(self.extra[key])
                if problem:
                    bad(problem)
