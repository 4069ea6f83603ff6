"""``fasterpose bench`` and ``fasterpose eval`` through click's CliRunner, on stand-in models and tiny photos."""
import json
import os
import sys

import cv2
import numpy as np
import pytest
from clirunner import invoke
from standin import paint_blobs, standin_metadata, write_standin

from fasterpose_rt.cli import main

# The stand-in's four keypoints renamed so PCK has a torso; "left_hip"/"right_hip" are its flip pair.
TORSO_NAMES = ["left_shoulder", "left_hip", "right_hip", "right_shoulder"]
POINTS = [[40, 30], [30, 60], [50, 60], [40, 90]]


def run(*args):
    return invoke(main, args)


# ------------------------------------------------------------------------------------------------------- bench

def test_bench_json(standin_path):
    r = run("bench", "--model", standin_path, "--threads", "1", "--batch", "1,3", "--runs", "3", "--warmup", "1",
            "--json", "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert [(row["threads"], row["batch"]) for row in rep["rows"]] == [(1, 1), (1, 3)]
    row = rep["rows"][1]
    assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] and row["persons_per_s"] > 0
    assert row["macs_per_person"] == 4 * 96 * 64 * 3 and row["gflop_per_s"] > 0  # counted from the graph
    (model,) = rep["models"].values()  # labelled by the model file's name
    assert model["input_size"] == [64, 96] and rep["photo_size"] == [640, 480]
    assert row["model"] == standin_path.stem


def test_bench_table(standin_path):
    r = run("bench", "--model", standin_path, "--threads", "1", "--batch", "2", "--runs", "2", "--warmup", "0")
    assert r.exit_code == 0, r.output
    assert "persons/s" in r.stdout and "GFLOP/s" in r.stdout and "MACs/person 0.074 M" in r.stdout
    assert "threads=1 batch=2" in r.stderr  # progress


@pytest.mark.parametrize("args, message", [
    (["--threads", "1,a"], "comma-separated integers"),
    (["--threads", "1,,2"], "comma-separated integers"),  # a typo, not silently "1,2"
    (["--threads", "2147483648"], "up to 1024"),
    (["--batch", "0"], "positive integers"),
    (["--compare", "--model", "{model}"], "--compare times the two bundled"),
    (["--model", "{missing}"], "cannot load the model"),
])
def test_bench_usage_errors(standin_path, tmp_path, args, message):
    args = [a.format(model=standin_path, missing=tmp_path / "none.onnx") for a in args]
    r = run("bench", *args, *([] if "--model" in args else ["--model", standin_path]))
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output, r.output


def failing_at_batch_2(path):
    """A stand-in whose graph reshapes its heatmaps to a batch of 1 inside: it loads (the batch axis it declares is
    free) and fails in onnxruntime on any batch of 2 or more."""
    from onnx import numpy_helper, helper, save

    from standin import standin_model

    model = standin_model(standin_metadata())
    graph = model.graph
    graph.node[-1].output[0] = "unshaped"
    graph.initializer.append(numpy_helper.from_array(np.array([1, 4, 24, 16], np.int64), "one_only"))
    graph.node.append(helper.make_node("Reshape", ["unshaped", "one_only"], ["heatmaps"]))
    entry = model.metadata_props.add()
    entry.key, entry.value = "fasterpose", standin_metadata().to_json()
    save(model, str(path))
    return path


def test_a_model_that_fails_to_run_is_one_line_and_a_usage_error(tmp_path, capfd):
    """onnxruntime also logged the failure on the process's stderr, in colour (ESC codes), and bench split the error
    over two lines and exited 1; predict fails the input, naming the model."""
    model = failing_at_batch_2(tmp_path / "reshape1.onnx")
    r = run("bench", "--model", model, "--threads", "1", "--batch", "2", "--runs", "1", "--warmup", "0", "-q")
    err = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(err) == 1, r.output
    assert "reshape1.onnx: the model failed to run on 2 crops at once: [ONNXRuntimeError]" in err[0]
    cv2.imwrite(str(tmp_path / "p.png"), paint_blobs((120, 80), POINTS))
    r = run("predict", tmp_path / "p.png", "--model", model, "--flip", "--no-search")  # a crop and its mirror
    assert r.exit_code == 1 and "prediction failed: " in r.stderr and "the model failed to run on 2 crops" in r.stderr
    outside = capfd.readouterr().err  # what onnxruntime itself wrote to the process's stderr
    assert "onnxruntime" not in outside and "\x1b" not in outside, outside


def test_bench_profile_times_each_operator_as_the_engine_measures_it(standin_path):
    from fasterpose_rt.profiling import profile_model

    r = run("bench", "--model", standin_path, "--profile", "--threads", "1", "--batch", "2", "--runs", "4", "--json")
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)["profile"]
    assert (p["backend"], p["threads"], p["batch"], p["runs"]) == ("onnxruntime", 1, 2, 4)
    ops = {row["op"]: row for row in p["ops"]}
    assert "Conv" in ops and sum(row["nodes"] for row in p["ops"]) == len(p["nodes"])  # every node counted once
    assert sum(row["share"] for row in p["ops"]) == pytest.approx(1.0)
    assert sum(row["ms"] for row in p["nodes"]) == pytest.approx(p["operators_ms"])
    assert [row["ms"] for row in p["nodes"]] == sorted((row["ms"] for row in p["nodes"]), reverse=True)
    assert 0 < p["operators_ms"] <= p["call_ms"] * 1.05  # the operators run inside the calls
    text = run("bench", "--model", standin_path, "--profile", "--threads", "1", "--runs", "2")
    assert text.exit_code == 0 and "1 thread, batch 1, 2 calls" in text.stdout and "slowest nodes" in text.stdout
    # only the timed calls count, not the warm-up ones: a profile of 3 calls after 5 counts 3
    assert profile_model(standin_path, runs=3, warmup=5)["runs"] == 3
    r = run("bench", "--profile", "--compare")
    assert r.exit_code == 2 and "--profile looks inside one model" in r.stderr


def test_a_profile_whose_operator_clocks_sum_past_the_call_says_so():
    """s64 left open: OpenVINO on 2 threads gave 15.8 ms of operators in a 14.8 ms call, printed "of it"."""
    from fasterpose_rt.profiling import _summary, format_profile

    def profile(call_ms):
        return {"backend": "openvino", "threads": 2, "batch": 1,
                **_summary({"a": ["Convolution", "jit_avx2_I8", 2 * 9000.0], "b": ["Add", "", 2 * 1000.0]}, 2, call_ms)}

    inside = format_profile(profile(12.0), "m").splitlines()[0]
    assert inside.endswith("12.00 ms per call, 10.00 ms of it in operators")
    past = format_profile(profile(9.5), "m").splitlines()[0]
    assert past.endswith("9.50 ms per call, though the operators' own clocks sum to 10.00 ms: they do not add up "
                         "(operators timed in parallel, or the clocks' own overhead), so read the shares, not the sum")
    assert "of it" not in past
    assert "of it in operators" in format_profile(profile(float("nan")), "m")  # no call timed: no claim about it


def test_bench_compare_times_both_bundled_models_side_by_side():
    from fasterpose_rt import DEFAULT_MODELS

    if not all(p.is_file() for p in DEFAULT_MODELS.values()):
        pytest.skip("the bundled default and fast models are not both present")
    r = run("bench", "--compare", "--runs", "2", "--warmup", "1", "--threads", "1", "--batch", "1", "--json", "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert [row["model"] for row in rep["rows"]] == ["default", "fast"]
    (ratio,) = rep["ratios"]
    default, fast = rep["rows"]
    assert ratio["wall"] == pytest.approx(fast["p50_ms_per_person"] / default["p50_ms_per_person"])
    assert ratio["cpu"] == pytest.approx(fast["cpu_ms_per_person"] / default["cpu_ms_per_person"])
    assert rep["models"]["fast"]["macs_per_person"] < rep["models"]["default"]["macs_per_person"]
    for m in rep["models"].values():  # what training and the exporter measured and stored in each model
        assert 0 < m["validation"]["pck@0.2"] < 1
        assert {"pck_float", "pck_int8", "moved", "crops"} <= set(m["int8_verification"])
    table = run("bench", "--compare", "--runs", "1", "--warmup", "0", "--threads", "1", "--batch", "1", "-q")
    assert table.exit_code == 0 and "fast / default per person" in table.stdout, table.output
    assert table.stdout.count("validation PCK@0.2 at training time") == 2
    assert "PCK@0.2 of its float source" in table.stdout


def test_bench_compare_needs_both_bundled_models(tmp_path, monkeypatch):
    from fasterpose_rt import DEFAULT_MODELS

    monkeypatch.setitem(DEFAULT_MODELS, "fast", tmp_path / "none.onnx")  # as if the package lost its fast model
    r = run("bench", "--compare", "--runs", "1", "--threads", "1", "--batch", "1")
    assert r.exit_code == 2 and "model is not present" in r.stderr


# -------------------------------------------------------------------------------------------------------- eval

@pytest.fixture(scope="module")
def torso_model(tmp_path_factory):
    meta = standin_metadata()
    meta.keypoints = list(TORSO_NAMES)
    return write_standin(tmp_path_factory.mktemp("torso") / "torso.onnx", meta=meta)


@pytest.fixture
def dataset(tmp_path):
    """Two 80x120 photos, one person each, annotated exactly where the stand-in will find them."""
    images = tmp_path / "images"
    images.mkdir()
    data = {"images": [], "annotations": [],
            "categories": [{"id": 1, "name": "person", "keypoints": TORSO_NAMES, "sigmas": [0.05] * 4,
                            "skeleton": [[1, 2]]}]}
    for i in (1, 2):
        cv2.imwrite(str(images / f"{i}.png"), paint_blobs((120, 80), POINTS))
        data["images"].append({"id": i, "file_name": f"{i}.png", "width": 80, "height": 120})
        data["annotations"].append({
            "id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 70, 110], "area": 70 * 110, "iscrowd": 0,
            "num_keypoints": 4, "keypoints": [v for x, y in POINTS for v in (x, y, 2)]})
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return ann, images, data


def test_eval_reports_coco_ap_and_pck(torso_model, dataset, tmp_path):
    ann, images, _ = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["photos"] == 2 and rep["persons"] == 2 and rep["failed"] == []
    assert rep["coco"]["AP"] > 0.95 and rep["coco"]["AR"] > 0.95  # the stand-in is exact
    assert rep["pck@0.2"]["pck"] == 1.0 and rep["pck@0.2"]["joints"] == 8 and rep["pck@0.2"]["ci95"] == [1.0, 1.0]
    assert "COCO keypoints  AP 1.000" in r.stdout
    assert "PCK@0.2 (torso) 1.000 over 8 joints (95 % interval 1.000-1.000, persons resampled)" in r.stdout
    assert "by threshold: PCK@0.05 1.000  PCK@0.1 1.000" in r.stdout and rep["pck@0.2"]["by_threshold"]["0.5"] == 1.0
    # these persons' shoulders and hips share one midpoint: no body axis, so their orientation is unknown
    assert [b["persons"] for b in rep["pck@0.2"]["by_orientation"]] == [0, 0, 0, 2]
    assert "by body orientation: unknown 1.00 (2 persons)" in r.stdout


def test_eval_box_padding_override_is_used_and_reported(torso_model, dataset, tmp_path):
    ann, images, _ = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--box-padding", "1.05",
            "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["box_padding"] == 1.05 and "(box padding 1.05): 2 photos" in r.stdout
    assert rep["pck@0.2"]["pck"] == 1.0  # the stand-in finds the blobs in any crop that holds them
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert json.loads(out.read_text())["box_padding"] == 1.25 and "(box padding 1.25)" in r.stdout  # its own
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--box-padding", "0", "-q")
    assert r.exit_code == 2 and "--box-padding" in r.output and "Traceback" not in r.output


def test_eval_counts_left_right_mixups(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    kp = data["annotations"][1]["keypoints"]
    kp[3:6], kp[6:9] = kp[6:9], kp[3:6]  # the second person's hips labelled on the wrong sides
    ann.write_text(json.dumps(data))
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    p = json.loads(out.read_text())["pck@0.2"]
    assert p["pck"] == 0.75
    assert p["left_right"] == {"misses": 2, "mirror_hits": 2, "persons_mirrored": 1, "pck_mirror_forgiven": 1.0}
    assert "left/right: 2 of 2 misses land on the mirror joint's label; better mirrored: 1 person (PCK 1.000" \
        in r.stdout


def test_eval_against_a_baseline_model(torso_model, dataset, standin_path, tmp_path):
    ann, images, _ = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--baseline", torso_model,
            "--out", out, "-q")
    assert r.exit_code == 0, r.output
    vs = json.loads(out.read_text())["pck@0.2"]["vs_baseline"]
    assert vs == {"pck": 1.0, "difference": 0.0, "ci95": [0.0, 0.0], "model": str(torso_model)}
    assert "difference +0.000 (95 % interval +0.000 to +0.000, paired, persons resampled)" in r.stdout
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--baseline", standin_path, "-q")
    assert r.exit_code == 2 and "predicts other keypoints" in r.stderr and "Traceback" not in r.output


def test_eval_without_pycocotools_still_reports_pck(torso_model, dataset, monkeypatch):
    ann, images, _ = dataset
    for name in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 0, r.output
    assert 'pip install "fasterpose[eval]"' in r.stderr and "PCK@0.2 (torso) 1.000" in r.stdout


def test_eval_missing_photo_exit_1_rest_evaluated(torso_model, dataset):
    ann, images, _ = dataset
    (images / "2.png").unlink()
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 1 and f"{images / '2.png'}: file not found" in r.stderr
    assert "1 photo, 1 person" in r.stdout and "AP 1.000" in r.stdout  # the missing photo is not a miss


def test_eval_names_a_damaged_photo_with_what_its_decoder_said(torso_model, dataset, capfd):
    """s64: libjpeg's "Corrupt JPEG data" line reached stderr naming no photo; the photo is still scored."""
    ann, images, _ = dataset
    data = bytearray(cv2.imencode(".jpg", paint_blobs((120, 80), POINTS))[1].tobytes())
    data[len(data) // 2:len(data) // 2 + 50] = bytes(50)
    (images / "2.png").write_bytes(bytes(data))  # (decoded by its content)
    capfd.readouterr()
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 0 and "2 photos, 2 persons" in r.stdout, r.output
    assert f"warning: {images / '2.png'}: damaged data, decoded as far as the decoder could" in r.stderr, r.stderr
    assert "Corrupt JPEG data" not in capfd.readouterr().err
    from fasterpose_rt import PosePredictor  # the library leaves stderr alone unless asked (review s64)
    from fasterpose_rt.evaluate import predict_annotations

    warned, data = [], json.loads(ann.read_text())
    predict_annotations(PosePredictor(torso_model), data, images, 1, str(ann), lambda path, why: None,
                        warn=warned.append)
    assert not warned and "Corrupt JPEG data" in capfd.readouterr().err
    predict_annotations(PosePredictor(torso_model), data, images, 1, str(ann), lambda path, why: None,
                        warn=warned.append, decoder_lines=True)
    assert len(warned) == 1 and "damaged data" in warned[0] and "Corrupt JPEG data" not in capfd.readouterr().err


def test_eval_keypoint_count_mismatch_exit_2(standin_path, dataset, tmp_path):
    ann, images, data = dataset
    data["categories"][0]["keypoints"] = ["k"] * 17
    del data["categories"][0]["sigmas"]
    for a in data["annotations"]:
        a["keypoints"] = [10, 10, 2] * 17  # as many as the category names: the file itself is sound
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", standin_path)
    assert r.exit_code == 2 and "predicts 4 keypoints" in r.stderr and "has 17" in r.stderr
    assert "Traceback" not in r.output


def test_eval_malformed_annotations_exit_2(standin_path, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": 3}')
    (tmp_path / "img").mkdir()
    r = run("eval", "--coco", bad, "--images", tmp_path / "img", "--model", standin_path)
    assert r.exit_code == 2 and "not a COCO annotation file" in r.stderr
    r = run("eval", "--coco", tmp_path / "absent.json", "--images", tmp_path / "img", "--model", standin_path)
    assert r.exit_code == 2 and "does not exist" in r.stderr


def _detections(data, drop=(), extra=()):
    """The file's own person boxes as a detector's results (score 1), without the photos in ``drop``."""
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
            for a in data["annotations"] if a["image_id"] not in drop]
    return dets + list(extra)


def test_eval_on_detected_boxes_that_are_the_files_own_scores_the_same(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    dets.write_text(json.dumps(_detections(data)))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["coco"]["AP"] > 0.95 and rep["pck@0.2"]["pck"] == 1.0 and rep["pck@0.2"]["joints"] == 8
    assert rep["detections"]["persons_matched"] == rep["detections"]["persons_labelled"] == 2
    assert "boxes: 2 detections of" in r.stdout and "labelled persons a pose matched: 2 of 2" in r.stdout


def test_eval_on_detected_boxes_counts_a_missed_person_and_drops_a_pose_found_twice(torso_model, dataset,
                                                                                     tmp_path):
    ann, images, data = dataset
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    twice = {"image_id": 1, "category_id": 1, "bbox": [6, 6, 70, 110], "score": 0.5}  # person 1 again
    dets.write_text(json.dumps(_detections(data, drop={2}, extra=[twice])))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["detections"]["boxes"] == 2 and rep["persons"] == 1  # OKS-NMS kept one pose of person 1
    assert rep["detections"]["persons_matched"] == 1 and rep["detections"]["persons_labelled"] == 2
    assert rep["pck@0.2"]["pck"] == 0.5 and rep["pck@0.2"]["joints"] == 8  # person 2's joints are misses
    assert rep["coco"]["AR"] == pytest.approx(0.5)
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets,
            "--oks-nms", "1", "--det-score", "0.6", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["detections"]["boxes"] == 1 and rep["detections"]["det_score"] == 0.6  # the 0.5 box left out


def test_eval_detections_problems_are_named_without_a_traceback(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps({"1.png": [[5, 5, 70, 110]]}))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets)
    assert r.exit_code == 2 and "COCO's detection results format" in r.stderr and "Traceback" not in r.output
    dets.write_text(json.dumps(_detections(data) + [{"image_id": 99, "bbox": [0, 0, 5, 5], "score": 1}]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q")
    assert r.exit_code == 0 and "1 of 3 detections name photos the annotation file does not list" in r.stderr


def test_eval_refine_runs_each_person_again_on_the_box_around_its_joints(torso_model, dataset, tmp_path):
    from fasterpose_rt import PosePredictor
    from fasterpose_rt.evaluate import predict_detections

    ann, images, data = dataset
    loose = {i: (np.array([[0.0, 0.0, 80.0, 120.0]]), np.ones(1)) for i in (1, 2)}  # the whole photo
    predictor, sigmas = PosePredictor(torso_model), np.full(4, 0.05)

    def boxes(passes):
        results, done, _ = predict_detections(predictor, data, images, 1, "ann", loose, sigmas, None,
                                              refine_passes=passes)
        assert done == [1, 2]
        return np.array([r["bbox"] for r in results])

    np.testing.assert_allclose(boxes(0), [[0, 0, 80, 120]] * 2)  # the pose found in the box it was given
    joints = np.array(POINTS, np.float64)
    tight = np.concatenate([joints.min(axis=0), joints.max(axis=0) - joints.min(axis=0)])
    np.testing.assert_allclose(boxes(2), [tight] * 2, atol=1.0)  # run again on the box around its joints
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": i, "bbox": [0, 0, 80, 120], "score": 1.0} for i in (1, 2)]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets,
            "--refine", "2", "-q")
    assert r.exit_code == 0 and "refined up to 2 times" in r.stdout, r.output


def test_eval_out_folder_is_checked_before_any_work(torso_model, dataset, tmp_path):
    ann, images, _ = dataset
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", tmp_path / "no" / "rep.json",
            "-q")
    assert r.exit_code == 2 and "cannot write the report to" in r.stderr and "does not exist" in r.stderr
    assert r.stdout == "" and "Traceback" not in r.output  # refused up front: no model run, no figures


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_eval_report_into_a_fifo_or_through_a_symlink(torso_model, dataset, tmp_path, monkeypatch):
    """--out naming a FIFO (or a device, /dev/stdout) writes into it, and a symlink's target is replaced, the link
    kept; neither becomes a plain file. A bundled model is never written over."""
    from test_cli_options import FifoReader

    from fasterpose_rt.predictor import DEFAULT_MODELS

    ann, images, _ = dataset
    fifo = FifoReader(tmp_path / "pipe")
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", fifo.path, "-q")
    assert r.exit_code == 0 and json.loads(fifo.read())["photos"] == 2 and fifo.still_a_fifo(), r.output
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real" / "report.json")
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", link, "-q")
    assert r.exit_code == 0 and link.is_symlink() and json.loads(link.read_text())["photos"] == 2, r.output
    bundled = tmp_path / "fast.onnx"  # stands in for the bundled fast model: a failing test harms no asset
    bundled.write_bytes(b"weights")
    monkeypatch.setitem(DEFAULT_MODELS, "fast", bundled)
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", bundled, "-q")
    assert r.exit_code == 2 and "it is the bundled fast model" in r.stderr and bundled.read_bytes() == b"weights"


def test_eval_prints_the_report_before_a_write_that_fails(torso_model, dataset, tmp_path, monkeypatch):
    import errno

    from fasterpose_rt.cli import evaluate as cli_evaluate

    ann, images, _ = dataset
    out = tmp_path / "report.json"

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cli_evaluate, "atomic_write_text", full_disk)
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 1 and f"{out}: No space left on device" in r.stderr and "Traceback" not in r.output
    assert "COCO keypoints  AP 1.000" in r.stdout and "PCK@0.2 (torso) 1.000" in r.stdout  # the figures survive


def test_eval_fills_in_the_coco_fields_a_file_may_leave_out(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    for a in data["annotations"]:
        for field in ("area", "iscrowd", "id", "num_keypoints"):
            del a[field]
    ann.write_text(json.dumps(data))
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["coco"]["AP"] > 0.95 and rep["pck@0.2"]["pck"] == 1.0
    assert "2 of the persons have no 'area'; COCO AP takes their box's w x h" in r.stderr  # not COCO's own areas


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("keypoints"), "annotations[1] (id 2) has no 'keypoints'"),
    (lambda a: a.update(keypoints=[1, 2, 2]), "annotations[1] (id 2): 'keypoints' must be a list of 3 x 4 = 12"),
    (lambda a: a.update(keypoints=[1, 2, 2] * 3 + ["x", 2, 2]), "'keypoints' must be a list of 3 x 4 = 12"),
    (lambda a: a.pop("image_id"), "annotations[1] (id 2) has no 'image_id'"),
    (lambda a: a.update(image_id=9), "refers to image_id 9, which 'images' does not list"),
    (lambda a: a.update(bbox=[1, 2, 3]), "annotations[1] (id 2): 'bbox' must be [x, y, w, h] numbers"),
    (lambda a: a.update(area="big"), "annotations[1] (id 2): 'area' must be a number"),
    (lambda a: a.update(area=-5), "annotations[1] (id 2): 'area' must be a number >= 0, got -5"),  # s62
])
def test_check_annotations_names_the_first_offending_person_and_field(dataset, change, message):
    from fasterpose_rt.evaluate import EvalError, check_annotations

    _, _, data = dataset
    change(data["annotations"][1])
    with pytest.raises(EvalError) as e:
        check_annotations(data, "ann.json")
    assert str(e.value).startswith("ann.json: ") and message in str(e.value)


def test_check_annotations_fills_cocos_defaults_on_copies(dataset):
    import copy

    from fasterpose_rt.evaluate import check_annotations

    _, _, data = dataset
    data["annotations"].append(dict(data["annotations"][0], image_id=2))  # id 1 again
    for field in ("area", "iscrowd", "num_keypoints"):
        del data["annotations"][0][field]
    del data["annotations"][1]["id"]
    data["annotations"][1]["keypoints"][2] = 0  # one joint not labelled
    del data["annotations"][1]["bbox"], data["annotations"][1]["area"], data["annotations"][1]["num_keypoints"]
    before = copy.deepcopy(data)
    warnings = []
    out = check_annotations(data, "ann.json", warnings=warnings)
    assert data == before  # the caller's object is not changed
    first, second, third = out["annotations"]
    assert (first["area"], first["iscrowd"], first["num_keypoints"], first["id"]) == (70 * 110, 0, 4, 1)
    assert second["id"] == 2 and third["id"] == 3  # new ids past the largest (1), none repeated
    # no box: the one around its labelled joints (review s63: as training crops it), and the area from that box
    kp = np.asarray(second["keypoints"]).reshape(-1, 3)
    lo, hi = kp[kp[:, 2] > 0, :2].min(axis=0), kp[kp[:, 2] > 0, :2].max(axis=0)
    assert second["bbox"] == [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]] and second["num_keypoints"] == 3
    assert second["area"] == (hi[0] - lo[0]) * (hi[1] - lo[1])
    assert warnings == ["ann.json: 1 of the persons have no 'bbox'; each is run on the tightest box around its "
                        "labelled keypoints (as training crops them)",
                        "ann.json: 2 of the persons have no 'area'; COCO AP takes their box's w x h (COCO's own "
                        "areas, the segmentation's, are smaller and give a lower AP)"]
    assert out["images"] is data["images"]  # what is not changed is shared


def test_eval_missing_keypoints_is_a_one_line_error_before_any_work(torso_model, dataset):
    ann, images, data = dataset
    del data["annotations"][1]["keypoints"]
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 2 and f"{ann}: annotations[1] (id 2) has no 'keypoints'" in r.stderr
    assert r.stdout == "" and "Traceback" not in r.output


def test_eval_keeps_pck_when_pycocotools_fails(torso_model, dataset, tmp_path, monkeypatch):
    pytest.importorskip("pycocotools")
    from pycocotools.cocoeval import COCOeval

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(COCOeval, "evaluate", broken)
    ann, images, _ = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output  # asked-for figures missing: not ok
    assert "COCO keypoints  not computed: pycocotools failed: RuntimeError: boom" in r.stdout
    assert "PCK@0.2 (torso) 1.000" in r.stdout
    rep = json.loads(out.read_text())
    assert rep["coco"] is None and rep["coco_note"] == "pycocotools failed: RuntimeError: boom"
    assert rep["pck@0.2"]["pck"] == 1.0 and rep["failed"] == []


def test_persons_without_boxes_are_run_on_the_box_around_their_joints_as_training_crops_them(torso_model, dataset,
                                                                                            tmp_path):
    """review s63: training took such a file (the box around the labelled joints) and eval refused it; on
    detections, AP was not computed (pycocotools reads every person's box)."""
    ann, images, data = dataset
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    dets.write_text(json.dumps(_detections(data)))
    for a in data["annotations"]:
        del a["bbox"], a["area"]
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["pck@0.2"]["pck"] == 1.0 and rep["coco"]["AP"] > 0.9, rep
    warned = f"{ann}: {len(data['annotations'])} of the persons have no 'bbox'; each is run on the tightest box"
    assert warned in r.stderr
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    rep = json.loads(out.read_text())
    assert r.exit_code == 0 and warned in r.stderr and rep["pck@0.2"]["pck"] == 1.0 and rep["coco"]["AP"] > 0.9


def test_eval_with_no_photo_read_computes_nothing_and_says_why(torso_model, dataset, tmp_path):
    ann, _, _ = dataset
    empty, out = tmp_path / "empty", tmp_path / "report.json"
    empty.mkdir()
    r = run("eval", "--coco", ann, "--images", empty, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 1 and f"{empty / '1.png'}: file not found" in r.stderr
    assert "COCO keypoints  not computed: no photo was read" in r.stdout and "AP 0.000" not in r.stdout
    assert "PCK@0.2         not computed: no photo was read" in r.stdout
    assert "error: nothing was evaluated: no photo was read" in r.stderr
    rep = json.loads(out.read_text())
    assert rep["coco"] is None and rep["coco_note"] == "no photo was read" and rep["pck@0.2"]["pck"] is None


@pytest.mark.parametrize("change, why", [
    (lambda a: a.pop("category_id"), "2 have no 'category_id'"),
    (lambda a: a.update(category_id=3), "2 are of another category than the person category (1)"),
    (lambda a: a.update(iscrowd=1), "2 are crowds"),
    (lambda a: a.update(keypoints=[0, 0, 0] * 4), "2 have no labelled keypoint"),
])
def test_eval_file_without_a_usable_person_is_a_usage_error(torso_model, dataset, change, why):
    ann, images, data = dataset
    for a in data["annotations"]:
        change(a)
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 2 and f"{ann}: no person to evaluate: of its 2 annotations, {why}" in r.stderr, r.output
    assert r.stdout == "" and "Traceback" not in r.output


def test_coco_ap_is_none_when_not_computed_and_zero_only_when_everybody_was_missed(dataset):
    pytest.importorskip("pycocotools")
    import copy

    from fasterpose_rt.evaluate import NotComputed, coco_ap

    _, _, data = dataset
    before = copy.deepcopy(data)
    sigmas = np.full(4, 0.05)
    with pytest.raises(NotComputed, match="no photo was read"):
        coco_ap(data, [], [], 1, sigmas)
    missed = coco_ap(data, [], [1, 2], 1, sigmas)  # labelled persons, no pose: computed, all missed
    assert missed["AP"] == 0.0 and missed["AR"] == 0.0 and missed["APm"] == 0.0
    assert missed["APl"] is None and missed["ARl"] is None  # no large person: pycocotools' -1 stays None
    assert data == before  # pycocotools marks the annotations it is given: copies
    for a in data["annotations"]:
        a["keypoints"][2::3] = [0] * 4
        a["num_keypoints"] = 0
    with pytest.raises(NotComputed, match="no labelled person on the 2 photos read"):
        coco_ap(data, [], [1, 2], 1, sigmas)


def test_coco_ap_takes_a_poses_area_from_its_joints_not_the_box_it_was_run_on(dataset):
    """Results carry the box each pose was run on; pycocotools took a pose's area from it, so a wrong pose spanning
    a medium area was left out of APm for its large box (review s68), and the results were changed in place."""
    pytest.importorskip("pycocotools")
    import copy

    from fasterpose_rt.evaluate import coco_ap

    _, _, data = dataset
    right = [{"image_id": 1, "category_id": 1, "bbox": [5, 5, 70, 110], "score": 0.5,
              "keypoints": list(data["annotations"][0]["keypoints"])}]
    wrong = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 500, 500], "score": 0.9,  # a large box
              "keypoints": [0, 0, 1, 60, 0, 1, 0, 60, 1, 60, 60, 1]}]  # joints spanning 60 x 60: medium
    results = right + wrong
    before = copy.deepcopy(results)
    with_box = coco_ap(data, results, [1], 1, np.full(4, 0.05))
    assert results == before  # not changed
    without = coco_ap(data, [{k: v for k, v in r.items() if k != "bbox"} for r in results], [1], 1, np.full(4, 0.05))
    assert with_box == without and with_box["APm"] < 1.0  # the wrong pose counts against the medium person
    assert coco_ap(data, results, [1], 1, np.full(4, 0.05)) == with_box  # scored again: the same


def test_eval_places_detections_by_their_file_name(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    box = data["annotations"][0]["bbox"]
    dets.write_text(json.dumps([
        {"image_id": 2, "file_name": str(images / "1.png"), "bbox": box, "score": 1.0},  # another numbering's id
        {"image_id": 1, "file_name": "elsewhere/9.png", "bbox": box, "score": 1.0},  # a photo the file lacks
        {"image_id": 2, "bbox": box, "score": 1.0}]))  # no name: by image_id
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    det = json.loads(out.read_text())["detections"]
    assert (det["boxes"], det["remapped"], det["other_files"], det["persons_matched"]) == (2, 1, 1, 2)
    assert "1 of 3 detections name files the annotation file does not list (e.g. 'elsewhere/9.png')" in r.stderr
    assert "1 detection placed by file_name: the image_id differs from the annotation file's id" in r.stdout


@pytest.mark.parametrize("command", [["info"], ["bench", "--runs", "1", "--warmup", "0"]])
def test_info_and_bench_refuse_a_closed_stdout(command):
    """>&-: they printed nothing and exited 0 (review s59); predict already refused it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "fasterpose_rt.cli", *command]
    r = subprocess.run(["sh", "-c", '"$@" >&-', "sh", *cmd], stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 2 and "stdout is closed: nowhere to print the" in r.stderr, r.stderr


def test_info_and_bench_json_stay_strict_json_when_a_models_figures_are_not_finite(tmp_path):
    """A model whose metadata holds NaN or Infinity (json.loads takes them) made info --json and bench --json print
    NaN, which strict JSON readers refuse (review s62): they are null now."""
    text = json.loads(standin_metadata().to_json())
    text["validation"] = {"pck@0.2": float("nan"), "ap": float("inf")}
    model = write_standin(tmp_path / "m.onnx", metadata_text=json.dumps(text))

    def refuse(name):
        raise AssertionError(f"{name} printed: not JSON")

    r = run("info", "--model", model, "--json")
    assert r.exit_code == 0, r.output
    card = json.loads(r.stdout, parse_constant=refuse)
    assert card["metadata"]["validation"] == {"pck@0.2": None, "ap": None}
    r = run("bench", "--model", model, "--threads", "1", "--batch", "1", "--runs", "1", "--warmup", "0", "--json",
            "-q")
    assert r.exit_code == 0, r.output
    json.loads(r.stdout, parse_constant=refuse)


def test_a_model_that_fails_when_run_is_an_unusable_input_not_a_bug():
    """ModelError (a model that loads but whose output is not what its metadata says) ended bench and eval as
    "unexpected ModelError ... --debug", exit 1 (review s62): it is exit 2, said in one line."""
    import click
    from clirunner import invoke as invoke_command

    from fasterpose_rt.cli.common import debug_option, guarded
    from fasterpose_rt.session import ModelError

    @click.command()
    @debug_option
    @guarded
    def broken(debug):
        raise ModelError("m.onnx: output shape (1, 176, 3, 128), expected (1, 14, h, w)")

    r = invoke_command(broken, [])
    assert r.exit_code == 2 and "output shape (1, 176, 3, 128)" in r.stderr and "unexpected" not in r.stderr


def test_eval_says_when_a_detections_file_holds_no_detections(torso_model, dataset, tmp_path):
    """An empty detections list scored AP 0 without a word (review s62): the answer stands, and is explained."""
    ann, images, data = dataset
    dets = tmp_path / "dets.json"
    dets.write_text("[]")
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q")
    assert r.exit_code == 0 and "holds no detections: every person counts as missed" in r.stderr, r.output
    dets.write_text(json.dumps(_detections(data)))  # detections, none scoring --det-score or more
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q",
            "--det-score", "2")
    assert r.exit_code == 0 and "holds no detections scoring --det-score 2 or more" in r.stderr, r.output


def test_info_prints_a_keypoint_name_with_control_characters_escaped(tmp_path):
    """review s67: a name holding a newline split info's keypoints line, and an ESC reached the terminal."""
    text = json.loads(standin_metadata().to_json())
    text["keypoints"][0] = "red\nfake line\x1b[31m"
    model = write_standin(tmp_path / "m.onnx", metadata_text=json.dumps(text))
    r = run("info", "--model", model)
    assert r.exit_code == 0 and "red\\nfake line\\x1b[31m" in r.stdout and "\x1b" not in r.stdout, r.output
    assert not any(line.startswith("fake line") for line in r.stdout.splitlines())
