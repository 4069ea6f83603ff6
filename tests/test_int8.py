"""int8 quantisation (export/quantize.py, export/crops.py): calibration crops from the runtime's preprocessing,
QDQ per-channel graph, metadata, held-out verification, the PCK gate (refusal writes nothing), command lines.

A random-weights fasterpose_r18 (COCO-17 names, 64x64 input) exported once per session stands in for a trained
model: its accuracy means nothing, so passing runs use a permissive gate and the refusal path is driven by a
stubbed verification. Photos: ../shared/datasets/coco-mini (skipped when absent).
"""
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import export.quantize as quantize_mod
from export import InputError, VerificationError
from export.crops import list_persons, load_crops
from export.quantize import Agreement, Recipe, compare_models, default_int8_path, heatmap_convs, quantize_file
from fasterpose_rt import PosePredictor
from fasterpose_rt.preprocess import check_boxes, crop_transforms
from keypoint_order import without_keypoint, write_reversed

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COCO_MINI = SHARED / "datasets" / "coco-mini"
ANN = COCO_MINI / "person_keypoints.json"
needs_photos = pytest.mark.skipif(not ANN.is_file(), reason=f"test photos not found: {ANN} (../shared is absent)")
SIZE = (64, 64)  # (w, h): keeps export, calibration and verification fast


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    from export import export_from_args

    path = tmp_path_factory.mktemp("int8") / "tiny.onnx"
    export_from_args(path, arch="fasterpose_r18", num_keypoints=17, input_size=SIZE)
    return path


@pytest.fixture(scope="module")
def quantized(float_model):
    """(result, float path): calibrated on 8 of coco-mini's 14 persons, verified on the other 6."""
    if not ANN.is_file():
        pytest.skip(f"test photos not found: {ANN}")
    out = float_model.with_name("tiny_q.onnx")
    result = quantize_file(float_model, out, calibration=ANN, calibration_size=8, max_pck_drop=100.0)
    return result, float_model


def _meta(model):
    return PosePredictor(model, threads=1).metadata


def test_heatmap_convs_finds_the_conv_behind_depth_to_space(float_model):
    model = onnx.load(str(float_model))
    names = heatmap_convs(model)
    assert len(names) == 1
    node = next(n for n in model.graph.node if n.name == names[0])
    consumer = next(n for n in model.graph.node if node.output[0] in n.input)
    assert node.op_type == "Conv" and consumer.op_type == "DepthToSpace"


@needs_photos
def test_coco_crops_are_the_runtime_crops_with_ground_truth(float_model):
    meta = _meta(float_model)
    persons = list_persons(ANN, meta.keypoints)
    assert len(persons) == 14 and persons.keypoints.shape == (14, 17, 3)
    crops = load_crops(persons, [3, 0], meta)
    w, h = meta.input_size
    assert crops.crops.shape == (2, h, w, 3) and crops.crops.dtype == np.uint8
    np.testing.assert_allclose(crops.affines, crop_transforms(persons.boxes[[3, 0]], meta))
    np.testing.assert_array_equal(crops.keypoints, persons.keypoints[[3, 0], :, :2])
    x = next(crops.batches(meta))
    assert x.shape == (2, 3, h, w) and x.dtype == np.float32


@needs_photos
def test_coco_ground_truth_is_matched_to_the_models_keypoints_by_name(float_model, tmp_path):
    import json

    names = list(_meta(float_model).keypoints)
    said = []
    plain = list_persons(ANN, names, warn=said.append)
    rev = tmp_path / "rev.json"
    reordered = list_persons(write_reversed(ANN, rev), names, COCO_MINI / "images", warn=said.append)
    np.testing.assert_array_equal(reordered.keypoints, plain.keypoints)  # by position: every joint elsewhere
    assert said == [f"{rev} lists the model's keypoints in another order; matched by name"]
    (tmp_path / "no_nose.json").write_text(json.dumps(without_keypoint(json.loads(ANN.read_text()), "nose")))
    short = list_persons(tmp_path / "no_nose.json", names, COCO_MINI / "images")
    assert short.keypoints is None and "(nose)" in short.note  # quantize then measures against the float model


@needs_photos
def test_folder_gives_one_whole_photo_crop_per_photo_without_ground_truth(float_model):
    meta = _meta(float_model)
    persons = list_persons(COCO_MINI / "images", meta.keypoints)
    assert len(persons) == 4 and persons.keypoints is None
    crops = load_crops(persons, [0], meta)
    import cv2

    image = cv2.imread(str(persons.paths[0]))
    np.testing.assert_allclose(crops.affines[0], crop_transforms(check_boxes(None, image.shape), meta)[0])
    assert crops.keypoints is None


def test_bad_sources_and_arguments_are_input_errors(float_model, tmp_path):
    with pytest.raises(InputError, match="not found"):
        quantize_file(float_model, calibration=tmp_path / "missing")
    with pytest.raises(InputError, match="calibration data"):
        quantize_file(float_model)
    with pytest.raises(InputError, match="overwrite"):
        quantize_file(float_model, float_model, calibration=tmp_path)
    with pytest.raises(InputError, match="activations"):
        quantize_file(float_model, calibration=tmp_path, recipe=Recipe(activations="int4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no photos"):
        quantize_file(float_model, tmp_path / "q.onnx", calibration=tmp_path / "empty")
    assert not (tmp_path / "q.onnx").exists()


@needs_photos
def test_a_calibration_that_leaves_nobody_to_verify_names_options_there_are(float_model, tmp_path):
    """review s66: python -m export --int8 was told to "give an evaluation file", which only export.quantize takes."""
    with pytest.raises(InputError, match=r"has 14 persons, all used for calibration: none is left to verify on; give "
                                         r"a --calibration-size under 14, or an evaluation file \(python -m "
                                         r"export.quantize --eval, after the float export\)"):
        quantize_file(float_model, tmp_path / "q.onnx", calibration=ANN, calibration_size=14)


@needs_photos
def test_calibration_ranges_cover_every_crop(float_model):
    """onnxruntime cleared its collected batches every CalibMaxIntermediateOutputs without taking their ranges
    (onnxruntime#18893): with that option set, only the last few batches calibrated the model (review s58: 8 of 200
    crops), and a batch count divisible by 4 failed with "No data is collected"."""
    from export.crops import CropSet
    from export.quantize import quantize_model

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (64, SIZE[1], SIZE[0], 3), dtype=np.uint8)  # 4 batches of 16: the old failure
    bright = np.full((16, SIZE[1], SIZE[0], 3), 255, np.uint8)

    def input_scale(crops):
        n = len(crops)
        model = quantize_model(float_model, CropSet(crops, np.zeros((n, 2, 3)), None, None, "test"),
                               _meta(float_model))
        first = model.graph.input[0].name
        node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == first)
        return float(onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == node.input[1])))

    # the bright batch first: cleared before its range counted, it left the scale the dark crops alone give
    assert input_scale(np.concatenate([bright, dark])) > 2 * input_scale(dark)


def test_probability_heatmaps_are_clipped_as_the_runtime_clips_them():
    """A model trained with MSE overshoots 1 near its peaks: the runtime clips to [0, 1] before decoding, export's
    own measuring (int8 check, export.padding, export.edge_peaks) decoded unclipped (review s61)."""
    from types import SimpleNamespace

    from export.crops import CropSet, crop_keypoints_each
    from fasterpose_rt.decode import decode_heatmaps
    from fasterpose_rt.metadata import ModelMetadata

    yy, xx = np.mgrid[0:16, 0:12]
    peak = 1.25 * np.exp(-((xx - 5.3) ** 2 + (yy - 7.6) ** 2) / (2 * 1.5 ** 2))  # overshoots 1 at its top
    hm = np.stack([peak, peak[::-1]])[None].astype(np.float32)  # (1, K=2, 16, 12)
    session = SimpleNamespace(get_inputs=lambda: [SimpleNamespace(name="input")], run=lambda names, feed: [hm])
    meta = ModelMetadata(input_size=(48, 64), keypoints=["a", "b"], skeleton=[], flip_pairs=[], output="probabilities")
    crops = CropSet(np.zeros((1, 64, 48, 3), np.uint8), np.zeros((1, 2, 3)), None, None, "test")
    got, shape = crop_keypoints_each(session, crops, meta, ["blurred"])
    assert shape == (16, 12)
    np.testing.assert_allclose(got["blurred"], decode_heatmaps(np.clip(hm, 0, 1))[0], atol=1e-6)
    assert np.abs(got["blurred"] - decode_heatmaps(hm)[0]).max() > 1e-3  # the premise: clipping moves them


def test_int8_graph_metadata_and_runtime_loading(quantized):
    result, float_path = quantized
    assert result.path.is_file() and result.calibration_crops == 8
    model = onnx.load(str(result.path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    inits = {t.name: t for t in model.graph.initializer}
    # Per-channel weights: a weight DequantizeLinear with one scale per output channel, int8 values.
    weight_dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
                 and inits[n.input[0]].data_type == onnx.TensorProto.INT8 and len(inits[n.input[0]].dims) == 4]
    assert weight_dq and all(len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1 for n in weight_dq)
    head = heatmap_convs(onnx.load(str(float_path)))[0]
    head_node = next(n for n in model.graph.node if n.name == head)
    assert head_node.input[1] in inits and inits[head_node.input[1]].data_type == onnx.TensorProto.FLOAT

    f_meta, q_meta = _meta(float_path), _meta(result.path)
    q_extra = dict(q_meta.extra)
    quant = q_extra.pop("quantization")
    assert q_extra == f_meta.extra and q_meta.keypoints == f_meta.keypoints
    assert q_meta.input_size == f_meta.input_size and q_meta.output == f_meta.output
    assert quant["recipe"]["per_channel"] and quant["recipe"]["format"] == "QDQ"
    assert quant["calibration"] == {**quant["calibration"], "source": ANN.name, "crops": 8}
    assert quant["verification"]["crops"] == 6  # the 6 persons not calibrated on
    assert quant["verification"]["reference"] == "ground truth"

    image = np.full((80, 60, 3), 127, np.uint8)
    res = PosePredictor(result.path, threads=1).predict(image, [[5, 5, 40, 60], [0, 0, 30, 30]])
    assert res.keypoints.shape == (2, 17, 2) and np.isfinite(res.keypoints).all()


@needs_photos
def test_identical_models_agree_exactly(float_model):
    meta = _meta(float_model)
    crops = load_crops(list_persons(ANN, meta.keypoints), range(6), meta)
    a = compare_models(float_model, float_model, crops, threads=1)
    assert a.crops == 6 and a.mean_px == 0 and a.moved == 0 and a.pck_drop == 0
    assert a.reference == "ground truth" and a.joints > 0


def _fake_agreement(drop_points, reference="ground truth"):
    def fake(float_path, int8_path, crops, threads=None):
        return Agreement(len(crops), 0.3, 0.6, 0.02, 0.80, 0.80 - drop_points / 100, 100, reference, crops.source)
    return fake


@needs_photos
@pytest.mark.parametrize("drop, allowed, written", [(1.5, 1.0, False), (0.5, 1.0, True), (float("nan"), 1.0, False)])
def test_pck_gate(float_model, tmp_path, monkeypatch, drop, allowed, written):
    monkeypatch.setattr(quantize_mod, "compare_models", _fake_agreement(drop))
    out = tmp_path / "gate.onnx"
    if written:
        result = quantize_file(float_model, out, calibration=ANN, calibration_size=4, max_pck_drop=allowed)
        assert result.agreement.pck_drop == pytest.approx(drop)
        assert _meta(out).extra["quantization"]["verification"]["pck_int8"] == pytest.approx(0.8 - drop / 100)
    else:
        with pytest.raises(VerificationError, match="refused"):
            quantize_file(float_model, out, calibration=ANN, calibration_size=4, max_pck_drop=allowed)
    assert out.exists() == written
    assert [p.name for p in tmp_path.iterdir() if p.name != out.name] == []  # no temp file left behind


@needs_photos
def test_folder_calibration_verifies_against_float_keypoints(float_model, tmp_path):
    result = quantize_file(float_model, tmp_path / "f.onnx", calibration=COCO_MINI / "images", calibration_size=2,
                           max_pck_drop=100.0)
    a = result.agreement
    assert a.reference == "float keypoints" and a.crops == 2 and a.pck_float == 1.0


def test_default_int8_path():
    assert default_int8_path("a/fasterpose_default.onnx") == Path("a/fasterpose_default_int8.onnx")


@needs_photos
def test_quantize_cli_exit_codes(float_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli.onnx"
    base = ["--model", str(float_model), "--out", str(out), "--calibration-size", "4"]
    with pytest.raises(SystemExit) as e:
        quantize_mod.main(base + ["--calibration", str(tmp_path / "nowhere")])
    assert e.value.code == 2 and "not found" in capsys.readouterr().err
    monkeypatch.setattr(quantize_mod, "compare_models", _fake_agreement(3.0))
    with pytest.raises(SystemExit) as e:
        quantize_mod.main(base + ["--calibration", str(ANN)])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "refused" in err and "Traceback" not in err and not out.exists()
    monkeypatch.setattr(quantize_mod, "compare_models", _fake_agreement(0.0))
    with pytest.raises(SystemExit) as e:
        quantize_mod.main(base + ["--calibration", str(ANN)])
    assert e.value.code == 0 and out.is_file() and "int8 QDQ" in capsys.readouterr().out


def test_export_int8_flags_go_together(tmp_path):
    from clirunner import invoke

    from export.__main__ import main

    out = tmp_path / "m.onnx"
    base = ["--arch", "fasterpose_r18", "--num-keypoints", "17", "--input-size", "64x64", "--out", str(out)]
    for extra in (["--int8"], ["--calibration", str(tmp_path)]):
        res = invoke(main, base + extra)
        assert res.exit_code == 2 and "--calibration" in res.output and not out.exists()
    # what --int8 reads and writes is checked before the float model is written (it was after: review s59)
    (tmp_path / "ann.json").write_text("{}")
    (tmp_path / "m_int8.onnx").mkdir()
    for extra, message in ((["--calibration", str(tmp_path / "none")], "no such file or folder"),
                           (["--calibration", str(tmp_path / "ann.json")], "its photos folder"),
                           (["--calibration", str(tmp_path)], "m_int8.onnx: it is a folder")):
        res = invoke(main, base + ["--int8"] + extra)
        assert res.exit_code == 2 and message in res.output and not out.exists(), res.output
    # the float --out naming the calibration file replaced it before int8 read it (review s61)
    (tmp_path / "images").mkdir()
    res = invoke(main, base[:-1] + [str(tmp_path / "ann.json"), "--int8", "--calibration", str(tmp_path / "ann.json")])
    assert res.exit_code == 2 and "it is the --calibration file" in res.output, res.output
    assert (tmp_path / "ann.json").read_text() == "{}"


@needs_photos
def test_export_int8_writes_float_then_int8(tmp_path):
    from clirunner import invoke

    from export.__main__ import main

    out = tmp_path / "m.onnx"
    res = invoke(main, ["--arch", "fasterpose_r18", "--num-keypoints", "17", "--input-size", "64x64",
                                    "--out", str(out), "--int8", "--calibration", str(ANN),
                                    "--calibration-size", "8", "--max-pck-drop", "100"])
    assert res.exit_code == 0, res.output
    q = tmp_path / "m_int8.onnx"
    assert out.is_file() and q.is_file() and "int8 QDQ" in res.output
    quant = _meta(q).extra["quantization"]
    assert quant["calibration"]["crops"] == 8 and quant["float_model"]["file"] == "m.onnx"


@needs_photos
def test_eval_file_photos_default_to_the_calibration_photos(float_model, tmp_path):
    ann = tmp_path / "val.json"  # no images/ folder beside it
    ann.write_bytes(ANN.read_bytes())
    # onnxruntime writes <model>-inferred.onnx beside the model it quantises and removes it: a user's file of that
    # name was lost (review s59)
    neighbour = Path(float_model).with_name(Path(float_model).stem + "-inferred.onnx")
    neighbour.write_text("notes")
    result = quantize_file(float_model, tmp_path / "e.onnx", calibration=ANN, calibration_images=COCO_MINI / "images",
                           calibration_size=2, eval_file=ann, verify_size=3, max_pck_drop=100.0)
    assert neighbour.read_text() == "notes"
    neighbour.unlink()
    assert result.agreement.crops == 3 and result.agreement.reference == "ground truth"
    assert _meta(result.path).extra["quantization"]["verification"]["source"] == "val.json"


@needs_photos
def test_a_float_models_score_table_does_not_pass_to_its_int8_build(float_model, tmp_path):
    """The table says what the float model's scores mean; the int8 build's scores differ, so it must be measured
    again (python -m export.score_calibration), not inherited."""
    from dataclasses import replace

    from export.metadata import rewrite_metadata
    from fasterpose_rt.confidence import CALIBRATION_KEY
    meta = _meta(float_model)
    table = {"within": 0.2, "plain": {"scores": [0.1, 0.9], "chances": [0.2, 0.8]}}
    with_table = tmp_path / "with_table.onnx"
    rewrite_metadata(float_model, replace(meta, extra={**meta.extra, CALIBRATION_KEY: table}), with_table)
    assert PosePredictor(with_table, threads=1).calibration is not None
    result = quantize_file(with_table, tmp_path / "q.onnx", calibration=ANN, calibration_size=4, max_pck_drop=100.0)
    assert CALIBRATION_KEY not in _meta(result.path).extra
    assert PosePredictor(result.path, threads=1).calibration is None
