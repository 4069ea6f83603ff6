"""benchmarks/scale_tta.py: its baseline is the runtime's flip-tested prediction, and a scaled view warped back
into the reference frame finds the keypoints the runtime finds at that padding.

Real parts: the bundled int8 model and 40 real LSPET training photos (skipped when ../shared is absent).
"""

import cv2
import numpy as np
import pytest

from benchmarks.orientation import Views, load_persons
from benchmarks.scale_tta import SCALES, TTA_SETS, main
from conftest import LSPET, NEEDS_LSPET, run_lspet_benchmark
from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.geometry import box_centers_and_sizes, crop_affine
from fasterpose_rt.metrics import pck

INT8 = DEFAULT_MODELS["default"]
pytestmark = [
    NEEDS_LSPET,
    pytest.mark.skipif(not INT8.is_file(), reason="bundled int8 model absent"),
]


def runtime_keypoints(ann, **options):
    """Keypoints (N, K, 2) of PosePredictor(INT8, flip_test=True, **options), one predict() per labelled box."""
    _, _, _, boxes, files = load_persons(ann)
    pred = PosePredictor(INT8, threads=1, flip_test=True, **options)
    return np.concatenate([pred.predict(cv2.imread(str(LSPET / "images" / f)), [b]).keypoints
                           for f, b in zip(files, boxes)])


def test_the_baseline_is_the_runtimes_flip_test_and_every_variant_is_reported(lspet40, tmp_path):
    result = run_lspet_benchmark(main, "scale_tta", lspet40, tmp_path)
    names, gt, vis, _, _ = load_persons(lspet40)
    baseline = [v for k, v in result.items() if k.endswith("(the baseline)")]
    assert len(baseline) == 1
    assert baseline[0]["pck@0.2"] == pytest.approx(pck(runtime_keypoints(lspet40), gt, vis, names)[0], abs=1e-9)
    variants = [k for k, v in result.items() if isinstance(v, dict) and "diff_interval" in v]
    assert len(variants) == 1 + (len(SCALES) - 1) + len(TTA_SETS) + 1
    assert result["persons"] == 40 and result["box_padding"] == PosePredictor(INT8).metadata.box_padding


def test_a_scaled_view_warped_back_finds_what_the_runtime_finds_at_that_padding(lspet40):
    names, gt, vis, boxes, files = load_persons(lspet40)
    pred = PosePredictor(INT8, threads=1, flip_test=True)
    meta = pred.metadata
    centers, sizes = box_centers_and_sizes(boxes, meta.input_size, meta.box_padding)
    reference = crop_affine(centers, sizes, meta.input_size)
    scaled = crop_affine(centers, sizes * 1.1, meta.input_size)
    views = Views(pred, LSPET / "images", files)
    xy, _ = views.keypoints(views.heatmaps(scaled[:, None], reference)[0], reference)
    direct = runtime_keypoints(lspet40, box_padding=meta.box_padding * 1.1)
    heatmap_width = views.heatmaps(reference[:, None], reference).shape[-1]
    px = sizes[:, 0] / heatmap_width  # one heatmap pixel of the reference crop, in photo px, per person
    err = np.linalg.norm(xy - direct, axis=-1) / px[:, None]
    assert np.median(err) < 0.1 and np.mean(err < 1.0) > 0.97  # bilinear warping of the maps moves peaks little
