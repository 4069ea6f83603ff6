"""``fasterpose predict``'s outputs never harm what is there: inputs, files beside them, other inputs' results; its
own outputs are not read back as inputs; names OpenCV cannot take; warnings and silence where they belong."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from standin import paint_blobs, read_video, write_video
import test_cli_predict
from test_cli_predict import assert_no_traceback, photo, run
from test_cli_units import exif_jpeg

folder = test_cli_predict.folder  # its fixture: photos/a.jpg and photos/sub/b.png

LINUX_ONLY = pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8 are a Linux matter")


def cli(*args, cwd):
    """The command in a process of its own: OpenCV's crashes and its console lines are out of CliRunner's reach."""
    return subprocess.run([sys.executable, "-m", "fasterpose_rt.cli", *map(str, args)], capture_output=True,
                          text=True, errors="replace", timeout=120, cwd=cwd)


@LINUX_ONLY
def test_a_video_or_vis_folder_named_in_bytes_that_are_not_utf8_is_read_and_written(tmp_path, standin_path):
    """OpenCV's video reader and writer crash (segfault, losing the run's results) on a file name that is not
    UTF-8: such a video is read, and its --vis video written, through an ASCII name; a URL it cannot be given
    fails alone."""
    shoot, vis = tmp_path / "shoot", tmp_path / os.fsdecode(b"vis\xe9")
    shoot.mkdir()
    cv2.imwrite(str(tmp_path / "a.jpg"), photo())
    video = shoot / os.fsdecode(b"vid\xe9.mp4")
    write_video(shoot / "ascii.mp4", frames=3).rename(video)  # OpenCV cannot write it under its name either
    url = "file://" + os.fsdecode(b"/nowhere/vid\xe9.mp4")
    out = tmp_path / "r.json"
    done = cli("predict", tmp_path / "a.jpg", shoot, url, "--model", standin_path, "--no-search", "--out", out,
               "--vis", vis, cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr[-800:])
    assert done.stderr.count("error: ") == 1 and "the URL is not valid UTF-8" in done.stderr, done.stderr
    res = json.loads(out.read_text())
    assert [(e["file_name"], e.get("frame")) for e in res] == [
        ((tmp_path / "a.jpg").as_posix(), None), *[(video.as_posix(), i) for i in range(3)]]
    drawn = vis / "shoot" / video.name
    (tmp_path / "drawn.mp4").write_bytes(drawn.read_bytes())  # read back under a name OpenCV takes
    assert len(read_video(tmp_path / "drawn.mp4")) == 3 and (vis / "a.jpg").is_file()


def test_opencv_prints_nothing_of_its_own_for_a_video_it_cannot_decode(tmp_path, standin_path):
    """A video of an unknown codec: our one-line error alone, none of OpenCV's "[ERROR:0@...]" lines."""
    good = tmp_path / "good.avi"
    w = cv2.VideoWriter(str(good), cv2.VideoWriter.fourcc(*"MJPG"), 10, (80, 120))
    for _ in range(2):
        w.write(photo())
    w.release()
    (tmp_path / "bad.avi").write_bytes(good.read_bytes().replace(b"MJPG", b"ZZZZ"))
    done = cli("predict", "bad.avi", "--model", standin_path, "-q", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.splitlines() == [
        "error: bad.avi: cannot open as a video (unsupported format or corrupt file)"], done.stderr


def test_out_naming_an_input_is_refused_before_any_work(folder, standin_path, tmp_path):
    """--out that is one of the inputs (given, found in a folder, a list, the --boxes file) would be written over:
    a usage error, every file as it was."""
    lst = tmp_path / "photos.txt"
    lst.write_text("photos/a.jpg\n")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[10, 10, 60, 100]], "sub/b.png": [[10, 10, 60, 100]]}))
    before = {f: f.read_bytes() for f in (folder / "a.jpg", folder / "sub" / "b.png", lst, boxes)}
    for inputs, out, what in (([folder / "a.jpg", folder / "sub/b.png"], folder / "sub/b.png", "the input"),
                              ([folder], folder / "sub" / ".." / "a.jpg", "the input"),
                              ([lst], lst, "the input"), ([folder, "--boxes", boxes], boxes, "the --boxes file")):
        r = run("predict", *inputs, "--model", standin_path, "--no-search", "--out", out)
        assert r.exit_code == 2 and f"cannot write results to {out}: it is {what}" in r.stderr, r.output
        assert_no_traceback(r)
    assert {f: f.read_bytes() for f in before} == before


def test_vis_into_an_inputs_own_folder_never_takes_the_name_of_a_file_beside_it(tmp_path, standin_path):
    """A drawing in another format (clip.mov as .mp4, p.ppm as .png) into its input's own folder is named
    <name>_pose, never the user's clip.mp4 or p.png beside it, and alike in every run."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_video(shoot / "clip.mov", frames=2)
    cv2.imwrite(str(shoot / "p.ppm"), photo())
    (shoot / "clip.mp4").write_bytes(b"my own clip")
    (shoot / "p.png").write_bytes(b"my own picture")
    for _ in range(2):
        r = run("predict", shoot / "clip.mov", shoot / "p.ppm", "--model", standin_path, "--no-search", "--vis",
                shoot, "-q")
        assert r.exit_code == 0, r.output
        assert sorted(f.name for f in shoot.iterdir()) == [
            "clip.mov", "clip.mp4", "clip_pose.mp4", "p.png", "p.ppm", "p_pose.png"]
    assert (shoot / "clip.mp4").read_bytes() == b"my own clip" and (shoot / "p.png").read_bytes() == b"my own picture"


def test_out_dir_never_skips_nor_overwrites_another_inputs_results(tmp_path, standin_path, monkeypatch):
    """Two cards' DCIM/x.jpg into one --out-dir in two runs: the second card's photo fails, naming both files,
    neither skipped (--skip-existing) nor written over; its own file is skipped or rewritten; a file that holds
    no results is never written over; [] (nobody found) with no record of its input counts as the input's own."""
    monkeypatch.chdir(tmp_path)  # relative names, as recorded, are taken from the current folder
    for card, y in (("card1", 30), ("card2", 40)):
        Path(card, "DCIM").mkdir(parents=True)
        cv2.imwrite(f"{card}/DCIM/x.jpg", paint_blobs((120, 80), [[40, y]] + [[40, 60]] * 13))
    base = ("--model", standin_path, "--no-search", "--out-dir", "own")
    assert run("predict", "card1/DCIM", *base, "-q").exit_code == 0
    first = Path("own/DCIM/x.json").read_bytes()
    card1 = os.path.realpath("card1/DCIM/x.jpg")  # as the --out-dir's record of inputs names it
    for skip in (("--skip-existing",), ()):
        r = run("predict", "card2/DCIM", *base, *skip)
        assert r.exit_code == 1 and "1 input failed" in r.stderr and "skipped" not in r.stderr, r.output
        assert (f"error: {Path('card2/DCIM/x.jpg')}: its --out-dir file {Path('own/DCIM/x.json')} holds the results "
                f"of {card1}; give another --out-dir (or move that file)") in r.stderr
        assert Path("own/DCIM/x.json").read_bytes() == first and json.loads(r.stdout) == []
    r = run("predict", "card1/DCIM", *base, "--skip-existing")
    assert r.exit_code == 0 and "1 input skipped" in r.stderr, r.output
    # review s58: run again from another folder, the recorded card1/DCIM/x.jpg named no file from there: refused
    monkeypatch.chdir(tmp_path / "card1")
    r = run("predict", "DCIM", *base[:-1], tmp_path / "own", "--skip-existing")
    assert r.exit_code == 0 and "1 input skipped" in r.stderr, r.output
    monkeypatch.chdir(tmp_path / "card2")  # and card2's DCIM/x.jpg from there still is not card1's
    r = run("predict", "DCIM", *base[:-1], tmp_path / "own", "--skip-existing")
    assert r.exit_code == 1 and "holds the results of " in r.stderr, r.output
    monkeypatch.chdir(tmp_path)
    Path("card3", "card1", "DCIM").mkdir(parents=True)  # a photo whose path ends as card1's does: not card1's
    cv2.imwrite("card3/card1/DCIM/x.jpg", paint_blobs((120, 80), [[40, 50]] + [[40, 60]] * 13))
    r = run("predict", "card3/card1/DCIM", *base, "--skip-existing")  # card1/DCIM/x.jpg names a file from here
    assert r.exit_code == 1 and f"holds the results of {card1};" in r.stderr, r.output
    assert run("predict", tmp_path / "card1/DCIM", *base, "-q").exit_code == 0  # the same photo, named otherwise
    Path("own/DCIM/x.json").write_text('{"mine": true}')
    r = run("predict", "card1/DCIM", *base, "--skip-existing")
    assert r.exit_code == 1 and "x.json is not a results file" in r.stderr, r.output
    assert Path("own/DCIM/x.json").read_text() == '{"mine": true}'
    Path("own/DCIM/x.json").write_text("[]")
    Path("own/.fasterpose_sources.jsonl").unlink()  # as written before there was a record
    r = run("predict", "card2/DCIM", *base, "-q")
    assert r.exit_code == 0 and json.loads(Path("own/DCIM/x.json").read_text())[0]["file_name"] == "card2/DCIM/x.jpg"


def test_two_cards_each_run_from_its_own_root_into_one_out_dir(tmp_path, standin_path, monkeypatch):
    """Both record DCIM/x.jpg, a name each run finds from its own folder: the record of inputs in --out-dir tells
    the second card's photo from the first's (it fails, named, that file kept), a photo of nobody (``[]``) included;
    the first card mounted elsewhere (a copy) is still the first card, and both videos likewise."""
    for card, y in (("card1", 30), ("card2", 40)):
        Path(tmp_path, card, "DCIM").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / card / "DCIM/x.jpg"), paint_blobs((120, 80), [[40, y]] + [[40, 60]] * 13))
        write_video(tmp_path / card / "DCIM/v.mp4", frames=2 if card == "card1" else 3)
    own = tmp_path / "poses"
    base = ("--model", standin_path, "--no-search", "--out-dir", own)
    monkeypatch.chdir(tmp_path / "card1")
    assert run("predict", "DCIM", *base, "-q").exit_code == 0
    kept = {p: p.read_bytes() for p in (own / "DCIM/x.json", own / "DCIM/v.jsonl")}
    monkeypatch.chdir(tmp_path / "card2")
    for skip in (("--skip-existing",), ()):
        r = run("predict", "DCIM", *base, *skip)
        assert r.exit_code == 1 and "2 inputs failed" in r.stderr and "skipped" not in r.stderr, r.output
        for name, ext in (("x.jpg", "json"), ("v.mp4", "jsonl")):
            assert (f"its --out-dir file {own / 'DCIM' / ('x.json' if ext == 'json' else 'v.jsonl')} holds the "
                    f"results of {os.path.realpath(tmp_path / 'card1/DCIM' / name)};") in r.stderr, r.output
        assert {p: p.read_bytes() for p in kept} == kept
    monkeypatch.chdir(tmp_path / "card1")  # card1's photo and video with nobody in them (no name in the files)
    (tmp_path / "nobody.json").write_text('{"x.jpg": [], "v.mp4": []}')
    r = run("predict", "DCIM", "--boxes", tmp_path / "nobody.json", *base)
    assert r.exit_code == 0 and (own / "DCIM/x.json").read_text().strip() == "[]", r.output
    kept = {p: p.read_bytes() for p in kept}
    monkeypatch.chdir(tmp_path / "card2")
    r = run("predict", "DCIM", *base, "--skip-existing")  # still card1's
    assert r.exit_code == 1 and "2 inputs failed" in r.stderr and "skipped" not in r.stderr, r.output
    assert f"{own / 'DCIM/x.json'} holds the results of " in r.stderr
    assert {p: p.read_bytes() for p in kept} == kept
    (tmp_path / "card1").rename(tmp_path / "mounted_elsewhere")  # the same card, at another path
    monkeypatch.chdir(tmp_path / "mounted_elsewhere")
    r = run("predict", "DCIM", *base, "--skip-existing")
    assert r.exit_code == 0 and "2 inputs skipped" in r.stderr, r.output
    assert {p: p.read_bytes() for p in kept} == kept


def test_a_results_file_written_without_its_line_is_told_by_the_name_it_holds(tmp_path, standin_path, monkeypatch):
    """review s63: card1's line outranked card2's file written where the record could not be added to: card1 with
    --skip-existing was skipped, card2's poses carried under its name. A line counts only for the file it was
    written with; a video named as the record is not given the record's name."""
    from fasterpose_rt.cli import out_dir_sources

    monkeypatch.chdir(tmp_path)
    for card, y in (("card1", 30), ("card2", 40)):
        Path(card, "DCIM").mkdir(parents=True)
        cv2.imwrite(f"{card}/DCIM/x.jpg", paint_blobs((120, 80), [[40, y]] + [[40, 60]] * 13))
    base = ("--model", standin_path, "--no-search", "--out-dir", "own")
    assert run("predict", "card1/DCIM", *base, "-q").exit_code == 0
    Path("own/DCIM/x.json").unlink()

    def unwritable(self, results_file, source):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(out_dir_sources.SourceRecord, "add", unwritable)
        r = run("predict", "card2/DCIM", *base)
    assert r.exit_code == 0 and "warning: cannot record whose results" in r.stderr, r.output
    card2 = Path("own/DCIM/x.json").read_bytes()
    r = run("predict", "card1/DCIM", *base, "--skip-existing")
    assert r.exit_code == 1 and "holds the results of card2/DCIM/x.jpg" in r.stderr, r.output
    assert Path("own/DCIM/x.json").read_bytes() == card2
    write_video(tmp_path / ".fasterpose_sources.mp4", frames=2)
    r = run("predict", tmp_path / ".fasterpose_sources.mp4", *base, "-q")
    assert r.exit_code == 0 and Path("own/.fasterpose_sources_2.jsonl").is_file(), r.output
    assert b'"source"' in Path("own/.fasterpose_sources.jsonl").read_bytes()


def test_a_photo_changed_since_its_results_were_written_is_run_again(tmp_path, standin_path):
    """--skip-existing skips a photo whose bytes are those its --out-dir results were written for; one changed
    since (the same path) is run again, with a warning, and its results rewritten."""
    shoot, own = tmp_path / "shoot", tmp_path / "own"
    shoot.mkdir()
    for name, y in (("a.jpg", 30), ("b.jpg", 40)):
        cv2.imwrite(str(shoot / name), paint_blobs((120, 80), [[40, y]] + [[40, 60]] * 13))
    base = ("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", own, "--skip-existing")
    assert run(*base, "-q").exit_code == 0
    before = json.loads((own / "shoot/b.json").read_text())
    cv2.imwrite(str(shoot / "b.jpg"), paint_blobs((120, 80), [[60, 20]] + [[20, 70]] * 13))
    r = run(*base)
    assert r.exit_code == 0 and "1 input skipped" in r.stderr, r.output
    assert f"warning: {shoot / 'b.jpg'}: changed since its results in {own / 'shoot/b.json'} were written" in r.stderr
    after = json.loads((own / "shoot/b.json").read_text())
    assert after[0]["keypoints"] != before[0]["keypoints"] and len(json.loads(r.stdout)) == 2
    r = run(*base)
    assert r.exit_code == 0 and "2 inputs skipped" in r.stderr and "warning" not in r.stderr, r.output


def test_the_runs_own_output_folders_inside_an_input_folder_are_not_read_back(folder, standin_path, tmp_path):
    """--vis and --out-dir inside the input folder: the next run reads the photos, not the drawings and results
    of the run before (nor nests deeper each run), and says how many files it left out; named directly, read."""
    args = ("predict", folder, "--model", standin_path, "--no-search", "--vis", folder / "drawn", "--out-dir",
            folder / "results")
    r = run(*args)
    assert r.exit_code == 0 and "2 photos" in r.stderr and "left out" not in r.stderr, r.output
    r = run(*args)
    assert r.exit_code == 0 and "2 photos" in r.stderr, r.output
    assert "; 2 files under --vis or --out-dir left out of the input folders" in r.stderr
    assert sorted(f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()) == [
        "a.jpg", "drawn/photos/a.jpg", "drawn/photos/sub/b.png", "results/.fasterpose_sources.jsonl", "results/photos/a.json",
        "results/photos/sub/b.json", "sub/b.png"]
    r = run("predict", folder / "drawn", "--model", standin_path, "--no-search", "--vis", folder / "drawn")
    assert r.exit_code == 0 and "2 photos" in r.stderr and "left out" not in r.stderr, r.output


def _files(folder):
    return sorted(f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file())


def test_vis_into_the_input_folder_itself_draws_beside_each_photo_and_reads_no_drawing_back(folder, standin_path,
                                                                                              monkeypatch):
    """predict photos/ --vis photos/ (and predict . --vis . inside it): each drawing beside its photo as
    <name>_pose, as for a file argument, not nested one folder deeper each run; a rerun reads the photos alone,
    saying how many drawings it left out, the <name>_pose_N ones too; --out-dir there as well: results nest (as
    --out-dir names them) and are never read as photos."""
    args = ("--model", standin_path, "--no-search")
    for n in range(3):
        r = run("predict", folder, *args, "--vis", folder)
        assert r.exit_code == 0 and "2 photos" in r.stderr, r.output
        assert ("left out" not in r.stderr if n == 0 else
                "; 2 files under --vis or --out-dir left out of the input folders" in r.stderr), r.stderr
        assert _files(folder) == ["a.jpg", "a_pose.jpg", "sub/b.png", "sub/b_pose.png"]
    (folder / "a_pose_2.jpg").write_bytes((folder / "a_pose.jpg").read_bytes())  # as a run before may have named it
    monkeypatch.chdir(folder)
    r = run("predict", ".", *args, "--vis", ".", "--out-dir", ".")
    assert r.exit_code == 0 and "2 photos" in r.stderr and "3 files under --vis" in r.stderr, r.output
    r = run("predict", ".", *args, "--vis", ".", "--out-dir", ".")
    assert r.exit_code == 0 and "2 photos" in r.stderr and "3 files under --vis" in r.stderr, r.output
    assert _files(folder) == [".fasterpose_sources.jsonl", "a.jpg", "a_pose.jpg", "a_pose_2.jpg", "photos/a.json",
                              "photos/sub/b.json", "sub/b.png", "sub/b_pose.png"]
    r = run("predict", ".", "a_pose.jpg", *args, "--vis", ".")  # named yourself: read, and drawn beside itself
    assert r.exit_code == 0 and "3 photos" in r.stderr and "; 2 files under --vis" in r.stderr, r.output
    assert "a_pose_pose.jpg" in _files(folder) and "a_pose_2.jpg" in _files(folder)


def test_an_earlier_runs_drawings_are_left_out_of_a_folder_without_vis_too(folder, standin_path, tmp_path):
    """After predict photos/ --vis photos/ (or --vis photos/drawn), predict photos/ without --vis read the drawings
    as photos, and --out-dir gave them results of their own; only a rerun with the same --vis left them out. Marked
    drawings beside other files are left out now; a folder of drawings alone, named, is read."""
    args = ("--model", standin_path, "--no-search")
    for vis in (folder, folder / "drawn"):
        r = run("predict", folder, *args, "--vis", vis)
        assert r.exit_code == 0, r.output
    r = run("predict", folder, *args, "--out-dir", tmp_path / "own")
    assert r.exit_code == 0 and "2 photos" in r.stderr, r.output
    assert "; 4 drawings of an earlier --vis run left out of the input folders (name one to run it)" in r.stderr
    assert _files(tmp_path / "own") == [".fasterpose_sources.jsonl", "photos/a.json", "photos/sub/b.json"]
    r = run("predict", f"{folder}/**/*.*", *args)  # a pattern alike
    assert r.exit_code == 0 and "2 photos" in r.stderr and "4 drawings" in r.stderr, r.output
    r = run("predict", folder / "drawn", *args)  # a folder of drawings alone: named for them
    assert r.exit_code == 0 and "2 photos" in r.stderr and "left out" not in r.stderr, r.output
    r = run("predict", folder, folder / "a_pose.jpg", *args)  # named yourself: read
    assert r.exit_code == 0 and "3 photos" in r.stderr and "; 3 drawings" in r.stderr, r.output


def test_vis_never_draws_over_a_photo_named_as_a_drawing_would_be(tmp_path, standin_path):
    """A photo of yours named as a drawing would be (a_pose.jpg beside a.jpg, or a.jpg in the --vis folder) carries
    no drawing's mark: a folder reads it as an input, and no drawing is written over it; the drawing takes the next
    free name, and a rerun names everything alike."""
    shoot, vis = tmp_path / "shoot", tmp_path / "vis"
    shoot.mkdir()
    vis.mkdir()
    for path in (shoot / "a.jpg", shoot / "a_pose.jpg", vis / "a.jpg"):
        cv2.imwrite(str(path), photo())
    before = {p: p.read_bytes() for p in (shoot / "a_pose.jpg", vis / "a.jpg")}
    args = ("--model", standin_path, "--no-search")
    for n in range(2):
        r = run("predict", shoot, *args, "--vis", shoot)
        assert r.exit_code == 0 and "2 photos" in r.stderr, r.output
        assert ("left out" not in r.stderr if n == 0 else "; 2 files under --vis" in r.stderr), r.stderr
        assert _files(shoot) == ["a.jpg", "a_pose.jpg", "a_pose_2.jpg", "a_pose_pose.jpg"]
        r = run("predict", shoot / "a.jpg", *args, "--vis", vis)
        assert r.exit_code == 0, r.output
        assert _files(vis) == ["a.jpg", "a_pose.jpg"]
        assert {p: p.read_bytes() for p in before} == before


def test_vis_into_an_input_folder_reads_no_drawing_of_another_input_back(tmp_path, standin_path):
    """predict x y other.jpg --vis x: x's photo drawn beside it, y's and other.jpg's into x as always (x/y/a.jpg:
    two folders' a.jpg kept apart); a rerun reads neither back from x, nor a drawing beside y's photo when --vis
    names y's parent folder. predict x y --vis out/ keeps out/x/a.jpg and out/y/a.jpg."""
    for name in ("x/a.jpg", "y/a.jpg", "other.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name), photo())
    x, y = tmp_path / "x", tmp_path / "y"
    args = ("--model", standin_path, "--no-search")
    r = run("predict", x, y, *args, "--vis", tmp_path / "out")
    assert r.exit_code == 0 and "2 photos" in r.stderr, r.output
    assert _files(tmp_path / "out") == ["x/a.jpg", "y/a.jpg"]
    for n in range(2):
        r = run("predict", x, y, tmp_path / "other.jpg", *args, "--vis", x)
        assert r.exit_code == 0 and "3 photos" in r.stderr, r.output
        assert ("left out" not in r.stderr if n == 0 else "; 3 files under --vis" in r.stderr), r.stderr
        assert _files(x) == ["a.jpg", "a_pose.jpg", "other.jpg", "y/a.jpg"]
    for n in range(2):
        r = run("predict", y, *args, "--vis", tmp_path)  # y/a.jpg drawn into y: beside it
        assert r.exit_code == 0 and "1 photo," in r.stderr, r.output
        assert ("left out" not in r.stderr if n == 0 else "; 1 file under --vis" in r.stderr), r.stderr
        assert _files(y) == ["a.jpg", "a_pose.jpg"]


def test_a_video_drawn_beside_itself_is_not_read_back(tmp_path, standin_path):
    """A folder's video drawn into that folder (clip.mov as clip_pose.mp4): the next run reads clip.mov alone."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_video(shoot / "clip.mov", frames=2)
    for n in range(2):
        r = run("predict", shoot, "--model", standin_path, "--no-search", "--vis", shoot)
        assert r.exit_code == 0 and "1 video (2 frames)" in r.stderr, r.output
        assert sorted(f.name for f in shoot.iterdir()) == ["clip.mov", "clip_pose.mp4"]


def test_boxes_wholly_outside_the_upright_photo_are_warned_of_and_still_run(tmp_path, standin_path):
    """A photo stored 80x120 that its EXIF orientation turns to 120x80: a box given in the stored frame may miss
    the upright photo altogether. A warning says how many and in which frame boxes are; all are still run."""
    (tmp_path / "turned.jpg").write_bytes(exif_jpeg(photo(), 6))
    cv2.imwrite(str(tmp_path / "plain.jpg"), photo())
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"turned.jpg": [[30, 30, 20, 60], [10, 90, 40, 20]], "plain.jpg": [[70, 0, 40, 20]]}))
    r = run("predict", tmp_path / "turned.jpg", tmp_path / "plain.jpg", "--model", standin_path, "--boxes", boxes,
            "-q")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [
        f"warning: {tmp_path / 'turned.jpg'}: 1 of its 2 boxes lies wholly outside the photo; --boxes coordinates "
        "are in the upright photo's px (EXIF orientation applied, as results and --vis show it)"]
    assert [e["bbox"] for e in json.loads(r.stdout)] == [[30, 30, 20, 60], [10, 90, 40, 20], [70, 0, 40, 20]]


@LINUX_ONLY
def test_a_file_name_holding_a_carriage_return_stays_one_csv_row(tmp_path, standin_path):
    """csv quotes only the characters of its line terminator and line feeds: a carriage return in a name went out
    unquoted and any CSV reader split that row in two. Names holding either are quoted; rows still end in LF."""
    d = tmp_path / "shots"
    d.mkdir()
    for name in ("a\rb.jpg", "c\nd.jpg", "e\r\nf.jpg"):
        cv2.imwrite(str(d / name), photo())
    out = tmp_path / "r.csv"
    r = run("predict", d, "--model", standin_path, "--no-search", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert not data.split(b"\n")[0].endswith(b"\r") and data.endswith(b"\n") and not data.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert len(rows) == 4  # the header and one row per photo
    assert sorted(row[0] for row in rows[1:]) == sorted(str(d / n) for n in ("a\rb.jpg", "c\nd.jpg", "e\r\nf.jpg"))
    assert {len(row) for row in rows} == {len(rows[0])}


class _Writer:
    """cv2.VideoWriter as the CLI calls it, made to fail as OpenCV's does: without a word."""

    fourcc = staticmethod(cv2.VideoWriter.fourcc)
    real_writer, opens, cut = cv2.VideoWriter, True, False

    def __init__(self, name, *args):
        self.name = name
        self.real = self.real_writer(name, *args) if self.opens else None

    def isOpened(self):
        return self.real is not None and self.real.isOpened()

    def write(self, frame):
        self.real.write(frame)

    def release(self):
        self.real.release()
        if self.cut:  # a full disk: the file ends without its index
            data = Path(self.name).read_bytes()
            Path(self.name).write_bytes(data[:len(data) // 2])


class _Unopened(_Writer):
    opens = False


class _CutShort(_Writer):
    cut = True


def test_a_vis_video_that_cannot_be_written_fails_once_and_keeps_every_result(tmp_path, standin_path, monkeypatch):
    """--vis is a drawing of the results: a video drawing that cannot be written is named once, the input counts
    as failed (exit 1), and the results of every frame are written all the same."""
    video = write_video(tmp_path / "clip.mp4", frames=4)
    vis = tmp_path / "vis"
    (vis / "clip.mp4").mkdir(parents=True)  # a folder where the drawing would go: kept, the drawing named beside it
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", vis, "--out-dir", tmp_path / "own")
    assert r.exit_code == 0 and (vis / "clip.mp4").is_dir() and len(read_video(vis / "clip_pose.mp4")) == 4
    monkeypatch.setattr(cv2, "VideoWriter", _Unopened)  # a writer OpenCV cannot open
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", tmp_path / "vis2")
    assert r.exit_code == 1 and r.stderr.count("error: ") == 1 and "cannot write the --vis video" in r.stderr
    assert ": OpenCV's MPEG-4 (mp4v) encoder would not open a 80x120 px video" in r.stderr, r.stderr  # why (s64)
    assert [e["frame"] for e in json.loads(r.stdout)] == [0, 1, 2, 3]
    assert not [p for p in (tmp_path / "vis2").rglob("*") if p.is_file()]
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", tmp_path / "vis3", "--out-dir",
            tmp_path / "own3")
    assert r.exit_code == 1 and r.stderr.count("error: ") == 1, r.stderr  # its results whole all the same
    assert (tmp_path / "own3" / "clip.jsonl").is_file() and len(json.loads(r.stdout)) == 4


def test_a_vis_video_cut_short_by_a_full_disk_fails_and_leaves_no_broken_file(tmp_path, standin_path, monkeypatch):
    """OpenCV's writer names no error when the disk fills: the video is written under a temporary name, checked
    (it opens, with every frame written), and only then named; else the input fails and nothing is left."""
    video = write_video(tmp_path / "clip.mp4", frames=4)
    vis = tmp_path / "vis"
    monkeypatch.setattr(cv2, "VideoWriter", _CutShort)
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", vis)
    assert r.exit_code == 1 and "cannot write the --vis video" in r.stderr and "is the disk full?" in r.stderr
    assert len(json.loads(r.stdout)) == 4
    assert not [p for p in vis.rglob("*") if p.is_file()]  # neither the broken video nor its temporary file
    monkeypatch.undo()
    r = run("predict", video, "--model", standin_path, "--no-search", "--vis", vis, "-q")
    assert r.exit_code == 0 and [p.name for p in vis.rglob("*") if p.is_file()] == ["clip.mp4"]
    assert len(read_video(vis / "clip.mp4")) == 4


def _files_up_to(limit: int):
    """preexec_fn: no file the process writes may grow beyond ``limit`` bytes (EFBIG, as a full disk's ENOSPC:
    Python ignores the SIGXFSZ that comes with it)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_vis_picture_that_cannot_be_written_whole_leaves_the_one_there_and_is_drawn_on_a_resumed_run(
        tmp_path, standin_path):
    """A full disk cut --vis pictures short (a drawing there before was truncated), and --skip-existing then took
    the photo for done, since its --out-dir results had been written (review s59)."""
    noise = cv2.randu(np.empty((480, 640, 3), np.uint8), 0, 256)  # a JPEG of about 300 kB
    cv2.imwrite(str(tmp_path / "a.png"), noise)
    vis, own = tmp_path / "vis", tmp_path / "own"
    vis.mkdir()
    (vis / "a.png").write_bytes(b"the drawing of an earlier run")
    cmd = [sys.executable, "-m", "fasterpose_rt.cli", "predict", str(tmp_path / "a.png"), "--model", str(standin_path),
           "--no-search", "--vis", str(vis), "--out-dir", str(own), "--skip-existing"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=_files_up_to(100_000))
    assert r.returncode == 1 and "cannot write --vis image" in r.stderr, r.stderr
    assert (vis / "a.png").read_bytes() == b"the drawing of an earlier run" and os.listdir(vis) == ["a.png"]
    assert json.loads((own / "a.json").read_text())  # its results were written
    (vis / "a.png").unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "skipped" not in r.stderr, r.stderr
    assert cv2.imread(str(vis / "a.png")).shape == (480, 640, 3)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "1 input skipped" in r.stderr, r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX matter")
def test_a_pipe_given_as_a_photo_fails_alone_instead_of_hanging_the_run(tmp_path, standin_path):
    """A FIFO named as a photo (or a hung mount) blocked the read-ahead thread for ever: the rest was never run, and
    Ctrl-C or SIGTERM printed their line but the process stayed, waiting for that thread at exit (review s62). A
    file that is not a regular one is refused before it is opened; the read-ahead thread is a daemon."""
    os.mkfifo(tmp_path / "f.jpg")
    cv2.imwrite(str(tmp_path / "ok.jpg"), photo())
    os.mkfifo(tmp_path / "clip.mp4")  # OpenCV's open blocked on it for ever too (review s62)
    r = cli("predict", "f.jpg", "clip.mp4", "ok.jpg", "--model", standin_path, "--no-search", "-q", cwd=tmp_path)
    assert r.returncode == 1 and "f.jpg: not a regular file (a pipe)" in r.stderr, r.stderr
    assert "clip.mp4: not a regular file (a pipe): save the video to a file first" in r.stderr
    assert [e["file_name"] for e in json.loads(r.stdout)] == ["ok.jpg"]


def test_opencvs_pixel_limit_given_with_a_unit_is_taken_as_opencv_takes_it(tmp_path):
    """OPENCV_IO_MAX_IMAGE_PIXELS=2MB (OpenCV reads such units) made every command fail at import (review s62)."""
    env = dict(os.environ, OPENCV_IO_MAX_IMAGE_PIXELS="2MB")
    data = cv2.imencode(".png", np.zeros((1200, 1800, 3), np.uint8))[1].tobytes()  # 2.16 M pixels: beyond 2 MB
    (tmp_path / "big.png").write_bytes(data)
    r = subprocess.run([sys.executable, "-c", "from fasterpose_rt.inputs import read_image; "
                        "read_image('big.png')"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert "too large to decode whole (more than OpenCV's limit of 2MB (OPENCV_IO_MAX_IMAGE_PIXELS))" in r.stderr, \
        r.stderr


def test_bmp_tiff_and_webp_photos_are_drawn_as_png_which_carries_the_mark(tmp_path, standin_path):
    """A BMP, TIFF or WebP drawing carries no mark: drawn in its own format, another input's drawing took the name
    of a TIFF photo in an input folder and drew over it (review s62). Such photos are drawn as PNG now."""
    shoot, other = tmp_path / "shoot", tmp_path / "other"
    shoot.mkdir()
    other.mkdir()
    for path in (shoot / "a.tif", other / "a.tif", shoot / "b.bmp", shoot / "c.webp"):
        cv2.imwrite(str(path), photo())
    before = {p: p.read_bytes() for p in shoot.iterdir()}
    for n in range(2):
        r = run("predict", shoot, other / "a.tif", "--model", standin_path, "--no-search", "--vis", shoot, "-q")
        assert r.exit_code == 0 and len(json.loads(r.stdout)) == 4, r.output
        assert {p: p.read_bytes() for p in before} == before
        assert _files(shoot) == ["a.png", "a.tif", "a_pose.png", "b.bmp", "b_pose.png", "c.webp", "c_pose.png"]


def test_the_read_ahead_thread_does_not_keep_a_stopped_process_alive():
    """prefetch's thread stuck in a read that never returns: the process still exits (a ThreadPoolExecutor's thread
    is joined at exit, so it hung)."""
    code = ("import threading\nfrom fasterpose_rt.prefetch import prefetch\n"
            "never = threading.Event()\n"
            "reads = prefetch(lambda i: never.wait(), [1, 2, 3])\n"
            "next(reads)\nprint('stopping')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "stopping", r.stderr


def test_a_jpeg_too_large_to_decode_whole_is_drawn_at_the_size_it_was_read(tmp_path, standin_path):
    """A JPEG beyond OpenCV's pixel limit is read at 1/8 of its size, but --vis read it again whole and failed with
    OpenCV's assertion, the photo counted both processed and failed (review s62): its picture is drawn at the size
    it was read, and --full-resolution names the reason plainly."""
    import struct

    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    i = 2
    while data[i + 1] != 0xC0:  # the frame header, where the size is
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
    data[i + 5:i + 9] = struct.pack(">HH", 40000, 40000)  # 1.6 G pixels: beyond OpenCV's 2^30
    (tmp_path / "huge.jpg").write_bytes(bytes(data))
    r = cli("predict", "huge.jpg", "--model", standin_path, "--no-search", "--vis", "vis", "-q", cwd=tmp_path)
    assert r.returncode == 0 and "error" not in r.stderr, r.stderr
    assert cv2.imread(str(tmp_path / "vis" / "huge.jpg")).shape == (5000, 5000, 3)
    r = cli("predict", "huge.jpg", "--model", standin_path, "--full-resolution", "-q", cwd=tmp_path)
    assert r.returncode == 1 and "too large to decode whole (40000x40000 px" in r.stderr, r.stderr


def test_vis_never_draws_over_a_video_named_as_a_drawn_video_would_be(tmp_path, standin_path):
    """Drawn videos carry the mark too (a free box at the file's end): a video of yours named clip_pose.mp4 beside
    clip.mp4 is read as an input and kept, where it had been left out and drawn over."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_video(shoot / "clip.mp4", frames=3)
    write_video(shoot / "clip_pose.mp4", frames=3)
    mine = (shoot / "clip_pose.mp4").read_bytes()
    for n in range(2):
        r = run("predict", shoot, "--model", standin_path, "--no-search", "--vis", shoot, "-q")
        assert r.exit_code == 0 and len({e["file_name"] for e in json.loads(r.stdout)}) == 2, r.output
        assert _files(shoot) == ["clip.mp4", "clip_pose.mp4", "clip_pose_2.mp4", "clip_pose_pose.mp4"]
        assert (shoot / "clip_pose.mp4").read_bytes() == mine
