"""Loading models: clear errors for missing, non-ONNX and metadata-less files; threads; the bundled default."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fasterpose_rt.predictor as predictor_mod
from fasterpose_rt import ModelError, ModelNotFoundError, PosePredictor
from fasterpose_rt.session import open_session, physical_cores
from standin import standin_metadata, write_standin


def test_missing_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found.*nope.onnx"):
        PosePredictor(tmp_path / "nope.onnx")
    with pytest.raises(FileNotFoundError):  # also catchable as the builtin
        PosePredictor(str(tmp_path / "nope.onnx"))


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a file"):
        PosePredictor(tmp_path)


@pytest.mark.parametrize("content", [b"", b"definitely not a protobuf \x00\xff" * 10, b"\x08\x07" * 3])
def test_not_onnx(tmp_path, content):
    p = tmp_path / "garbage.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelError, match="garbage.onnx is not a loadable ONNX model"):
        PosePredictor(p)


def test_onnx_without_metadata(tmp_path):
    p = write_standin(tmp_path / "bare.onnx", metadata_text=None)
    with pytest.raises(ModelError, match="no 'fasterpose' metadata"):
        PosePredictor(p)


def _meta_dict(**changes):
    d = json.loads(standin_metadata().to_json())
    d.update(changes)
    return d


@pytest.mark.parametrize("text,msg", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (_meta_dict(format="something-else/1"), "unknown metadata format"),
    (_meta_dict(format="fasterpose-onnx/2"), "newer than this runtime"),
    ({k: v for k, v in _meta_dict().items() if k != "keypoints"}, "lacks required field 'keypoints'"),
    # had been a TypeError from the dataclass ("unexpected TypeError" in fasterpose info)
    ({k: v for k, v in _meta_dict().items() if k != "skeleton"}, "lacks required field 'skeleton'"),
    ({k: v for k, v in _meta_dict().items() if k != "flip_pairs"}, "lacks required field 'flip_pairs'"),
    (_meta_dict(color="HSV"), "color must be"),
    (_meta_dict(output="softmax"), "output must be"),
    (_meta_dict(flip_pairs=[[0, 9]]), "flip_pairs"),
    (_meta_dict(flip_pairs=[[0, 1], [1, 2]]), "flip_pairs must name each keypoint at most once"),  # no permutation
    (_meta_dict(std=[float("nan"), 1, 1]), "std must be 3 finite numbers"),  # would give NaN scores, no error
    (_meta_dict(mean=[True, 0, 0]), "mean must be 3 finite numbers"),
    (_meta_dict(input_size=[64]), "input_size"),
    (_meta_dict(input_size=[True, 96]), r"input_size must be \[w, h\] positive integers, got \[True, 96\]"),  # 1 px
    # review s68: a 544-byte model asking for 100000 x 100000 crops tried to allocate 27.9 GiB for one photo
    (_meta_dict(input_size=[100000, 100000]), r"input_size must be at most 4096 px a side, got \[100000, 100000\]"),
    (_meta_dict(skeleton=[[0, True]]), "skeleton must be a list of index pairs"),
    (_meta_dict(box_padding=0), "box_padding must be a number from 0.5 to 4"),
    (_meta_dict(box_padding=True), "box_padding must be a number from 0.5 to 4"),
    (_meta_dict(box_padding=float("inf")), "box_padding must be a number from 0.5 to 4"),  # JSON "Infinity"
    (_meta_dict(edge_peaks="zero"), "edge_peaks must be one of blurred, unblurred, got 'zero'"),
    (_meta_dict(edge_peaks=None), "edge_peaks must be one of blurred, unblurred, got None"),
])
def test_mangled_metadata(tmp_path, text, msg):
    p = write_standin(tmp_path / "mangled.onnx", metadata_text=text)
    with pytest.raises(ModelError, match=msg) as info:
        PosePredictor(p)
    assert "mangled.onnx" in str(info.value)


def test_network_label_names_non_standard_blocks():
    from fasterpose_rt.metadata import ModelMetadata

    plain = ModelMetadata.from_dict(_meta_dict(architecture="fasterpose_r34"))
    assert plain.network == "fasterpose_r34"
    thin = ModelMetadata.from_dict(_meta_dict(architecture="fasterpose_r34", model_options={"blocks": [2, 3, 5]}))
    assert thin.network == "fasterpose_r34 (blocks 2/3/5)"
    odd = ModelMetadata.from_dict(_meta_dict(architecture="", model_options={"blocks": "2,3,5"}))
    assert odd.network == "?"  # unknown name, malformed blocks: no guess
    assert ModelMetadata.from_dict(_meta_dict(architecture="x", model_options=[2, 3])).network == "x"


def test_metadata_with_numpy_numbers_the_checks_accept_is_written_as_plain_json():
    """A block built in Python with numpy's numbers (a padding measured as np.float32, a table fitted by numpy) passes
    the checks; to_json refused them (TypeError: float32 is not JSON serializable) where export writes the file."""
    from fasterpose_rt.metadata import ModelMetadata, is_box_padding

    table = {"scores": [np.float32(0.25), np.float64(0.5), np.float32(0.75)],
             "chances": [np.float32(0.125), np.float32(0.5), np.float64(0.875)]}
    meta = ModelMetadata.from_dict(_meta_dict(
        box_padding=np.float32(1.5),
        score_calibration={"within": np.float32(0.25), "plain": table, "joints": np.int64(1234)},
        presence={"output": "presence", "kind": "logits", "threshold": np.float32(0.375)},
        provenance={"counts": np.arange(3, dtype=np.int64), "seen": np.bool_(True), "ece": np.float32("nan")}))
    assert is_box_padding(meta.box_padding) and isinstance(meta.box_padding, np.float32)  # the checks took them
    text = meta.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is no JSON"))  # strict JSON: no NaN
    back = ModelMetadata.from_json(text)
    assert back.box_padding == 1.5 and type(back.box_padding) is float
    cal = back.extra["score_calibration"]
    assert cal == {"within": 0.25, "plain": {"scores": [0.25, 0.5, 0.75], "chances": [0.125, 0.5, 0.875]},
                   "joints": 1234}
    assert back.extra["presence"] == {"output": "presence", "kind": "logits", "threshold": 0.375}
    assert back.extra["provenance"] == {"counts": [0, 1, 2], "seen": True, "ece": None}  # NaN: null
    assert back.to_json() == text  # written again, the same text
    assert ModelMetadata.from_json(standin_metadata().to_json()).to_json() == standin_metadata().to_json()


def test_metadata_disagreeing_with_the_graph(tmp_path):
    p = write_standin(tmp_path / "size.onnx", metadata_text=_meta_dict(input_size=[48, 96]))
    with pytest.raises(ModelError, match=r"input_size \(48, 96\)"):
        PosePredictor(p)
    names = ["a", "b", "c"]
    p = write_standin(tmp_path / "k.onnx", metadata_text=_meta_dict(keypoints=names, skeleton=[], flip_pairs=[]))
    with pytest.raises(ModelError, match="4 heatmaps but the metadata names 3"):
        PosePredictor(p)


def test_bundled_default_absent_says_how_to_pass_a_model(tmp_path, monkeypatch):
    monkeypatch.setattr(predictor_mod, "DEFAULT_MODELS", {
        "default": tmp_path / "fasterpose_default_int8.onnx", "fast": tmp_path / "fasterpose_fast_int8.onnx"})
    for variant in ("default", "fast"):
        with pytest.raises(ModelNotFoundError, match=f"bundled {variant} model is not present") as info:
            PosePredictor(variant=variant)
        assert "model=" in str(info.value) and "--model" in str(info.value)


def test_bundled_default_used_when_present(tmp_path, monkeypatch):
    path = write_standin(tmp_path / "fasterpose_default_int8.onnx")
    monkeypatch.setattr(predictor_mod, "DEFAULT_MODELS", {"default": path, "fast": tmp_path / "absent.onnx"})
    assert PosePredictor(variant="default", threads=1).model_path == str(path)
    assert PosePredictor(threads=1).model_path == str(path)  # "default" is the default variant
    with pytest.raises(ModelNotFoundError, match="bundled fast model is not present"):
        PosePredictor(variant="fast")


def test_bad_options(standin_path):
    with pytest.raises(ValueError, match="variant must be one of"):
        PosePredictor(variant="fp32")
    with pytest.raises(ValueError, match="variant= selects a bundled"):
        PosePredictor(standin_path, variant="fast")
    for bad in (0, -1, 2.5, True, 2**31):  # 2**31: onnxruntime's own error was an obscure TypeError
        with pytest.raises(ValueError, match="threads"):
            PosePredictor(standin_path, threads=bad)
        if bad == 2**31:
            continue
        with pytest.raises(ValueError, match="batch_size"):
            PosePredictor(standin_path, batch_size=bad)


def test_threads_may_be_a_numpy_integer(standin_path):
    """np.int64(1) (e.g. from an array of settings) was refused as not an integer; it is one."""
    session, _ = open_session(standin_path, np.int64(1))
    assert session.get_session_options().intra_op_num_threads == 1
    for bad in (np.bool_(True), np.float64(1.0), np.int64(0), np.uint64(2**31)):
        with pytest.raises(ValueError, match="threads must be an integer from 1 to"):
            open_session(standin_path, bad)


def test_threads_default_to_physical_cores(standin_path):
    cores = physical_cores()
    assert cores >= 0
    session, meta = open_session(standin_path)
    assert session.get_session_options().intra_op_num_threads == cores
    assert session.get_session_options().inter_op_num_threads == 1
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert meta.keypoints[0] == "red"


def test_loading_prints_nothing_and_imports_no_training_stack(standin_path):
    """A fresh interpreter: load a model and predict; nothing on stdout/stderr, no torch/onnx/scipy/pycocotools."""
    code = (
        "import sys, numpy as np\n"
        "from fasterpose_rt import PosePredictor\n"
        f"p = PosePredictor({str(standin_path)!r}, threads=1)\n"
        "p.predict(np.zeros((40, 30, 3), np.uint8))\n"
        "bad = [m for m in ('torch', 'onnx', 'scipy', 'pycocotools') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[1]  # importable from the checkout even when not installed
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""


def test_onnxruntime_telemetry_is_off_unless_asked_for(standin_path, tmp_path):
    """onnxruntime's wheels send usage telemetry and keep a device id under ~/.cache (Linux and macOS, since about
    1.2x) unless ORT_DISABLE_TELEMETRY is set before it loads: importing fasterpose_rt sets it, and a user's own
    setting wins."""
    code = (
        "import os, numpy as np\n"
        "from fasterpose_rt import PosePredictor\n"
        f"PosePredictor({str(standin_path)!r}, threads=1).predict(np.zeros((40, 30, 3), np.uint8))\n"
        "print(os.environ['ORT_DISABLE_TELEMETRY'])\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root,
                       env={**env, "HOME": str(tmp_path)})
    assert r.returncode == 0 and r.stdout == "1\n", r.stderr
    assert not (tmp_path / ".cache").exists()  # no device id, no event store
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root,
                       env={**env, "HOME": str(tmp_path), "ORT_DISABLE_TELEMETRY": "0"})
    assert r.returncode == 0 and r.stdout == "0\n", r.stderr


def test_the_command_line_imports_no_training_stack(standin_path, tmp_path):
    """``fasterpose predict`` (all of ``fasterpose_rt.cli``'s commands loaded) in a fresh interpreter: results on
    stdout, and no torch/onnx/scipy/pycocotools imported on the way."""
    import cv2

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((40, 30, 3), np.uint8))
    code = (
        "import sys\n"
        "from fasterpose_rt.cli import main\n"
        f"try:\n    main(['predict', {str(photo)!r}, '--model', {str(standin_path)!r}, '-q', '--no-search'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = [m for m in ('torch', 'onnx', 'scipy', 'pycocotools') if m in sys.modules]\n"
        "sys.exit(f'imported {bad}' if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("[") and r.stderr == ""


def test_results_are_deterministic(standin_path):
    img = np.random.default_rng(0).integers(0, 256, (60, 50, 3), dtype=np.uint8)
    a = PosePredictor(standin_path, threads=1).predict(img)
    b = PosePredictor(standin_path, threads=2).predict(img)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)


def test_fixed_batch_axis(tmp_path):
    """A model exported with batch 1 still serves many persons (one at a time); other fixed sizes are refused."""
    one = PosePredictor(write_standin(tmp_path / "b1.onnx", batch=1), threads=1, batch_size=8, flip_test=True)
    assert one.batch_size == 1
    res = one.predict(np.zeros((60, 50, 3), np.uint8), [[0, 0, 20, 40], [10, 10, 30, 30], [5, 5, 10, 10]])
    assert res.keypoints.shape == (3, 4, 2)
    with pytest.raises(ModelError, match="batch axis is fixed at 4"):
        PosePredictor(write_standin(tmp_path / "b4.onnx", batch=4), threads=1)
    with pytest.raises(ValueError, match="fixed at 1, so batch_size stays 1"):  # set later: refused, not obeyed
        one.batch_size = 8
    one.batch_size = 1
    assert one.batch_size == 1 and one.predict(np.zeros((60, 50, 3), np.uint8), [[0, 0, 20, 40]] * 2).keypoints.shape \
        == (2, 4, 2)


def test_an_engines_reason_is_told_past_the_lines_that_only_say_where_it_was_raised():
    """OpenVINO's errors start with "Exception from src/inference/src/cpp/core.cpp:84:"; its reason is on a later line,
    which the one-line message dropped (review s68)."""
    from pathlib import Path

    from fasterpose_rt.session import _unloadable

    said = RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nException from src/frontends/onnx/x.cpp:"
                        "12:\nPath '../secret.bin' is outside the base directory\n")
    assert str(_unloadable(Path("m.onnx"), said)) == (
        "m.onnx is not a loadable ONNX model: Path '../secret.bin' is outside the base directory")
    assert str(_unloadable(Path("m.onnx"), RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : no\nmore"))) == (
        "m.onnx is not a loadable ONNX model: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : no")
    assert str(_unloadable(Path("m.onnx"), RuntimeError())).endswith(": RuntimeError")
