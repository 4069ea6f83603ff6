"""Growing a trained, shallower ResNet into a deeper one (R18 -> R34) without changing what it computes."""

import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from models import build_model
from models.backbones import identity_blocks

from test_training import _lsp_like_dataset, _main_in_process, _train_cmd

R34_EXTRA_BLOCKS = ["backbone.layer1.2", "backbone.layer2.2", "backbone.layer2.3", "backbone.layer3.2",
                    "backbone.layer3.3", "backbone.layer3.4", "backbone.layer3.5"]


def _trained_like(arch: str = "fasterpose_r18", seed: int = 0):
    """A model whose every weight and BN statistic is non-trivial (as after training: no zero BN scales), so every
    residual block changes its input and a block left out or misplaced shows in the output."""
    torch.manual_seed(seed)
    model = build_model(arch, 14)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name or name.endswith("bn2.weight")
                        else torch.randn_like(t) * 0.1)
    return model.eval()


def test_r18_weights_grow_into_an_r34_that_computes_the_same_maps():
    r18 = _trained_like()
    r34 = build_model("fasterpose_r34", 14)
    missing, unexpected = r34.load_state_dict(r18.state_dict(), strict=False)
    assert unexpected == [] and identity_blocks(r34, missing) == R34_EXTRA_BLOCKS
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        assert torch.equal(r18(x), r34.eval()(x))  # exactly: the new blocks add 0 before a ReLU of post-ReLU input
    # and the new depth is trainable: the zero BN scale gets a gradient, so the block can leave the identity
    r34.train()
    r34(x).sum().backward()
    assert r34.backbone.layer3[5].bn2.weight.grad.abs().sum() > 0


def test_identity_blocks_refuses_anything_but_whole_identity_blocks():
    r18 = _trained_like()
    r34 = build_model("fasterpose_r34", 14)
    missing, _ = r34.load_state_dict(r18.state_dict(), strict=False)
    assert identity_blocks(r34, missing + ["head.conv.weight"]) == []  # a missing weight outside the new blocks
    assert identity_blocks(r34, [k for k in missing if k != "backbone.layer3.5.conv1.weight"]) == []  # half a block
    with torch.no_grad():
        r34.backbone.layer1[2].bn2.bias.fill_(0.1)  # a new block whose branch adds a constant
    assert identity_blocks(r34, missing) == []
    with torch.no_grad():
        r34.backbone.layer1[2].bn2.bias.zero_()
        r34.backbone.layer2[3].bn2.weight.fill_(0.1)  # a new block that is not the identity
    assert identity_blocks(r34, missing) == []
    assert identity_blocks(r34, []) == []  # nothing grown is not growth


def test_train_grow_from_a_shallower_checkpoint(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    src = tmp_path / "r18.pth"
    torch.save({"model": _trained_like().state_dict(), "meta": {"architecture": "fasterpose_r18"}}, src)
    base = _train_cmd(ann, images, tmp_path / "r34", ["--steps-per-epoch", "1", "--lr", "0", "--init", str(src)])
    base[base.index("--arch") + 1] = "fasterpose_r34"
    code, err = _main_in_process(capsys, base)
    assert code != 0 and "add --grow" in err
    code, err = _main_in_process(capsys, [*base, "--grow"])
    assert code == 0, err
    ckpt = torch.load(tmp_path / "r34" / "last.pth", map_location="cpu", weights_only=True)
    init = ckpt["meta"]["recipe"]["init"]
    assert init["grown_blocks"] == R34_EXTRA_BLOCKS and init["architecture"] == "fasterpose_r18"
    r18 = torch.load(src, weights_only=True)["model"]
    assert all(torch.equal(ckpt["model"][k], v) for k, v in r18.items() if k.endswith(".weight"))  # lr 0: as loaded
    code, err = _main_in_process(capsys, _train_cmd(ann, images, tmp_path / "x", ["--grow"]))
    assert code != 0 and "--grow needs --init" in err
