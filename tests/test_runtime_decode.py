"""decode_heatmaps: the accuracy targets on synthetic Gaussians, edge cases, and agreement with a plain loop."""
import numpy as np
import pytest

from fasterpose_rt import decode_heatmaps

H, W = 64, 48


def gaussians(rng, n, k, sigma, noise=0.0, margin=4.0):
    """Maps (n, k, H, W) float32 with peak 1 at random sub-pixel centres (n, k, 2), >= margin px from the border."""
    centres = np.stack([rng.uniform(margin, W - 1 - margin, (n, k)), rng.uniform(margin, H - 1 - margin, (n, k))], 2)
    x, y = np.arange(W), np.arange(H)[:, None]
    d2 = (x - centres[..., 0, None, None]) ** 2 + (y - centres[..., 1, None, None]) ** 2
    hm = np.exp(-d2 / (2 * sigma**2))
    if noise:
        hm = np.clip(hm * (1 + noise * rng.standard_normal(hm.shape)), 0, None)
    return hm.astype(np.float32), centres


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_clean_gaussians_within_0_01_px(sigma):
    hm, centres = gaussians(np.random.default_rng(1), 16, 17, sigma)
    xy, scores = decode_heatmaps(hm)
    assert xy.shape == (16, 17, 2) and xy.dtype == np.float32 and scores.dtype == np.float32
    assert np.linalg.norm(xy - centres, axis=2).mean() <= 0.01
    np.testing.assert_array_equal(scores, hm.reshape(16, 17, -1).max(axis=2))  # scores are the peak values


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_three_percent_noise_within_0_1_px(sigma):
    hm, centres = gaussians(np.random.default_rng(2), 16, 17, sigma, noise=0.03)
    xy, _ = decode_heatmaps(hm)
    assert np.linalg.norm(xy - centres, axis=2).mean() <= 0.1


def test_unblurred_decoding_is_exact_on_clean_gaussians():
    hm, centres = gaussians(np.random.default_rng(3), 4, 5, 2.0)
    xy, _ = decode_heatmaps(hm.astype(np.float64), blur_sigma=0)
    assert np.abs(xy - centres).max() < 1e-3


def test_border_flat_and_zero_maps_keep_the_integer_peak():
    hm = np.zeros((1, 5, 8, 6), np.float32)
    hm[0, 1] = 0.3  # flat
    hm[0, 2, 0, 3] = 1.0  # peak on the top border
    hm[0, 2, 1, 3] = 0.5
    hm[0, 3, 7, 5] = 0.9  # bottom-right corner
    hm[0, 4, 4, 2] = 0.7  # a single spike inside: log curvature is degenerate in the blur-free case
    xy, scores = decode_heatmaps(hm, blur_sigma=0)
    assert np.isfinite(xy).all() and np.isfinite(scores).all()
    np.testing.assert_array_equal(xy[0, :4], [[0, 0], [0, 0], [3, 0], [5, 7]])
    np.testing.assert_allclose(scores[0], [0, 0.3, 1.0, 0.9, 0.7])
    xy_blur, _ = decode_heatmaps(hm)
    assert np.isfinite(xy_blur).all()
    np.testing.assert_allclose(xy_blur[0, 4], [2, 4], atol=1e-6)  # symmetric spike: no offset


def test_empty_and_bad_shapes():
    xy, scores = decode_heatmaps(np.zeros((0, 17, 8, 6), np.float32))
    assert xy.shape == (0, 17, 2) and scores.shape == (0, 17)
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        decode_heatmaps(np.zeros((17, 8, 6)))


def test_vectorised_equals_a_per_keypoint_loop():
    """The same DARK maths one keypoint at a time (blur patch, log, gradient, Hessian, Newton step)."""
    hm, _ = gaussians(np.random.default_rng(4), 3, 4, 2.0, noise=0.03)
    xy, _ = decode_heatmaps(hm)
    sigma = 2.0 * W / 48.0
    r = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    for n in range(3):
        for k in range(4):
            m = hm[n, k].astype(np.float64)
            py, px = divmod(int(m.argmax()), W)
            lg = np.empty((3, 3))
            for i in range(3):
                for j in range(3):
                    rows = np.clip(np.arange(py + i - 1 - r, py + i + r), 0, H - 1)
                    cols = np.clip(np.arange(px + j - 1 - r, px + j + r), 0, W - 1)
                    lg[i, j] = np.log(taps @ m[np.ix_(rows, cols)] @ taps)
            grad = [(lg[1, 2] - lg[1, 0]) / 2, (lg[2, 1] - lg[0, 1]) / 2]
            dxy = (lg[2, 2] - lg[2, 0] - lg[0, 2] + lg[0, 0]) / 4
            hess = [[lg[1, 2] - 2 * lg[1, 1] + lg[1, 0], dxy], [dxy, lg[2, 1] - 2 * lg[1, 1] + lg[0, 1]]]
            expected = np.array([px, py]) + np.clip(-np.linalg.solve(hess, grad), -1, 1)
            np.testing.assert_allclose(xy[n, k], expected, atol=1e-4)


def test_a_peak_on_one_border_is_refined_along_the_other_axis():
    """Row 0 or a 1-pixel-high map: x is still fully informative (a 1-D step), y keeps the integer peak."""
    x = np.arange(20)
    row = np.exp(-((x - 7.3) ** 2) / 8.0).astype(np.float32)
    hm = np.zeros((1, 2, 5, 20), np.float32)
    hm[0, 0, 0] = row  # the whole peak on the top border
    hm[0, 0, 1] = 0.5 * row
    xy, _ = decode_heatmaps(hm, blur_sigma=0)
    np.testing.assert_allclose(xy[0, 0], [7.3, 0.0], atol=1e-4)
    xy, _ = decode_heatmaps(row[None, None, None, :], blur_sigma=0)  # (1, 1, 1, W)
    np.testing.assert_allclose(xy[0, 0], [7.3, 0.0], atol=1e-4)
    xy, _ = decode_heatmaps(row[None, None, :, None], blur_sigma=0)  # (1, 1, H, 1)
    np.testing.assert_allclose(xy[0, 0], [0.0, 7.3], atol=1e-4)
    xy, _ = decode_heatmaps(row[None, None, None, :])  # blurred: still finite, near the peak
    assert abs(xy[0, 0, 0] - 7.3) < 0.2 and xy[0, 0, 1] == 0


def test_nan_maps_empty_maps_and_bad_blur_are_refused():
    hm = np.random.default_rng(5).random((1, 2, 8, 6)).astype(np.float32)
    hm[0, 1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        decode_heatmaps(hm)
    with pytest.raises(ValueError, match="at least one pixel"):
        decode_heatmaps(np.zeros((1, 1, 0, 5), np.float32))
    for bad in (np.nan, -1.0, np.inf):
        with pytest.raises(ValueError, match="blur_sigma"):
            decode_heatmaps(hm[:, :1], blur_sigma=bad)
    xy, _ = decode_heatmaps(hm[:, :1], blur_sigma=1e6)  # the radius is capped: no 100-TB patch
    assert np.isfinite(xy).all()


def _clean_map(centres, h=H, w=W, sigma=2.0):
    """(1, K, h, w) float32 Gaussians (peak 1) at centres (K, 2) heatmap px: the training encoder's formula."""
    x, y = np.arange(w), np.arange(h)[:, None]
    d2 = (x - centres[:, 0, None, None]) ** 2 + (y - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2))[None].astype(np.float32)


def _border_centres():
    """(K, 2) centres within half a pixel of every border and corner (the map covers -0.5 .. size-0.5), so the
    argmax is the border pixel; the other coordinate inside the map or also on a border."""
    near = np.array([-0.5, -0.3, -0.05, 0.2, 0.45])
    xs = np.concatenate([near, W - 1 - near])
    ys = np.concatenate([near, H - 1 - near])
    edges = [(x, y) for x in xs for y in (20.4, 41.7)] + [(x, y) for y in ys for x in (13.6, 30.2)]
    corners = [(x, y) for x in xs[::2] for y in ys[::2]]
    return np.array(edges + corners)


@pytest.mark.parametrize("blur_sigma", [None, 0.0])
def test_clean_targets_on_a_border_pixel_decode_exactly(blur_sigma):
    """A true centre within half a pixel of the map's edge leaves the argmax on the border pixel: the one-sided
    step finds it along that axis (it used to keep the integer peak, up to half a heatmap px off)."""
    centres = _border_centres()
    xy, _ = decode_heatmaps(_clean_map(centres), blur_sigma=blur_sigma)
    np.testing.assert_allclose(xy[0], centres, atol=2e-3)  # 0.01 crop px at a stride of 4


def test_clean_targets_near_every_border_decode_exactly_unblurred():
    """Every sub-pixel position along each border's first 10 pixels, without the modulation (DARK's blur copies
    the border pixel outward there: a documented bias, docs/default_model.md, session 54)."""
    d = np.arange(-0.5, 10.0, 0.125)
    mid_x, mid_y = (W - 1) / 2 + 0.3, (H - 1) / 2 - 0.2
    across = np.full_like(d, mid_y), np.full_like(d, mid_x)
    centres = np.concatenate([np.stack([d, across[0]], 1), np.stack([W - 1 - d, across[0]], 1),
                              np.stack([across[1], d], 1), np.stack([across[1], H - 1 - d], 1)])
    xy, _ = decode_heatmaps(_clean_map(centres), blur_sigma=0)
    np.testing.assert_allclose(xy[0], centres, atol=2e-3)


def test_a_border_step_stays_on_the_map():
    """A centre past the map's edge (its Gaussian cut off) decodes to the edge, half a pixel out, not beyond."""
    centres = np.array([[-3.0, 20.0], [W + 1.5, 30.0], [10.0, -1.2], [20.0, H + 0.7]])
    xy, _ = decode_heatmaps(_clean_map(centres), blur_sigma=0)
    np.testing.assert_allclose(xy[0], [[-0.5, 20], [W - 0.5, 30], [10, -0.5], [20, H - 0.5]], atol=1e-4)



def test_edge_peaks_unblurred_decodes_peaks_next_to_the_edge_from_the_map_itself():
    """edge_peaks="unblurred" (a model's metadata may choose it): a peak one pixel from the edge is refined from
    the unblurred map (exact on a clean Gaussian, where the blur pushes it outwards), every other peak as before."""
    d = np.arange(0.55, 1.5, 0.05)  # true centres whose integer peak is the pixel next to the border one
    mid_x, mid_y = (W - 1) / 2 + 0.3, (H - 1) / 2 - 0.2
    centres = np.concatenate([np.stack([d, np.full_like(d, mid_y)], 1),
                              np.stack([np.full_like(d, mid_x), H - 1 - d], 1)])
    hm = _clean_map(centres)
    peak = np.argmax(hm[0].reshape(len(centres), -1), axis=1)
    half = len(d)
    assert (peak[:half] % W == 1).all() and (peak[half:] // W == H - 2).all()  # the premise: next to the edge
    blurred, _ = decode_heatmaps(hm)
    unblurred, _ = decode_heatmaps(hm, edge_peaks="unblurred")
    np.testing.assert_allclose(unblurred[0], centres, atol=2e-3)
    assert (np.abs(blurred[0] - centres).max(axis=1) > 0.1).all()  # the blur's outward push that it avoids
    inner, _ = gaussians(np.random.default_rng(5), 3, 4, 2.0)  # >= 4 px from the edge: unchanged
    np.testing.assert_array_equal(decode_heatmaps(inner, edge_peaks="unblurred")[0], decode_heatmaps(inner)[0])
    with pytest.raises(ValueError, match="edge_peaks must be one of blurred, unblurred"):
        decode_heatmaps(inner, edge_peaks="zero")
