"""End-to-end export: CLI on a training checkpoint (one shared export), graph contract, parity, dynamic batch,
metadata round trip through the runtime; API exports of a tiny known-weights model (expected outputs, failed
verification leaves no file)."""
import json

import numpy as np
import onnx
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch
from clirunner import invoke
from torch import nn

from export import Tolerance, VerificationError, export_onnx, file_sha256
from export.__main__ import main
from export.verify import reference_batch, torch_outputs
from fasterpose_rt.metadata import FORMAT, IMAGENET_MEAN, IMAGENET_STD, METADATA_KEY, ModelMetadata
from fasterpose_rt.session import open_session
from fasterpose_rt.skeletons import LSP14
from models import build_model

W, H, K = 64, 96, 14


def peaked_r18():
    """fasterpose_r18 (K=14) with seeded weights, non-trivial BN statistics (so folding them matters) and a
    final layer scaled up so heatmaps have clear peaks, as trained ones do (random init gives flat maps)."""
    torch.manual_seed(0)
    model = build_model("fasterpose_r18", K)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        model.head.final.weight.normal_(0, 0.05, generator=g)
    return model.eval()


META = {
    "architecture": "fasterpose_r18", "num_keypoints": K, "input_size": [W, H], "loss": "rce", "model_options": {},
    "dataset": {"name": "lsp_train", "keypoints": LSP14["keypoints"], "skeleton": LSP14["skeleton"],
                "flip_pairs": LSP14["flip_pairs"], "sigmas": LSP14["sigmas"], "train_file": "lsp/train.json",
                "citation": "Johnson and Everingham, BMVC 2010"},
    "recipe": {"epochs": 3, "lr": 0.001}, "val": {"pck@0.2": 0.5, "oks_ap": 0.25, "epoch": 3},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One CLI export of a training-layout checkpoint (model + optimizer + meta, DDP-prefixed keys)."""
    root = tmp_path_factory.mktemp("export")
    model = peaked_r18()
    ckpt = root / "last.pth"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "optimizer": {"state": {}},
                "scheduler": {"last_epoch": 3}, "epoch": 3, "meta": META}, ckpt)
    out = root / "out" / "model.onnx"
    result = invoke(main, ["--checkpoint", str(ckpt), "--out", str(out)])
    return {"model": model, "ckpt": ckpt, "out": out, "result": result, "dir": out.parent}


def test_cli_export_succeeds_with_one_line_summary(exported):
    r = exported["result"]
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()
    assert "\n" not in line
    for part in ("fasterpose_r18", "ops ", " -> ", "MB", "max rel", "max abs", "keypoints", "28/28 judged"):
        assert part in line
    assert "RANDOM" not in r.stderr  # weights came from the checkpoint
    assert sorted(p.name for p in exported["dir"].iterdir()) == ["model.onnx"]  # temp file renamed, none left


def test_graph_contract(exported):
    m = onnx.load(str(exported["out"]))
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["heatmaps"]
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = {n.op_type for n in m.graph.node}
    assert "BatchNormalization" not in ops and "Identity" not in ops
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (m.graph.input[0], m.graph.output[0])]
    assert isinstance(dims[0][0], str) and dims[0][0] == dims[1][0]  # symbolic batch shared by input and output
    assert dims[0][1:] == [3, H, W] and dims[1][1:] == [K, H // 4, W // 4]


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch_matches_pytorch(exported, batch):
    session, _ = open_session(exported["out"], threads=1)
    x = reference_batch((W, H), batch, seed=10 + batch)
    got = session.run(None, {"input": x})[0]
    ref = torch_outputs(exported["model"], x)
    assert got.shape == (batch, K, H // 4, W // 4)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4
    assert np.array_equal(got.reshape(batch, K, -1).argmax(2), ref.reshape(batch, K, -1).argmax(2))


def test_metadata_round_trip_through_runtime(exported):
    _, meta = open_session(exported["out"], threads=1)
    raw = {p.key: p.value for p in onnx.load(str(exported["out"])).metadata_props}[METADATA_KEY]
    assert ModelMetadata.from_json(meta.to_json()).to_json() == meta.to_json() == ModelMetadata.from_json(raw).to_json()
    d = json.loads(raw)
    assert d["format"] == FORMAT and d["architecture"] == "fasterpose_r18"
    assert d["input_size"] == [W, H] and d["output"] == "logits" and d["color"] == "RGB"
    assert d["mean"] == IMAGENET_MEAN and d["std"] == IMAGENET_STD and d["box_padding"] == 1.25
    assert d["keypoints"] == LSP14["keypoints"] and d["skeleton"] == LSP14["skeleton"]
    assert d["flip_pairs"] == LSP14["flip_pairs"] and d["sigmas"] == LSP14["sigmas"]
    # provenance
    assert d["source_checkpoint"] == {"file": "last.pth", "sha256": file_sha256(exported["ckpt"])}
    assert d["training_data"]["name"] == "lsp_train" and d["training_data"]["citation"].startswith("Johnson")
    # the recipe gains the size training saw, which models.train keeps beside it (review s59)
    assert d["recipe"] == {**META["recipe"], "input_size": META["input_size"]}
    assert d["validation"] == META["val"] and d["epoch"] == 3
    assert d["weights"] == "trained" and d["loss"] == "rce"
    assert d["exporter"]["torch"] == torch.__version__ and d["exporter"]["opset"] == 17 and d["exported_at"]


class Tiny(nn.Module):
    """(N, 3, H, W) -> (N, K, H/4, W/4): heatmap k = BN(mean of colour channel k % 3 over each 4x4 cell)."""

    def __init__(self, k=3):
        super().__init__()
        self.conv = nn.Conv2d(3, k, 4, stride=4, bias=False)
        self.bn = nn.BatchNorm2d(k)
        with torch.no_grad():
            self.conv.weight.zero_()
            for i in range(k):
                self.conv.weight[i, i % 3] = 1.0 / 16
            self.bn.running_mean.fill_(0.5)
            self.bn.running_var.fill_(4.0)
            self.bn.weight.fill_(2.0)
            self.bn.bias.fill_(-1.0)

    def forward(self, x):
        return self.bn(self.conv(x))


def tiny_meta(output="logits", w=32, h=16):
    return ModelMetadata(input_size=(w, h), keypoints=["a", "left_b", "right_b"], skeleton=[[0, 1], [0, 2]],
                         flip_pairs=[[1, 2]], output=output, architecture="tiny")


def test_known_weights_tiny_model_gives_expected_heatmaps(tmp_path):
    out = tmp_path / "tiny.onnx"
    result = export_onnx(Tiny().eval(), tiny_meta("probabilities"), out)
    assert result.ops_after < result.ops_before or result.ops_after == 1
    session, meta = open_session(out, threads=1)
    assert meta.output == "probabilities" and meta.keypoints == ["a", "left_b", "right_b"]
    x = reference_batch((32, 16), 2, seed=5)
    cells = x.reshape(2, 3, 4, 4, 8, 4).mean(axis=(3, 5))  # (N, 3, 4, 8): 4x4 cell means per channel
    expected = 2.0 * (cells - 0.5) / np.sqrt(4.0 + 1e-5) - 1.0
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, rtol=1e-5, atol=1e-5)
    assert [n.op_type for n in onnx.load(str(out)).graph.node] == ["Conv"]  # BN folded into the conv


def test_failed_verification_leaves_no_file(tmp_path):
    def corrupt(model):  # a transform (as int8 will be) that changes the numbers
        model.graph.initializer[0].raw_data = (
            onnx.numpy_helper.to_array(model.graph.initializer[0]) * 1.01
        ).astype(np.float32).tobytes()
        return model

    out = tmp_path / "bad.onnx"
    with pytest.raises(VerificationError, match="relative difference"):
        export_onnx(Tiny().eval(), tiny_meta(), out, transforms=[corrupt])
    assert list(tmp_path.iterdir()) == []
    # the same corruption passes when the caller loosens the tolerance (the hook a quantiser would use)
    export_onnx(Tiny().eval(), tiny_meta(), out, transforms=[corrupt], tolerance=Tolerance(0.05, 1.0))
    assert out.exists()


def test_input_size_not_divisible_is_refused(tmp_path):
    from export import InputError

    with pytest.raises(InputError, match="divisible"):
        export_onnx(Tiny().eval(), tiny_meta(w=30), tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []


def test_dynamo_fallback_keeps_the_contract(tmp_path, monkeypatch):
    """If this torch lost the TorchScript exporter, the dynamo path must give the same names and dynamic batch."""
    import export.onnx_graph as graph

    def gone(*args, **kwargs):
        raise RuntimeError("TorchScript exporter removed")

    monkeypatch.setattr(graph, "_torchscript_export", gone)
    out = tmp_path / "dyn.onnx"
    result = export_onnx(Tiny().eval(), tiny_meta(), out)
    assert result.parity.max_rel < 1e-4
    session, _ = open_session(out, threads=1)
    for batch in (1, 5):
        assert session.run(None, {"input": reference_batch((32, 16), batch)})[0].shape == (batch, 3, 4, 8)


def test_an_opset_the_exporters_do_not_write_is_refused_not_recorded(tmp_path, capfd):
    """--opset 99 wrote an opset-18 file whose metadata said 99, with a traceback on stderr and, for 24-28, the
    Torch IR on stdout (review s59)."""
    from export.errors import ExportError
    from export.onnx_graph import opset_of, torch_to_onnx

    with pytest.raises(ExportError, match=r"wrote opset \d+, not 99"):
        torch_to_onnx(Tiny().eval(), (32, 16), opset=99)
    out, err = capfd.readouterr()
    assert out == "" and "Traceback" not in err
    assert opset_of(torch_to_onnx(Tiny().eval(), (32, 16), opset=17)) == 17
