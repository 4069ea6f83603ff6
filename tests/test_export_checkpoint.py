"""Checkpoint loading: every layout, weights_only refusal of pickled code, key mismatches, CLI exit codes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch
from clirunner import invoke
from torch import nn

from export import CheckpointError, load_checkpoint, load_weights
from export.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def layouts(sd):
    return {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 2},
        "training": {"model": sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 7,
                     "meta": {"architecture": "x", "num_keypoints": 4}},
        "ddp": {f"module.{k}": v for k, v in sd.items()},
    }


@pytest.mark.parametrize("layout", ["plain", "state_dict", "training", "ddp"])
def test_each_layout_loads_exactly(tmp_path, layout):
    sd = small_model().state_dict()
    path = tmp_path / "c.pth"
    torch.save(layouts(sd)[layout], path)
    ckpt = load_checkpoint(path)
    assert sorted(ckpt.state_dict) == sorted(sd)
    assert len(ckpt.sha256) == 64
    target = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_weights(target, ckpt.state_dict)
    for k, v in target.state_dict().items():
        assert torch.equal(v, sd[k])
    if layout == "training":
        assert ckpt.meta["num_keypoints"] == 4 and ckpt.epoch == 7
    else:
        assert ckpt.meta == {}


def test_key_mismatch_lists_missing_unexpected_and_shapes():
    sd = dict(small_model().state_dict())
    del sd["1.running_var"]
    sd["2.weight"] = torch.zeros(3)
    sd["0.weight"] = torch.zeros(4, 3, 5, 5)
    target = small_model()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_weights(target, sd, source="c.pth")
    msg = str(e.value)
    assert "1 missing: 1.running_var" in msg
    assert "1 unexpected: 2.weight" in msg
    assert "0.weight (4, 3, 5, 5) (model (4, 3, 3, 3))" in msg
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # nothing partially loaded


def test_missing_num_batches_tracked_is_tolerated():
    sd = {k: v for k, v in small_model().state_dict().items() if not k.endswith("num_batches_tracked")}
    target = small_model()
    with torch.no_grad():  # other values everywhere: each tensor must come from sd
        for t in target.state_dict().values():
            t.add_(1)
    load_weights(target, sd)
    loaded = target.state_dict()
    assert sd and all(torch.equal(loaded[k], v) for k, v in sd.items())  # every other tensor taken, none skipped


class Payload:
    """Unpickling this object calls os.mkdir(marker): code a checkpoint must never be allowed to run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": small_model().state_dict(), "extra": Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    r = invoke(main, ["--arch", "fasterpose_r18", "--num-keypoints", "17", "--checkpoint", str(path),
                                  "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "refused" in r.stderr and "Traceback" not in r.output
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load does run it
    assert marker.exists()


def test_a_bare_pickle_is_refused_without_torchs_warning(tmp_path, recwarn):
    """review s66: a pickle.dump file (not torch.save's) printed torch's protocol warning and a line of its source
    before the refusal, and its code never runs."""
    import pickle

    marker, path = tmp_path / "code_ran", tmp_path / "bare.pth"
    with open(path, "wb") as f:
        pickle.dump({"extra": Payload(str(marker))}, f, protocol=4)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)
    assert not marker.exists() and not [w for w in recwarn if "pickle protocol" in str(w.message)]


def test_not_a_checkpoint_and_no_state_dict(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(junk)
    odd = tmp_path / "odd.pth"
    torch.save({"weights": [1, 2], "epoch": 1}, odd)
    with pytest.raises(CheckpointError, match="no state dict found.*'epoch', 'weights'"):
        load_checkpoint(odd)
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)


def test_cli_missing_checkpoint_exits_2_without_traceback(tmp_path):
    out = tmp_path / "m.onnx"
    r = subprocess.run(
        [sys.executable, "-m", "export", "--arch", "fasterpose_r18", "--num-keypoints", "17",
         "--checkpoint", str(tmp_path / "nope.pth"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "checkpoint not found" in r.stderr and "nope.pth" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def _r18_checkpoint(path, nan=False):
    """A training-layout checkpoint of fasterpose_r18 (K=14, 64x96); ``nan``: one layer diverged to NaN."""
    from fasterpose_rt.skeletons import LSP14
    from models import build_model

    state = build_model("fasterpose_r18", 14).state_dict()
    if nan:
        state["backbone.layer1.0.conv1.weight"].fill_(float("nan"))
    meta = {"architecture": "fasterpose_r18", "num_keypoints": 14, "input_size": [64, 96],
            "dataset": {"keypoints": LSP14["keypoints"], "skeleton": LSP14["skeleton"]}}
    torch.save({"model": state, "meta": meta}, path)
    return path


def test_out_naming_the_checkpoint_or_the_keypoint_file_is_refused_before_it_is_touched(tmp_path):
    """--out == --checkpoint had replaced the trained weights by the ONNX file (exit 0)."""
    ckpt = _r18_checkpoint(tmp_path / "last.pth")
    before = ckpt.read_bytes()
    link = tmp_path / "link.pth"
    link.symlink_to(ckpt)
    for out in (ckpt, link, tmp_path / "sub" / ".." / "last.pth"):
        r = invoke(main, ["--checkpoint", str(ckpt), "--out", str(out)])
        assert r.exit_code == 2 and "is the --checkpoint" in r.stderr and "Traceback" not in r.output
    names = tmp_path / "names.json"
    names.write_text("{}")
    r = invoke(main, ["--arch", "fasterpose_r18", "--num-keypoints", "14", "--keypoints-from", str(names),
                      "--out", str(names)])
    assert r.exit_code == 2 and "is the --keypoints-from file" in r.stderr
    assert ckpt.read_bytes() == before and names.read_text() == "{}"


def test_weights_that_output_nan_exit_2_with_one_line(tmp_path):
    """A diverged run's last.pth had ended in a traceback from the decoder during verification."""
    out = tmp_path / "m.onnx"
    r = invoke(main, ["--checkpoint", str(_r18_checkpoint(tmp_path / "nan.pth", nan=True)), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr == "error: the checkpoint's network outputs NaN/inf (diverged training?)\n"
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_an_out_that_cannot_be_written_is_refused_before_the_export(tmp_path, monkeypatch):
    """It had been found only when the verified file was saved."""
    import export.pipeline as pipeline
    from export import InputError, export_from_args

    monkeypatch.setattr(pipeline, "torch_to_onnx", lambda *a: pytest.fail("exported before checking --out"))
    ckpt = _r18_checkpoint(tmp_path / "c.pth")
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "m.onnx"
    r = invoke(main, ["--checkpoint", str(ckpt), "--out", str(out)])
    assert r.exit_code == 2 and r.stderr == f"error: cannot write {out}: {tmp_path / 'afile'} is not a folder\n"
    with pytest.raises(InputError, match="it is a folder"):
        export_from_args(tmp_path, checkpoint=ckpt)


def test_a_plain_state_dict_of_a_narrower_model_exports_with_its_options(tmp_path):
    """models.train --head-width 32 --blocks 1,1,1 weights, saved as a bare state dict: the exporter built the
    default model and refused every head tensor's shape, with no way to say how it was built (review s58)."""
    from export import export_from_args
    from fasterpose_rt import PosePredictor
    from models import build_model

    torch.save(build_model("fasterpose_r18", 17, head_width=32, blocks=[1, 1, 1]).state_dict(), tmp_path / "p.pth")
    base = dict(checkpoint=tmp_path / "p.pth", arch="fasterpose_r18", num_keypoints=17, input_size=(64, 64))
    with pytest.raises(CheckpointError, match="wrong shape"):
        export_from_args(tmp_path / "a.onnx", **base)
    r = invoke(main, ["--checkpoint", str(tmp_path / "p.pth"), "--arch", "fasterpose_r18", "--num-keypoints", "17",
                      "--input-size", "64x64", "--head-width", "32", "--blocks", "1,1,1", "--out",
                      str(tmp_path / "b.onnx")])
    assert r.exit_code == 0 and len(PosePredictor(tmp_path / "b.onnx", threads=1).keypoint_names) == 17, r.output
    r = invoke(main, ["--checkpoint", str(tmp_path / "p.pth"), "--arch", "fasterpose_r18", "--num-keypoints", "17",
                      "--blocks", "1,0", "--out", str(tmp_path / "c.onnx")])
    assert r.exit_code == 2 and "expected comma-separated block counts" in r.output
    export_from_args(tmp_path / "m.onnx", **base, model_options={"head_width": 32, "blocks": [1, 1, 1]})
    ckpt = {"model": torch.load(tmp_path / "p.pth", weights_only=True),
            "meta": {"model_options": {"head_width": 32, "blocks": [1, 1, 1]}}}
    torch.save(ckpt, tmp_path / "q.pth")
    with pytest.raises(Exception, match="--head-width 64 does not match the checkpoint's 32"):
        export_from_args(tmp_path / "d.onnx", **{**base, "checkpoint": tmp_path / "q.pth"},
                         model_options={"head_width": 64})


def test_save_checkpoint_leaves_nothing_behind_when_writing_fails(tmp_path, monkeypatch):
    """The temporary file had one fixed name (two writers shared it) and stayed when torch.save failed (review s61)."""
    from export.checkpoint import save_checkpoint

    out = tmp_path / "w.pth"
    save_checkpoint(out, {"w": torch.ones(2)}, {"epoch": 1})
    assert load_checkpoint(out).meta == {"epoch": 1} and os.listdir(tmp_path) == ["w.pth"]

    def full_disk(obj, f):
        Path(f).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        save_checkpoint(out, {"w": torch.zeros(2)}, {"epoch": 2})
    assert os.listdir(tmp_path) == ["w.pth"] and load_checkpoint(out).meta == {"epoch": 1}


def test_a_checkpoint_that_cannot_be_written_is_an_oserror_and_leaves_no_file(tmp_path, monkeypatch):
    """torch.save raises a RuntimeError ("unexpected pos ...") where the disk fills up: training ended in a
    traceback with a partial file left (review s67). Now an OSError naming the file, nothing left behind, and an
    older file of that name kept."""
    from export.checkpoint import save_atomically

    real = torch.save

    def full_disk(obj, f):
        real(obj, f)  # a partial file, as a full disk leaves it
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 21318400 vs 21318294")

    target = tmp_path / "last.pth"
    target.write_bytes(b"the epoch before")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot write .*last.pth: \[enforce fail.*unexpected pos"):
        save_atomically({"w": torch.zeros(3)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth"] and target.read_bytes() == b"the epoch before"
