import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as fasterpose_rt does: no telemetry from onnxruntime
