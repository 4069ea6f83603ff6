"""--init across keypoint sets: the keypoints both name keep their trained head (models/head_transfer.py)."""
from pathlib import Path

import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from fasterpose_rt.skeletons import COCO17
from models import build_model
from models.head_transfer import checkpoint_keypoints, transfer_head
from models.train import Trainer

COCO_MINI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "coco-mini"
OLD, NEW = ["a", "b", "c", "d"], ["x", "c", "a", "y", "z"]


def trained_like(arch, k, seed=0, **options):
    """A model whose every weight (and BN statistic) is random, as if trained."""
    torch.manual_seed(seed)
    model = build_model(arch, k, **options)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.1 + (1.0 if t.dim() == 1 else 0.0))
    return model.eval()


@pytest.mark.parametrize("arch", ["fasterpose_r18", "simplebaseline_r18"])
def test_shared_keypoints_predict_as_before_and_new_ones_start_fresh(arch):
    old = trained_like(arch, len(OLD), head_width=32)
    fresh = build_model(arch, len(NEW), head_width=32)
    before = fresh.state_dict()["head.final.weight"].clone()
    state, shared = transfer_head(old.state_dict(), fresh, OLD, NEW)
    assert shared == ["c", "a"]
    fresh.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = fresh.eval()(x), old(x)
    torch.testing.assert_close(ours[:, [1, 2]], theirs[:, [2, 0]])  # c and a: exactly the old model's maps
    block = before.shape[0] // len(NEW)
    for j in (0, 3, 4):  # x, y, z: the fresh initialisation, untouched
        torch.testing.assert_close(state["head.final.weight"][j * block:(j + 1) * block],
                                   before[j * block:(j + 1) * block])


def test_heads_of_another_layout_are_refused():
    old = trained_like("fasterpose_r18", len(OLD), head_width=32)
    with pytest.raises(ValueError, match="another head layout"):
        transfer_head(old.state_dict(), build_model("fasterpose_r18", len(NEW), head_width=64), OLD, NEW)
    with pytest.raises(ValueError, match="another head layout"):  # stride 32: 8x8 channels per keypoint, not 4x4
        transfer_head(old.state_dict(), build_model("fasterpose_r18", len(NEW), head_width=32, output_stride=32),
                      OLD, NEW)


def test_init_reports_what_it_kept_and_needs_names_to_match(tmp_path, capsys):
    old = trained_like("fasterpose_r18", len(OLD), head_width=32)
    torch.save({"model": old.state_dict(), "meta": {"dataset": {"keypoints": OLD}}}, tmp_path / "named.pth")
    assert checkpoint_keypoints({"dataset": {"keypoints": OLD}}) == OLD and checkpoint_keypoints({}) is None
    model = build_model("fasterpose_r18", len(NEW), head_width=32)
    info = Trainer._load_init(model, tmp_path / "named.pth", keypoints=NEW)
    assert info["keypoints_from_init"] == ["c", "a"]
    assert "2 of 5 keypoints keep its head (c, a); new: x, y, z" in capsys.readouterr().err
    torch.save({"model": old.state_dict()}, tmp_path / "bare.pth")
    with pytest.raises(SystemExit, match="names no keypoints"):
        Trainer._load_init(build_model("fasterpose_r18", len(NEW), head_width=32), tmp_path / "bare.pth",
                           keypoints=NEW)


@pytest.mark.skipif(not (COCO_MINI / "person_keypoints.json").is_file(), reason=f"coco-mini not found at {COCO_MINI}")
def test_a_coco17_model_starts_from_the_bundled_lsp_model(tmp_path):
    """The README's recipe: recover the bundled model with COCO photos, then --init a 17-keypoint model from it."""
    from fasterpose_rt import DEFAULT_MODELS
    from models.from_onnx import recover

    if not DEFAULT_MODELS["default"].is_file():
        pytest.skip("the bundled default model is not present")
    recover(DEFAULT_MODELS["default"], COCO_MINI / "person_keypoints.json", COCO_MINI / "images",
            tmp_path / "lsp.pth", crops=8)  # COCO persons only give the BatchNorm statistics
    ckpt = torch.load(tmp_path / "lsp.pth", map_location="cpu", weights_only=True)
    lsp_names = ckpt["meta"]["keypoints"]
    assert len(lsp_names) == 14
    lsp = build_model(ckpt["meta"]["architecture"], 14, **ckpt["meta"]["model_options"])
    lsp.load_state_dict(ckpt["model"])
    coco = build_model(ckpt["meta"]["architecture"], 17, **ckpt["meta"]["model_options"])
    info = Trainer._load_init(coco, tmp_path / "lsp.pth", keypoints=COCO17["keypoints"])
    shared = info["keypoints_from_init"]
    assert len(shared) == 12 and "nose" not in shared and "neck" not in shared
    w, h = ckpt["meta"]["input_size"]
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        ours, theirs = coco.eval()(x), lsp.eval()(x)
    mine = [COCO17["keypoints"].index(n) for n in shared]
    np.testing.assert_allclose(ours[:, mine].numpy(), theirs[:, [lsp_names.index(n) for n in shared]].numpy(),
                               rtol=1e-5, atol=1e-4)  # another output width: other float sums
