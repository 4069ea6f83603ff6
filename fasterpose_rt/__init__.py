"""fasterpose_rt: torch-free CPU runtime for FasterPose models (numpy + onnxruntime + OpenCV)."""
from .decode import decode_heatmaps

__version__ = "0.1.0"
__all__ = ["decode_heatmaps", "__version__"]
