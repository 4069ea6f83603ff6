"""Architectures: output shapes, torchvision-compatible ResNet weights, MAC counts, and a tiny overfit run."""
import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch
from torch import nn

from models import ResNet, build_model, list_models
from models.backbones import drop_path, set_drop_path
from models.codec import HeatmapCodec
from models.complexity import count_complexity, main as complexity_main
from models.losses import RCELoss


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_lists_both_families():
    names = list_models()
    for d in (18, 34, 50, 101, 152):
        assert f"fasterpose_r{d}" in names and f"simplebaseline_r{d}" in names
    with pytest.raises(ValueError, match="unknown model"):
        build_model("fasterpose_r9")
    with pytest.raises(ValueError, match="num_keypoints"):
        build_model("fasterpose_r18", 0)


@pytest.mark.parametrize("name", list_models())
def test_output_is_quarter_resolution(name):
    # Inputs are multiples of 32 (SimpleBaseline's backbone stride); one non-square per batch size and K.
    for k, (n, h, w) in ((17, (2, 64, 96)), (5, (1, 96, 64))):
        model = build_model(name, k).eval()
        with torch.no_grad():
            out = model(torch.zeros(n, 3, h, w))
        assert out.shape == (n, k, h // 4, w // 4), f"{name} K={k}"
        assert torch.isfinite(out).all()


def test_fasterpose_output_stride_32():
    model = build_model("fasterpose_r18", 14, output_stride=32).eval()
    assert model.backbone.stride == 32 and hasattr(model.backbone, "layer4")
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 96))
    assert out.shape == (1, 14, 16, 24)
    with pytest.raises(ValueError, match="output_stride"):
        build_model("fasterpose_r18", output_stride=8)


def test_fasterpose_r50_costs_at_most_70_percent_of_simplebaseline_r50():
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        fp, sb = build_model("fasterpose_r50"), build_model("simplebaseline_r50")
    fp_macs = count_complexity(fp, (192, 256))["macs"]
    sb_macs = count_complexity(sb, (192, 256))["macs"]
    assert fp_macs / 1e9 == pytest.approx(3.7, rel=0.03)
    assert sb_macs / 1e9 == pytest.approx(5.4, rel=0.03)
    assert fp_macs <= 0.70 * sb_macs
    # the "paper" convention prices SimpleBaseline's deconvolutions over their output grid: 8.9 "GFLOPs" (2^30)
    assert count_complexity(sb, (192, 256), "paper")["macs"] / 2**30 == pytest.approx(8.9, rel=0.015)
    assert count_complexity(fp, (192, 256), "paper")["macs"] == fp_macs


# ---------------------------------------------------------------- MAC counter on hand-checkable layers


def test_counter_rules_on_small_layers():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1),                     # input 3x8x8 -> out 8x4x4
        nn.BatchNorm2d(8), nn.ReLU(),                 # not counted
        nn.Conv2d(8, 8, 3, 1, 1, groups=4),           # out 8x4x4
        nn.ConvTranspose2d(8, 8, 4, 2, 1, groups=2),  # in 8x4x4 -> out 8x8x8
        nn.PixelShuffle(2),                           # not counted
    )
    ours = count_complexity(net, (8, 8), "ours")
    paper = count_complexity(net, (8, 8), "paper")
    conv = 128 * 3 * 9 + 128 * (8 // 4) * 9           # output elements × in/groups × k²
    assert ours["macs"] == conv + 128 * (8 // 2) * 16  # input elements × out/groups × k²
    assert paper["macs"] == conv + 512 * (8 // 2) * 16  # output elements × in/groups × k²
    assert ours["params"] == sum(p.numel() for p in net.parameters())
    assert [r["type"] for r in ours["modules"]] == ["Conv2d", "Conv2d", "ConvTranspose2d"]
    lin = count_complexity(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 2, 7)), (2, 4))
    assert lin["macs"] == 24 * 7


def test_counter_leaves_model_state_alone_and_checks_arguments():
    model = build_model("fasterpose_r18", 3).train()
    bn = model.backbone.bn1
    before = bn.running_mean.clone(), int(bn.num_batches_tracked)
    res = count_complexity(model, (48, 64))
    assert model.training
    assert torch.equal(bn.running_mean, before[0]) and int(bn.num_batches_tracked) == before[1]
    assert set(res["parts"]) == {"backbone", "head"}
    assert sum(p["macs"] for p in res["parts"].values()) == res["macs"]
    assert res["modules"][-1]["name"] == "head.final" and res["modules"][-1]["output_shape"] == [1, 48, 4, 3]
    with pytest.raises(ValueError, match="convention"):
        count_complexity(model, (48, 64), "flops")
    with pytest.raises(ValueError, match="input_size"):
        count_complexity(model, (48,))


def test_complexity_cli(capsys):
    assert complexity_main(["--arch", "simplebaseline_r18", "--input-size", "192x256", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "simplebaseline_r18" in out and "total" in out and "head.deconv" in out
    assert complexity_main(["--arch", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err


# ---------------------------------------------------------------- torchvision ResNet key layout

TV_BLOCKS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}
TV_PARAMS = {18: 11_689_512, 50: 25_557_032}  # torchvision's published parameter counts (incl. fc)


def torchvision_layout(depth):
    """{key: shape} of a torchvision ``resnet<depth>().state_dict()``, written out from torchvision's structure."""
    kind, counts = TV_BLOCKS[depth]
    exp = 1 if kind == "basic" else 4
    sd = {}

    def conv(name, cout, cin, k):
        sd[f"{name}.weight"] = (cout, cin, k, k)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{name}.{p}"] = (c,)
        sd[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
        for b in range(n):
            p = f"layer{i + 1}.{b}"
            if kind == "basic":
                conv(f"{p}.conv1", planes, inplanes, 3), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
            else:
                conv(f"{p}.conv1", planes, inplanes, 1), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes * 4, planes, 1), bn(f"{p}.bn3", planes * 4)
            if b == 0 and (i > 0 or inplanes != planes * exp):
                conv(f"{p}.downsample.0", planes * exp, inplanes, 1), bn(f"{p}.downsample.1", planes * exp)
            inplanes = planes * exp
    sd["fc.weight"], sd["fc.bias"] = (1000, 512 * exp), (1000,)
    return sd


def synthetic_state_dict(depth, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: (torch.randint(0, 1000, (), generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
        for k, s in torchvision_layout(depth).items()
    }


@pytest.mark.parametrize("depth", [18, 50])
def test_layout_reference_matches_torchvision_counts(depth):
    # Guard the hand-written reference itself with torchvision's published parameter totals.
    layout = torchvision_layout(depth)
    learnable = [k for k in layout if not k.split(".")[-1].startswith(("running", "num_batches"))]
    assert sum(int(np.prod(layout[k])) for k in learnable) == TV_PARAMS[depth]


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnet_keys_and_shapes_match_torchvision(depth):
    own = {k: tuple(v.shape) for k, v in ResNet(depth, num_stages=4).state_dict().items()}
    ref = {k: s for k, s in torchvision_layout(depth).items() if not k.startswith("fc.")}
    assert own == ref


def test_spot_check_known_torchvision_keys():
    r18 = ResNet(18).state_dict()
    r50 = ResNet(50).state_dict()
    assert tuple(r18["conv1.weight"].shape) == (64, 3, 7, 7) and "bn1.running_mean" in r18
    assert "layer1.0.downsample.0.weight" not in r18  # BasicBlock 64 -> 64 needs no projection
    assert tuple(r18["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(r18["layer2.0.downsample.1.weight"].shape) == (128,)
    assert tuple(r50["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(r50["layer2.0.downsample.0.weight"].shape) == (512, 256, 1, 1)
    assert tuple(r50["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)  # stride on the 3x3 (v1.5)
    assert tuple(r50["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1) and "layer4.2.bn3.running_var" in r50
    for sd, counts in ((r18, [2, 2, 2, 2]), (r50, [3, 4, 6, 3])):
        for i, n in enumerate(counts):
            assert {k.split(".")[1] for k in sd if k.startswith(f"layer{i + 1}.")} == {str(b) for b in range(n)}


@pytest.mark.parametrize("depth, stages", [(18, 4), (50, 3)])
def test_load_torchvision_state_dict(depth, stages):
    sd = synthetic_state_dict(depth)  # includes fc.* and layer4.*
    net = ResNet(depth, num_stages=stages)
    net.load_torchvision_state_dict(sd)
    own = net.state_dict()
    for k, v in own.items():
        assert torch.equal(v, sd[k]), k
    assert ("layer4.0.conv1.weight" in own) == (stages == 4)


def test_load_mismatched_state_dict_raises_listing_keys():
    net = ResNet(18)
    sd = synthetic_state_dict(18)
    del sd["layer3.1.conv2.weight"]
    sd["layer2.0.extra.weight"] = torch.zeros(1)
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(ValueError) as err:
        net.load_torchvision_state_dict(sd)
    msg = str(err.value)
    assert "layer3.1.conv2.weight" in msg and "layer2.0.extra.weight" in msg and "layer1.0.conv1.weight" in msg
    with pytest.raises(ValueError, match="resnet50"):
        ResNet(50).load_torchvision_state_dict(synthetic_state_dict(18))


def test_load_state_dict_without_num_batches_tracked():
    """torchvision's original ImageNet files (e.g. resnet18-5c106cde.pth) predate BatchNorm.num_batches_tracked."""
    sd = {k: v for k, v in synthetic_state_dict(18).items() if not k.endswith("num_batches_tracked")}
    net = ResNet(18)
    net.load_torchvision_state_dict(sd)
    assert torch.equal(net.state_dict()["layer1.0.conv1.weight"], sd["layer1.0.conv1.weight"])


# ---------------------------------------------------------------- can it learn at all?


def test_fasterpose_r18_overfits_one_sample():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    codec = HeatmapCodec((64, 64))  # 16x16 heatmaps
    kp = np.array([[18.0, 14.0], [44.0, 30.0], [26.0, 50.0]]) + rng.uniform(-2, 2, (3, 2))
    target, weight = codec.encode(kp)
    x, y, w = torch.randn(1, 3, 64, 64), torch.from_numpy(target)[None], torch.from_numpy(weight)[None]
    model = build_model("fasterpose_r18", 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = RCELoss()
    with torch.no_grad():
        first = loss_fn(model(x), y, w).item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(model(x), y, w)
        loss.backward()
        opt.step()
    with torch.no_grad():  # train mode on purpose: batch statistics, as during the steps above
        prob = torch.sigmoid(model(x)).numpy()
    decoded, scores = codec.decode(prob)
    err_hm = np.linalg.norm(decoded[0] - kp, axis=1) / codec.stride[0]
    assert loss.item() < 0.7 * first
    assert (scores > 0.4).all(), scores  # peaks were learned, not just stumbled upon (starts at σ(-4) ≈ 0.02)
    assert (err_hm < 1.0).all(), err_hm


# ---------------------------------------------------------------- stochastic depth (--drop-path)


def test_drop_path_zeroes_whole_samples_keeps_the_mean_and_is_identity_in_eval():
    torch.manual_seed(0)
    x = torch.ones(4000, 2, 3, 3)
    y = drop_path(x, 0.25, training=True)
    per_sample = y.flatten(1)
    dropped = (per_sample == 0).all(dim=1)
    kept = (per_sample == 1 / 0.75).all(dim=1)
    assert bool((dropped | kept).all())  # a sample's branch is dropped or kept whole, kept ones rescaled
    assert abs(dropped.float().mean().item() - 0.25) < 0.03
    assert abs(y.mean().item() - 1.0) < 0.05  # expectation unchanged
    assert drop_path(x, 0.25, training=False) is x and drop_path(x, 0.0, training=True) is x


def test_set_drop_path_rises_linearly_and_leaves_eval_output_and_weights_alone():
    torch.manual_seed(0)
    model = build_model("fasterpose_r18", 3).eval()
    for m in model.modules():  # a fresh block's branch is silent (last BN scale 0): wake it so dropping shows
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
    x = torch.randn(2, 3, 64, 64)
    before, keys = model(x), set(model.state_dict())
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert set_drop_path(model, 0.1) == len(blocks) == 2 * model.backbone.num_stages  # R18: 2 blocks a stage
    rates = [m.drop_path_rate for m in blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1) and np.all(np.diff(rates) > 0)
    assert torch.equal(model(x), before) and set(model.state_dict()) == keys
    set_drop_path(model, 0.5)  # high enough that two seeded draws over 2 persons differ
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.equal(a, model(x))  # different branches dropped on different draws
    with pytest.raises(ValueError, match="drop-path"):
        set_drop_path(model, 1.0)
