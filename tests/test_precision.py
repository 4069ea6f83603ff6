"""Mixed precision in training: which autocast dtype each device gets, and fp16's loss scaling end to end."""
import json
import re

import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from models.precision import amp_dtype, amp_name, autocast, grad_scaler
from test_training import _lsp_like_dataset, _main_in_process, _train_cmd

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("mode, device, native, expected", [
    ("auto", CPU, True, torch.bfloat16),  # AVX-512 BF16 / AMX
    ("auto", CPU, False, None),  # bf16 would only be emulated: float32
    ("auto", GPU, True, torch.bfloat16),  # Ampere and newer
    ("auto", GPU, False, torch.float16),  # T4, V100: tensor cores in fp16
    ("bf16", CPU, False, torch.bfloat16),  # asked for: emulated, but it runs
    ("fp16", CPU, True, torch.float16),
    ("fp16", GPU, True, torch.float16),
    ("off", GPU, True, None),
])
def test_amp_mode_resolves_per_device(mode, device, native, expected):
    assert amp_dtype(mode, device, bf16_native=native) is expected


def test_amp_refuses_bf16_on_a_gpu_without_it_and_unknown_modes():
    with pytest.raises(ValueError, match="no bf16; use --amp fp16"):
        amp_dtype("bf16", GPU, bf16_native=False)
    with pytest.raises(ValueError, match="must be one of"):
        amp_dtype("fp8", CPU, bf16_native=True)


def test_a_gpu_that_only_emulates_bf16_gets_fp16(monkeypatch):
    """torch's is_bf16_supported() counts emulation by default: True on a T4 or V100 (compute capability 7),
    where bf16 runs slowly; review s58: auto picked it there."""
    from models.precision import bf16_supported
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert bf16_supported(GPU) is False and amp_dtype("auto", GPU) is torch.float16
    with pytest.raises(ValueError, match="no bf16"):
        amp_dtype("bf16", GPU)


def test_autocast_and_scaler_follow_the_dtype():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    for dtype, out in ((torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16), (None, torch.float32)):
        with autocast(CPU, dtype):
            assert conv(x).dtype == out
    assert grad_scaler(CPU, torch.float16).is_enabled()
    assert not grad_scaler(CPU, torch.bfloat16).is_enabled() and not grad_scaler(CPU, None).is_enabled()
    assert [amp_name(d) for d in (torch.bfloat16, torch.float16, None)] == ["bf16", "fp16", "off"]


def test_fp16_training_scales_the_loss_saves_and_resumes_the_scale(tmp_path, capsys):
    """--amp fp16 end to end on the CPU (emulated there; the path GPUs without bf16 take): it trains, the recipe
    says fp16, the checkpoint keeps the loss scaler's state, and --resume goes on from that scale."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    work = tmp_path / "run"
    code, err = _main_in_process(capsys, _train_cmd(ann, images, work, ["--steps-per-epoch", "2", "--amp", "fp16"]))
    assert code == 0, err
    assert "warning: --amp fp16 on a CPU is emulated" in err
    entry = json.loads((work / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(entry["train_loss"]) and 0 <= entry["val_pck@0.2"] <= 1
    ckpt = torch.load(work / "last.pth", map_location="cpu", weights_only=True)
    assert ckpt["meta"]["recipe"]["amp"] == "fp16"
    scale = ckpt["grad_scaler"]["scale"]
    assert 0 < scale <= 65536.0  # the start, halved on every overflow
    init = __import__("models").build_model("fasterpose_r18", 14, final_bias=-4.0).state_dict()
    assert any(not torch.equal(ckpt["model"][k], init[k]) for k in init if k.endswith("weight"))  # it did step

    cmd = _train_cmd(ann, images, work, ["--steps-per-epoch", "2", "--amp", "fp16", "--resume"])
    cmd[cmd.index("--epochs") + 1] = "2"
    code, err = _main_in_process(capsys, cmd)
    assert code == 0, err
    shown = re.search(r"resumed from .* at epoch 1, fp16 loss scale (\S+)", err)
    assert shown and float(shown.group(1)) == scale, err
    assert torch.load(work / "last.pth", map_location="cpu", weights_only=True)["epoch"] == 2

    bf16 = _train_cmd(ann, images, tmp_path / "bf16", ["--steps-per-epoch", "1", "--amp", "bf16"])
    code, err = _main_in_process(capsys, bf16)
    assert code == 0, err
    ckpt = torch.load(tmp_path / "bf16" / "last.pth", map_location="cpu", weights_only=True)
    assert ckpt["meta"]["recipe"]["amp"] == "bf16" and "grad_scaler" not in ckpt  # bf16 needs no scaling
