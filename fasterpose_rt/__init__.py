"""fasterpose_rt: torch-free CPU runtime for FasterPose models (numpy + onnxruntime + OpenCV)."""
from .decode import decode_heatmaps
from .image import to_bgr_uint8
from .metadata import MetadataError, ModelMetadata
from .predictor import DEFAULT_MODELS, DEFAULT_VARIANT, PosePredictor, PoseResult
from .session import ModelError, ModelNotFoundError
from .smoothing import KeypointSmoother
from .tracking import PoseTracker, drop_duplicates, refine

__version__ = "0.1.0"
__all__ = [
    "PosePredictor",
    "PoseResult",
    "PoseTracker",
    "KeypointSmoother",
    "refine",
    "drop_duplicates",
    "decode_heatmaps",
    "to_bgr_uint8",
    "ModelError",
    "ModelNotFoundError",
    "MetadataError",
    "ModelMetadata",
    "DEFAULT_MODELS",
    "DEFAULT_VARIANT",
    "__version__",
]
