"""fasterpose_rt: torch-free CPU runtime for FasterPose models (numpy + onnxruntime + OpenCV)."""
import os as _os

# onnxruntime's Linux and macOS wheels (since about 1.2x) send usage telemetry to Microsoft and keep a device id
# under ~/.cache unless told not to before it loads. A local runtime that never goes online should not: set
# ORT_DISABLE_TELEMETRY=0 to allow it. (Also set by models/, export/ and benchmarks/, which load onnxruntime too.)
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

# The public names and the module each lives in. They load on first use (PEP 562): `import fasterpose_rt` costs
# nothing until a name is used, and the `fasterpose` command's launcher starts at once, so a Ctrl-C while numpy,
# OpenCV and onnxruntime load meets the launcher (one line, exit 130) instead of a half-done import's traceback.
_PUBLIC_FROM = {
    "PosePredictor": "predictor",
    "PoseResult": "predictor",
    "DEFAULT_MODELS": "predictor",
    "DEFAULT_VARIANT": "predictor",
    "PoseTracker": "tracking",
    "find_poses": "tracking",
    "find_poses_batch": "tracking",
    "refine": "tracking",
    "refine_batch": "tracking",
    "drop_duplicates": "tracking",
    "KeypointSmoother": "smoothing",
    "VideoPoses": "video",
    "VideoFrame": "video",
    "HogPeopleDetector": "boxes",
    "decode_heatmaps": "decode",
    "to_bgr_uint8": "image",
    "InputReadError": "inputs",
    "ModelError": "session",
    "ModelNotFoundError": "session",
    "BackendUnavailable": "openvino_session",
    "MetadataError": "metadata",
    "ModelMetadata": "metadata",
}

TYPE_CHECKING = False  # (not typing's: loading typing would slow the launcher's start)
if TYPE_CHECKING:  # type checkers and editors see the names as if imported here
    from .boxes import HogPeopleDetector
    from .decode import decode_heatmaps
    from .image import to_bgr_uint8
    from .inputs import InputReadError
    from .metadata import MetadataError, ModelMetadata
    from .openvino_session import BackendUnavailable
    from .predictor import DEFAULT_MODELS, DEFAULT_VARIANT, PosePredictor, PoseResult
    from .session import ModelError, ModelNotFoundError
    from .smoothing import KeypointSmoother
    from .tracking import PoseTracker, drop_duplicates, find_poses, find_poses_batch, refine, refine_batch
    from .video import VideoFrame, VideoPoses

__all__ = [
    "PosePredictor",
    "PoseResult",
    "PoseTracker",
    "KeypointSmoother",
    "VideoPoses",
    "VideoFrame",
    "HogPeopleDetector",
    "find_poses",
    "find_poses_batch",
    "refine",
    "refine_batch",
    "drop_duplicates",
    "decode_heatmaps",
    "to_bgr_uint8",
    "InputReadError",
    "ModelError",
    "ModelNotFoundError",
    "BackendUnavailable",
    "MetadataError",
    "ModelMetadata",
    "DEFAULT_MODELS",
    "DEFAULT_VARIANT",
    "__version__",
]


def __getattr__(name: str):
    from importlib import import_module

    module = _PUBLIC_FROM.get(name)
    if module is None:  # a submodule, as the eager imports made them attributes (fasterpose_rt.predictor)
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next use is a plain lookup
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC_FROM})
