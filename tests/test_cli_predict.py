"""``fasterpose predict`` through click's CliRunner: inputs, options, outputs and every failure path."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clirunner import invoke
from fakes import GatedSource
from standin import STANDIN_POINTS, paint_blobs, read_video, write_video

from fasterpose_rt import PosePredictor
from fasterpose_rt.tracking import REFINE_PASSES
from fasterpose_rt.cli import main
from fasterpose_rt.cli.out_dir_sources import SOURCES_NAME
from fasterpose_rt.drawing_mark import may_draw_over

POINTS = STANDIN_POINTS  # stand-in keypoints in an 80x120 photo


def results_in(out_dir):
    """The files of an --out-dir folder but its record of whose results each holds (out_dir_sources)."""
    return [f for f in out_dir.iterdir() if f.name != SOURCES_NAME]


def photo(points=POINTS, shape=(120, 80)):
    return paint_blobs(shape, points)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    cv2.imwrite(str(d / "a.jpg"), photo())
    cv2.imwrite(str(d / "sub" / "b.png"), photo())
    return d


def run(*args):
    return invoke(main, args)


def assert_no_traceback(result):
    assert "Traceback" not in result.output, result.output


def test_folder_to_results_file(folder, standin_path, tmp_path):
    out = tmp_path / "r.json"
    r = run("predict", folder, "--model", standin_path, "--out", out, "--no-search")
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert [e["file_name"] for e in res] == [(folder / "a.jpg").as_posix(), (folder / "sub/b.png").as_posix()]
    assert [e["image_id"] for e in res] == [1, 2] and all(e["category_id"] == 1 for e in res)
    kp = np.array(res[0]["keypoints"]).reshape(-1, 3)
    np.testing.assert_allclose(kp[:, :2], POINTS, atol=0.5)  # the stand-in finds its blobs
    # the whole photo, then (--refine's default for a guessed box) the tight box around the joints found
    np.testing.assert_allclose(res[0]["bbox"], [30, 30, 20, 60], atol=0.5)
    assert "2 photos, 2 persons" in r.stderr and "2/2" not in r.stderr  # summary; a bar on a terminal only
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--refine", "0", "-q", "--no-search")
    assert json.loads(r.stdout)[0]["bbox"] == [-0.5, -0.5, 80.0, 120.0]  # no refine pass: the whole photo


def test_a_list_of_photos_is_predicted_and_its_missing_entries_named(folder, standin_path, tmp_path):
    """fasterpose predict photos.txt: the listed photos in the list's order, --vis named by the listed paths, a
    missing entry named with its line while the rest is written, exit 1 for it; the same poses as the folder's."""
    lst = folder / "photos.txt"
    lst.write_text("# two of them\nsub/b.png\nnot_there.jpg\na.jpg\n")
    out, vis = tmp_path / "r.json", tmp_path / "vis"
    r = run("predict", lst, "--model", standin_path, "--out", out, "--vis", vis, "--no-search")
    assert r.exit_code == 1 and "2 photos, 2 persons" in r.stderr and "1 input failed" in r.stderr, r.output
    assert f"error: {folder / 'not_there.jpg'}: no such file or folder (line 3 of the list {lst})" in r.stderr
    assert_no_traceback(r)
    res = json.loads(out.read_text())
    assert [e["file_name"] for e in res] == [(folder / "sub/b.png").as_posix(), (folder / "a.jpg").as_posix()]
    assert sorted(f.relative_to(vis).as_posix() for f in vis.rglob("*") if f.is_file()) == ["a.jpg", "sub/b.png"]
    r = run("predict", folder, "--model", standin_path, "--no-search", "-q")
    by_folder = {e["file_name"]: e["keypoints"] for e in json.loads(r.stdout)}
    assert {e["file_name"]: e["keypoints"] for e in res} == by_folder


def test_a_quoted_pattern_is_expanded_and_one_matching_nothing_is_named(folder, standin_path):
    r = run("predict", str(folder / "**" / "*.png"), str(folder / "*.gif"), "--model", standin_path, "--no-search")
    assert r.exit_code == 1 and "1 photo, 1 person" in r.stderr and "1 input failed" in r.stderr, r.output
    assert f"error: {folder / '*.gif'}: the pattern matches no photos or videos" in r.stderr
    assert [e["file_name"] for e in json.loads(r.stdout)] == [(folder / "sub/b.png").as_posix()]
    assert_no_traceback(r)
    r = run("predict", str(folder / "missing.jpg"), "--model", standin_path, "-q")  # not a pattern: a missing path
    assert r.exit_code == 1 and r.stderr.splitlines() == [f"error: {folder / 'missing.jpg'}: no such file or folder"]


def test_a_missing_path_on_the_command_line_is_named_and_skipped_as_a_missing_list_line_is(folder, standin_path,
                                                                                            tmp_path):
    """predict a.jpg missing.jpg sub/: one line names the missing path, the other inputs are processed and their
    results written, exit 1 (not a usage error that writes nothing); with no input there at all: that line, no
    results, exit 1."""
    out, missing, gone = tmp_path / "m.json", tmp_path / "missing.jpg", tmp_path / "gone"
    r = run("predict", folder / "a.jpg", missing, folder / "sub", gone, "--model", standin_path, "--no-search",
            "--out", out)
    assert r.exit_code == 1 and "2 photos, 2 persons" in r.stderr and "2 inputs failed" in r.stderr, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert errors == [f"error: {missing}: no such file or folder", f"error: {gone}: no such file or folder"]
    assert "Usage" not in r.stderr
    assert_no_traceback(r)
    assert [e["file_name"] for e in json.loads(out.read_text())] == [
        (folder / "a.jpg").as_posix(), (folder / "sub/b.png").as_posix()]
    r = run("predict", missing, "--model", standin_path, "-q")
    assert r.exit_code == 1 and r.stderr.splitlines() == [f"error: {missing}: no such file or folder"], r.output
    assert json.loads(r.stdout) == []


def test_a_lists_relative_lines_are_named_without_dot_dot(folder, standin_path, tmp_path, monkeypatch):
    """lst/list.txt naming ../photos/a.jpg: results, --vis and --out-dir name it photos/a.jpg, not
    lst/../photos/a.jpg, and a --boxes entry naming photos/a.jpg is its entry; a .. after a symlinked folder,
    which leads elsewhere, is kept: two files never take one name."""
    monkeypatch.chdir(tmp_path)
    Path("lst").mkdir()
    Path("lst/list.txt").write_text("../photos/a.jpg\n./../photos/sub/../sub/b.png\n")
    boxes = Path("boxes.json")
    boxes.write_text(json.dumps({"photos/a.jpg": [[30, 30, 20, 60]], "sub/b.png": [[0, 0, 80, 120]]}))
    r = run("predict", "lst/list.txt", "--model", standin_path, "--boxes", boxes, "--vis", "vis", "--out-dir", "own",
            "-q")
    assert r.exit_code == 0, r.output
    assert [(e["file_name"], e["bbox"]) for e in json.loads(r.stdout)] == [
        ("photos/a.jpg", [30, 30, 20, 60]), ("photos/sub/b.png", [0, 0, 80, 120])]
    assert sorted(f.as_posix() for f in Path("vis").rglob("*") if f.is_file()) == ["vis/a.jpg", "vis/b.png"]
    assert [json.loads(f.read_text())[0]["file_name"] for f in sorted(Path("own").rglob("*.json"))] == [
        "photos/a.jpg", "photos/sub/b.png"]
    # lst/link -> photos/sub: link/../a.jpg is photos/a.jpg, not lst/a.jpg (another photo, there too)
    Path("lst/link").symlink_to(folder / "sub", target_is_directory=True)
    cv2.imwrite("lst/a.jpg", photo([[x + 5, y + 5] for x, y in POINTS]))
    Path("lst/list.txt").write_text("link/../a.jpg\na.jpg\n")
    r = run("predict", "lst/list.txt", "--model", standin_path, "--no-search", "-q")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [e["file_name"] for e in res] == ["lst/link/../a.jpg", "lst/a.jpg"]
    assert res[0]["keypoints"] != res[1]["keypoints"]


def test_refine_passes_are_model_calls_on_the_box_around_the_joints(folder, standin_path, monkeypatch):
    seen = []
    real = PosePredictor.predict_batch

    def record(self, images, boxes=None):  # every model call goes through predict_batch
        assert len(images) == 1
        seen.append(None if boxes is None or boxes[0] is None else np.asarray(boxes[0], np.float64).tolist())
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", record)
    for passes, calls in (("0", 1), ("1", 2), ("3", 2)):  # after one pass the box is settled: it stops
        seen.clear()
        r = run("predict", folder / "a.jpg", "--model", standin_path, "--refine", passes, "-q", "--no-search")
        assert r.exit_code == 0, r.output
        assert len(seen) == calls and seen[0] is None  # the whole photo first
        for boxes in seen[1:]:
            np.testing.assert_allclose(boxes, [[30, 30, 20, 60]], atol=0.5)
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--refine", "-1")
    assert r.exit_code == 2 and "--refine" in r.output


def test_stdout_when_no_out_and_quiet(folder, standin_path):
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--quiet", "--flip", "--threads", "1")
    assert r.exit_code == 0 and r.stderr == ""
    assert len(json.loads(r.stdout)) == 1


def test_box_padding_option_is_the_predictors(folder, standin_path):
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--box-padding", "1.05", "--refine", "0", "-q",
            "--no-search")
    assert r.exit_code == 0, r.output
    got = np.array(json.loads(r.stdout)[0]["keypoints"]).reshape(-1, 3)
    want = PosePredictor(standin_path, threads=1, box_padding=1.05).predict(cv2.imread(str(folder / "a.jpg")))
    np.testing.assert_allclose(got[:, :2], want.keypoints[0], atol=0.006)  # results keep 2 decimals
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--box-padding", "-1")
    assert r.exit_code == 2 and "--box-padding" in r.output
    assert_no_traceback(r)


def test_bad_photos_are_named_skipped_and_exit_1(folder, standin_path, tmp_path):
    (folder / "text.jpg").write_text("not a photo")
    (folder / "empty.png").write_bytes(b"")
    ok, buf = cv2.imencode(".jpg", photo())
    (folder / "cut.jpg").write_bytes(buf.tobytes()[:100])  # truncated beyond decoding
    out = tmp_path / "r.json"
    r = run("predict", folder, "--model", standin_path, "--out", out)
    assert r.exit_code == 1
    assert_no_traceback(r)
    for name, reason in [("text.jpg", "not a decodable image"), ("empty.png", "file is empty"),
                         ("cut.jpg", "not a decodable image")]:
        assert f"error: {folder / name}: {reason}" in r.stderr
    assert len(json.loads(out.read_text())) == 2 and "3 inputs failed" in r.stderr


def _damaged_jpeg(image) -> bytes:
    """A JPEG of ``image`` with 200 bytes of its scan zeroed: it decodes, libjpeg warning of corrupt data."""
    ok, buf = cv2.imencode(".jpg", image)
    data = bytearray(buf.tobytes())
    data[len(data) // 2:len(data) // 2 + 200] = bytes(200)
    return bytes(data)


def test_a_damaged_jpeg_is_named_with_what_its_decoder_said(folder, standin_path, tmp_path, capfd):
    """s64: libjpeg printed "Corrupt JPEG data: ... extraneous bytes before marker 0xd9" straight to stderr, naming
    no file: in a folder of thousands, which photo? Now the warning names it; the photo is still run."""
    big = cv2.resize(photo(), (1800, 2700))  # decoded at 1/2, and read again whole to be drawn
    (folder / "damaged.jpg").write_bytes(_damaged_jpeg(big))
    out = tmp_path / "r.json"
    capfd.readouterr()
    r = run("predict", folder, "--model", standin_path, "--out", out, "--vis", tmp_path / "vis")
    fd_err = capfd.readouterr().err
    assert r.exit_code == 0, r.output
    assert re.search(rf"warning: {re.escape(str(folder / 'damaged.jpg'))}: damaged data, decoded as far as the "
                     r"decoder could: parts may be gray or garbled \(Corrupt JPEG data: ", r.stderr), r.stderr
    assert "Corrupt JPEG data" not in fd_err, fd_err  # not unnamed as well (nor again when drawn)
    assert len(json.loads(out.read_text())) == 3 and any(p.name == "damaged.jpg" for p in (tmp_path / "vis").rglob("*"))


def test_gray_rgba_16bit_photos_are_processed(tmp_path, standin_path):
    p = photo()
    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(p, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(p, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "deep.png"), p.astype(np.uint16) * 257)
    r = run("predict", tmp_path, "--model", standin_path, "-q")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and len(res) == 3
    cv2.imwrite(str(tmp_path / "plain.png"), p)  # the same pixels as an 8-bit BGR photo
    r = run("predict", tmp_path / "plain.png", "--model", standin_path, "-q")
    plain = np.array(json.loads(r.stdout)[0]["keypoints"]).reshape(-1, 3)[:, :2]
    for e in res:  # each converted photo gives the 8-bit photo's poses (gray: one colour, so one blob per joint)
        if not e["file_name"].endswith("gray.png"):
            np.testing.assert_allclose(np.array(e["keypoints"]).reshape(-1, 3)[:, :2], plain, atol=1e-3)
    np.testing.assert_allclose(plain, POINTS, atol=1.0)  # within a quarter heatmap pixel (4 crop px)


def test_a_folder_takes_its_gif_photos(tmp_path, standin_path):
    """A GIF OpenCV reads was taken when named, but left out of a folder without a word (review s58)."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.png"), photo())
    if not cv2.imwrite(str(shoot / "b.gif"), photo()):
        pytest.skip(f"OpenCV {cv2.__version__} writes no GIF")
    r = run("predict", shoot, "--model", standin_path, "--no-search", "-q")
    assert r.exit_code == 0 and sorted(Path(e["file_name"]).name for e in json.loads(r.stdout)) == ["a.png", "b.gif"]


def test_empty_folder_is_reported(tmp_path, standin_path):
    (tmp_path / "none").mkdir()
    r = run("predict", tmp_path / "none", "--model", standin_path)
    assert r.exit_code == 1 and "no photos" in r.stderr and json.loads(r.stdout) == []


@pytest.mark.parametrize("args, message", [
    ([""], "does not exist"),  # an empty name, which pathlib reads as the current folder (a missing path: exit 1)
    (["{photo}", "--batch-size", "0"], "--batch-size"),
    (["{photo}", "--nonsense"], "No such option"),
    (["{photo}", "--every", "x"], "--every"),
    (["{photo}", "--boxes", "{photo}", "--detector", "hog"], "either --boxes or --detector"),
    (["{photo}", "--fast", "--model", "{model}"], "--fast"),
    (["{photo}", "--out", "{photo}/r.json"], "cannot write results"),
])
def test_usage_errors_exit_2(folder, standin_path, args, message):
    args = [a.format(photo=folder / "a.jpg", model=standin_path) for a in args]
    r = run("predict", *args, *([] if "--model" in args else ["--model", standin_path]))
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert_no_traceback(r)


def test_unusable_model_exit_2(folder, tmp_path, standin_factory):
    from standin import write_standin

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    nometa = write_standin(tmp_path / "nometa.onnx", metadata_text=None)
    for model, message in [(junk, "not a loadable ONNX model"), (nometa, "no 'fasterpose' metadata"),
                           (tmp_path / "absent.onnx", "model file not found")]:
        r = run("predict", folder / "a.jpg", "--model", model)
        assert r.exit_code == 2 and "cannot load the model" in r.stderr and message in r.stderr, r.output
        assert_no_traceback(r)


def test_debug_shows_the_traceback(folder, tmp_path):
    r = run("predict", folder / "a.jpg", "--model", tmp_path / "absent.onnx", "--debug")
    assert r.exit_code == 2 and "Traceback" in r.stderr and "ModelNotFoundError" in r.stderr


def test_fast_absent_is_a_clear_usage_error(folder, tmp_path, monkeypatch):
    from fasterpose_rt import DEFAULT_MODELS

    monkeypatch.setitem(DEFAULT_MODELS, "fast", tmp_path / "none.onnx")  # as if the package lost its fast model
    r = run("predict", folder / "a.jpg", "--fast")
    assert r.exit_code == 2 and "fast model is not present" in r.stderr


def test_unexpected_error_is_one_line_unless_debug(folder, standin_path, monkeypatch):
    def boom(self, images, boxes=None):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(PosePredictor, "predict_batch", boom)
    r = run("predict", folder / "a.jpg", "--model", standin_path)
    assert r.exit_code == 1 and "unexpected ZeroDivisionError: bug" in r.stderr and "--debug" in r.stderr
    assert_no_traceback(r)
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--debug")  # the photo fails, with its traceback
    assert r.exit_code == 1 and "Traceback" in r.stderr and "ZeroDivisionError: bug" in r.stderr


def test_ctrl_c_keeps_finished_results_and_exits_130(folder, standin_path, tmp_path, monkeypatch):
    for i in range(3):
        cv2.imwrite(str(folder / f"c{i}.jpg"), photo())
    calls = []
    real = PosePredictor.predict_batch

    def interrupt_third(self, images, boxes=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", interrupt_third)
    out = tmp_path / "r.json"
    r = run("predict", folder, "--model", standin_path, "--out", out, "--refine", "0", "--batch-size", "1")
    # one call per photo: --batch-size 1 also makes each photo its own group
    assert r.exit_code == 130 and "interrupted" in r.stderr
    assert len(json.loads(out.read_text())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "r.json"]  # no temporary file left


@pytest.mark.parametrize("name", ["r.json", "r.csv", "r.jsonl"])
def test_a_run_that_processes_nothing_keeps_the_results_file_there(folder, standin_path, tmp_path, name, monkeypatch):
    """A mistyped input replaced earlier results with [] (review s58); so did Ctrl-C before the first photo. A run
    that processes anything writes its results as before; with no file there, the empty results are written."""
    out = tmp_path / name
    out.write_text("earlier results\n")
    r = run("predict", tmp_path / "nothere.jpg", "--model", standin_path, "--out", out)
    assert r.exit_code == 1 and out.read_text() == "earlier results\n", r.output
    assert r.stderr.splitlines()[-1].endswith(f"-> {out} (left as it was: nothing processed); 1 input failed")
    r = run("predict", tmp_path / "nothere.jpg", "--model", standin_path, "--out", out, "-q")
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == f"{out} left as it was: nothing processed"
    r = run("predict", tmp_path / "nothere.jpg", "--model", standin_path, "--out", tmp_path / "new.json", "-q")
    assert r.exit_code == 1 and json.loads((tmp_path / "new.json").read_text()) == []
    monkeypatch.setattr(PosePredictor, "predict_batch", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    r = run("predict", folder, "--model", standin_path, "--out", out, "--refine", "0")
    assert r.exit_code == 130 and out.read_text() == "earlier results\n", r.output
    monkeypatch.undo()
    r = run("predict", folder / "a.jpg", tmp_path / "nothere.jpg", "--model", standin_path, "--out", out, "-q")
    assert r.exit_code == 1 and out.read_text() != "earlier results\n" and "left as it was" not in r.stderr


def test_boxes_map_file(folder, standin_path, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[10, 10, 60, 100], [0, 0, 40, 60]], "sub/b.png": []}))
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes, "-q")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and [e["bbox"] for e in res] == [[10, 10, 60, 100], [0, 0, 40, 60]]  # no refine
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes, "-q", "--refine", "2")  # asked for
    np.testing.assert_allclose(json.loads(r.stdout)[0]["bbox"], [30, 30, 20, 60], atol=0.5)
    boxes.write_text(json.dumps({"a.jpg": []}))
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes)
    assert r.exit_code == 1 and "b.png: not listed in the boxes file" in r.stderr


def test_a_boxes_entry_by_absolute_path_names_the_photo_given_relatively(folder, standin_path, tmp_path, monkeypatch):
    """predict's results of $PWD/photos, then photos given as photos/: no photo was listed (review s58)."""
    monkeypatch.chdir(folder.parent)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({(folder / "a.jpg").as_posix(): [[10, 10, 60, 100]],
                                 (tmp_path / "elsewhere" / "photos" / "sub" / "b.png").as_posix(): [[0, 0, 40, 60]]}))
    r = run("predict", "photos", "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 1 and "not listed in the boxes file" in r.stderr, r.output  # b.png's entry: another file
    assert [(e["file_name"], e["bbox"]) for e in json.loads(r.stdout)] == [("photos/a.jpg", [10, 10, 60, 100])]


def test_boxes_coco_file_carries_image_ids_and_person_category(folder, standin_path, tmp_path):
    """Results carry the COCO file's image ids and its person category's id (COCOeval scores that category only:
    id 1 in a file numbering persons 2 gave AP 0); a video's frames its category, and an image id each (the file's
    id names one image), numbered after the largest id the photos keep (43; a.jpg took 44 as without --boxes)."""
    write_video(folder / "clip.mp4", frames=2)
    coco = {"images": [{"id": 42, "file_name": "a.jpg"}, {"id": 43, "file_name": "sub/b.png"},
                       {"id": 44, "file_name": "clip.mp4"}],
            "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "person"}],
            "annotations": [{"image_id": 42, "category_id": 2, "bbox": [10, 10, 60, 100]},
                            {"image_id": 43, "category_id": 2, "bbox": [0, 0, 80, 120]},
                            {"image_id": 43, "category_id": 2, "bbox": []},
                            {"image_id": 44, "category_id": 2, "bbox": [20, 20, 40, 80]}]}
    boxes = tmp_path / "coco.json"
    boxes.write_text(json.dumps(coco))
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes, "-q")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and [e["image_id"] for e in res] == [42, 45, 46, 43], r.output
    assert {e["category_id"] for e in res} == {2}


def test_a_coco_boxes_files_person_box_of_no_size_is_left_out_with_a_warning(folder, standin_path, tmp_path):
    """A COCO --boxes file's person box with w or h <= 0 was left out without a word, its photo reported with
    nobody (review s62); it still is (nobody to crop there), and a warning says so."""
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "sub/b.png"}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 100]},
                            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 80, -1]},
                            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 80, 120]},
                            # review s66: a person without a bbox was left out unsaid
                            {"image_id": 1, "category_id": 1, "keypoints": [10, 10, 2] * 4},
                            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1}]}  # (a crowd)
    boxes = tmp_path / "coco.json"
    boxes.write_text(json.dumps(coco))
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0 and [e["image_id"] for e in json.loads(r.stdout)] == [2], r.output
    assert "3 persons without a box, or with w or h <= 0, left out" in r.stderr


def test_running_ids_never_take_an_image_id_the_boxes_file_gives_a_photo(tmp_path, standin_path):
    """A video's frames and a photo its --boxes entry gives no id are numbered after the largest id the run's
    photos keep from the file: numbered from 1, the video's frames took the ids of the COCO file's photos 1 and 2
    (two images, one id: COCOeval pairs each result with the wrong labels); a resumed run numbers them alike."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_video(shoot / "clip.mp4", frames=3)
    for name in ("b.jpg", "c.jpg"):
        cv2.imwrite(str(shoot / name), photo())
    boxes = tmp_path / "coco.json"
    boxes.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "b.jpg"}, {"id": 2, "file_name": "c.jpg"},
                   {"id": 3, "file_name": "clip.mp4"}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [20, 20, 40, 80]} for i in (1, 2, 3)]}))
    own = tmp_path / "own"
    base = ("predict", shoot / "b.jpg", shoot / "clip.mp4", shoot / "c.jpg", "--model", standin_path,
            "--boxes", boxes, "--out-dir", own, "-q")
    r = run(*base)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # b.jpg takes a running id (3) as without --boxes, and keeps the file's
    assert [(e["file_name"].rsplit("/", 1)[1], e.get("frame"), e["image_id"]) for e in res] == [
        ("b.jpg", None, 1), ("clip.mp4", 0, 4), ("clip.mp4", 1, 5), ("clip.mp4", 2, 6), ("c.jpg", None, 2)]
    whole = {f.name: f.read_text() for f in results_in(own)}
    (own / "clip.jsonl").unlink()
    r = run(*base, "--skip-existing")  # the photos skipped: the video keeps a whole run's ids
    assert r.exit_code == 0 and {f.name: f.read_text() for f in results_in(own)} == whole, r.output
    # a list of detections (a detector's, predict's own results) naming one photo's id and not the other's
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"file_name": "c.jpg", "bbox": [20, 20, 40, 80], "score": 0.9, "image_id": 1},
                                {"file_name": "b.jpg", "bbox": [20, 20, 40, 80], "score": 0.9}]))
    r = run("predict", shoot / "b.jpg", shoot / "c.jpg", "--model", standin_path, "--boxes", dets, "-q")
    assert r.exit_code == 0 and [e["image_id"] for e in json.loads(r.stdout)] == [2, 1], r.output


def test_a_list_of_detections_or_of_predicts_own_results_gives_the_boxes(folder, standin_path, tmp_path):
    first = tmp_path / "first.json"
    r = run("predict", folder, "--model", standin_path, "--out", first, "-q")  # searched: boxes of its own
    assert r.exit_code == 0, r.output
    found = json.loads(first.read_text())
    r = run("predict", folder, "--model", standin_path, "--boxes", first, "-q")  # run again in those boxes
    again = json.loads(r.stdout)
    assert r.exit_code == 0 and [e["bbox"] for e in again] == [e["bbox"] for e in found]
    # the same poses: the boxes were written rounded to 0.01 px, so joints move by hundredths of a pixel
    np.testing.assert_allclose([e["keypoints"] for e in again], [e["keypoints"] for e in found], atol=0.05)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"file_name": "a.jpg", "bbox": [10, 10, 60, 100], "score": 0.9, "image_id": 7},
                                {"file_name": "a.jpg", "bbox": [0, 0, 40, 60], "score": 0.2, "image_id": 7},
                                {"file_name": "sub/b.png", "bbox": [0, 0, 80, 120], "score": 0.8}]))
    r = run("predict", folder, "--model", standin_path, "--boxes", dets, "--box-score", "0.5", "-q")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and [e["bbox"] for e in res] == [[10, 10, 60, 100], [0, 0, 80, 120]]
    assert res[0]["image_id"] == 7  # the detections' image id is kept
    dets.write_text(json.dumps([{"image_id": 7, "bbox": [10, 10, 60, 100], "score": 0.9}]))
    r = run("predict", folder, "--model", standin_path, "--boxes", dets)
    assert r.exit_code == 2 and "name photos by image_id only" in r.stderr
    assert_no_traceback(r)


def test_a_boxes_entry_naming_two_inputs_is_refused_before_any_work(tmp_path, standin_path, monkeypatch):
    """`predict x y --boxes boxes.json` with an entry a.jpg: both x/a.jpg and y/a.jpg took its boxes and image id,
    silently wrong for one. Refused, naming the entry and the photos, before the model is loaded or any output
    made; entries x/a.jpg and y/a.jpg (or x/a.jpg beside a.jpg: the longer names x's) keep working."""
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "a.jpg"), photo())
    x, y, boxes = tmp_path / "x", tmp_path / "y", tmp_path / "boxes.json"
    out, vis = tmp_path / "r.json", tmp_path / "vis"
    boxes.write_text(json.dumps({"a.jpg": [[10, 10, 60, 100]]}))
    monkeypatch.chdir(tmp_path)
    loaded = []
    monkeypatch.setattr(PosePredictor, "__init__", lambda self, *a, **k: loaded.append(1) or 1 / 0)
    r = run("predict", "x", "y", "--model", standin_path, "--boxes", boxes, "--out", out, "--vis", vis)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.strip().splitlines() == [
        f"Error: {boxes}: entry 'a.jpg' names 2 inputs, x/a.jpg and y/a.jpg, and would give each its boxes; give "
        "each an entry naming more of its path (as 'x/a.jpg')"]
    assert not loaded and not out.exists() and not vis.exists()
    monkeypatch.undo()
    boxes.write_text(json.dumps({"x/a.jpg": [[10, 10, 60, 100]], "y/a.jpg": [[0, 0, 40, 60]]}))
    r = run("predict", x, y, "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0 and [e["bbox"] for e in json.loads(r.stdout)] == [[10, 10, 60, 100], [0, 0, 40, 60]]
    boxes.write_text(json.dumps({"a.jpg": [[0, 0, 40, 60]], "x/a.jpg": [[10, 10, 60, 100]]}))
    r = run("predict", x, y, "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0 and [e["bbox"] for e in json.loads(r.stdout)] == [[10, 10, 60, 100], [0, 0, 40, 60]]
    # a file argument's own name had won over the longer entry: x/a.jpg took a.jpg's boxes
    r = run("predict", x / "a.jpg", "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0 and [e["bbox"] for e in json.loads(r.stdout)] == [[10, 10, 60, 100]], r.output


def test_two_runs_results_in_one_list_give_their_photos_new_ids_where_they_share_one(tmp_path, standin_path):
    """Two runs' results put in one list, as --boxes: each run numbered its photos from 1, so x/a.jpg and y/b.jpg
    both have image_id 1. That was refused (the file to be edited by hand); the two take running ids, after the
    largest the file gives (x/c.jpg's 2, kept), with one warning line naming them, and a resumed run alike."""
    for sub, names in (("x", ("a.jpg", "c.jpg")), ("y", ("b.jpg",))):
        (tmp_path / sub).mkdir()
        for name in names:
            cv2.imwrite(str(tmp_path / sub / name), photo())
    x, y, merged, own = tmp_path / "x", tmp_path / "y", tmp_path / "merged.json", tmp_path / "own"
    first, second = (run("predict", folder, "--model", standin_path, "-q") for folder in (x, y))
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    merged.write_text(json.dumps(json.loads(first.stdout) + json.loads(second.stdout)))
    a, b, c = ((tmp_path / n).as_posix() for n in ("x/a.jpg", "y/b.jpg", "x/c.jpg"))
    assert [(e["file_name"], e["image_id"]) for e in json.loads(merged.read_text())] == [(a, 1), (c, 2), (b, 1)]
    base = ("predict", x, y, "--model", standin_path, "--boxes", merged, "--out-dir", own, "-q")
    r = run(*base)
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().splitlines() == [
        f"warning: {merged}: entries {a.lstrip('/')!r} and {b.lstrip('/')!r} both give image_id 1, to two photos, {a} "
        f"and {b}; they get new image ids, numbered after the largest the file gives (2)"]  # entries: as looked up
    # a takes 3 (after 2), c keeps 2 (as without --boxes, it takes a running id: 4), b takes 5
    assert [(e["file_name"], e["image_id"]) for e in json.loads(r.stdout)] == [(a, 3), (c, 2), (b, 5)]
    whole = {f.relative_to(own): f.read_text() for f in own.rglob("*.json")}
    (own / "x" / "a.json").unlink()
    r = run(*base, "--skip-existing")
    assert r.exit_code == 0 and {f.relative_to(own): f.read_text() for f in own.rglob("*.json")} == whole, r.output
    r = run("predict", x, "--model", standin_path, "--boxes", merged, "-q")  # one of them: its id, no warning
    assert r.exit_code == 0 and r.stderr == "" and [e["image_id"] for e in json.loads(r.stdout)] == [1, 2]


def test_a_videos_frames_never_take_the_ids_of_a_coco_files_photos_left_out_of_the_run(tmp_path, standin_path):
    """A dense COCO file, images b.jpg 1, clip.mp4 2, c.jpg 3, d.jpg 4, and `predict b.jpg clip.mp4`: the frames
    were numbered after the largest id the run's photos keep (b's 1), so took c's and d's ids 3 and 4 (merged
    with another run's results, or scored, two images had one id). They come after the largest the file gives
    (4, clip's own id left out: its frames take ids of their own), in a resumed run too."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_video(shoot / "clip.mp4", frames=3)
    for name in ("b.jpg", "c.jpg", "d.jpg"):
        cv2.imwrite(str(shoot / name), photo())
    dense = tmp_path / "dense.json"
    dense.write_text(json.dumps({
        "images": [{"id": i, "file_name": n} for i, n in ((1, "b.jpg"), (2, "clip.mp4"), (3, "c.jpg"), (4, "d.jpg"))],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [20, 20, 40, 80]} for i in (1, 2, 3, 4)]}))
    own = tmp_path / "own"
    base = ("predict", shoot / "b.jpg", shoot / "clip.mp4", "--model", standin_path, "--boxes", dense,
            "--out-dir", own, "-q")
    r = run(*base)
    assert r.exit_code == 0, r.output
    # b.jpg keeps 1 and, as without --boxes, takes a running id (5): the frames 6, 7, 8
    assert [(e["file_name"].rsplit("/", 1)[1], e.get("frame"), e["image_id"]) for e in json.loads(r.stdout)] == [
        ("b.jpg", None, 1), ("clip.mp4", 0, 6), ("clip.mp4", 1, 7), ("clip.mp4", 2, 8)]
    whole = {f.name: f.read_text() for f in results_in(own)}
    (own / "clip.jsonl").unlink()
    r = run(*base, "--skip-existing")  # b.jpg skipped: the video keeps a whole run's ids
    assert r.exit_code == 0 and {f.name: f.read_text() for f in results_in(own)} == whole, r.output
    r = run("predict", shoot / "clip.mp4", "--model", standin_path, "--boxes", dense, "-q")
    assert r.exit_code == 0 and [e["image_id"] for e in json.loads(r.stdout)] == [5, 6, 7], r.output


@pytest.mark.parametrize("content, message", [
    ({"a.jpg": [[1, 2, 3]]}, "must be a list of [x, y, w, h] boxes"),
    # boxes no photo has: named as the file is read (review s58: a numpy overflow warning, a box "wholly outside"
    # the photo, then the photo failed)
    ({"a.jpg": [[1e308, 1e308, 1e308, 1e308]]}, "entry 'a.jpg': box [1e+308, 1e+308, 1e+308, 1e+308] is out of range "
                                                "(values within +-1e+08 px, sides at least 0.001 px)"),
    ([{"file_name": "a.jpg", "bbox": [0, 0, 1e-9, 5]}], "entry 0: 'bbox' [0, 0, 1e-09, 5] is out of range"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "person"}],
      "annotations": [{"image_id": 1, "category_id": 1, "bbox": [-3e8, 0, 10, 10]}]},
     "annotations[0]: bbox [-300000000.0, 0, 10, 10] is out of range"),
    # review s59: the later record or entry hid the earlier's persons without a word; "unexpected TypeError"s
    ({"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg"}], "annotations": []},
     "images 1 and 2 both name the photo 'a.jpg'"),
    ({"a.jpg": [[1, 2, 3, 4]], "./a.jpg": [[5, 6, 7, 8]]}, "entries 'a.jpg' and './a.jpg' name the same photo"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": [1], "name": "person"}],
      "annotations": []}, "categories[0] needs an integer 'id', got [1]"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "person"}],
      "annotations": [{"image_id": 1, "category_id": [1], "bbox": [0, 0, 10, 10]}]},
     "annotations[0]: 'category_id' must be an integer, got [1]"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "person"}],
      "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": "no"}]},
     "annotations[0]: 'iscrowd' must be 0 or 1, got 'no'"),
    ("[" * 200_000 + "]" * 200_000, "not valid JSON here: nested too deeply"),
    ('{"a.jpg": [[1, 2, 3, ' + "7" * 5000 + ']]}', "not valid JSON: it holds an integer thousands of digits long"),
])
def test_malformed_boxes_file_exit_2(folder, standin_path, tmp_path, content, message):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(content if isinstance(content, str) else json.dumps(content))
    r = run("predict", folder, "--model", standin_path, "--boxes", boxes)
    assert r.exit_code == 2 and message in r.stderr and "Warning" not in r.stderr, r.output
    assert_no_traceback(r)


def test_hog_detector(folder, standin_path):
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--detector", "hog", "-q")
    if not hasattr(cv2, "HOGDescriptor"):
        assert r.exit_code == 2 and "no HOG people detector" in r.stderr and "--boxes" in r.stderr
    else:  # a black photo with blobs holds nobody: the whole photo is used
        assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1


@pytest.mark.skipif(not hasattr(cv2, "HOGDescriptor"), reason="this OpenCV build has no HOG people detector")
def test_hog_detector_on_photos_smaller_than_its_window():
    """OpenCV's HOG corrupts memory (abort or segfault, taking the whole run's results with it) on pictures smaller
    than its padded 64x128 window; the detector pads them and finds nobody. In a child process, as a crash would
    end pytest."""
    code = ("import numpy as np; from fasterpose_rt.boxes import HogPeopleDetector; d = HogPeopleDetector()\n"
            "for h, w, c in [(1, 1, 3), (2, 3, 3), (30, 20, 3), (6, 6, 3), (32, 64, 3), (40, 30, 4), (20, 100, 1)]:\n"
            "    boxes, scores = d(np.zeros((h, w, c), np.uint8)); assert boxes.shape == (0, 4), boxes\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-500:])


def test_vis_photos(folder, standin_path, tmp_path):
    vis = tmp_path / "vis"
    cv2.imwrite(str(folder / "p.ppm"), photo())  # not a --vis format: written as .png
    r = run("predict", folder, "--model", standin_path, "--vis", vis, "--vis-threshold", "0.2", "-q")
    assert r.exit_code == 0
    written = sorted(p.relative_to(vis).as_posix() for p in vis.rglob("*") if p.is_file())
    assert written == ["photos/a.jpg", "photos/p.png", "photos/sub/b.png"]
    drawn = cv2.imread(str(vis / "photos/sub/b.png"))
    assert drawn.shape == (120, 80, 3) and not np.array_equal(drawn, photo())


def test_video_every_n_with_vis(tmp_path, standin_path):
    video = write_video(tmp_path / "clip.mp4")
    out, vis = tmp_path / "r.json", tmp_path / "vis"
    r = run("predict", video, "--model", standin_path, "--every", "2", "--out", out, "--vis", vis)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert [e["frame"] for e in res] == [0, 2, 4] and len({e["image_id"] for e in res}) == 3
    ys = [e["keypoints"][1] for e in res]
    np.testing.assert_allclose(ys, [30, 34, 38], atol=1.0)  # the red blob moves down 2 px a frame
    cap = cv2.VideoCapture(str(vis / "clip.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3 and "1 video (3 frames)" in r.stderr


def test_a_vis_video_of_every_nth_frame_ends_with_its_source(tmp_path, standin_path):
    """--vis writes a frame per frame run, at the source's rate / --every; the last was held for a whole --every
    step, so a 2-frame clip run --every 100 gave 10 s of video. It now ends within one written frame of the
    source, and a written frame spans at most a second."""
    video = write_video(tmp_path / "clip.mp4", frames=3, fps=10)  # 0.3 s
    for every, frames, fps in ((100, 1, 1.0), (2, 2, 5.0)):
        vis = tmp_path / f"vis{every}"
        r = run("predict", video, "--model", standin_path, "--every", str(every), "--out", tmp_path / "r.json",
                "--vis", vis)
        assert r.exit_code == 0, r.output
        cap = cv2.VideoCapture(str(vis / "clip.mp4"))
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(fps, rel=1e-3)
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames, every  # 1 s and 0.4 s (before: 10 s and 0.4 s)
        cap.release()


def test_a_file_name_with_a_newline_or_escape_is_printed_escaped(tmp_path, standin_path):
    """A name is one line of the message that names it: "bad\nerror: fake.jpg" printed raw looked like two errors,
    and an ESC in a name reached the terminal."""
    bad = tmp_path / "bad\nerror: fake\x1b[31m.jpg"
    bad.write_bytes(b"not a photo")
    r = run("predict", bad, "--model", standin_path)
    assert r.exit_code == 1
    (line,) = [s for s in r.stderr.splitlines() if "bad" in s]
    assert line.startswith("error: ") and "bad\\nerror: fake\\x1b[31m.jpg: not a decodable image" in line, line
    assert "\x1b" not in r.stderr


def test_out_dir_gives_each_input_a_results_file_of_its_own(folder, standin_path, tmp_path):
    """--out-dir: each photo's entries as its own JSON list, named as --vis names pictures (two a.* photos apart),
    [] where nobody was found; a video's as JSON Lines; the same entries --out gets."""
    cv2.imwrite(str(folder / "a.png"), photo())  # beside a.jpg: a.json and a_2.json
    write_video(folder / "clip.mp4", frames=3)
    out, own = tmp_path / "r.json", tmp_path / "own"
    r = run("predict", folder, "--model", standin_path, "--no-search", "--out", out, "--out-dir", own, "--vis", own)
    assert r.exit_code == 0, r.output
    assert sorted(f.relative_to(own).as_posix() for f in own.rglob("*.json*")) == [
        SOURCES_NAME, "photos/a.json", "photos/a_2.json", "photos/clip.jsonl", "photos/sub/b.json"]
    everything = json.loads(out.read_text())
    by_file = {}
    for e in everything:
        by_file.setdefault(e["file_name"], []).append(e)
    assert json.loads((own / "photos/a.json").read_text()) == by_file[(folder / "a.jpg").as_posix()]
    assert json.loads((own / "photos/a_2.json").read_text()) == by_file[(folder / "a.png").as_posix()]
    assert json.loads((own / "photos/sub/b.json").read_text()) == by_file[(folder / "sub/b.png").as_posix()]
    lines = [json.loads(line) for line in (own / "photos/clip.jsonl").read_text().splitlines()]
    assert lines == by_file[(folder / "clip.mp4").as_posix()] and [e["frame"] for e in lines] == [0, 1, 2]
    assert (own / "photos/a.jpg").is_file()  # --vis may share the folder
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--no-search", "--min-presence", "1",
            "--out-dir", tmp_path / "nobody", "-q")
    assert r.exit_code == 0 and json.loads((tmp_path / "nobody/a.json").read_text()) == []


def test_an_out_dir_file_that_cannot_be_written_fails_that_input_alone(folder, standin_path, tmp_path):
    own = tmp_path / "own"
    write_video(folder / "clip.mp4", frames=3)
    (own / "photos" / "a.json").mkdir(parents=True)  # folders where a.jpg's and the video's files would go
    (own / "photos" / "clip.jsonl.part").mkdir()
    r = run("predict", folder, "--model", standin_path, "--no-search", "--out-dir", own, "-q")
    assert r.exit_code == 1, r.output
    for name, file in (("a.jpg", "a.json"), ("clip.mp4", "clip.jsonl.part")):  # each named once, with its reason
        line = f"error: {folder / name}: cannot write its results to {own / 'photos' / file}: Is a directory\n"
        assert r.stderr.count(line) == 1, r.stderr
    assert json.loads((own / "photos/sub/b.json").read_text())  # the other photo's file is written
    assert len(json.loads(r.stdout)) == 2 + 1  # in the results: both photos, the video up to where it stopped
    assert_no_traceback(r)


def test_skip_existing_goes_on_where_a_run_stopped(folder, standin_path, tmp_path):
    """--out-dir with --skip-existing: inputs whose results file is there are left out (counted in the summary),
    the others run and get the files a whole run gives them; a video's file is whole only once renamed from .part."""
    write_video(folder / "clip.mp4", frames=3)
    own, again = tmp_path / "own", tmp_path / "again"
    base = ("predict", folder, "--model", standin_path, "--no-search")
    r = run(*base, "--out-dir", own, "-q")
    assert r.exit_code == 0, r.output
    key = lambda e: (e["image_id"], e["file_name"])  # noqa: E731
    whole_results = sorted(json.loads(r.stdout), key=key)
    whole = {f.relative_to(own).as_posix(): f.read_text() for f in own.rglob("*") if f.is_file() and f.name != SOURCES_NAME}
    assert sorted(whole) == ["photos/a.json", "photos/clip.jsonl", "photos/sub/b.json"]
    (own / "photos/sub/b.json").unlink()  # a run stopped before b.png ...
    (own / "photos/clip.jsonl").rename(own / "photos/clip.jsonl.part")  # ... and in the middle of the video
    r = run(*base, "--out-dir", own, "--skip-existing")
    assert r.exit_code == 0 and "1 input skipped (results already in" in r.stderr and "also printed" in r.stderr
    resumed = json.loads(r.stdout)  # the skipped a.jpg's results first (from its --out-dir file), then the run's
    assert resumed[0]["file_name"] == (folder / "a.jpg").as_posix()
    assert {e["file_name"] for e in resumed[1:]} == {(folder / "sub/b.png").as_posix(),
                                                     (folder / "clip.mp4").as_posix()}
    assert sorted(resumed, key=key) == whole_results  # the whole run's results, as a whole run gives them
    now = {f.relative_to(own).as_posix(): f.read_text() for f in own.rglob("*") if f.is_file() and f.name != SOURCES_NAME}
    assert now == whole  # the same files as the whole run, image ids included; no .part left
    for fmt in ("json", "jsonl", "csv"):  # nothing left to do: every input's results carried, in every format
        out = tmp_path / f"all.{fmt}"
        r = run(*base, "--out-dir", own, "--skip-existing", "-q", "--out", out)
        assert r.exit_code == 0, r.output
        written = out.read_text()
        if fmt == "json":
            assert sorted(json.loads(written), key=key) == whole_results
        elif fmt == "jsonl":
            assert sorted(map(json.loads, written.splitlines()), key=key) == whole_results
        else:
            assert len(written.splitlines()) == 1 + len(whole_results)
    with open(own / "photos/clip.jsonl", "a") as f:
        f.write("{cut off\n")  # a skipped input whose results cannot be carried into --out fails, named
    r = run(*base, "--out-dir", own, "--skip-existing", "-q")
    assert r.exit_code == 1 and "clip.mp4: its --out-dir file" in r.stderr and "not in --out" in r.stderr
    assert {e["file_name"] for e in json.loads(r.stdout)} == {(folder / "a.jpg").as_posix(),
                                                              (folder / "sub/b.png").as_posix()}
    r = run(*base, "--skip-existing", "--out", again)
    assert r.exit_code == 2 and "give --out-dir" in r.stderr


def test_skip_existing_after_a_finished_video_keeps_a_whole_runs_ids_and_names(tmp_path, standin_path):
    """A video takes an image id per frame: the photos after a skipped video keep a whole run's ids (none shared),
    and the --vis names of skipped inputs stay theirs (two x.jpg in other folders: x.jpg, then x_2.jpg)."""
    shoot = tmp_path / "shoot"
    for sub in ("a", "b"):
        (shoot / sub).mkdir(parents=True)
        cv2.imwrite(str(shoot / sub / "x.jpg"), photo())
    write_video(shoot / "a" / "m.mp4", frames=4)
    cv2.imwrite(str(shoot / "b" / "z.jpg"), photo())
    inputs = [shoot / "a" / "m.mp4", shoot / "a" / "x.jpg", shoot / "b" / "x.jpg", shoot / "b" / "z.jpg"]
    base = ("predict", *inputs, "--model", standin_path, "--no-search", "-q")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert run(*base, "--out-dir", whole, "--vis", whole).exit_code == 0
    files = {f.relative_to(whole).as_posix(): f.read_bytes() for f in whole.rglob("*") if f.is_file() and f.name != SOURCES_NAME}
    assert sorted(files) == ["m.jsonl", "m.mp4", "x.jpg", "x.json", "x_2.jpg", "x_2.json", "z.jpg", "z.json"]
    ids = [json.loads(line)["image_id"] for line in files["m.jsonl"].splitlines()]
    ids += [e["image_id"] for name in ("x.json", "x_2.json", "z.json") for e in json.loads(files[name])]
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    resumed.mkdir()
    for name in ("m.jsonl", "x.json", "x.jpg"):  # a run stopped after the video and the first photo
        (resumed / name).write_bytes(files[name])
    assert run(*base, "--out-dir", resumed, "--vis", resumed, "--skip-existing").exit_code == 0
    assert {f.relative_to(resumed).as_posix(): f.read_bytes() for f in resumed.rglob("*") if f.is_file()
            if f.suffix != ".mp4" and f.name != SOURCES_NAME} == {k: v for k, v in files.items() if not k.endswith(".mp4")}


@pytest.mark.parametrize("missing", ["a", "b"])
def test_skip_existing_gives_an_input_before_a_skipped_one_its_whole_run_id(tmp_path, standin_path, missing):
    """The inputs a resumed run takes keep a whole run's ids, wherever they stand: one before a skipped input too
    (a.jpg had got id 4 after b.jpg and c.jpg, b.jpg id 4 after c.jpg's 3)."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in "abc":
        cv2.imwrite(str(shoot / f"{name}.jpg"), photo())
    own = tmp_path / "own"
    base = ("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", own, "-q")
    assert run(*base).exit_code == 0
    whole = {f.name: f.read_text() for f in own.rglob("*.json")}
    assert [json.loads(whole[f"{n}.json"])[0]["image_id"] for n in "abc"] == [1, 2, 3]
    (own / "shoot" / f"{missing}.json").unlink()
    r = run(*base, "--skip-existing")
    assert r.exit_code == 0, r.output
    ids = [e["image_id"] for e in json.loads(r.stdout)]  # the skipped inputs' results first, then the run's
    assert ids[-1] == "abc".index(missing) + 1 and sorted(ids) == [1, 2, 3]
    assert {f.name: f.read_text() for f in own.rglob("*.json")} == whole


def test_vis_into_the_inputs_folder_never_writes_over_an_input(tmp_path, standin_path):
    """--vis . beside the photos and videos themselves: each drawing is named <name>_pose, every input is left
    as it was."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.jpg"), photo())
    write_video(shoot / "clip.mp4", frames=3)
    before = {f.name: f.read_bytes() for f in shoot.iterdir()}
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--vis", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    assert {f.name: f.read_bytes() for f in shoot.iterdir() if f.name in before} == before
    assert sorted(f.name for f in shoot.iterdir()) == ["a.jpg", "a_pose.jpg", "clip.mp4", "clip_pose.mp4"]
    r = run("predict", shoot / "a.jpg", "--model", standin_path, "--no-search", "--vis", shoot, "-q")
    assert r.exit_code == 0 and (shoot / "a.jpg").read_bytes() == before["a.jpg"]


def test_out_is_checked_against_the_folders_the_run_makes(tmp_path, standin_path, folder):
    """--out naming the --out-dir (or --vis) folder is refused before any work; --out inside a new --out-dir is
    fine (the folder is made first)."""
    for option in ("--out-dir", "--vis"):
        same = tmp_path / option.strip("-")  # new: made by the run, then found to be a folder
        r = run("predict", folder, "--model", standin_path, "--no-search", option, same, "--out", same)
        assert r.exit_code == 2 and f"cannot write results to {same}: is a folder" in r.stderr, r.output
        assert not list(same.iterdir())  # refused before any input ran
    r = run("predict", folder, "--model", standin_path, "--no-search", "--out-dir", tmp_path / "od",
            "--out", tmp_path / "od" / "all.json", "-q")
    assert r.exit_code == 0 and len(json.loads((tmp_path / "od" / "all.json").read_text())) == 2


def test_a_video_cut_off_part_way_is_named_and_counted_as_failed(tmp_path, standin_path):
    """A video file whose frames stop well short of the count its container lists (a damaged or cut-off file)
    is not reported as done: its frames are kept, it is named with the reason, and its --out-dir file stays .part
    so --skip-existing runs it again."""
    whole = tmp_path / "whole.avi"
    w = cv2.VideoWriter(str(whole), cv2.VideoWriter.fourcc(*"MJPG"), 10, (80, 120))
    assert w.isOpened()
    for i in range(12):
        w.write(paint_blobs((120, 80), [[40, 30 + i]] + STANDIN_POINTS[1:]))
    w.release()
    data = whole.read_bytes()
    cut = tmp_path / "v" / "cut.avi"
    cut.parent.mkdir()
    cut.write_bytes(data[:len(data) * 6 // 10])  # the header (and its padding) and a few frames
    r = run("predict", cut, "--model", standin_path, "--no-search", "--out-dir", tmp_path / "own")
    assert r.exit_code == 1, r.output
    assert re.search(r"error: .*cut\.avi: decoding stopped at frame \d+ of the 12 the file lists", r.stderr)
    frames = [e["frame"] for e in json.loads(r.stdout)]
    assert 0 < len(frames) < 12 and frames == sorted(frames)
    assert (tmp_path / "own" / "cut.jsonl.part").is_file() and not (tmp_path / "own" / "cut.jsonl").exists()
    r = run("predict", whole, "--model", standin_path, "--no-search", "-q")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 12
    assert_no_traceback(r)


def mjpeg_with_damaged_frames(path, frames, damaged):
    """An MJPEG AVI of the stand-in person (10 fps, frame i's first joint at y 30 + i) whose ``damaged`` frames have
    their image data zeroed: OpenCV's read() fails on each and reads the next frame after it. Returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (80, 120))
    assert w.isOpened()
    for i in range(frames):
        w.write(paint_blobs((120, 80), [[40, 30 + i]] + STANDIN_POINTS[1:]))
    w.release()
    data = bytearray(path.read_bytes())
    starts, at = [], data.find(b"movi")
    while len(starts) < frames:
        at = data.find(b"00dc", at + 1)
        starts.append(at + 8)  # the chunk's JPEG, after its name and size
    for i in damaged:
        data[starts[i] + 120:starts[i] + 400] = bytes(280)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damaged", [[0], [5], [5, 6, 7], [18]])
def test_a_damaged_frame_is_passed_over_and_named(tmp_path, standin_path, damaged):
    """One frame that fails to decode ended the video: the frames after it were lost (without a word near the end,
    within the count's slack), and a bad first frame gave "no frame could be decoded". Now the others are done and
    the input fails naming the frames; its --out-dir file stays .part, as a cut-off file's."""
    video = mjpeg_with_damaged_frames(tmp_path / "v" / "damaged.avi", 20, damaged)
    r = run("predict", video, "--model", standin_path, "--no-search", "--no-track", "--out-dir", tmp_path / "own")
    assert r.exit_code == 1, r.output
    named = " and ".join([", ".join(map(str, damaged[:-1])), str(damaged[-1])] if len(damaged) > 1 else
                         [str(damaged[0])])
    assert f"damaged.avi: frame{'s' if len(damaged) > 1 else ''} {named} could not be decoded" in r.stderr, r.stderr
    assert [e["frame"] for e in json.loads(r.stdout)] == [i for i in range(20) if i not in damaged]
    assert (tmp_path / "own" / "damaged.jsonl.part").is_file()
    assert_no_traceback(r)


def test_a_video_whose_frames_all_fail_after_a_point_ends_there(tmp_path, standin_path):
    """Eight failures in a row are the file's end, not damage to pass over: judged by the count it lists."""
    video = mjpeg_with_damaged_frames(tmp_path / "tail.avi", 20, range(10, 20))
    r = run("predict", video, "--model", standin_path, "--no-search", "--no-track", "-q")
    assert r.exit_code == 1 and "decoding stopped at frame 10 of the 20 the file lists" in r.stderr, r.output
    assert [e["frame"] for e in json.loads(r.stdout)] == list(range(10))


@pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8 are a Linux matter")
def test_results_keep_a_file_name_that_is_not_utf8(tmp_path, standin_path):
    """A photo named in Latin-1 bytes (a name OpenCV reads): a CSV --out is written with the name's own bytes, not
    lost to an encoding error; a JSON one with Python's escape, which maps back to those bytes (README)."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    latin = os.fsdecode(b"caf\xe9.jpg")
    cv2.imwrite(str(shoot / "ok.jpg"), photo())
    (shoot / latin).write_bytes((shoot / "ok.jpg").read_bytes())
    out = tmp_path / "r.csv"
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rows = out.read_bytes().splitlines()
    assert len(rows) == 3 and any(b"caf\xe9.jpg" in row for row in rows)
    # JSON: Python's escape, plain ASCII that json.load and os.fsencode turn back into the file's own name
    out = tmp_path / "r.json"
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--out", out, "-q")
    assert r.exit_code == 0 and b"caf\\udce9.jpg" in out.read_bytes() and out.read_bytes().isascii(), r.output
    named = {os.path.basename(os.fsencode(e["file_name"])) for e in json.loads(out.read_text(encoding="utf-8"))}
    assert named == {b"caf\xe9.jpg", b"ok.jpg"}


def test_out_written_as_a_folder_is_refused(folder, standin_path, tmp_path):
    """--out results/ (a folder that does not exist yet) is not written as a file named results."""
    r = run("predict", folder, "--model", standin_path, "--out", f"{tmp_path / 'results'}/")
    assert r.exit_code == 2 and "names a folder" in r.stderr and "--out-dir" in r.stderr
    assert not (tmp_path / "results").exists()


def test_an_unforeseen_error_fails_that_photo_alone(folder, standin_path, monkeypatch):
    """An error no check foresaw (OpenCV's, say) on one photo is named with that photo, and the run goes on: the
    other photos' results are written and the exit code says one input failed."""
    import fasterpose_rt.cli.predict_run as predict_run

    cv2.imwrite(str(folder / "odd.jpg"), photo(shape=(60, 40)))
    real = predict_run.find_poses

    class Unforeseen(Exception):
        pass

    def find_poses(predictor, image, *args, **kwargs):
        if image.shape[:2] == (60, 40):
            raise Unforeseen("first line\nthe line that says what happened")
        return real(predictor, image, *args, **kwargs)

    def find_poses_batch(*args, **kwargs):
        raise Unforeseen("in the batch")

    monkeypatch.setattr(predict_run, "find_poses", find_poses)
    monkeypatch.setattr(predict_run, "find_poses_batch", find_poses_batch)
    r = run("predict", folder, "--model", standin_path, "--no-search", "-q")
    assert r.exit_code == 1, r.output
    assert f"error: {folder / 'odd.jpg'}: prediction failed: unexpected Unforeseen: the line that says what " \
           "happened (--debug shows the traceback)" in r.stderr
    assert sorted(e["file_name"] for e in json.loads(r.stdout)) == [(folder / "a.jpg").as_posix(),
                                                                    (folder / "sub/b.png").as_posix()]
    assert_no_traceback(r)


def test_folder_of_photos_and_videos_runs_both(tmp_path, standin_path):
    folder = tmp_path / "shoot"
    (folder / "clips").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), photo())
    write_video(folder / "clips" / "run.mp4", frames=3)
    (folder / "notes.txt").write_text("not an input")
    vis = tmp_path / "vis"
    r = run("predict", folder, "--model", standin_path, "--vis", vis)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert sorted({e["file_name"] for e in res}) == [str(folder / "a.png"), str(folder / "clips" / "run.mp4")]
    assert [e["frame"] for e in res if "frame" in e] == [0, 1, 2]
    assert sorted(p.relative_to(vis).as_posix() for p in vis.rglob("*") if p.is_file()) == [
        "shoot/a.png", "shoot/clips/run.mp4"]
    assert "1 video (3 frames)" in r.stderr


def test_video_persons_are_followed_from_frame_to_frame(tmp_path, standin_path):
    video = write_video(tmp_path / "clip.mp4", frames=4)
    r = run("predict", video, "--model", standin_path, "-q", "--no-smooth")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [e["frame"] for e in res] == [0, 1, 2, 3] and [e["track_id"] for e in res] == [1] * 4
    joints = [np.array(e["keypoints"]).reshape(-1, 3)[:, :2] for e in res]
    boxes = [np.r_[j.min(axis=0), np.ptp(j, axis=0)] for j in joints]  # [x, y, w, h] around each frame's joints
    for entry, box in zip(res, boxes):  # each frame's bbox: where the person is, its joints' box in that frame
        np.testing.assert_allclose(entry["bbox"], box, atol=0.03)
    np.testing.assert_allclose([j[0, 1] for j in joints], [30, 32, 34, 36], atol=1.0)  # the red blob moves
    r = run("predict", video, "--model", standin_path, "-q", "--no-track", "--refine", "0", "--no-search")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [e["bbox"] for e in res] == [[-0.5, -0.5, 80.0, 120.0]] * 4  # every frame on its own
    assert not any("track_id" in e for e in res)  # nobody is followed: no ids


def test_video_joints_are_smoothed_by_default(tmp_path, standin_path):
    video = write_video(tmp_path / "still.mp4", frames=12, head_y=lambda i: 30 + 2 * (i % 2))  # wobbles 2 px

    def head_ys(*options):
        r = run("predict", video, "--model", standin_path, "-q", *options)
        assert r.exit_code == 0, r.output
        return np.array([e["keypoints"][1] for e in json.loads(r.stdout)])

    raw, smooth = head_ys("--no-smooth"), head_ys()
    np.testing.assert_allclose(raw, 30 + 2 * (np.arange(12) % 2), atol=1.0)
    assert smooth[0] == raw[0]  # the first frame has no past to smooth with
    assert np.abs(np.diff(smooth[4:])).mean() < 0.8 * np.abs(np.diff(raw[4:])).mean()  # 0.70x with the defaults
    ys = head_ys("--every", "2")  # every other frame: the wobble is never seen, and a still joint stays put
    np.testing.assert_allclose(ys, head_ys("--every", "2", "--no-smooth"), atol=0.05)


def test_video_boxes_entry_starts_the_tracking(tmp_path, standin_path):
    video = write_video(tmp_path / "clip.mp4", frames=3)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"clip.mp4": [[20, 20, 40, 80]]}))
    r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # the file's box starts it (no refine passes for given boxes); each frame reports its joints' box
    np.testing.assert_allclose(res[0]["bbox"], [30, 30, 20, 60], atol=0.6)
    np.testing.assert_allclose(res[1]["bbox"], [30, 32, 20, 58], atol=0.6)
    r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q", "--no-track")
    assert [e["bbox"] for e in json.loads(r.stdout)] == [[20, 20, 40, 80]] * 3
    assert "warning" not in r.stderr, r.stderr
    boxes.write_text(json.dumps({"clip.mp4": [[20, 20, 40, 80], [500, 20, 40, 80]]}))  # review s64: told, as for photos
    r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q", "--no-track")
    assert r.exit_code == 0 and r.stderr.count(f"warning: {video}: 1 of its 2 boxes lies wholly outside the first "
                                               "frame; a video's --boxes are its first frame's") == 1, r.stderr


def test_a_video_person_lost_after_its_boxes_entry_is_found_as_the_api_finds_it(tmp_path, standin_path,
                                                                                monkeypatch):
    """--boxes' first frame takes no refine pass; the search for a person lost later took none either (review
    s61). The CLI now leaves the choice to VideoPoses, unless --refine is given."""
    import fasterpose_rt.cli.predict_run as predict_run

    video = write_video(tmp_path / "clip.mp4", frames=3)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"clip.mp4": [[20, 20, 40, 80]]}))
    asked = []
    real = predict_run.VideoPoses
    monkeypatch.setattr(predict_run, "VideoPoses", lambda *a, **k: asked.append(k["refine_passes"]) or real(*a, **k))
    for extra, passes in (((), None), (("--refine", "2"), 2), (("--refine", "0"), 0)):
        r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q", *extra)
        assert r.exit_code == 0, r.output
        assert asked.pop() == passes
    pred = PosePredictor(standin_path, threads=1)
    tracker = real(pred, video, boxes=[[20, 20, 40, 80]]).tracker
    assert (tracker.start_passes, tracker.refine_passes) == (0, REFINE_PASSES)


def fake_hog(monkeypatch, windows, scores):
    """Make OpenCV's HOG detector find ``windows`` (N, 4) [x, y, w, h] with ``scores`` in the photo HOG sees
    (an 80x120 photo is upscaled 2x). Returns the list of the photo shapes it was called on."""
    calls = []

    class FakeHog:
        def setSVMDetector(self, w):
            pass

        def detectMultiScale(self, img, **kw):
            calls.append(img.shape)
            return np.array(windows), np.array(scores)

    monkeypatch.setattr(cv2, "HOGDescriptor", FakeHog, raising=False)
    monkeypatch.setattr(cv2, "HOGDescriptor_getDefaultPeopleDetector", lambda: np.zeros(3), raising=False)
    return calls


def test_refined_detector_boxes_on_one_person_give_one_person(folder, standin_path, monkeypatch):
    fake_hog(monkeypatch, [[34, 56, 64, 128], [62, 56, 64, 128]], [1.0, 0.9])  # 14 px apart, on the one person
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--detector", "hog", "-q", "--refine", "0")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 2  # HOG's two boxes as they are
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--detector", "hog", "-q")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and len(res) == 1  # refined onto the same joints: one person
    np.testing.assert_allclose(res[0]["bbox"], [30, 30, 20, 60], atol=3)  # blobs cut by a crop edge shift a little


def test_video_with_detector_runs_it_only_while_nobody_is_followed(tmp_path, standin_path, monkeypatch):
    calls = fake_hog(monkeypatch, [[48, 56, 64, 128]], [1.0])  # one window around the stand-in person
    video = write_video(tmp_path / "clip.mp4", frames=4)
    r = run("predict", video, "--model", standin_path, "--detector", "hog", "-q", "--no-smooth")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert len(calls) == 1 and len(res) == 4  # frame 0 only: then the person is followed
    xy = np.array(res[1]["keypoints"]).reshape(-1, 3)[:, :2]  # frame 1: followed, its box around its own joints
    np.testing.assert_allclose(res[1]["bbox"], [*xy.min(axis=0), *np.ptp(xy, axis=0)], atol=0.02)
    calls.clear()
    r = run("predict", video, "--model", standin_path, "--detector", "hog", "-q", "--no-track")
    assert r.exit_code == 0 and len(calls) == 4  # every frame on its own


def test_unreadable_video_is_named(tmp_path, standin_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    cv2.imwrite(str(tmp_path / "a.png"), photo())
    r = run("predict", tmp_path / "broken.mp4", tmp_path / "a.png", "--model", standin_path)
    assert r.exit_code == 1 and "broken.mp4: " in r.stderr and len(json.loads(r.stdout)) == 1
    assert_no_traceback(r)


def test_hog_detections_become_person_boxes(folder, standin_path, monkeypatch):
    fake_hog(monkeypatch, [[0, 0, 64, 128], [96, 112, 64, 128]], [1.0, 2.0])  # two separate windows
    r = run("predict", folder / "a.jpg", "--model", standin_path, "--detector", "hog", "-q", "--refine", "0")
    assert r.exit_code == 0, r.output
    # best score first; windows halved back to photo px and shrunk to the person inside
    assert [e["bbox"] for e in json.loads(r.stdout)] == [[56, 64, 16, 48], [8, 8, 16, 48]]


def test_a_video_frame_that_fails_is_named_and_the_rest_is_kept(tmp_path, standin_path, monkeypatch):
    video = write_video(tmp_path / "clip.mp4", frames=4)
    real, calls = PosePredictor.predict_batch, []

    def fail_on_frame_2(self, images, boxes=None):
        calls.append(None)
        if len(calls) == 3:  # --refine 0 --no-track: one model call per frame
            raise RuntimeError("model exploded")
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", fail_on_frame_2)
    r = run("predict", video, "--model", standin_path, "-q", "--no-track", "--refine", "0")
    assert r.exit_code == 1 and "clip.mp4 frame 2: prediction failed: model exploded" in r.stderr
    assert "clip.mp4: 1 frame failed" in r.stderr
    assert_no_traceback(r)
    res = json.loads(r.stdout)
    assert [e["frame"] for e in res] == [0, 1, 3] and [e["image_id"] for e in res] == [1, 2, 4]  # ids do not move


def test_a_failed_frame_keeps_its_place_in_the_vis_video(tmp_path, standin_path, monkeypatch):
    """The --vis video keeps every frame (a failed one as it is), so it plays in step with the source."""
    video, vis = write_video(tmp_path / "clip.mp4", frames=4), tmp_path / "vis"
    real, calls = PosePredictor.predict_batch, []

    def fail_on_frame_2(self, images, boxes=None):
        calls.append(None)
        if len(calls) == 3:
            raise RuntimeError("model exploded")
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", fail_on_frame_2)
    r = run("predict", video, "--model", standin_path, "-q", "--no-track", "--refine", "0", "--vis", vis)
    assert r.exit_code == 1 and "clip.mp4 frame 2: prediction failed" in r.stderr
    assert [e["frame"] for e in json.loads(r.stdout)] == [0, 1, 3]
    drawn, source = read_video(vis / "clip.mp4"), read_video(video)
    assert len(drawn) == 4
    off = [np.abs(d.astype(int) - s).mean() for d, s in zip(drawn, source)]
    assert off[2] < min(off[1], off[3]) / 2, off  # frame 2 undrawn, in its place


def test_video_frames_keep_an_image_id_each_with_a_boxes_file(tmp_path, standin_path):
    """A COCO file's image id names one image: a video's frames are images of their own, numbered as without
    --boxes (so are they with predict's own results of the video as --boxes)."""
    video, boxes = write_video(tmp_path / "clip.mp4", frames=3), tmp_path / "boxes.json"
    boxes.write_text(json.dumps({
        "images": [{"id": 42, "file_name": "clip.mp4"}], "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": 1, "image_id": 42, "category_id": 1, "bbox": [20, 20, 40, 80]}]}))
    r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q")
    assert r.exit_code == 0, r.output
    assert [(e["frame"], e["image_id"]) for e in json.loads(r.stdout)] == [(0, 1), (1, 2), (2, 3)]
    boxes.write_text(r.stdout)
    r = run("predict", video, "--model", standin_path, "--boxes", boxes, "-q")
    assert [(e["frame"], e["image_id"]) for e in json.loads(r.stdout)] == [(0, 1), (1, 2), (2, 3)]


def test_a_whole_variable_frame_rate_video_is_done_and_timed_by_its_frames(tmp_path, standin_path):
    """A phone's or a screen recorder's video: frames not evenly spaced, in a Matroska file that lists duration x
    fps frames, more than it holds. It is whole (its --out-dir file finished: --skip-existing passes it), and each
    result's time is its frame's."""
    from test_video import VFR_MS, write_mkv

    video, own = write_mkv(tmp_path / "vfr.mkv", VFR_MS), tmp_path / "own"
    r = run("predict", video, "--model", standin_path, "--no-search", "--out-dir", own, "-q")
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose([e["time"] for e in json.loads(r.stdout)], np.array(VFR_MS) / 1000, atol=0.001)
    assert (own / "vfr.jsonl").is_file() and not (own / "vfr.jsonl.part").exists()


def test_an_anamorphic_video_is_drawn_as_shown_and_its_results_say_its_pixel_aspect(tmp_path, standin_path):
    """A video stored 80x120 and shown 120x120: results in the decoded frame's px with its pixel aspect, a note
    that says so, and a --vis video a player shows as the source (square pixels)."""
    from test_video import write_mkv

    video, vis = write_mkv(tmp_path / "ana.mkv", [0, 100, 200], display=(120, 120)), tmp_path / "vis"
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", vis, "-q")
    assert r.exit_code == 0, r.output
    assert "ana.mkv: its pixels are shown 1.5 times as wide as tall (an anamorphic video)" in r.stderr
    entries = json.loads(r.stdout)
    assert len(entries) == 3 and all(e["pixel_aspect"] == 1.5 for e in entries)
    red = np.array([e["keypoints"][:2] for e in entries])
    np.testing.assert_allclose(red, [[40, 30], [40, 32], [40, 34]], atol=1.5)  # smoothed, in the decoded px
    drawn = read_video(vis / "ana.mp4")
    assert len(drawn) == 3 and drawn[0].shape == (120, 120, 3)
    tall = write_mkv(tmp_path / "tall.mkv", [0, 100], display=(80, 180))  # pixels 2:3 (review s66: "0.6667 times
    r = run("predict", tall, "--model", standin_path, "--no-search", "--vis", vis, "-q")  # as tall as wide")
    assert "tall.mkv: its pixels are shown 1.5 times as tall as wide (an anamorphic video)" in r.stderr, r.output
    assert read_video(vis / "tall.mp4")[0].shape == (180, 80, 3)
    r = run("predict", write_mkv(tmp_path / "square.mkv", [0, 100]), "--model", standin_path, "--no-search", "-q")
    assert r.exit_code == 0 and "anamorphic" not in r.stderr
    assert all("pixel_aspect" not in e for e in json.loads(r.stdout))


def test_a_video_of_odd_size_is_drawn_whole(tmp_path, standin_path):
    """review s66: MPEG-4 takes even sizes only, and OpenCV's writer dropped a 640x425 video's last row; the
    drawing is now one row (or column) larger, the last one repeated."""
    from test_video import write_mkv

    frames = [np.full((121, 81, 3), 40, np.uint8) for _ in range(2)]
    for f in frames:
        f[-1, :] = f[:, -1] = 250  # the last row and column, bright
    video, vis = write_mkv(tmp_path / "odd.mkv", [0, 100], frames=frames), tmp_path / "vis"
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", vis, "-q")
    assert r.exit_code == 0, r.output
    drawn = read_video(vis / "odd.mp4")
    assert drawn and {d.shape for d in drawn} == {(122, 82, 3)}
    assert drawn[0][-2:, 10:70].mean() > 200 and drawn[0][10:110, -2:].mean() > 200  # kept, then repeated


def test_a_video_of_unknown_frame_rate_is_drawn_at_the_rate_its_times_count(tmp_path, standin_path):
    """A frame rate the header gives as 100,000 (RTSP streams report RTP's 90,000) is no frame rate: results count
    30 frames per second, and the --vis video plays at that rate too."""
    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10, (80, 120))
    for i in range(4):
        w.write(paint_blobs((120, 80), [[40, 30 + 2 * i]] + STANDIN_POINTS[1:]))
    w.release()
    data = bytearray(clip.read_bytes())
    struct.pack_into("<II", data, data.find(b"strh") + 28, 1, 100000)  # dwScale, dwRate
    clip.write_bytes(bytes(data))
    vis = tmp_path / "vis"
    r = run("predict", clip, "--model", standin_path, "--no-search", "--every", "2", "--vis", vis, "-q")
    assert r.exit_code == 0, r.output
    assert [e["time"] for e in json.loads(r.stdout)] == [0.0, 0.0667]
    cap = cv2.VideoCapture(str(vis / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == 15  # 30 / --every
    cap.release()


def test_csv_results_for_spreadsheets(tmp_path, standin_path):
    import csv

    video = write_video(tmp_path / "clip.mp4", frames=4)
    cv2.imwrite(str(tmp_path / "a.png"), photo())
    out = tmp_path / "r.csv"
    r = run("predict", video, tmp_path / "a.png", "--model", standin_path, "-q", "--every", "2", "--out", out)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["frame"], r["time"], r["track_id"]) for r in rows] == [("0", "0.0", "1"), ("2", "0.2", "1"),
                                                                      ("", "", "")]  # 10 fps; the photo last
    np.testing.assert_allclose([float(r["red_y"]) for r in rows], [30, 34, 30], atol=1.0)
    r = run("predict", video, "--model", standin_path, "-q", "--every", "2")
    entries = json.loads(r.stdout)  # the same results as JSON: frame and time too
    assert [(e["frame"], e["time"]) for e in entries] == [(0, 0.0), (2, 0.2)]
    for row, e in zip(rows, entries):
        assert [float(row[c]) for c in ("red_x", "red_y", "red_score")] == e["keypoints"][:3]
    r = run("predict", tmp_path / "a.png", "--model", standin_path, "-q", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("file_name,frame,time,image_id,track_id")
    r = run("predict", tmp_path / "a.png", "--model", standin_path, "-q", "--format", "json", "--out", out)
    assert r.exit_code == 0 and len(json.loads(out.read_text())) == 1  # --format wins over the file's name


def test_photos_share_model_calls_in_groups_with_the_same_results(folder, standin_path, monkeypatch):
    for i in range(5):
        cv2.imwrite(str(folder / f"c{i}.png"), photo([[40 + i, 30]] + POINTS[1:]))
    calls = []
    real = PosePredictor.predict_batch

    def counting(self, images, boxes=None):
        calls.append(len(images))
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", counting)
    grouped = run("predict", folder, "--model", standin_path, "-q", "--refine", "0", "--batch-size", "4")
    assert grouped.exit_code == 0 and calls == [4, 3]  # 7 photos: a group of 4 (--batch-size), then 3
    calls.clear()
    alone = run("predict", folder, "--model", standin_path, "-q", "--refine", "0", "--batch-size", "1")
    assert calls == [1] * 7 and json.loads(alone.stdout) == json.loads(grouped.stdout)  # ids, order, poses
    monkeypatch.setattr("fasterpose_rt.cli.predict.PHOTO_GROUP_BYTES", 2 * 120 * 80 * 3)  # two photos' pixels at most
    calls.clear()
    assert run("predict", folder, "--model", standin_path, "-q", "--refine", "0").exit_code == 0
    assert calls == [2, 2, 2, 1]


def test_a_photo_the_model_fails_on_fails_alone_in_its_group(folder, standin_path, monkeypatch):
    cv2.imwrite(str(folder / "odd.png"), photo(shape=(100, 80)))  # the photo the "model" fails on
    real = PosePredictor.predict_batch

    def fails_on_odd(self, images, boxes=None):
        if any(im.shape[0] == 100 for im in images):
            raise RuntimeError("model exploded")
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", fails_on_odd)
    r = run("predict", folder, "--model", standin_path, "-q")
    assert r.exit_code == 1 and "odd.png: prediction failed: model exploded" in r.stderr
    assert [e["file_name"].rsplit("/", 1)[1] for e in json.loads(r.stdout)] == ["a.jpg", "b.png"]
    assert [e["image_id"] for e in json.loads(r.stdout)] == [1, 3]  # odd.png keeps its id (2)


def test_a_video_failing_to_open_unforeseen_fails_alone(tmp_path, standin_path, monkeypatch):
    import fasterpose_rt.cli.predict_run as predict_run

    videos = [write_video(tmp_path / f"v{i}.mp4", frames=3) for i in range(2)]
    real = predict_run.VideoPoses

    def opens(pred, source, **kwargs):
        if str(source).endswith("v0.mp4"):
            raise cv2.error("OpenCV(4.x) :-1: error: (-5:Bad argument)\n> Overload resolution failed")
        return real(pred, source, **kwargs)

    monkeypatch.setattr(predict_run, "VideoPoses", opens)
    r = run("predict", *videos, "--model", standin_path, "--no-smooth")
    assert r.exit_code == 1 and "v0.mp4: unexpected error: > Overload resolution failed" in r.stderr, r.stderr
    assert {e["file_name"] for e in json.loads(r.stdout)} == {str(videos[1])}


def test_a_stream_as_json_lines_and_a_missing_camera_named(tmp_path, standin_path):
    video = write_video(tmp_path / "clip.mp4", frames=6)
    url = video.resolve().as_uri()  # file://: OpenCV's FFmpeg reads it as it reads rtsp:// or http:// streams
    vis = tmp_path / "vis"
    huge = "camera:" + "9" * 20  # OpenCV's overload error ended the whole run (review s61)
    r = run("predict", "camera:99", huge, url, "--model", standin_path, "--format", "jsonl", "--max-frames", "4",
            "--no-smooth", "--vis", vis)
    assert r.exit_code == 1 and "error: camera:99: cannot open camera 99" in r.stderr
    assert f"error: {huge}: cannot open camera {huge[7:]}: no such device" in r.stderr
    assert "1 video (4 frames)" in r.stderr and "2 inputs failed" in r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["frame"] for e in lines] == [0, 1, 2, 3] and {e["file_name"] for e in lines} == {url}
    np.testing.assert_allclose([e["keypoints"][1] for e in lines], [30, 32, 34, 36], atol=1.0)  # it moves
    (drawn,) = [p.name for p in vis.iterdir()]
    assert drawn.startswith("file_") and drawn.endswith("clip_mp4.mp4")
    out = tmp_path / "r.jsonl"  # .jsonl: JSON Lines without --format
    r = run("predict", video, "--model", standin_path, "--out", out, "-q")
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 6


def test_a_camera_runs_until_ctrl_c_and_keeps_its_lines(tmp_path, standin_path, monkeypatch):
    """A camera never ends: Ctrl-C stops it, exit 130, every frame done is in the results."""
    import fasterpose_rt.cli.predict_run as cli_run
    from fasterpose_rt.results import ResultsWriter

    frames = iter(read_video(write_video(tmp_path / "clip.mp4", frames=6)))
    camera = GatedSource()  # the clip stands in for a camera, a frame each time the one before is written
    camera.send(next(frames))

    def open_camera(source):
        assert source == "camera:0"
        return camera

    monkeypatch.setattr(cli_run, "open_stream", open_camera)
    real_add, added = ResultsWriter.add, []

    def add(self, entries):  # "Ctrl-C" comes after the third frame
        real_add(self, entries)
        added.append(len(entries))
        if len(added) == 3:
            raise KeyboardInterrupt
        camera.send(next(frames))

    monkeypatch.setattr(ResultsWriter, "add", add)
    out = tmp_path / "cam.jsonl"
    r = run("predict", "camera:0", "--model", standin_path, "--out", out)
    assert r.exit_code == 130 and "interrupted: 0 photos, 1 video (" in r.stderr  # counted, though unfinished
    assert [json.loads(line)["file_name"] for line in out.read_text().splitlines()] == ["camera:0"] * 3
    camera.send(next(frames))  # the read the stopped reader was waiting in returns: it reads no more, releases
    for _ in range(500):
        if camera.released:
            break
        time.sleep(0.01)
    assert camera.released and camera.reads == 4


def test_a_camera_is_live_unless_told_otherwise(tmp_path, standin_path, monkeypatch):
    """Live (the default for cameras): frames that come while the model is busy are dropped and counted."""
    import fasterpose_rt.cli.predict_run as cli_run

    frames = read_video(write_video(tmp_path / "clip.mp4", frames=6))

    def open_camera(source):  # a camera that delivers its six frames faster than the (slowed) model runs
        camera = GatedSource()
        for frame in frames + [None]:
            camera.send(frame)
        return camera

    real = PosePredictor.predict_batch

    def slow_model(self, images, boxes=None):
        time.sleep(0.05)
        return real(self, images, boxes)

    monkeypatch.setattr(PosePredictor, "predict_batch", slow_model)
    monkeypatch.setattr(cli_run, "open_stream", open_camera)
    r = run("predict", "camera:0", "--model", standin_path, "--no-track", "--format", "jsonl")
    got = [json.loads(line)["frame"] for line in r.stdout.splitlines()]
    dropped = 6 - len(got)
    assert r.exit_code == 0 and got[-1] == 5 and got == sorted(got) and dropped >= 1
    assert f"1 video ({len(got)} frame{'s' * (len(got) > 1)}, {dropped} dropped to keep up)" in r.stderr
    r = run("predict", "camera:0", "--model", standin_path, "--no-track", "--format", "jsonl", "--no-live")
    assert [json.loads(line)["frame"] for line in r.stdout.splitlines()] == [0, 1, 2, 3, 4, 5]
    assert "1 video (6 frames), " in r.stderr


def test_a_big_jpeg_is_decoded_smaller_and_answered_in_its_own_pixels(tmp_path, standin_path, monkeypatch):
    import fasterpose_rt.cli.predict as cli_predict
    import fasterpose_rt.cli.predict_run as cli_run

    monkeypatch.setattr(cli_predict, "REDUCED_LONG_SIDE", 200)  # a 480 x 720 photo counts as big: decoded at 1/2
    points = np.array(POINTS, np.float64) * 6 + 0.5 * 5  # the stand-in person, 6x as large
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), paint_blobs((720, 480), points, sigma=24.0), [cv2.IMWRITE_JPEG_QUALITY, 95])
    entries = {}
    real_bytes, reads = cli_run.read_file_bytes, []  # s64: the file is read once; --vis decodes its bytes whole
    monkeypatch.setattr(cli_run, "read_file_bytes", lambda p: reads.append(p) or real_bytes(p))
    for mode in ([], ["--full-resolution"], ["--read-ahead", "0"]):
        r = run("predict", path, "--model", standin_path, "-q", "--vis", tmp_path / f"vis{len(entries)}", *mode)
        assert r.exit_code == 0, r.stderr
        (entries[" ".join(mode)],) = json.loads(r.stdout)
        assert cv2.imread(str(tmp_path / f"vis{len(entries) - 1}" / "big.jpg")).shape == (720, 480, 3)
    assert reads == [path] * 3
    for entry in entries.values():  # the photo's own px either way
        np.testing.assert_allclose(np.reshape(entry["keypoints"], (-1, 3))[:, :2], points, atol=2.0)
    assert entries[""] == entries["--read-ahead 0"]  # reading ahead changes nothing
    assert entries[""] != entries["--full-resolution"]  # ... decoding smaller does, a little
    real_read, scales = cli_run.photo_from_bytes, []
    monkeypatch.setattr(cli_run, "photo_from_bytes", lambda *a: scales.append(real_read(*a)[1]) or real_read(*a))
    boxes = tmp_path / "boxes.json"
    for listed, scale in (([[100.0, 120.0, 300.0, 500.0]], 2),  # big enough for the model at 1/2
                          ([[100.0, 120.0, 300.0, 500.0], [10.0, 10.0, 40.0, 60.0]], 1)):  # a box < the input
        boxes.write_text(json.dumps({"big.jpg": listed}))
        r = run("predict", path, "--model", standin_path, "-q", "--boxes", boxes)
        assert [e["bbox"] for e in json.loads(r.stdout)] == listed and scales.pop() == scale
        np.testing.assert_allclose(np.reshape(json.loads(r.stdout)[0]["keypoints"], (-1, 3))[:, :2], points,
                                   atol=2.0)


def test_a_vis_picture_that_cannot_be_written_is_named_and_the_rest_kept(folder, standin_path, tmp_path,
                                                                         monkeypatch):
    import errno

    import fasterpose_rt.cli.predict_run as cli_run

    real_write = cli_run.atomic_write_bytes

    def disk_full_for_a(path, data):
        if Path(path).name == "a.jpg":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(cli_run, "atomic_write_bytes", disk_full_for_a)
    vis = tmp_path / "vis"
    r = run("predict", folder, "--model", standin_path, "--vis", vis, "-q")
    assert r.exit_code == 1 and "a.jpg: cannot write --vis image" in r.stderr and "No space left" in r.stderr
    assert len(json.loads(r.stdout)) == 2 and (vis / "photos" / "sub" / "b.png").is_file()  # results and b kept
    assert not (vis / "photos" / "a.jpg").exists()
    assert_no_traceback(r)


def test_a_folder_where_a_vis_picture_would_go_is_kept_and_the_picture_named_beside_it(folder, standin_path,
                                                                                      tmp_path):
    """Anything at a drawing's name that is no marked drawing (here a folder) is kept: the drawing takes the name
    a drawing beside its input would (<name>_pose), as for a photo there."""
    vis = tmp_path / "vis"
    (vis / "photos" / "a.jpg").mkdir(parents=True)
    r = run("predict", folder, "--model", standin_path, "--vis", vis, "-q")
    assert r.exit_code == 0, r.stderr
    assert (vis / "photos" / "a.jpg").is_dir() and cv2.imread(str(vis / "photos" / "a_pose.jpg")) is not None


def test_the_summary_says_how_long_the_inputs_took(folder, standin_path):
    r = run("predict", folder, "--model", standin_path)
    assert r.exit_code == 0 and re.search(r"^2 photos, 2 persons in \d+\.\d s \(\d+\.\d photos/s\) -> stdout$",
                                          r.stderr.splitlines()[-1])


def test_show_without_a_gui_or_a_display_says_what_to_do(tmp_path, standin_path, monkeypatch):
    video = write_video(tmp_path / "clip.mp4", frames=3)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = run("predict", video, "--model", standin_path, "--show")
    assert r.exit_code == 2 and "--show needs" in r.stderr and "--vis" in r.stderr and r.stdout == ""
    assert_no_traceback(r)
    monkeypatch.setenv("DISPLAY", ":99")  # a display, but OpenCV without a GUI (opencv-python-headless)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: (_ for _ in ()).throw(cv2.error("not implemented")))
    r = run("predict", video, "--model", standin_path, "--show")
    assert r.exit_code == 2 and "pip install opencv-python" in r.stderr
    assert_no_traceback(r)


def test_show_draws_each_frame_and_q_ends_the_input(tmp_path, standin_path, monkeypatch):
    """A GUI stood in for: OpenCV's window calls recorded, the user pressing q at the third frame."""
    video = write_video(tmp_path / "clip.mp4", frames=6)
    monkeypatch.setenv("DISPLAY", ":99")
    shown, calls = [], []
    monkeypatch.setattr(cv2, "namedWindow", lambda title, flags: calls.append(("open", title)))
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: ord("q") if len(shown) == 3 else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: calls.append(("close", title)))
    r = run("predict", video, "--model", standin_path, "--show", "--no-smooth", "--format", "jsonl",
            "--vis", tmp_path / "vis")
    assert r.exit_code == 0 and [json.loads(line)["frame"] for line in r.stdout.splitlines()] == [0, 1, 2]
    assert len(read_video(tmp_path / "vis" / "clip.mp4")) == 3  # the shown pictures, also written
    assert calls == [("open", "fasterpose"), ("close", "fasterpose")] and len(shown) == 3
    frames = read_video(video)
    assert shown[0].shape == frames[0].shape and not np.array_equal(shown[0], frames[0])  # drawn on
    assert "1 video (3 frames)" in r.stderr


def test_show_holds_each_drawn_photo_until_a_key_and_q_shows_no_more(tmp_path, standin_path, monkeypatch):
    """--show on photos did nothing (session 57): each is drawn and held until a key; q shows no more photos, and
    the run goes on to write every photo's results. A GUI stood in for, as above."""
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), photo())
    monkeypatch.setenv("DISPLAY", ":99")
    shown, waits = [], []
    monkeypatch.setattr(cv2, "namedWindow", lambda title, flags: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.copy()))
    # the first photo: no key for two waits, then a space; the second: q
    keys = iter([-1, -1, ord(" "), ord("q")])
    monkeypatch.setattr(cv2, "waitKey", lambda delay: waits.append(delay) or next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: None)
    r = run("predict", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png", "--model", standin_path,
            "--no-search", "--show")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3, r.output
    assert len(shown) == 2 and waits == [100] * 4
    assert shown[0].shape == photo().shape and not np.array_equal(shown[0], photo())  # drawn on
    # the window closed by the user while a photo is held: no more photos shown either
    shown.clear()
    keys = iter([-1] * 10)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 0.0)
    r = run("predict", tmp_path / "a.png", tmp_path / "b.png", "--model", standin_path, "--no-search", "--show")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 2 and len(shown) == 1, r.output


def test_a_closed_stdout_ends_the_run(tmp_path, standin_path):
    """| head -1: each later video was opened, run and failed with its own "Broken pipe" (review s58); the run
    now stops there, with one line and exit 1."""
    videos = [write_video(tmp_path / f"v{i}.mp4", frames=30) for i in range(3)]
    cmd = [sys.executable, "-m", "fasterpose_rt.cli", "predict", *map(str, videos), "--model", str(standin_path),
           "--format", "jsonl", "--no-smooth", "--read-ahead", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["frame"] == 0
    proc.stdout.close()  # the reader is gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and "stopped: the reader of stdout closed it" in err, err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_results_list_to_a_closed_stdout_is_not_cut_short_unsaid(tmp_path, standin_path, fmt):
    """A JSON list or CSV table printed at the end to a pipe whose reader had gone: Python sent the first 64 KiB
    and dropped the rest without an error, exit 0 and the usual summary (review s61)."""
    videos = [write_video(tmp_path / f"v{i}.mp4", frames=40) for i in range(10)]
    cmd = [sys.executable, "-m", "fasterpose_rt.cli", "predict", *map(str, videos), "--model", str(standin_path),
           "--format", fmt, "--no-smooth", "--read-ahead", "0"]
    whole = subprocess.run(cmd, capture_output=True, timeout=120)
    assert whole.returncode == 0 and len(whole.stdout) > 65536 + 4096, len(whole.stdout)  # the premise: over 64 KiB
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(100)
    proc.stdout.close()  # the reader is gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and "stopped: the reader of stdout closed it" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.skipif(os.name != "posix", reason="file names that are not UTF-8 are a POSIX matter")
def test_a_csv_to_stdout_keeps_a_name_that_is_not_utf8_under_a_strict_locale(tmp_path, standin_path):
    """Under a locale whose stdout is strict (en_US.UTF-8; C.UTF-8 escapes), a CSV printed at the end crashed on such
    a name and lost every row (review s61); it is written as the file's own bytes, as in a results file."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    ok, jpeg = cv2.imencode(".jpg", paint_blobs((120, 80), STANDIN_POINTS))
    (Path(os.fsdecode(os.fsencode(shoot) + b"/caf\xe9.jpg"))).write_bytes(jpeg.tobytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for fmt in ("csv", "json"):
        r = subprocess.run([sys.executable, "-m", "fasterpose_rt.cli", "predict", str(shoot), "--model",
                            str(standin_path), "--format", fmt, "--no-search"], capture_output=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert (b"caf\xe9.jpg" if fmt == "csv" else b"caf\\udce9.jpg") in r.stdout, r.stdout[:300]


@pytest.mark.parametrize("stderr", ["full", "no reader", "closed"])
def test_a_stderr_that_takes_nothing_loses_the_diagnostics_not_the_run(tmp_path, standin_path, stderr):
    """2>/dev/full, a pipe nobody reads, 2>&-: the first error line ended the run (the good photos after it were
    never run, the results file held []) or went into stdout's JSON with an AttributeError (review s59)."""
    if stderr == "full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((60, 40, 3), np.uint8))
    (tmp_path / "a.jpg").write_bytes(b"")  # fails first
    out = tmp_path / "r.json"
    args = ["predict", str(tmp_path / "a.jpg"), str(tmp_path / "b.png"), "--model", str(standin_path), "--no-search"]
    cmd = [sys.executable, "-m", "fasterpose_rt.cli", *args]
    if stderr == "closed":  # results on stdout, next to nothing on fd 2
        r = subprocess.run(["sh", "-c", '"$@" 2>&-', "sh", *cmd], stdout=subprocess.PIPE, timeout=120)
        assert r.returncode == 1 and len(json.loads(r.stdout)) == 1, r.stdout
        return
    if stderr == "full":
        with open("/dev/full", "w") as full:
            r = subprocess.run([*cmd, "--out", str(out)], stderr=full, timeout=120)
    else:
        read, write = os.pipe()
        os.close(read)
        try:
            r = subprocess.run([*cmd, "--out", str(out)], stderr=write, timeout=120)
        finally:
            os.close(write)
    assert r.returncode == 1 and len(json.loads(out.read_text())) == 1  # b.png processed, a.jpg failed


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends a Windows process at once")
def test_sigterm_stops_the_run_as_ctrl_c_does(tmp_path, standin_path):
    """A reboot or `kill`: the --vis video being written was left as a hidden file, which the next run over the
    folder took for an input (review s59). Now stopped as Ctrl-C stops it, exit 143."""
    import signal

    videos = [write_video(tmp_path / f"v{i}.mp4", frames=30) for i in range(2)]
    vis = tmp_path / "vis"
    cmd = [sys.executable, "-m", "fasterpose_rt.cli", "predict", *map(str, videos), "--model", str(standin_path),
           "--format", "jsonl", "--no-smooth", "--read-ahead", "0", "--vis", str(vis)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["frame"] == 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "stopped by SIGTERM: 0 photos, 1 video" in err.decode(), err
    assert not [p for p in vis.rglob("*") if p.name.startswith(".")]  # the half-written video removed


def test_an_interruption_while_the_vis_video_is_finished_leaves_no_hidden_file(tmp_path, standin_path, monkeypatch):
    """A signal just after a video's last frame, as its --vis video was checked and named, left the hidden
    temporary video behind (7.5 MB, one more each time: review s59)."""
    import fasterpose_rt.cli.predict_run as predict_run

    video = write_video(tmp_path / "v.mp4", frames=5)
    vis = tmp_path / "vis"
    real = predict_run.open_video

    def stopped(path, *args, **kwargs):
        if Path(path).name.startswith(".fasterpose-"):  # the check of the --vis video written
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict_run, "open_video", stopped)
    r = run("predict", video, "--model", standin_path, "--vis", vis, "--no-smooth", "--read-ahead", "0")
    assert r.exit_code == 130 and "interrupted: 0 photos, 1 video (5 frames)" in r.stderr, r.output
    assert list(vis.rglob("*")) == [] or all(not p.name.startswith(".") for p in vis.rglob("*"))


def _interrupt_inference_at(monkeypatch, call: int):
    """Make the model's ``call``-th inference a Ctrl-C; returns the real method, to put back."""
    real, calls = PosePredictor._infer, []

    def stopped(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PosePredictor, "_infer", stopped)
    return real


def test_a_vis_video_cut_short_is_named_part_and_is_no_finished_drawing_to_skip_existing(tmp_path, standin_path,
                                                                                          monkeypatch):
    """A --vis video cut short took its final name, so a later --skip-existing run (its results finished by a run
    without --vis) took the 3-frame drawing of an 8-frame video for done, for good (review s68). It is named
    v.part.mp4 now, and the run that draws the whole video replaces it."""
    video = write_video(tmp_path / "v.mp4", frames=8)
    vis, own = tmp_path / "vis", tmp_path / "own"
    base = [video, "--model", standin_path, "--no-search", "--no-track", "--read-ahead", "0", "--out-dir", own,
            "--vis", vis, "--out", tmp_path / "r.json"]
    real = _interrupt_inference_at(monkeypatch, 4)
    r = run("predict", *base)
    assert r.exit_code == 130, r.output
    assert sorted(p.name for p in vis.iterdir()) == ["v.part.mp4"] and may_draw_over(vis / "v.part.mp4")
    monkeypatch.setattr(PosePredictor, "_infer", real)
    assert run("predict", *base[:-4], "--skip-existing").exit_code == 0  # its results finished, without --vis
    r = run("predict", *base, "--skip-existing")
    assert r.exit_code == 0 and "1 video (8 frames)" in r.stderr, r.output  # drawn, not skipped
    assert sorted(p.name for p in vis.iterdir()) == ["v.mp4"]
    cap = cv2.VideoCapture(str(vis / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()
    r = run("predict", *base, "--skip-existing")
    assert r.exit_code == 0 and "1 input skipped" in r.stderr, r.output


def test_a_cut_short_drawing_takes_no_other_inputs_drawing_and_goes_when_its_input_is_skipped(tmp_path, standin_path,
                                                                                              monkeypatch):
    """Diff review s68: a.mp4 cut short wrote a.part.mp4, the drawing of an input named a.part.mp4; and a rerun cut
    short while a finished drawing was there left its .part drawing for good (the input is skipped since)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "a.mp4", frames=8)
    write_video(clips / "a.part.mp4", frames=3, size=(96, 120))
    vis, own = tmp_path / "vis", tmp_path / "own"
    base = [clips, "--model", standin_path, "--no-search", "--no-track", "--read-ahead", "0", "--out-dir", own,
            "--vis", vis, "--out", tmp_path / "r.json"]
    assert run("predict", *base).exit_code == 0
    real = _interrupt_inference_at(monkeypatch, 4)
    assert run("predict", *base).exit_code == 130  # a.mp4, first in order, cut short
    monkeypatch.setattr(PosePredictor, "_infer", real)
    drawn = sorted(p.name for p in (vis / "clips").iterdir())
    assert drawn == ["a.mp4", "a.part.mp4", "a.part_2.mp4"], drawn
    cap = cv2.VideoCapture(str(vis / "clips" / "a.part.mp4"))  # a.part.mp4's own drawing, untouched
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 96 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    r = run("predict", *base, "--skip-existing")  # both done before: skipped, the cut-short drawing removed
    assert r.exit_code == 0 and "2 inputs skipped" in r.stderr, r.output
    assert sorted(p.name for p in (vis / "clips").iterdir()) == ["a.mp4", "a.part.mp4"]


def test_a_folder_scan_passes_over_the_commands_own_files_being_written(tmp_path, standin_path):
    """One left by a killed run (SIGKILL: nothing can remove it) is not an input of the next run."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.png"), photo())
    (shoot / ".fasterpose-0123456789ab.mp4").write_bytes(b"")
    r = run("predict", shoot, "--model", standin_path, "--no-search")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1, r.output


def test_an_input_that_fails_twice_is_one_failed_input(tmp_path, standin_path, monkeypatch):
    """Its results file and its picture both unwritable: two lines name it, the summary counted "2 inputs failed"
    for one (review s59)."""
    import fasterpose_rt.cli.predict_run as cli_run

    real_write = cli_run.atomic_write_bytes

    def no_picture_of_a(path, data):  # (a folder in the picture's place is no longer in the way: it is kept)
        if Path(path).name == "a.png":
            raise PermissionError(13, "Permission denied", str(path))
        real_write(path, data)

    monkeypatch.setattr(cli_run, "atomic_write_bytes", no_picture_of_a)
    cv2.imwrite(str(tmp_path / "a.png"), photo())
    cv2.imwrite(str(tmp_path / "b.png"), photo())
    (tmp_path / "own" / "a.json").mkdir(parents=True)
    r = run("predict", tmp_path / "a.png", tmp_path / "b.png", "--model", standin_path, "--no-search",
            "--vis", tmp_path / "vis", "--out-dir", tmp_path / "own")
    assert r.exit_code == 1 and r.stderr.count(f"error: {tmp_path / 'a.png'}: ") == 2, r.output
    assert "; 1 input failed" in r.stderr, r.output


def test_a_coco_boxes_file_listing_a_photo_in_its_stored_frame_has_it_read_as_stored(tmp_path, standin_path):
    """EXIF orientation 6 turns the stored 80x120 photo to 120x80; the COCO file lists it 80 wide and 120 tall, its
    box and keypoints in the stored frame, as eval reads it: predict read it upright and cropped the wrong region,
    up to 345 px off without a word (review s59)."""
    from test_cli_units import exif_jpeg

    (tmp_path / "turned.jpg").write_bytes(exif_jpeg(photo(), 6))
    boxes = tmp_path / "coco.json"
    boxes.write_text(json.dumps({
        "images": [{"id": 7, "file_name": "turned.jpg", "width": 80, "height": 120}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [20, 20, 40, 80]}]}))
    r = run("predict", tmp_path / "turned.jpg", "--model", standin_path, "--boxes", boxes)
    assert r.exit_code == 0, r.output
    assert "read as stored, its EXIF orientation ignored: the --boxes file lists it as 80x120 px" in r.stderr
    (entry,) = json.loads(r.stdout)
    found = np.array(entry["keypoints"], np.float64).reshape(-1, 3)[:, :2]
    assert entry["image_id"] == 7 and np.abs(found - np.array(POINTS)).max() < 2.0, found


def test_namesakes_resumed_in_another_order_find_their_own_results(tmp_path, standin_path):
    """a/same.png and b/same.png share a name: their --out-dir files are same.json and same_2.json by position, so
    a resumed run given them in the other order (or b alone) failed both as "holds the results of" the other
    (review s59)."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "same.png"), photo())
    a, b, own = tmp_path / "a" / "same.png", tmp_path / "b" / "same.png", tmp_path / "own"
    base = ["--model", standin_path, "--no-search", "--out-dir", own]
    r = run("predict", a, b, *base)
    assert r.exit_code == 0 and sorted(p.name for p in results_in(own)) == ["same.json", "same_2.json"], r.output
    written = {p.name: p.read_text() for p in results_in(own)}
    for order in ((b, a), (b,), (a,)):
        r = run("predict", *order, *base, "--skip-existing")
        assert r.exit_code == 0 and f"{len(order)} input{'s' * (len(order) > 1)} skipped" in r.stderr, r.output
    assert {p.name: p.read_text() for p in results_in(own)} == written
    r = run("predict", b, a, *base)  # run again without skipping: each into its own file (image ids by order)
    assert r.exit_code == 0, r.output
    assert [json.loads((own / n).read_text())[0]["file_name"] for n in ("same.json", "same_2.json")] == [
        a.as_posix(), b.as_posix()]


def test_namesakes_in_another_order_keep_their_vis_pictures_with_their_results(tmp_path, standin_path):
    """With --vis too: a rerun in the other order found each input's --out-dir file among the namesakes' names, but
    drew each picture over the other's (same.png then b's, same.json still a's); b alone drew over a's picture."""
    for folder, shape in (("a", (120, 80)), ("b", (150, 100))):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "same.png"), photo(shape=shape))
    a, b, own, vis = tmp_path / "a" / "same.png", tmp_path / "b" / "same.png", tmp_path / "own", tmp_path / "vis"
    base = ["--model", standin_path, "--no-search", "--out-dir", own, "--vis", vis]
    for order in ((a, b), (b, a), (b,), (a,)):
        r = run("predict", *order, *base)
        assert r.exit_code == 0, r.output
        for name, source, shape in (("same", a, (120, 80)), ("same_2", b, (150, 100))):
            assert json.loads((own / f"{name}.json").read_text())[0]["file_name"] == source.as_posix(), order
            assert cv2.imread(str(vis / f"{name}.png")).shape[:2] == shape, (order, name)
    assert sorted(p.name for p in vis.iterdir()) == ["same.png", "same_2.png"]


def test_a_folder_grown_by_a_namesake_that_sorts_first_runs_it_and_keeps_the_others_files(tmp_path, standin_path):
    """x.png done, then x.bmp added beside it: by input order x.bmp was named after x.png's files, so it failed on
    every run ("holds the results of") and x.png was redone into x_2 (review s68). Each keeps its own names now."""
    shoot, own, vis = tmp_path / "shoot", tmp_path / "own", tmp_path / "vis"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "x.png"), photo(shape=(120, 80)))
    base = ["--model", standin_path, "--no-search", "--out-dir", own, "--vis", vis]
    assert run("predict", shoot, *base).exit_code == 0
    first = (own / "shoot" / "x.json").read_text()
    cv2.imwrite(str(shoot / "x.bmp"), photo(shape=(150, 100)))
    for extra, skipped in ((["--skip-existing"], "1 input skipped"), (["--skip-existing"], "2 inputs skipped"), ([], "")):
        r = run("predict", shoot, *base, *extra)
        assert r.exit_code == 0 and "holds the results" not in r.output, r.output
        assert sorted(p.name for p in (own / "shoot").iterdir()) == ["x.json", "x_2.json"]
        for name, source, shape in (("x", "x.png", (120, 80)), ("x_2", "x.bmp", (150, 100))):
            entry = json.loads((own / "shoot" / f"{name}.json").read_text())[0]
            assert entry["file_name"] == (shoot / source).as_posix(), (extra, name)
            assert cv2.imread(str(vis / "shoot" / f"{name}.png")).shape[:2] == shape, (extra, name)
        if extra:  # x.png's results stay as they were, and it is skipped
            assert (own / "shoot" / "x.json").read_text() == first and skipped in r.stderr, r.output
    assert sorted(p.name for p in (vis / "shoot").iterdir()) == ["x.png", "x_2.png"]


def test_namesakes_of_other_formats_keep_their_own_drawings_and_an_old_duplicate_does_not_block(tmp_path,
                                                                                                standin_path):
    """Diff review s68: swapping the --out-dir names of x.png (done) and x.jpg (new) swapped their drawings too,
    which are not namesakes (x.png, x.jpg); and where an earlier version had redone x.png into x_2 (both files
    x.png's), the swap went back and forth and x.jpg still failed."""
    shoot, own, vis = tmp_path / "shoot", tmp_path / "own", tmp_path / "vis"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "x.png"), photo(shape=(120, 80)))
    base = ["--model", standin_path, "--no-search", "--out-dir", own, "--vis", vis]
    assert run("predict", shoot, *base).exit_code == 0
    cv2.imwrite(str(shoot / "x.jpg"), photo(shape=(150, 100)))
    for _ in range(2):
        r = run("predict", shoot, *base, "--skip-existing")
        assert r.exit_code == 0, r.output
        assert cv2.imread(str(vis / "shoot" / "x.png")).shape[:2] == (120, 80)
        assert cv2.imread(str(vis / "shoot" / "x.jpg")).shape[:2] == (150, 100)
    # an earlier version's state: x_2.json a second copy of x.png's results, x.jpg's results nowhere
    shutil.rmtree(own)
    assert run("predict", shoot / "x.png", *base[:-2]).exit_code == 0  # (given alone: no namesake)
    shutil.copy(own / "x.json", own / "x_2.json")
    r = run("predict", shoot / "x.jpg", shoot / "x.png", *base[:-2], "--skip-existing")
    assert r.exit_code == 0 and "holds the results" not in r.output and "1 input skipped" in r.stderr, r.output
    assert json.loads((own / "x_3.json").read_text())[0]["file_name"] == (shoot / "x.jpg").as_posix()


def test_a_name_too_long_for_its_results_file_fails_alone_on_a_rerun_too(tmp_path, standin_path):
    """review s68: an input named near the file system's limit (251 bytes + .png) has no room for .json; the first
    run failed it alone, a rerun (the --out-dir folder there) ended whole on ENAMETOOLONG, nothing processed."""
    shoot, own = tmp_path / "shoot", tmp_path / "own"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.png"), photo())
    try:
        cv2.imwrite(str(shoot / ("x" * 251 + ".png")), photo())
    except OSError:
        pytest.skip("the file system takes no 255-byte names")
    if len(list(shoot.iterdir())) != 2:
        pytest.skip("the file system takes no 255-byte names")
    for extra in ([], ["--skip-existing"], []):
        r = run("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", own, *extra)
        assert r.exit_code == 1 and "1 input failed" in r.stderr and "Traceback" not in r.output, r.output
        assert (own / "shoot" / "a.json").is_file()


def test_results_are_not_written_through_links_or_over_other_files_in_the_out_dir(tmp_path, standin_path):
    """review s68: links planted in an --out-dir (a downloaded folder written into) had results written through them,
    over the files they named outside it, and the folder's record appended to (or a 1,200-line file replaced); a
    video's .part name took any file there."""
    shoot, own, victims = tmp_path / "shoot", tmp_path / "own", tmp_path / "victims"
    for folder in (shoot, own / "shoot", victims):
        folder.mkdir(parents=True)
    cv2.imwrite(str(shoot / "y.png"), photo())
    cv2.imwrite(str(shoot / "z.png"), photo())
    cv2.imwrite(str(shoot / "w.png"), photo())  # written: its line would go into the record
    write_video(shoot / "clip.mp4", frames=3)
    (victims / "notes.txt").write_text("".join(f"{i}\n" for i in range(1200)))
    (victims / "empty.json").write_text("[]")
    os.symlink(victims / "notes.txt", own / SOURCES_NAME)
    os.symlink(victims / "empty.json", own / "shoot" / "y.json")
    os.symlink(victims / "made.json", own / "shoot" / "z.json")  # leading nowhere yet
    (own / "shoot" / "clip.jsonl.part").write_text("somebody's notes\n")
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", own)
    assert r.exit_code == 1 and "3 inputs failed" in r.stderr, r.output
    assert "y.json is a symbolic link" in r.stderr and "z.json is a symbolic link" in r.stderr
    assert "clip.jsonl.part is not a results file" in r.stderr
    assert (victims / "notes.txt").read_text().count("\n") == 1200 and (victims / "empty.json").read_text() == "[]"
    assert sorted(p.name for p in victims.iterdir()) == ["empty.json", "notes.txt"]
    assert (own / "shoot" / "clip.jsonl.part").read_text() == "somebody's notes\n"
    assert json.loads((own / "shoot" / "w.json").read_text())[0]["file_name"].endswith("w.png")
    assert "is not a regular file" in r.stderr  # the record, said once


def test_a_photo_of_nobody_gets_no_person(tmp_path):
    """The bundled default (it has a presence head) on a blank photo and a photo of noise: by default nobody, as a
    video frame of nobody has no entry, and the summary says so; with --min-presence 0 a guess for each, with the
    head's low presence in its entry and CSV row."""
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "noise.png"), np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8))
    for extra, persons in (([], 0), (["--min-presence", "0"], 2)):
        out = tmp_path / f"r{persons}.json"
        r = run("predict", str(tmp_path / "blank.png"), str(tmp_path / "noise.png"), "--out", str(out),
                "--vis", str(tmp_path / f"vis{persons}"), "--threads", "1", *extra)
        assert r.exit_code == 0, r.output
        entries = json.loads(out.read_text())
        assert len(entries) == persons and all(e["presence"] < 0.3 for e in entries)
        nobody = " (2 with nobody found)" if not persons else ""
        assert f"2 photos{nobody}, {persons} persons" in r.output
        assert len(list((tmp_path / f"vis{persons}").iterdir())) == 2  # pictures of both photos either way
        if not persons:  # the picture says so: "nobody found" written in its corner
            assert (cv2.imread(str(tmp_path / "vis0" / "blank.png")) != 128).any()
    r = run("predict", str(tmp_path / "blank.png"), "--out", str(tmp_path / "r.csv"), "--min-presence", "0",
            "--threads", "1")
    header, row = (tmp_path / "r.csv").read_text().splitlines()
    assert header.split(",")[-1] == "presence" and float(row.split(",")[-1]) < 0.3


def test_a_log_of_stderr_holds_no_progress_bar(folder, standin_path):
    """Progress bars are drawn on a terminal only: stderr written to a file or pipe gets the errors and the summary
    alone."""
    (folder / "bad.jpg").write_bytes(b"not a photo")
    r = run("predict", folder, "--model", standin_path, "--no-search")
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"error: {folder / 'bad.jpg'}: ") and lines[1].startswith("2 photos, 2 persons in ")
    assert len(lines) == 2 and "\r" not in r.stderr, r.stderr


def test_skip_existing_carries_results_under_todays_names_and_leaves_a_jsonl_out_as_it_was(tmp_path, standin_path,
                                                                                          monkeypatch):
    """The carried entries name their inputs as this run does (a run resumed from another folder had mixed the two
    spellings), and are written with the run's own results: a JSON Lines --out was opened, and emptied, before a
    run that then processed nothing, which says it left --out as it was (review s62)."""
    shoot = tmp_path / "c1" / "shoot"
    shoot.mkdir(parents=True)
    for name in "ab":
        cv2.imwrite(str(shoot / f"{name}.jpg"), photo())
    monkeypatch.chdir(tmp_path / "c1")
    base = ("--model", standin_path, "--no-search", "-q")
    assert run("predict", "shoot", "--out-dir", "own", *base).exit_code == 0
    (tmp_path / "c1" / "own" / "shoot" / "b.json").unlink()
    monkeypatch.chdir(tmp_path)
    r = run("predict", "c1/shoot", "--out-dir", "c1/own", "--skip-existing", *base)
    assert r.exit_code == 0, r.output
    assert sorted(e["file_name"] for e in json.loads(r.stdout)) == ["c1/shoot/a.jpg", "c1/shoot/b.jpg"]
    earlier = tmp_path / "res.jsonl"
    for out in (earlier, tmp_path / "res.json"):
        out.write_text('{"earlier": 1}\n')
        r = run("predict", "c1/shoot", "typo.jpg", "--out-dir", "c1/own", "--skip-existing", "--out", out,
                "--model", standin_path, "--no-search")
        assert r.exit_code == 1 and "left as it was: nothing processed" in r.stderr, r.output
        assert out.read_text() == '{"earlier": 1}\n'
    r = run("predict", "c1/shoot", "--out-dir", "c1/own", "--skip-existing", "--out", earlier, *base)
    assert r.exit_code == 0 and len(earlier.read_text().splitlines()) == 2  # nothing failed: written
