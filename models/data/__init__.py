"""Datasets: COCO-format keypoint files (the only format training reads) and converters into it."""
