"""The presence head: its graph (export.presence_head), the runtime that reads it (PoseResult.presence,
keep_present, results files), the fit, and the tool on real photos."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch", reason="the exporter (export/, which builds the heads here) needs torch: "
                                    "pip install -e '.[dev]'")

from export.errors import InputError  # noqa: E402
from export.metadata import save_with_metadata  # noqa: E402
from export.presence_head import (FEATURES, earlier_tensor, feature_tensor, fit_logistic,  # noqa: E402
                                  fit_presence_head, with_features, with_head, without_head)
from fasterpose_rt import ModelMetadata, PosePredictor  # noqa: E402
from fasterpose_rt.presence import PRESENCE_KEY, presence_problem  # noqa: E402
from fasterpose_rt.results import ResultsWriter, coco_entries, csv_header  # noqa: E402
from fasterpose_rt.search import keep_present, person_presence  # noqa: E402
from fasterpose_rt.session import ModelError  # noqa: E402
from tests.standin import KEYPOINTS, paint_blobs, set_metadata, standin_metadata, standin_model  # noqa: E402

LSPET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "lspet"
NEEDS_LSPET = pytest.mark.skipif(not (LSPET / "joints.mat").is_file(),
                                 reason=f"LSPET photos not found at {LSPET} (../shared beside the checkout)")
K = len(KEYPOINTS)
BLOCK = {"output": "presence", "kind": "logits", "threshold": 0.5}


def _features(x: np.ndarray, heatmap_logits: np.ndarray) -> np.ndarray:
    """What FEATURES must be for the stand-in: its last convolution reads the normalised input itself, so the
    pooled tensor is the input (N, 3, H, W); then the sorted peak probabilities of the heatmaps (N, K, h, w)."""
    peaks = 1 / (1 + np.exp(-heatmap_logits.max(axis=(2, 3))))
    return np.concatenate([x.mean(axis=(2, 3)), x.max(axis=(2, 3)), -np.sort(-peaks, axis=1)], axis=1)


def _standin_with_head(tmp_path, weight, bias, name="head.onnx"):
    meta = standin_metadata()
    model = with_head(standin_model(meta), weight, bias, logits=True, k=K)
    path = tmp_path / name
    save_with_metadata(model, replace(meta, extra={PRESENCE_KEY: dict(BLOCK)}), path)
    return path, meta


def test_graph_computes_logistic_of_pooled_features_and_comes_out_again(tmp_path):
    import onnxruntime as ort

    meta = standin_metadata()
    plain = standin_model(meta)
    assert feature_tensor(plain) == "image"  # the stand-in's only convolution reads the input
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=6 + K), 0.3
    headed = with_head(plain, weight, bias, logits=True, k=K)
    x = rng.normal(size=(3, 3, meta.input_size[1], meta.input_size[0])).astype(np.float32)
    session = ort.InferenceSession(headed.SerializeToString(), providers=["CPUExecutionProvider"])
    heatmaps, logit = session.run(["heatmaps", "presence"], {"image": x})
    assert logit.shape == (3,)
    np.testing.assert_allclose(logit, _features(x, heatmaps) @ weight + bias, rtol=1e-4, atol=1e-4)
    # fitting's probe gives the same features; the heatmaps are untouched by either
    probe = ort.InferenceSession(with_features(headed, True, K).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(probe.run([FEATURES], {"image": x})[0], _features(x, heatmaps), rtol=1e-5, atol=1e-5)
    original = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(original.run(["heatmaps"], {"image": x})[0], heatmaps)
    # taken out again: the very graph it was added to; added twice: one head, the second's weights
    assert without_head(headed).graph.SerializeToString() == plain.graph.SerializeToString()
    twice = with_head(headed, -weight, 0.0, logits=True, k=K)
    assert [o.name for o in twice.graph.output] == ["heatmaps", "presence"]
    again = ort.InferenceSession(twice.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(again.run(["presence"], {"image": x})[0], -(logit - bias), rtol=1e-4, atol=1e-4)


def _strided_net(k: int = K) -> onnx.ModelProto:
    """image (N, 3, 16, 12) -> Conv stride 2 -> Relu ("r1", (N, 4, 8, 6)) -> Conv 1x1 -> heatmaps (N, k, 8, 6)
    logits: a trunk with one strided convolution before the tensor the heatmaps are made from."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(k, 4, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["heatmaps"])]
    graph = helper.make_graph(nodes, "strided", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                               ["N", 3, 16, 12])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", k, 8, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_head_also_reads_the_input_of_the_last_strided_convolution():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    net = _strided_net()
    assert feature_tensor(net) == "r1" and earlier_tensor(net) == "image"
    assert earlier_tensor(standin_model(standin_metadata())) is None  # no strided convolution: none
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 3, 16, 12)).astype(np.float32)
    traced = onnx.ModelProto()
    traced.CopyFrom(net)
    traced.graph.output.append(helper.make_tensor_value_info("r1", TensorProto.FLOAT, None))
    heatmaps, r1 = ort.InferenceSession(traced.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["heatmaps", "r1"], {"image": x})
    peaks = -np.sort(-1 / (1 + np.exp(-heatmaps.max(axis=(2, 3)))), axis=1)
    expected = np.concatenate([r1.mean(axis=(2, 3)), r1.max(axis=(2, 3)), x.mean(axis=(2, 3)), x.max(axis=(2, 3)),
                               peaks], axis=1)  # (N, 2 * 4 + 2 * 3 + K)
    probe = ort.InferenceSession(with_features(net, True, K).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(probe.run([FEATURES], {"image": x})[0], expected, rtol=1e-5, atol=1e-5)
    weight = rng.normal(size=expected.shape[1])
    headed = ort.InferenceSession(with_head(net, weight, -0.2, True, K).SerializeToString(),
                                  providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(headed.run(["presence"], {"image": x})[0], expected @ weight - 0.2, rtol=1e-4,
                               atol=1e-4)
    assert without_head(with_head(net, weight, 0.0, True, K)).graph.SerializeToString() == \
        net.graph.SerializeToString()


def test_predictor_reports_presence_batched_flipped_and_kept_through_take(tmp_path):
    # weight on the red mean only: a crop over a red blob is "somebody", a dark crop "nobody"
    weight = np.zeros(6 + K)
    weight[0] = 4.0  # normalised red channel mean
    path, _ = _standin_with_head(tmp_path, weight, 0.0)
    photo = paint_blobs((120, 160), [(40, 50)] * K, sigma=12.0)
    boxes = np.array([[10, 20, 60, 60], [100, 60, 50, 50]], np.float32)  # over the blobs; a dark corner
    pred = PosePredictor(path, threads=1)
    assert pred.has_presence
    result = pred.predict(photo, boxes)
    assert result.presence.shape == (2,) and result.presence.dtype == np.float32
    assert result.presence[0] > result.presence[1]
    # the same crops one at a time: batching changes nothing
    for i in range(2):
        np.testing.assert_allclose(pred.predict(photo, boxes[i:i + 1]).presence, result.presence[i:i + 1], atol=1e-6)
    flipped = PosePredictor(path, threads=1, flip_test=True).predict(photo, boxes)
    np.testing.assert_allclose(flipped.presence, result.presence, atol=1e-5)  # pooled means: mirror-blind
    assert result.take([1]).presence.tolist() == [result.presence[1]]
    # keep_present reads the head, not the joints
    np.testing.assert_array_equal(person_presence(result), result.presence.astype(np.float64))
    between = float(result.presence.mean())
    assert len(keep_present(result, between)) == 1 and keep_present(result, between).presence[0] == result.presence[0]
    assert len(keep_present(result, 0.0)) == 2


def test_results_files_carry_presence(tmp_path):
    weight = np.zeros(6 + K)
    path, _ = _standin_with_head(tmp_path, weight, 1.0)  # sigmoid(1) for every crop
    pred = PosePredictor(path, threads=1)
    result = pred.predict(paint_blobs((80, 80), [(40, 40)] * K), np.array([[10, 10, 60, 60]]))
    entry = coco_entries(result, 1, "a.jpg")[0]
    assert entry["presence"] == round(1 / (1 + np.exp(-1.0)), 3)
    assert csv_header(pred.keypoint_names, presence=True)[-1] == "presence"
    out = tmp_path / "r.csv"
    writer = ResultsWriter(out, fmt="csv", keypoint_names=pred.keypoint_names, presence=True)
    writer.add(coco_entries(result, 1, "a.jpg"))
    writer.close()
    header, row = out.read_text().splitlines()
    assert header.split(",")[-1] == "presence" and float(row.split(",")[-1]) == entry["presence"]
    assert len(header.split(",")) == len(row.split(","))


def test_a_model_without_head_has_no_presence(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    result = pred.predict(paint_blobs((80, 80), [(40, 40)] * K), np.array([[10, 10, 60, 60]]))
    assert not pred.has_presence and result.presence is None
    assert "presence" not in coco_entries(result, 1, "a.jpg")[0]


@pytest.mark.parametrize("block, message", [
    ({"output": "elsewhere"}, "presence output 'elsewhere' the graph does not have"),
    ({"output": "presence", "kind": "odds"}, "presence.kind"),
    ({"output": "presence", "threshold": 1.5}, "presence.threshold"),
    ("yes", "presence must be an object"),
])
def test_broken_presence_blocks_are_refused_by_name(tmp_path, block, message):
    meta = standin_metadata()
    text = json.loads(meta.to_json())
    text[PRESENCE_KEY] = block
    path = tmp_path / "bad.onnx"
    onnx.save(set_metadata(with_head(standin_model(meta), np.zeros(6 + K), 0.0, True, K), json.dumps(text)), str(path))
    with pytest.raises(ModelError, match=message):
        PosePredictor(path, threads=1)


@pytest.mark.parametrize("number", [np.float32(0.3), np.float16(0.3), np.longdouble(0.3), np.float64(0.3)],
                         ids=lambda n: type(n).__name__)
def test_a_threshold_of_numpys_is_a_number(number):
    """A block built in Python (``fit_presence_head(threshold=np.float32(0.3))``) is as sound as one read from JSON,
    as numpy's numbers are everywhere else in the API (metadata.is_box_padding); float32 was refused."""
    block = {**BLOCK, "threshold": number}
    assert presence_problem(block) is None
    meta = json.loads(standin_metadata().to_json())
    assert ModelMetadata.from_dict({**meta, PRESENCE_KEY: block}).extra[PRESENCE_KEY]["threshold"] == number


@pytest.mark.parametrize("value", [True, np.True_, "0.3", np.float32("nan"), np.float64("inf"), np.int64(1),
                                   10 ** 400], ids=["bool", "numpy-bool", "str", "nan", "inf", "one", "huge-int"])
def test_a_threshold_that_is_no_chance_stays_refused(value):
    assert "presence.threshold must be a number in (0, 1)" in presence_problem({**BLOCK, "threshold": value})


def test_fit_logistic_reaches_the_penalised_optimum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = (x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + 0.3 + rng.normal(size=400) > 0).astype(float)
    w = rng.uniform(0.5, 2.0, size=400)
    coef, bias = fit_logistic(x, y, w, l2=3.0)
    p = 1 / (1 + np.exp(-(x @ coef + bias)))
    gradient = np.append(x.T @ (w * (p - y)) + 3.0 * coef, (w * (p - y)).sum())
    assert np.abs(gradient).max() < 1e-6  # the optimum: the penalised loss's gradient vanishes
    assert coef[0] > 1 and coef[1] < -0.4 and abs(coef[2]) < 0.3


def test_cross_fitted_shares_count_only_the_crops_a_head_was_fitted_to_read():
    """One picture of nobody (photo 0): the head fitted on the odd photos never saw nobody, so the even photos'
    crops are not read at all; their rows had been recorded as "not a person" (0.5 for persons called every time)."""
    from export.presence_head import _cross_fitted

    rng = np.random.default_rng(0)
    features = {"searched persons": rng.normal(3, 0.5, (4, 3)), "persons in their boxes": rng.normal(3, 0.5, (4, 3)),
                "close-ups": np.zeros((0, 3)), "photos of nobody": rng.normal(-3, 0.5, (4, 3))}
    photos = {"searched persons": np.arange(4), "persons in their boxes": np.arange(4),
              "close-ups": np.zeros(0, np.int64), "photos of nobody": np.zeros(4, np.int64)}
    said = []
    got = _cross_fitted(features, photos, 1.0, 0.5, said.append)
    assert got["persons in their boxes"] == {"crops": 4, "counted": 2, "called_a_person": 1.0}
    assert got["searched persons"]["called_a_person"] == 1.0
    assert got["photos of nobody"] == {"crops": 4, "counted": 0, "called_a_person": None}
    assert got["close-ups"]["called_a_person"] is None
    assert len(said) == 1 and "photos of nobody" in said[0] and "even number are not counted" in said[0]
    photos["photos of nobody"] = np.arange(4)  # nobody on both sides: every crop read by the other half's head
    said.clear()
    got = _cross_fitted(features, photos, 1.0, 0.5, said.append)
    assert not said and got["photos of nobody"] == {"crops": 4, "counted": 4, "called_a_person": 0.0}
    assert got["persons in their boxes"]["counted"] == 4


def test_a_file_listing_the_keypoints_in_another_order_is_matched_by_name(tmp_path, standin_path):
    from tests.standin import KEYPOINTS

    ann = tmp_path / "ann.json"
    data = {"images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9],
                             "keypoints": [1, 1, 2] * 4}],
            "categories": [{"id": 1, "name": "person", "keypoints": KEYPOINTS[::-1]}]}
    ann.write_text(json.dumps(data))
    said = []
    with pytest.raises(InputError, match="1 photos hold one annotated person"):  # past the keypoints: too few photos
        fit_presence_head(standin_path, ann, tmp_path, negatives=[tmp_path], out_path=tmp_path / "o.onnx",
                          log=said.append)
    assert any("another order; matched by name" in s for s in said)
    data["categories"][0]["keypoints"] = KEYPOINTS[:3]
    data["annotations"][0]["keypoints"] = [1, 1, 2] * 3
    ann.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"\(blue\)"):
        fit_presence_head(standin_path, ann, tmp_path, negatives=[tmp_path], out_path=tmp_path / "o.onnx")
    assert not (tmp_path / "o.onnx").exists()


def test_quantize_refuses_a_model_with_a_head(tmp_path):
    from export.quantize import quantize_file

    path, _ = _standin_with_head(tmp_path, np.zeros(6 + K), 0.0)
    with pytest.raises(InputError, match="presence head"):
        quantize_file(path, calibration=tmp_path / "unused.json")


@NEEDS_LSPET
def test_tool_fits_a_head_on_real_photos_that_tells_persons_from_nobody(tmp_path, lspet40):
    from fasterpose_rt import DEFAULT_MODELS
    from fasterpose_rt.inputs import read_image

    source = DEFAULT_MODELS["fast"]
    if not source.is_file():
        pytest.skip("the bundled fast model is not in this checkout")
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    rng = np.random.default_rng(0)
    import cv2
    for i in range(3):  # smooth colour fields: textures without anyone in them
        field = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(nobody / f"field{i}.png"), field)
    (nobody / "broken.jpg").write_bytes(b"not a photo")  # skipped, not fatal
    out = tmp_path / "with_presence.onnx"
    result = fit_presence_head(source, lspet40, LSPET / "images", negatives=[nobody], out_path=out, photos=40,
                               cuts=3, threads=1)
    block = result.block
    assert block["crops"]["persons in their boxes"] == 40 and block["crops"]["photos of nobody"] >= 3
    assert set(block["cross_fitted"]) == {"searched persons", "persons in their boxes", "close-ups", "photos of nobody"}
    pred = PosePredictor(out, threads=1)
    plain = PosePredictor(source, threads=1)
    photo = read_image(LSPET / "images" / "im00001.jpg")
    box = json.loads(Path(lspet40).read_text())["annotations"][0]["bbox"]
    a, b = pred.predict(photo, [box]), plain.predict(photo, [box])
    np.testing.assert_array_equal(a.keypoints, b.keypoints)  # the heatmaps are the network's, unchanged
    assert a.presence[0] > 0.5
    assert pred.metadata.extra[PRESENCE_KEY]["source"] == Path(lspet40).name
    earlier = earlier_tensor(onnx.load(str(source)))  # the stage before the last: it reads that layer too
    assert earlier and "layer2" in earlier and earlier in pred.metadata.extra[PRESENCE_KEY]["features"]
    with pytest.raises(InputError, match="one annotated person"):
        fit_presence_head(source, _coco_without_persons(tmp_path, lspet40), LSPET / "images", negatives=[nobody],
                          out_path=out)
    with pytest.raises(InputError, match="give --negatives"):
        fit_presence_head(source, lspet40, LSPET / "images", out_path=out)


def _coco_without_persons(tmp_path, ann) -> Path:
    data = json.loads(Path(ann).read_text())
    data["annotations"] = []
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(data))
    return path


def test_without_boxes_a_model_with_a_head_reports_only_persons_who_are_there(tmp_path, standin_path):
    from fasterpose_rt import find_poses
    from fasterpose_rt.search import DEFAULT_MIN_PRESENCE, min_presence_for

    weight = np.zeros(6 + K)
    weight[0] = 4.0  # the red mean: a red photo is "somebody", a dark one "nobody"
    path, _ = _standin_with_head(tmp_path, weight, 0.0)
    headed, plain = PosePredictor(path, threads=1), PosePredictor(standin_path, threads=1)
    # by default the threshold the head records (BLOCK: 0.5); a head that records none: DEFAULT_MIN_PRESENCE
    assert min_presence_for(headed) == BLOCK["threshold"] == 0.5 and min_presence_for(plain) == 0.0
    no_threshold = {key: v for key, v in BLOCK.items() if key != "threshold"}
    unrecorded = tmp_path / "unrecorded.onnx"
    save_with_metadata(with_head(standin_model(standin_metadata()), weight, 0.0, logits=True, k=K),
                       replace(standin_metadata(), extra={PRESENCE_KEY: no_threshold}), unrecorded)
    assert min_presence_for(PosePredictor(unrecorded, threads=1)) == DEFAULT_MIN_PRESENCE == 0.3
    assert min_presence_for(headed, 0) == 0.0 and min_presence_for(plain, 0.3) == 0.3
    with pytest.raises(ValueError, match="min_presence"):
        min_presence_for(headed, 1.5)
    dark = np.zeros((90, 120, 3), np.uint8)
    red = paint_blobs((90, 120), [(60, 45)] * K, sigma=40.0)
    for search in (True, False):
        assert len(find_poses(headed, dark, search=search)) == 0  # the default: nobody there, nobody reported
        assert len(find_poses(headed, dark, search=search, min_presence=0)) == 1  # asked for every guess
        assert len(find_poses(plain, dark, search=search)) == 1  # no head: every guess, as before
        found = find_poses(headed, red, search=search)
        assert len(found) == 1 and found.presence[0] >= 0.5
    # given boxes are never second-guessed
    assert len(find_poses(headed, dark, boxes=np.array([[0, 0, 60, 60]]))) == 1


def test_the_tracker_reports_a_person_the_head_still_sees_whose_joints_are_too_unsure_to_box(tmp_path):
    from fasterpose_rt import PoseTracker
    from tests.standin import STANDIN_POINTS

    weight = np.zeros(6 + K)
    weight[0] = 4.0  # the red mean: a red-washed crop is "somebody", a dark one "nobody"
    path, _ = _standin_with_head(tmp_path, weight, 3.0)
    pred = PosePredictor(path, threads=1)

    def frame(blobs: float, red_wash: int):
        photo = paint_blobs((120, 80), STANDIN_POINTS, sigma=5.0, amplitude=blobs)
        photo[:, :, 2] = np.maximum(photo[:, :, 2], red_wash)
        return photo

    seen, unsure, dark = frame(1.0, 100), frame(0.02, 100), frame(0.0, 0)  # unsure: only red scores >= 0.1
    for keep_presence, followed_on in ((0.3, True), (None, False)):
        tracker = PoseTracker(pred, search=False, keep_presence=keep_presence)
        first = tracker(seen)
        assert len(first) == 1 and first.presence[0] > 0.5 and len(tracker.boxes) == 1
        box = tracker.boxes.copy()
        second = tracker(unsure)  # three of four joints under 0.1: no box can be made from them
        # reported either way, as a photo's search would report it: the same person, in the box it was run on
        assert len(second) == 1 and second.track_ids[0] == first.track_ids[0] and second.presence[0] > 0.5
        np.testing.assert_array_equal(second.boxes, box)
        if followed_on:  # keep_presence: followed on in that box
            np.testing.assert_array_equal(tracker.boxes, box)
        else:  # lost: the next frame acquires afresh
            assert len(tracker.boxes) == 0
            again = tracker(seen)  # acquired on the whole frame: re-found where it was last reported, same id
            assert len(again) == 1 and again.track_ids[0] == first.track_ids[0] and len(tracker.boxes) == 1
        assert len(tracker(dark)) == 0 and len(tracker.boxes) == 0  # the head sees nobody: nobody, lost


def test_presence_follows_its_person_when_results_are_joined_or_cut():
    from fasterpose_rt.predictor import PoseResult
    from fasterpose_rt.tracking import _concat

    def result(n, start):
        return PoseResult(np.zeros((n, K, 2), np.float32), np.full((n, K), 0.5, np.float32),
                          np.tile(np.float32([0, 0, 10, 10]), (n, 1)), list(KEYPOINTS),
                          presence=np.arange(start, start + n, dtype=np.float32) / 10)

    joined = _concat(result(2, 1), result(1, 5))  # a due search's newcomer joins the followed persons
    assert joined.presence.tolist() == pytest.approx([0.1, 0.2, 0.5])
    assert joined.take([2, 0]).presence.tolist() == pytest.approx([0.5, 0.1])
    assert _concat(result(1, 1), replace(result(1, 5), presence=None)).presence is None  # not known for all: none
    assert joined.rescaled(2.0).presence is joined.presence


def test_quantize_refuses_keypoints_without_a_torso_before_quantising(tmp_path, standin_path):
    """review s63: such a model was quantised whole, then refused at the check ('cannot verify accuracy')."""
    from export.quantize import quantize_file

    with pytest.raises(InputError, match=r"the int8 model is verified by PCK@0.2, which needs keypoints named "
                                         r"left/right_shoulder and left/right_hip \(or LShoulder"):
        quantize_file(standin_path, calibration=tmp_path / "unused.json")
