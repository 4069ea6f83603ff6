"""ResNet backbones whose parameter names match torchvision's ResNet state dicts.

Keys are ``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0`` ... exactly as in torchvision, so an
ImageNet state dict on disk loads with a strict key check (``fc.*`` is dropped: pose models have no classifier).
``num_stages`` cuts the network short: 3 stops after ``layer3`` (output stride 16), 4 keeps ``layer4`` (stride 32).
``blocks`` (one count per stage) replaces the depth's standard block counts, e.g. R34's blocks at (1, 2, 6).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Type, Union

import torch
from torch import nn


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth (Huang et al., 2016): zero a residual branch x (N, C, H, W) for a random ``rate`` share of
    the samples and scale the rest by 1 / (1 - rate), so the expected output is unchanged; identity in eval mode."""
    if not training or rate <= 0.0:
        return x
    keep = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(1.0 - rate)
    return x * keep.div_(1.0 - rate)


class BasicBlock(nn.Module):
    expansion = 1
    drop_path_rate = 0.0  # stochastic-depth rate of the residual branch in training (set_drop_path); no weights

    def __init__(self, in_ch: int, ch: int, stride: int = 1, downsample: nn.Module = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(drop_path(out, self.drop_path_rate, self.training) + identity)


class Bottleneck(nn.Module):
    expansion = 4
    drop_path_rate = 0.0

    def __init__(self, in_ch: int, ch: int, stride: int = 1, downsample: nn.Module = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, 1, bias=False)  # stride on the 3x3, as torchvision (v1.5)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, ch * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(ch * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(drop_path(out, self.drop_path_rate, self.training) + identity)


RESNET_SPECS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class ResNet(nn.Module):
    """ResNet trunk without pooling/classifier. Input (N, 3, H, W) -> (N, out_channels, H/s, W/s), s = 4·2^(stages-1)."""

    def __init__(self, depth: int, num_stages: int = 4, blocks: Optional[Sequence[int]] = None):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(f"unsupported ResNet depth {depth}; choose from {sorted(RESNET_SPECS)}")
        if num_stages not in (3, 4):
            raise ValueError("num_stages must be 3 (output stride 16) or 4 (output stride 32)")
        block, layers = RESNET_SPECS[depth]
        if blocks is not None:  # a thinner or deeper variant of the same block type and widths
            if len(blocks) != num_stages or any(int(b) < 1 for b in blocks):
                raise ValueError(f"blocks must give 1 or more blocks for each of the {num_stages} stages, got {list(blocks)}")
            layers = [int(b) for b in blocks]
        self.depth, self.num_stages = depth, num_stages
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._in = 64
        for i in range(num_stages):
            setattr(self, f"layer{i + 1}", self._make_layer(block, 64 * 2**i, layers[i], 1 if i == 0 else 2))
        self.out_channels = self._in
        self.stride = 4 * 2 ** (num_stages - 1)
        self._init_weights()

    def _make_layer(self, block: Type[Union[BasicBlock, Bottleneck]], ch: int, blocks: int, stride: int):
        downsample = None
        if stride != 1 or self._in != ch * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._in, ch * block.expansion, 1, stride, bias=False), nn.BatchNorm2d(ch * block.expansion)
            )
        mods: List[nn.Module] = [block(self._in, ch, stride, downsample)]
        self._in = ch * block.expansion
        mods += [block(self._in, ch) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: each block starts as identity, which makes
        # training from scratch markedly more stable (Goyal et al., 2017).
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def load_torchvision_state_dict(self, state_dict: dict) -> None:
        """Load a torchvision ResNet state dict strictly (``fc.*`` and the stages this trunk lacks are ignored).

        Raises ValueError listing missing / unexpected keys on any other mismatch.
        """
        skipped = ("fc.",) + tuple(f"layer{i}." for i in range(self.num_stages + 1, 5))
        sd = {k: v for k, v in state_dict.items() if not k.startswith(skipped)}
        own = self.state_dict()
        # torchvision's original ImageNet files predate BN's num_batches_tracked buffer; it carries no weights.
        missing = sorted(k for k in set(own) - set(sd) if not k.endswith("num_batches_tracked"))
        unexpected = sorted(set(sd) - set(own))
        shape = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
        if missing or unexpected or shape:
            raise ValueError(
                f"state dict does not match resnet{self.depth}: "
                f"missing {missing[:10]}{'...' if len(missing) > 10 else ''} ({len(missing)}), "
                f"unexpected {unexpected[:10]}{'...' if len(unexpected) > 10 else ''} ({len(unexpected)}), "
                f"wrong shape {shape[:10]} ({len(shape)})"
            )
        for k in set(own) - set(sd):  # only num_batches_tracked can remain here
            sd[k] = own[k]
        self.load_state_dict(sd, strict=True)

    load_pretrained = load_torchvision_state_dict  # the name every trunk answers to (models.train --pretrained)


def set_drop_path(model: nn.Module, rate: float) -> int:
    """Give the residual blocks of ``model`` stochastic-depth rates rising linearly from 0 (first block) to
    ``rate`` (last block), as in timm: deep blocks are dropped most. A training-time regulariser only: it adds no
    weights and changes nothing in eval mode or in an export. Returns the number of blocks."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop-path rate must be in [0, 1), got {rate}")
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    for i, block in enumerate(blocks):
        block.drop_path_rate = rate * i / max(1, len(blocks) - 1)
    return len(blocks)


def identity_blocks(model: nn.Module, missing_keys) -> List[str]:
    """Names of the residual blocks that ``missing_keys`` (from ``load_state_dict(strict=False)``) leave wholly
    unloaded, if each of them starts as the identity; [] if any other key is missing or a block is not identity.

    A fresh BasicBlock / Bottleneck has its last BN scale at zero (see ``ResNet._init_weights``) and no downsample,
    so ``relu(0 + x) = x`` for the post-ReLU input x: appending such blocks to a trained, shallower ResNet (R18
    weights into an R34) keeps the network's output exactly while adding trainable depth (Net2Net-style growth).
    """
    missing = set(missing_keys)
    blocks = []
    for name, module in model.named_modules():
        if not isinstance(module, (BasicBlock, Bottleneck)):
            continue
        # BatchNorm fills in a missing num_batches_tracked itself and never reports it missing
        keys = {f"{name}.{k}" for k in module.state_dict() if not k.endswith("num_batches_tracked")}
        if not keys & missing:
            continue
        last_bn = module.bn3 if isinstance(module, Bottleneck) else module.bn2
        branch_silent = not (last_bn.weight.detach().any() or last_bn.bias.detach().any())  # γ = β = 0
        if not keys <= missing or module.downsample is not None or not branch_silent:
            return []
        blocks.append(name)
        missing -= keys
    return blocks if not missing else []
