"""RCE and MSE heatmap losses: values, gradients, keypoint weights, the relative form."""
import math
import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from models.losses import MSELoss, RCELoss, build_loss


def _log_sigmoid(z):
    """log σ(z) in float64 without overflow, written independently of the implementation under test."""
    z = np.asarray(z, np.float64)
    return np.where(z >= 0, -np.log1p(np.exp(-np.abs(z))), z - np.log1p(np.exp(-np.abs(z))))


def _rce_reference(z, y):
    """-[y log σ(z) + (1 - y) log(1 - σ(z))], elementwise, float64 (log(1 - σ(z)) = log σ(-z))."""
    return -(y * _log_sigmoid(z) + (1 - y) * _log_sigmoid(-z))


def _sample(shape=(2, 3, 5, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * 3  # float32: the losses compute in float32 by design
    targets = torch.rand(shape, generator=g)
    return logits, targets


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)


def test_rce_matches_direct_formula():
    z, y = _sample()
    loss = RCELoss()(z, y, torch.ones(2, 3))
    assert loss.item() == pytest.approx(_rce_reference(z.numpy(), y.numpy()).mean(), rel=1e-6)
    # the textbook form with σ computed first agrees where it is numerically safe
    s, yd = torch.sigmoid(z.double()), y.double()  # float64: 1 - σ would cancel badly in float32
    naive = -(yd * s.log() + (1 - yd) * (1 - s).log()).mean()
    assert loss.item() == pytest.approx(naive.item(), rel=1e-6)


def test_rce_extreme_logits_are_finite_and_exact():
    z = torch.tensor([50.0, -50.0, 50.0, -50.0, 0.0, 30.0]).reshape(1, 1, 2, 3)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.25]).reshape(1, 1, 2, 3)
    z.requires_grad_(True)
    loss = RCELoss()(z, y, torch.ones(1, 1))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    expect = _rce_reference(z.detach().double().numpy(), y.double().numpy()).mean()  # ≈ (0+0+50+50+log2+22.5)/6
    assert loss.item() == pytest.approx(expect, rel=1e-5)


def test_rce_gradient_is_sigmoid_minus_target():
    z, y = _sample()
    z.requires_grad_(True)
    RCELoss()(z, y, torch.ones(2, 3)).backward()
    n = z.numel()  # mean over all pixels of all (equally weighted) keypoints
    _close(z.grad, (torch.sigmoid(z.detach()) - y) / n)


def test_rce_weights_zero_weight_keypoint_contributes_nothing():
    z, y = _sample()
    w = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]])
    z.requires_grad_(True)
    loss = RCELoss()(z, y, w)
    loss.backward()
    assert (z.grad[0, 1] == 0).all() and (z.grad[1, 2] == 0).all()
    # changing a zero-weight keypoint's prediction leaves the loss unchanged
    z2 = z.detach().clone()
    z2[0, 1] += 100.0
    assert RCELoss()(z2, y, w).item() == pytest.approx(loss.item(), rel=1e-6)
    # and the value is the weighted mean of the per-keypoint means
    per_kp = _rce_reference(z.detach().numpy(), y.numpy()).reshape(2, 3, -1).mean(axis=2)
    assert loss.item() == pytest.approx((per_kp * w.numpy()).sum() / w.sum().item(), rel=1e-6)
    hw = z.shape[2] * z.shape[3]
    expect_grad = (torch.sigmoid(z.detach()) - y) * (w / w.sum())[:, :, None, None] / hw
    _close(z.grad, expect_grad)


def test_all_zero_weights_give_zero_loss_without_nan():
    z, y = _sample()
    z.requires_grad_(True)
    loss = RCELoss()(z, y, torch.zeros(2, 3))
    loss.backward()
    assert loss.item() == 0.0 and (z.grad == 0).all()


def test_relative_rce_is_zero_for_perfect_prediction_same_gradient():
    _, y = _sample()
    y = y.clamp(0.01, 0.99)
    z = torch.logit(y).requires_grad_(True)
    loss = RCELoss(relative=True)(z, y, torch.ones(2, 3))
    assert abs(loss.item()) < 1e-6
    loss.backward()
    assert z.grad.abs().max().item() < 1e-8  # σ(logit(y)) - y = 0 up to float32 rounding
    z2, _ = _sample(seed=1)
    g_abs = torch.autograd.grad(RCELoss()(z2.requires_grad_(True), y, torch.ones(2, 3)), z2)[0]
    g_rel = torch.autograd.grad(RCELoss(relative=True)(z2, y, torch.ones(2, 3)), z2)[0]
    _close(g_rel, g_abs)


def test_mse_value_gradient_and_weights():
    p, y = _sample()
    w = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    p.requires_grad_(True)
    loss = MSELoss()(p, y, w)
    per_kp = ((p.detach() - y) ** 2).flatten(2).mean(2)
    assert loss.item() == pytest.approx(((per_kp * w).sum() / w.sum()).item(), rel=1e-6)
    loss.backward()
    hw = p.shape[2] * p.shape[3]
    _close(p.grad, 2 * (p.detach() - y) * (w / w.sum())[:, :, None, None] / hw)
    assert MSELoss()(y, y, w).item() == 0.0


def test_build_loss_by_name():
    assert isinstance(build_loss("rce"), RCELoss) and isinstance(build_loss("mse"), MSELoss)
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("l1")


def test_ohkm_keeps_each_samples_worst_keypoints_and_only_they_get_gradient():
    logits, y = _sample(shape=(3, 6, 5, 4), seed=3)
    w = torch.tensor([[1.0, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0.5, 1], [0, 0, 0, 0, 0, 1.0]])
    relative = RCELoss(relative=True)
    # every keypoint kept: the relative RCE itself
    _close(RCELoss(topk=6)(logits, y, w), relative(logits, y, w))
    # top 2: per sample, the two keypoints with the largest weighted excess loss, written independently
    excess = (torch.nn.functional.softplus(logits) - y * logits
              - (-(y.clamp(1e-12, 1 - 1e-12) * y.clamp(1e-12, 1 - 1e-12).log()
                   + (1 - y).clamp(1e-12, 1) * (1 - y).clamp(1e-12, 1).log()))).flatten(2).mean(2)
    keep = torch.zeros_like(w, dtype=torch.bool)
    for n in range(3):
        keep[n, (excess[n] * w[n]).argsort(descending=True)[:2]] = True
    expected = (excess * w * keep).sum() / (w * keep).sum()
    p = logits.clone().requires_grad_(True)
    loss = RCELoss(topk=2)(p, y, w)
    _close(loss, expected)
    loss.backward()
    assert (p.grad.flatten(2).abs().sum(2) > 0).eq(keep & (w > 0)).all()  # no gradient to the others
    assert keep[2].sum() == 2 and w[2][keep[2]].sum() == 1.0  # a sample with one weighted keypoint: that one counts


def test_ohkm_is_rce_only_and_non_negative():
    assert build_loss("rce", topk=7).topk == 7 and build_loss("rce").topk == 0
    with pytest.raises(ValueError, match="RCE loss only"):
        build_loss("mse", topk=7)
    with pytest.raises(ValueError, match="topk >= 0"):
        build_loss("rce", topk=-1)


def test_a_target_of_exactly_one_gives_a_finite_loss_with_ohkm():
    """A joint on a heatmap pixel's centre makes a target of exactly 1.0: its entropy is 0, not 0·log 0 = NaN."""
    from models.losses import target_entropy

    ends = torch.tensor([0.0, 1.0, 0.5])
    torch.testing.assert_close(target_entropy(ends), torch.tensor([0.0, 0.0, math.log(2)]))
    targets = torch.zeros(1, 2, 8, 6)
    targets[0, 0, 3, 2] = 1.0
    logits, weights = torch.randn(1, 2, 8, 6), torch.ones(1, 2)
    for loss in (build_loss("rce", topk=1), RCELoss(relative=True)):
        assert torch.isfinite(loss(logits, targets, weights))


def test_weights_of_another_shape_are_refused():
    logits, targets = torch.randn(2, 3, 8, 6), torch.rand(2, 3, 8, 6)
    with pytest.raises(ValueError, match=r"weights must be \(N, K\)"):
        RCELoss()(logits, targets, torch.ones(2, 3, 1, 1))
