"""fasterpose_rt: torch-free CPU runtime for FasterPose models (numpy + onnxruntime + OpenCV)."""
import os as _os

# onnxruntime's Linux and macOS wheels (since about 1.2x) send usage telemetry to Microsoft and keep a device id
# under ~/.cache unless told not to before it loads. A local runtime that never goes online should not: set
# ORT_DISABLE_TELEMETRY=0 to allow it. (Also set by models/, export/ and benchmarks/, which load onnxruntime too.)
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from .decode import decode_heatmaps
from .boxes import HogPeopleDetector
from .image import to_bgr_uint8
from .inputs import InputReadError
from .metadata import MetadataError, ModelMetadata
from .openvino_session import BackendUnavailable
from .predictor import DEFAULT_MODELS, DEFAULT_VARIANT, PosePredictor, PoseResult
from .session import ModelError, ModelNotFoundError
from .smoothing import KeypointSmoother
from .tracking import PoseTracker, drop_duplicates, find_poses, find_poses_batch, refine, refine_batch
from .video import VideoFrame, VideoPoses

__version__ = "0.1.0"
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
