"""The OpenVINO backend (fasterpose_rt/openvino_session.py; PosePredictor(backend="openvino"), --backend openvino):
the same poses as onnxruntime's on real photos with the bundled model, the model's metadata and graph checks as
onnxruntime's, calls from several threads, and the errors a user meets (not installed, not a model, no metadata).

Real parts: OpenVINO's CPU plugin (skipped where openvino is not installed: it is optional, in the dev extras), the
bundled int8 default, 40 real LSPET photos (skipped when ../shared is absent), the demo photo.
"""
import json
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from clirunner import invoke
from conftest import LSPET, NEEDS_LSPET

from fasterpose_rt import DEFAULT_MODELS, PosePredictor
from fasterpose_rt.cli import main
from fasterpose_rt.metrics import pck
from fasterpose_rt.openvino_session import import_openvino
from fasterpose_rt.session import ModelError, open_session

try:  # as the runtime imports it: without OpenVINO's usage telemetry (a network call at import)
    import_openvino()
except ImportError:
    pytest.skip("openvino is not installed (optional: pip install \"openvino>=2024.0\")", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "astronaut.jpg"
NEEDS_DEFAULT = pytest.mark.skipif(not DEFAULT_MODELS["default"].is_file(), reason="bundled default model absent")


@NEEDS_DEFAULT
@NEEDS_LSPET
def test_the_bundled_model_gives_onnxruntimes_poses_on_real_photos(lspet40):
    from benchmarks.orientation import load_persons, read_photos

    names, gt, vis, boxes, files = load_persons(lspet40)
    photos = read_photos(LSPET / "images", files)
    ours, theirs = PosePredictor(threads=2, backend="openvino"), PosePredictor(threads=2)
    assert ours.metadata == theirs.metadata and ours.has_presence and ours.threads == 2
    a = ours.predict_batch(photos, [b[None] for b in boxes])  # persons of several photos per call: batch 16
    b = theirs.predict_batch(photos, [b[None] for b in boxes])
    xy_a, xy_b = np.concatenate([r.keypoints for r in a]), np.concatenate([r.keypoints for r in b])
    shift = np.linalg.norm(xy_a - xy_b, axis=2)
    # int8 kernels of two engines round differently: most joints move by a fraction of a pixel, a rare unsure one
    # jumps to its heatmap's other peak (0.6 % of joints by more than 5 px on the 1,000 validation persons)
    assert np.median(shift) < 0.5 and (shift > 5).mean() < 0.03
    assert abs(pck(xy_a, gt, vis, names)[0] - pck(xy_b, gt, vis, names)[0]) < 0.02
    presence = np.concatenate([r.presence for r in a]) - np.concatenate([r.presence for r in b])
    assert np.abs(presence).max() < 0.1
    one = ours.predict(photos[0], boxes[:1])  # batch 1 after batch 16: OpenVINO compiles each batch size once
    np.testing.assert_allclose(one.keypoints, a[0].keypoints, atol=0.5)


@NEEDS_DEFAULT
def test_predict_from_several_threads_gives_each_its_own_poses():
    pred = PosePredictor(threads=1, backend="openvino")
    image = cv2.imread(str(DEMO))
    boxes = [[120, 20, 300, 480], [60, 10, 380, 500], [150, 60, 220, 380]]
    alone = [pred.predict(image, [b]).keypoints for b in boxes]
    got = {}

    def work(i):
        got[i] = [pred.predict(image, [boxes[i]]).keypoints for _ in range(5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        for kp in got[i]:
            np.testing.assert_array_equal(kp, alone[i])


def test_metadata_and_graph_are_checked_as_onnxruntimes(standin_path, tmp_path):
    from standin import write_standin

    session, meta = open_session(standin_path, 1, backend="openvino")
    assert meta == open_session(standin_path, 1)[1]
    assert [i.type for i in session.get_inputs()] == ["tensor(float)"]
    x = np.zeros((3, 3, 96, 64), np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    assert out.shape[0] == 3 and out.shape[1] == meta.num_keypoints
    bare = write_standin(tmp_path / "bare.onnx", metadata_text=None)
    with pytest.raises(ModelError, match="no 'fasterpose' metadata"):
        open_session(bare, 1, backend="openvino")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="is not a loadable ONNX model"):
        open_session(junk, 1, backend="openvino")
    with pytest.raises(ValueError, match="backend must be one of onnxruntime, openvino"):
        open_session(standin_path, 1, backend="tensorrt")


@NEEDS_DEFAULT
def test_cli_backend_option_and_environment(tmp_path, monkeypatch):
    out = tmp_path / "ov.json"
    r = invoke(main, ["predict", str(DEMO), "--backend", "openvino", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    ours = json.loads(out.read_text())
    r = invoke(main, ["predict", str(DEMO), "--out", str(tmp_path / "ort.json"), "-q"])
    theirs = json.loads((tmp_path / "ort.json").read_text())
    assert len(ours) == len(theirs) == 1 and abs(ours[0]["presence"] - theirs[0]["presence"]) < 0.1
    monkeypatch.setenv("FASTERPOSE_BACKEND", "openvino")
    r = invoke(main, ["bench", "--threads", "1", "--batch", "1", "--runs", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["models"]["default"]["backend"] == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    r = invoke(main, ["predict", str(DEMO), "--out", str(tmp_path / "none.json"), "-q"])
    assert r.exit_code == 2 and 'pip install "openvino>=2024.0"' in r.stderr and "Traceback" not in r.output
    assert "(chosen by FASTERPOSE_BACKEND)" in r.stderr  # a variable set long ago is named


def test_a_bad_backend_names_where_it_came_from(monkeypatch, standin_path):
    """--backend or FASTERPOSE_BACKEND, in any case; a bad value names the option or the variable it came from."""
    r = invoke(main, ["predict", str(DEMO), "--model", str(standin_path), "--backend", "gpu"])
    assert r.exit_code == 2 and "--backend gpu: expected onnxruntime or openvino" in r.stderr
    monkeypatch.setenv("FASTERPOSE_BACKEND", "junk")
    r = invoke(main, ["predict", str(DEMO), "--model", str(standin_path)])
    assert r.exit_code == 2 and "FASTERPOSE_BACKEND=junk: expected onnxruntime or openvino" in r.stderr
    monkeypatch.setenv("FASTERPOSE_BACKEND", "ONNXRuntime")
    r = invoke(main, ["predict", str(DEMO), "--model", str(standin_path), "-q", "--no-search"])
    assert r.exit_code == 0, r.output


@NEEDS_DEFAULT
def test_bench_compares_the_two_engines_on_this_cpu():
    r = invoke(main, ["bench", "--compare-backends", "--threads", "1", "--batch", "1,2", "--runs", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [m["backend"] for m in out["models"].values()] == ["onnxruntime", "openvino"]
    assert [(x["threads"], x["batch"]) for x in out["backend_ratios"]] == [(1, 1), (1, 2)]
    rows = {(x["model"], x["batch"]): x["p50_ms_per_person"] for x in out["rows"]}
    for x in out["backend_ratios"]:
        assert x["wall"] == pytest.approx(rows["default (openvino)", x["batch"]] / rows["default (onnxruntime)",
                                                                                        x["batch"]])
    r = invoke(main, ["bench", "--compare-backends", "--compare"])
    assert r.exit_code == 2 and "not both" in r.stderr


def _outputs(session, n=2):
    x = np.linspace(-1, 1, n * 3 * 96 * 64, dtype=np.float32).reshape(n, 3, 96, 64)
    return session.run(None, {session.get_inputs()[0].name: x})


def test_the_compiled_network_is_kept_on_disk_and_loaded_next_time(standin_path, tmp_path):
    from fasterpose_rt.openvino_session import OpenVinoSession

    folder = tmp_path / "cache"
    first = OpenVinoSession(standin_path, 1, cache=folder)
    blobs = sorted(folder.glob("*.blob"))
    assert first.cache_dir == folder and not first.loaded_from_cache and len(blobs) == 1
    stamp = blobs[0].stat().st_mtime_ns
    second = OpenVinoSession(standin_path, 2, cache=folder)  # the thread count is applied when the file is loaded
    assert second.loaded_from_cache and second.threads == 2
    assert sorted(folder.glob("*.blob")) == blobs and blobs[0].stat().st_mtime_ns == stamp  # read, not rewritten
    uncached = OpenVinoSession(standin_path, 2, cache=None)
    assert uncached.cache_dir is None and not uncached.loaded_from_cache
    for a, b in zip(_outputs(second), _outputs(uncached)):
        np.testing.assert_array_equal(a, b)
    blobs[0].write_bytes(b"damaged" * 100)  # a damaged file is compiled again, not trusted
    again = OpenVinoSession(standin_path, 2, cache=folder)
    assert not again.loaded_from_cache
    for a, b in zip(_outputs(again), _outputs(uncached)):
        np.testing.assert_array_equal(a, b)
    assert OpenVinoSession(standin_path, 2, cache=folder).loaded_from_cache  # and written anew


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from fasterpose_rt.openvino_session import CACHE_ENV, cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    for off in ("off", "", "0", "None"):
        monkeypatch.setenv(CACHE_ENV, off)
        assert cache_dir() is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fasterpose" / "openvino"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "fasterpose" / "openvino"


@NEEDS_DEFAULT
def test_an_unusable_cache_folder_costs_time_not_results(standin_path, tmp_path, monkeypatch):
    import warnings

    from fasterpose_rt.openvino_session import CACHE_ENV, OpenVinoSession

    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    with pytest.warns(UserWarning, match=f"cannot keep compiled networks in {in_the_way}.*{CACHE_ENV}=off"):
        chosen = OpenVinoSession(standin_path, 1, cache=in_the_way / "sub")
    assert chosen.cache_dir is None
    for a, b in zip(_outputs(chosen), _outputs(OpenVinoSession(standin_path, 1, cache=None))):
        np.testing.assert_array_equal(a, b)
    monkeypatch.delenv(CACHE_ENV)  # the default folder unusable (e.g. a read-only home): quietly without a cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(in_the_way))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert OpenVinoSession(standin_path, 1).cache_dir is None
    monkeypatch.setenv(CACHE_ENV, str(in_the_way / "sub"))  # the CLI: one warning line, the poses all the same
    out = tmp_path / "ov.json"
    r = invoke(main, ["predict", str(DEMO), "--backend", "openvino", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"warning: OpenVINO cannot keep compiled networks in {in_the_way / 'sub'}" in r.stderr
    assert "Traceback" not in r.output and len(json.loads(out.read_text())) == 1


def test_bench_profile_names_the_kernels_openvino_chose(standin_path):
    r = invoke(main, ["bench", "--model", str(standin_path), "--profile", "--backend", "openvino", "--threads", "1",
                      "--runs", "3", "--json"])
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)["profile"]
    assert p["backend"] == "openvino" and p["runs"] == 3 and p["operators_ms"] > 0
    conv = [n for n in p["nodes"] if n["op"] == "Convolution"]
    assert conv and all(n["kernel"] for n in conv)  # e.g. jit_avx2_FP32, jit_avx512_FP32, brgconv_avx512_FP32
    assert sum(row["share"] for row in p["ops"]) == pytest.approx(1.0)


def test_openvino_is_imported_without_its_usage_telemetry(tmp_path):
    """`import openvino` sends an event to Google Analytics and writes ~/intel/ unless the user opted out or CI=true
    (review s61: every test run did, through a module-level importorskip): the runtime imports it as in CI, and
    puts the environment back."""
    code = ("import os; from fasterpose_rt.openvino_session import import_openvino; import_openvino(); "
            "print(os.environ.get('CI'))")
    import subprocess

    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**env, "HOME": str(tmp_path)}, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"  # CI unset again
    assert not (tmp_path / "intel").exists()  # no consent or client-id files: the telemetry declined
