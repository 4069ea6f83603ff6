"""What ``--out`` may name (special files, symlinks, the run's own files, the model) and the option values every
command refuses as usage errors (non-finite floats, huge counts, empty names, options that do nothing alone)."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from clirunner import invoke
from standin import STANDIN_POINTS, paint_blobs

from fasterpose_rt.cli import main
from fasterpose_rt.predictor import PoseResult
from fasterpose_rt.results import ResultsWriter, atomic_write_text, coco_entries

NEEDS_FIFO = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def run(*args):
    return invoke(main, args)


@pytest.fixture
def shoot(tmp_path):
    """tmp_path/shoot/in/a.jpg: one stand-in person."""
    folder = tmp_path / "shoot"
    (folder / "in").mkdir(parents=True)
    cv2.imwrite(str(folder / "in" / "a.jpg"), paint_blobs((120, 80), STANDIN_POINTS))
    return folder


class FifoReader:
    """The read end of a new FIFO, opened without blocking before anything writes to it: what the writers put in
    stays in the pipe's buffer (a few kB here) and is read at the end, so no test can hang on a FIFO that a
    rename replaced (its writer then never comes)."""

    def __init__(self, path: Path):
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def read(self) -> str:
        chunks = []
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except BlockingIOError:  # a writer still has it open
            pass
        os.close(self.fd)
        return b"".join(chunks).decode()

    def still_a_fifo(self) -> bool:
        return stat.S_ISFIFO(os.lstat(self.path).st_mode)


def _entries(n, image_id):
    res = PoseResult(np.full((n, 4, 2), 5.0, np.float32), np.full((n, 4), 0.5, np.float32),
                     np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)), ["a", "b", "c", "d"])
    return coco_entries(res, image_id, "a.jpg")


# ------------------------------------------------------------------------------------- --out: where it lands

def test_atomic_write_replaces_a_symlinks_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(Path("real") / "results.json")  # dangling: the write makes its target
    atomic_write_text(link, "[1]")
    assert link.is_symlink() and (tmp_path / "real" / "results.json").read_text() == "[1]"
    atomic_write_text(link, "[2]")
    assert link.is_symlink() and (tmp_path / "real" / "results.json").read_text() == "[2]"
    assert sorted(os.listdir(tmp_path / "real")) == ["results.json"]  # the temporary file beside the target, gone


@NEEDS_FIFO
@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_results_into_a_fifo_stay_a_fifo_and_come_whole_once(tmp_path, fmt):
    """A FIFO (and so a device or the pipe behind /dev/stdout) is written in place, not replaced by a plain file;
    a list or table is written once, at the end (each rewrite would reach the reader as another list); JSON Lines
    to a pipe close without fsync's EINVAL."""
    fifo = FifoReader(tmp_path / "pipe")
    w = ResultsWriter(fifo.path, every_s=0, every_n=1, fmt=fmt, keypoint_names=["a", "b", "c", "d"])
    for i in (1, 2):
        w.add(_entries(1, i))
        w.step()  # due at once: a regular file would be rewritten here
    w.close()
    text = fifo.read()
    assert fifo.still_a_fifo() and os.listdir(tmp_path) == ["pipe"]
    if fmt == "json":
        assert [e["image_id"] for e in json.loads(text)] == [1, 2]
    elif fmt == "jsonl":
        assert [json.loads(line)["image_id"] for line in text.splitlines()] == [1, 2]
    else:
        assert len(text.splitlines()) == 3 and text.startswith("file_name,")


@NEEDS_FIFO
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_predict_out_to_a_fifo_writes_into_it(shoot, standin_path, tmp_path, suffix):
    fifo = FifoReader(tmp_path / f"pipe{suffix}")
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", fifo.path)
    text = fifo.read()
    assert r.exit_code == 0 and fifo.still_a_fifo(), r.output
    entries = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 1 and entries[0]["file_name"].endswith("a.jpg")


@NEEDS_FIFO
def test_an_existing_special_file_needs_write_permission_not_a_writable_folder(shoot, standin_path, tmp_path,
                                                                             monkeypatch):
    """A device or FIFO is written in place: a folder the user may not write to (/dev) does not matter, nor that
    it cannot be read; that it cannot be written does. (Tests run as root, who may write anywhere: os.access is
    made to say what a user would be told.)"""
    from fasterpose_rt.cli import common

    access = os.access
    fifo = FifoReader(tmp_path / "pipe")
    write_only = (str(fifo.path), os.R_OK)
    monkeypatch.setattr(common.os, "access",
                        lambda p, mode: not os.path.isdir(p) and (str(p), mode) != write_only and access(p, mode))
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", fifo.path)
    assert r.exit_code == 0 and len(json.loads(fifo.read())) == 1, r.output
    fifo = FifoReader(tmp_path / "pipe2")  # read, should the run write after all
    read_only = (str(fifo.path), os.W_OK)
    monkeypatch.setattr(common.os, "access", lambda p, mode: (str(p), mode) != read_only and access(p, mode))
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", fifo.path)
    assert r.exit_code == 2 and f"cannot write results to {fifo.path}: is not writable" in r.stderr, r.output
    assert fifo.read() == ""


@pytest.mark.parametrize("option", ["--vis", "--out-dir"])
def test_a_folder_that_cannot_be_written_is_refused_before_any_work(shoot, standin_path, tmp_path, monkeypatch,
                                                                    option):
    """A --vis or --out-dir folder the user may not write to: one line and exit 2 before the model loads (each
    input failed in turn, exit 1). (Tests run as root: os.access is made to say what a user would be told.)"""
    from fasterpose_rt.cli import common

    access = os.access
    folder = tmp_path / "locked"
    folder.mkdir()
    monkeypatch.setattr(common.os, "access",
                        lambda p, mode: not (os.path.realpath(p) == str(folder) and mode & os.W_OK) and access(p, mode))
    r = run("predict", shoot / "in", "--model", standin_path, "--no-search", "-q", "--out", tmp_path / "r.json",
            option, folder)
    assert r.exit_code == 2, r.output
    said = r.stderr.strip().splitlines()[-1]
    assert said == f"Error: cannot write to the {option} folder {folder}: it is not writable"
    assert not (tmp_path / "r.json").exists() and list(folder.iterdir()) == []


def test_only_the_folders_written_to_are_asked(shoot, standin_path, tmp_path, monkeypatch):
    """The folder files are made in decides, not the --out-dir named: a writable subfolder of a locked one is fine
    (it was refused), and a locked --out-dir holding every result with --skip-existing writes nothing (refused)."""
    from fasterpose_rt.cli import common

    access = os.access
    locked = []
    monkeypatch.setattr(common.os, "access", lambda p, mode: not (
        os.path.realpath(p) in locked and mode & os.W_OK) and access(p, mode))
    out_dir = tmp_path / "own"
    inner = out_dir / "shoot" / "in"
    r = run("predict", shoot, "--model", standin_path, "--no-search", "-q", "--out-dir", out_dir)
    assert r.exit_code == 0 and (inner / "a.json").is_file(), r.output  # written into own/shoot/in/
    locked += [str(out_dir), str(out_dir / "shoot")]  # locked above own/shoot/in/: a rerun writes only into it
    r = run("predict", shoot, "--model", standin_path, "--no-search", "-q", "--out-dir", out_dir)
    assert r.exit_code == 0, r.output
    locked.append(str(inner))  # all locked, every result there: nothing to write
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", out_dir, "--skip-existing")
    assert r.exit_code == 0 and "skipped" in r.stderr, r.output
    (shoot / "in" / "new.jpg").write_bytes((shoot / "in" / "a.jpg").read_bytes())  # one to write: refused
    r = run("predict", shoot, "--model", standin_path, "--no-search", "--out-dir", out_dir, "--skip-existing")
    assert r.exit_code == 2 and f"--out-dir folder {inner}: it is not writable" in r.stderr, r.output


def test_predict_out_through_a_symlink_writes_its_target(shoot, standin_path, tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real" / "results.json")
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", link)
    assert r.exit_code == 0 and link.is_symlink(), r.output
    assert len(json.loads((tmp_path / "real" / "results.json").read_text())) == 1
    gone = tmp_path / "gone.json"  # its target's folder is missing: known before any work, not after it
    gone.symlink_to(tmp_path / "missing" / "results.json")
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", gone)
    assert r.exit_code == 2 and "its folder does not exist" in r.stderr and r.stdout == "", r.output


def test_predict_out_never_names_the_model(shoot, standin_path, tmp_path, monkeypatch):
    from fasterpose_rt.predictor import DEFAULT_MODELS

    model = tmp_path / "m.onnx"
    model.write_bytes(standin_path.read_bytes())
    r = run("predict", shoot / "in" / "a.jpg", "--model", model, "--no-search", "-q", "--out", model)
    assert r.exit_code == 2 and "it is the --model file" in r.stderr, r.output
    assert model.read_bytes() == standin_path.read_bytes()
    bundled = tmp_path / "fast.onnx"  # a copy stands in for the bundled fast model: a failing test harms no asset
    bundled.write_bytes(b"weights")
    monkeypatch.setitem(DEFAULT_MODELS, "fast", bundled)
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "-q", "--out", bundled)
    assert r.exit_code == 2 and "it is the bundled fast model" in r.stderr and bundled.read_bytes() == b"weights"


@pytest.mark.parametrize("option, out, what", [
    ("--vis", "v/in/a.jpg", "the --vis output of"),
    ("--out-dir", "d/in/a.json", "the --out-dir results file of"),
])
def test_predict_out_never_names_one_of_the_runs_own_files(shoot, standin_path, option, out, what):
    folder = shoot / out.split("/")[0]
    (folder / "in").mkdir(parents=True)
    r = run("predict", shoot / "in", "--model", standin_path, "--no-search", "-q", option, folder,
            "--out", shoot / out)
    assert r.exit_code == 2 and f"it is {what}" in r.stderr and "give --out another file" in r.stderr, r.output
    assert not (shoot / out).exists()  # refused before any input ran


def test_predict_with_stdout_closed_says_so(shoot, standin_path):
    """``fasterpose predict a.jpg >&-``: the results have nowhere to go (sys.stdout is None)."""
    r = subprocess.run([sys.executable, "-m", "fasterpose_rt.cli", "predict", str(shoot / "in" / "a.jpg"), "--model",
                        str(standin_path), "--no-search", "-q"], stderr=subprocess.PIPE, text=True, timeout=60,
                       preexec_fn=lambda: os.close(1))
    assert r.returncode == 2 and "stdout is closed: give --out" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------- option values

FLOATS = {"predict": ["--box-padding", "--box-score", "--min-presence", "--vis-threshold"],
          "eval": ["--box-padding", "--det-score", "--oks-nms"]}


def _command(command, shoot, standin_path):
    photo = shoot / "in" / "a.jpg"
    if command == "predict":
        return ["predict", photo, "--model", standin_path]
    ann = shoot / "ann.json"
    ann.write_text('{"images": [], "annotations": [], "categories": []}')
    return ["eval", "--coco", ann, "--images", shoot, "--model", standin_path]


@pytest.mark.parametrize("command, option", [(c, o) for c, options in FLOATS.items() for o in options])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_option_refuses_non_finite_values(shoot, standin_path, command, option, value):
    r = run(*_command(command, shoot, standin_path), option, value)
    assert r.exit_code == 2 and f"'{option}': {value} is not a finite number" in r.stderr, r.output
    assert "cannot load the model" not in r.stderr


@pytest.mark.parametrize("command", ["predict", "eval"])
@pytest.mark.parametrize("value", ["1e9", "1e-9", "0.4", "4.5"])
def test_box_padding_is_bounded(shoot, standin_path, command, value):
    r = run(*_command(command, shoot, standin_path), "--box-padding", value)
    assert r.exit_code == 2 and "'--box-padding'" in r.stderr and "0.5<=x<=4.0" in r.stderr, r.output


def test_box_padding_at_its_bounds_is_used(shoot, standin_path):
    for value in ("0.5", "4"):
        r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--no-search", "--refine", "0", "-q",
                "--box-padding", value)
        assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1, r.output


HUGE = "99999999999999999999"


def _bench_goes_no_further(monkeypatch):
    """A bench given a value that should have been refused fails at once instead of loading a model for a batch
    of 100000 persons (tens of GB) or warming up all but for ever."""
    from fasterpose_rt.cli import bench

    def load_predictor(*args, **kwargs):
        raise RuntimeError("the model was loaded")

    monkeypatch.setattr(bench, "load_predictor", load_predictor)


@pytest.mark.parametrize("command, option", [
    ("predict", "--max-frames"), ("predict", "--every"), ("predict", "--refine"), ("predict", "--read-ahead"),
    ("predict", "--max-persons"), ("predict", "--batch-size"), ("eval", "--refine"), ("eval", "--batch-size"),
    ("bench", "--runs"), ("bench", "--warmup"), ("bench", "--batch"),
])
def test_every_int_option_has_an_upper_bound(shoot, standin_path, command, option, monkeypatch):
    _bench_goes_no_further(monkeypatch)
    args = ["bench", "--model", standin_path] if command == "bench" else _command(command, shoot, standin_path)
    r = run(*args, option, HUGE)
    assert r.exit_code == 2 and f"'{option}'" in r.stderr and "Traceback" not in r.output, r.output
    assert "unexpected" not in r.stderr


def test_bench_batch_is_capped_like_threads(standin_path, monkeypatch):
    _bench_goes_no_further(monkeypatch)
    r = run("bench", "--model", standin_path, "--batch", "1,100000")
    assert r.exit_code == 2 and "expected positive integers up to 1024" in r.stderr, r.output


@pytest.mark.parametrize("command, option", [("predict", "--vis"), ("predict", "--out-dir"), ("predict", "--out"),
                                             ("eval", "--out")])
def test_an_empty_name_is_refused(shoot, standin_path, command, option, monkeypatch):
    monkeypatch.chdir(shoot)  # what an empty name meant: should it be taken, it writes here
    r = run(*_command(command, shoot, standin_path), option, "")
    assert r.exit_code == 2 and f"'{option}': an empty name" in r.stderr, r.output


@pytest.mark.parametrize("args, message", [
    (["--box-score", "0.5"], "--box-score leaves out the low-scoring boxes of a --boxes file: give --boxes"),
    (["--boxes", "{boxes}", "--max-persons", "3"], "--max-persons counts the persons a search reports"),
    (["--boxes", "{boxes}", "--max-persons", "1"], "--max-persons counts the persons a search reports"),
])
def test_predict_refuses_an_option_given_without_the_one_it_needs(shoot, standin_path, args, message):
    boxes = shoot / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[0, 0, 80, 120]]}))
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, *[a.format(boxes=boxes) for a in args])
    assert r.exit_code == 2 and message in r.stderr, r.output
    r = run("predict", shoot / "in" / "a.jpg", "--model", standin_path, "--boxes", boxes, "--box-score", "0.5", "-q")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1, r.output  # with what it needs: taken


def test_predict_refuses_a_vis_threshold_without_a_drawing(shoot, standin_path, monkeypatch):
    """--vis-threshold hides joints in what --vis and --show draw: alone it did nothing, silently."""
    photo, vis = shoot / "in" / "a.jpg", shoot / "vis"
    r = run("predict", photo, "--model", standin_path, "--vis-threshold", "0.5")
    assert r.exit_code == 2 and "--vis-threshold hides the low-scoring joints of the skeletons --vis and --show " \
                                "draw: give --vis or --show" in r.stderr and r.stdout == "", r.output
    assert "Traceback" not in r.output
    r = run("predict", photo, "--model", standin_path, "--no-search", "-q", "--vis-threshold", "0.5", "--vis", vis)
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1 and (vis / "a.jpg").is_file(), r.output
    monkeypatch.setattr("fasterpose_rt.cli.predict.Window", lambda: None)  # --show: its window stood in for
    r = run("predict", photo, "--model", standin_path, "--no-search", "-q", "--vis-threshold", "0.5", "--show")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1, r.output


@pytest.mark.parametrize("option, value", [("--det-score", "0.3"), ("--oks-nms", "1")])
def test_eval_refuses_a_detections_option_without_detections(shoot, standin_path, option, value):
    r = run(*_command("eval", shoot, standin_path), option, value)
    assert r.exit_code == 2 and f"{option} applies to the boxes of --detections: give --detections" in r.stderr, \
        r.output


@pytest.mark.parametrize("args", [
    ["eval", "--coco", "{gone}", "--images", "{shoot}"],
    ["eval", "--coco", "{ann}", "--images", "{gone}"],
    ["eval", "--coco", "{ann}", "--images", "{shoot}", "--baseline", "{gone}"],
    ["eval", "--coco", "{ann}", "--images", "{shoot}", "--detections", "{gone}"],
    ["predict", "{shoot}", "--boxes", "{gone}"],
])
def test_a_missing_file_an_option_names_stays_a_usage_error(shoot, standin_path, args):
    """A missing input of predict is named and skipped; a missing file an option names (eval's files, predict's
    --boxes) is the one file that command reads there: a usage error, nothing run."""
    ann = shoot / "ann.json"
    ann.write_text("{}")
    r = run(*[a.format(gone=shoot / "gone", shoot=shoot, ann=ann) for a in args], "--model", standin_path)
    assert r.exit_code == 2 and "does not exist" in r.stderr and r.stdout == "", r.output
