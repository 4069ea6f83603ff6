"""benchmarks/decoding.py: the near-the-edge section (encoder-made Gaussians, the zero-padded DARK written there) and
the real-model section (heatmaps taken through the runtime's own pipeline, decoded by every decoder, scored by
``fasterpose_rt.metrics``) on a stand-in model and a tiny COCO file."""
import json

import cv2
import numpy as np
import pytest
from standin import paint_blobs, standin_metadata, write_standin

from benchmarks import decoding
from fasterpose_rt import PosePredictor
from fasterpose_rt.decode import argmax_heatmaps, decode_heatmaps
from fasterpose_rt.metrics import pck
from models.codec import HeatmapCodec

# The stand-in's keypoints renamed so PCK has a torso (left shoulder -> right hip); "left_hip"/"right_hip" are its
# flip pair (green_left / green_right).
TORSO_NAMES = ["left_shoulder", "left_hip", "right_hip", "right_shoulder"]
POINTS = np.array([[40, 30], [30, 60], [50, 60], [40, 90]], np.float64)  # in an 80x120 photo


def test_edge_maps_are_the_training_encoders_targets():
    rng = np.random.default_rng(0)
    maps, centres, normals = decoding.edge_gaussians(rng, 8, 44, 32, 0.5, 1.0)
    codec = HeatmapCodec((128, 176))  # the default model's input: 32x44 heatmaps, sigma 2*32/48
    crop = (centres + 0.5) * 4 - 0.5  # heatmap px -> crop px (stride 4)
    target, _ = codec.encode(crop)
    np.testing.assert_allclose(maps[:, 0], target, atol=1e-5)
    # each centre is in its range from the edge its normal points out of, and >= MARGIN px from the others
    dist = np.stack([centres[:, 0], 31 - centres[:, 0], centres[:, 1], 43 - centres[:, 1]], 1)  # left right top bottom
    side = np.argmax(normals @ np.array([[-1, 1, 0, 0], [0, 0, -1, 1]]), axis=1)
    near = dist[np.arange(8), side]
    assert ((near >= 0.5) & (near < 1.0)).all()
    assert (np.sort(dist, axis=1)[:, 1] >= decoding.MARGIN).all()


def test_zero_padded_dark_is_the_runtime_wherever_its_patch_stays_inside_the_map():
    rng = np.random.default_rng(1)
    hm, _ = decoding.gaussians(rng, 4, 17, 2.0, 0.03)  # 64x48, centres >= 4 px from the border
    peak = argmax_heatmaps(hm)[0]
    inside = decoding.edge_distance(peak, *hm.shape[2:]) >= 8  # radius ceil(3 * 2) + 1 + 1 px of patch
    assert inside.sum() > 10
    ours, runtime = decoding.decode_dark_zero_pad(hm), decode_heatmaps(hm)[0]
    np.testing.assert_allclose(ours[inside], runtime[inside], atol=1e-5)
    assert np.abs(ours - runtime)[~inside].max() > 1e-3  # near the border the padding does matter
    assert decoding.decode_dark_zero_pad(hm, blur_sigma=0) == pytest.approx(decode_heatmaps(hm, blur_sigma=0)[0])


def test_near_the_edge_the_runtime_is_pushed_outwards_and_without_blur_it_is_exact():
    bins = (0.5, 1.0, 1.5, 3.5, 4.0)
    res = decoding.edge_accuracy(np.random.default_rng(2), sizes=((32, 24),), bins=bins, maps=256)
    rows = [res[((32, 24), (lo, hi))] for lo, hi in zip(bins[:-1], bins[1:])]
    dark = [r["DARK"][1] for r in rows]
    assert dark[0] > 0.3 and dark[1] > 0.1  # fast model's maps: about 0.47 and 0.2 hm px outwards
    assert dark[0] > dark[1] > abs(dark[3]) and abs(dark[3]) < 1e-3  # fading with the distance, none 3.5 px in
    for r in rows:
        assert r["DARK σ=0"][0] < 1e-4  # clean Gaussians sampled at pixel centres: exact anywhere
        assert r["DARK"][0] == pytest.approx(abs(r["DARK"][1]), abs=1e-3)  # the error is along the normal
        assert abs(r["argmax"][1]) <= 0.5 and r["quarter"][0] < r["argmax"][0]
    for r in rows[:2]:  # peaks 1 px in: the hybrid drops the blur; zero padding pulls less, the other way
        assert r["DARK σ=0 at 1 px"][0] < 1e-4
        assert -r["DARK"][1] < r["DARK zero-pad"][1] < 0
    assert rows[3]["DARK zero-pad"][0] < 1e-3  # exact-ish away from the edge, as the runtime
    hm, centres = decoding.gaussians(np.random.default_rng(3), 8, 17, 2.0, 0.0)  # 64x48, centres >= 4 px in, clean
    err = np.linalg.norm(decoding.decode_dark_zero_pad(hm) - centres, axis=2)
    assert err.mean() < 2e-3 and err.max() < 0.05


@pytest.fixture(scope="module")
def torso_model(tmp_path_factory):
    """A stand-in (64x96 input, 16x24 heatmaps) whose keypoints have a torso, with box padding 1.1: the integer
    peaks of the tight box's top and bottom joints land 1 heatmap px from the map's edge (rows 1 and 22)."""
    meta = standin_metadata(box_padding=1.1)
    meta.keypoints = list(TORSO_NAMES)
    return write_standin(tmp_path_factory.mktemp("torso") / "torso.onnx", meta=meta)


@pytest.fixture
def dataset(tmp_path):
    """Three 80x120 photos, one stand-in person each (shifted by a fraction of a pixel), labelled where it is
    painted; no bbox: the person is run on the tightest box around its joints."""
    images = tmp_path / "images"
    images.mkdir()
    data = {"images": [], "annotations": [],
            "categories": [{"id": 1, "name": "person", "keypoints": TORSO_NAMES, "skeleton": [[1, 2]]}]}
    for i, shift in enumerate((0.0, 0.7, 1.9), start=1):
        pts = POINTS + [shift, -shift]
        cv2.imwrite(str(images / f"{i}.png"), paint_blobs((120, 80), pts))
        data["images"].append({"id": i, "file_name": f"{i}.png", "width": 80, "height": 120})
        data["annotations"].append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 4,
                                    "keypoints": [v for x, y in pts for v in (x, y, 2)]})
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return ann, images, data


def runtime_keypoints(model, images, data):
    """(N, K, 2): PosePredictor.predict on each photo, one call per person, on the box around its joints."""
    pred = PosePredictor(model, threads=1)
    out = []
    for a in data["annotations"]:
        kp = np.reshape(a["keypoints"], (-1, 3))
        lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
        out.append(pred.predict(cv2.imread(str(images / f"{a['image_id']}.png")), [[*lo, *(hi - lo)]]).keypoints)
    return np.concatenate(out)


def test_real_models_decode_the_runtimes_heatmaps_with_every_decoder(torso_model, dataset, tmp_path, monkeypatch):
    ann, images, data = dataset
    monkeypatch.setattr(decoding, "BATCHES", 1)  # the synthetic sections small: this test is about the real one
    monkeypatch.setattr(decoding, "EDGE_MAPS", 16)
    decoding.main(["--ann", str(ann), "--images", str(images), "--models", str(torso_model), "--rounds", "1",
                   "--threads", "1", "--results-dir", str(tmp_path / "r")])
    result = json.loads((tmp_path / "r" / "decoding.json").read_text())
    (model,) = result["real_models"]["models"]
    assert model["persons"] == 3 and model["heatmap_hw"] == [24, 16] and model["box_padding"] == 1.1
    assert model["joints"] == 12 and model["edge_joints"] == 6  # the top and bottom joint of each person
    assert list(model["decoders"]) == decoding.COMPARED
    gt = np.array([np.reshape(a["keypoints"], (-1, 3))[:, :2] for a in data["annotations"]], np.float64)
    runtime = runtime_keypoints(torso_model, images, data)
    dark = model["decoders"]["DARK"]
    for t in (0.2, 0.1):  # DARK's figures are the runtime's own predictions scored by the runtime's PCK
        assert dark[f"pck@{t:g}"] == pck(runtime, gt, np.ones(gt.shape[:2], bool), TORSO_NAMES, t)[0]
    # a 4x4-pooled Gaussian blob cut by the crop's edge: DARK's replicated border pushes those joints outwards (about
    # 0.24 heatmap px), the unblurred step finds them, the zero-padded blur pulls them inwards
    assert dark["edge_median_outward_px"] > 0.15
    assert abs(model["decoders"]["DARK σ=0"]["edge_median_outward_px"]) < 0.05
    assert abs(model["decoders"]["DARK σ=0 at 1 px"]["edge_median_outward_px"]) < 0.05
    assert model["decoders"]["DARK zero-pad"]["edge_median_outward_px"] < -0.15
    for name, r in model["decoders"].items():
        if name != "DARK":
            lo, hi = r["diff pck@0.2"]
            assert lo <= r["pck@0.2"] - dark["pck@0.2"] <= hi
    assert result["edge"]["maps_per_row"] == 16 and len(result["edge"]["rows"]) == 2 * (len(decoding.EDGE_BINS) - 1)
    md = (tmp_path / "r" / "decoding.md").read_text()
    assert "## Near the edge" in md and "## Real models" in md and "edge PCK@0.1" in md
    assert f"--models {torso_model}" in md  # the command is stamped


def test_the_heatmaps_must_follow_the_runtimes_pipeline(torso_model, dataset, tmp_path, monkeypatch):
    import fasterpose_rt.predictor as predictor_module

    ann, images, _ = dataset
    shifted = lambda hm, blur_sigma=None, edge_peaks="blurred": (  # noqa: E731
        decode_heatmaps(hm, blur_sigma, edge_peaks)[0] + 0.5, decode_heatmaps(hm)[1])
    monkeypatch.setattr(predictor_module, "decode_heatmaps", shifted)  # predict() no longer decodes as DARK does
    with pytest.raises(SystemExit, match="no longer follows the runtime's pipeline"):
        decoding.main(["--ann", str(ann), "--images", str(images), "--models", str(torso_model),
                       "--results-dir", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
