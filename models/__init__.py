"""PyTorch side of FasterPose: architectures, losses, heatmap codec, datasets and training.

Used from a checkout (``python -m models.train ...``); never installed into site-packages.
"""
from .backbones import ResNet
from .pose import PoseNet, build_model, list_models, register

__all__ = ["ResNet", "PoseNet", "build_model", "list_models", "register"]
