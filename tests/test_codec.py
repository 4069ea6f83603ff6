"""HeatmapCodec: keypoints (crop px) -> Gaussian heatmaps -> keypoints, and the heatmap pixel convention."""
import numpy as np
import pytest

from models.codec import HeatmapCodec


def _inner_keypoints(rng, codec, k, margin_hm=8.0):
    """(k, 2) random sub-pixel crop coordinates whose heatmap position keeps ``margin_hm`` px from the border."""
    w, h = codec.heatmap_size
    sx, sy = codec.stride
    hm = np.stack([rng.uniform(margin_hm, w - 1 - margin_hm, k), rng.uniform(margin_hm, h - 1 - margin_hm, k)], 1)
    return (hm + 0.5) * np.array([sx, sy]) - 0.5


@pytest.mark.parametrize("input_size", [(192, 256), (144, 192)])
@pytest.mark.parametrize("blur_sigma", [0.0, None])  # None: the default DARK modulation
def test_encode_decode_round_trip(input_size, blur_sigma):
    codec = HeatmapCodec(input_size)
    assert codec.heatmap_size == (input_size[0] // 4, input_size[1] // 4)
    rng = np.random.default_rng(0)
    kp = _inner_keypoints(rng, codec, 17)
    heatmaps, weights = codec.encode(kp)
    assert heatmaps.shape == (17, input_size[1] // 4, input_size[0] // 4) and heatmaps.dtype == np.float32
    np.testing.assert_array_equal(weights, 1)
    decoded, scores = codec.decode(heatmaps[None], blur_sigma=blur_sigma)
    assert decoded.shape == (1, 17, 2) and scores.shape == (1, 17)
    np.testing.assert_allclose(decoded[0], kp, atol=0.01)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0, 3.0])
def test_targets_of_any_sigma_decode_with_the_runtimes_default_blur(sigma):
    """models.train --sigma draws the targets, the runtime decodes with its default blur (review s68 asked): the
    round trip still holds."""
    codec = HeatmapCodec((128, 176), sigma=sigma)
    kp = _inner_keypoints(np.random.default_rng(1), codec, 200, margin_hm=6.0)
    decoded, _ = codec.decode(codec.encode(kp)[0][None])
    np.testing.assert_allclose(decoded[0], kp, atol=0.01)


def test_unlabelled_and_outside_keypoints_get_zero_weight_and_zero_maps():
    codec = HeatmapCodec((192, 256))
    kp = np.array([[50.0, 60.0], [-0.6, 100.0], [100.0, 256.0], [np.nan, 5.0], [191.5, 255.5], [80.0, 90.0]])
    visible = np.array([1, 1, 1, 1, 1, 0])
    heatmaps, weights = codec.encode(kp, visible)
    np.testing.assert_array_equal(weights, [1, 0, 0, 0, 1, 0])
    assert not heatmaps[[1, 2, 3, 5]].any()
    assert heatmaps[0].max() > 0.5 and heatmaps[4].max() > 0.5  # on the very crop edge still counts
    assert np.isfinite(heatmaps).all()


@pytest.mark.parametrize("input_size", [(192, 256), (144, 192)])
def test_heatmap_pixel_convention(input_size):
    codec = HeatmapCodec(input_size)
    sx, sy = codec.stride
    for i, j in [(0, 0), (5, 7), (codec.heatmap_size[0] - 1, codec.heatmap_size[1] - 1)]:
        kp = np.array([[(i + 0.5) * sx - 0.5, (j + 0.5) * sy - 0.5]])
        heatmaps, _ = codec.encode(kp)
        assert np.unravel_index(heatmaps[0].argmax(), heatmaps[0].shape) == (j, i)
        assert heatmaps[0, j, i] == 1.0


@pytest.mark.parametrize("input_size", [(128, 176), (192, 256)])
def test_round_trip_near_every_border(input_size):
    """Joints near the crop's edges: exact without the modulation, and exact with it where the heatmap's
    argmax is a border pixel (the decoder's one-sided step). Between the two, DARK's blur copies the border
    pixel outward and pulls joints toward the edge: kept, measured (docs/default_model.md, sessions 54, 56)."""
    codec = HeatmapCodec(input_size)
    (cw, ch), (sx, sy) = codec.input_size, codec.stride
    mid = np.array([cw / 2 + 0.3, ch / 2 - 0.7])

    def along_borders(d):  # (4·len(d), 2): d crop px in from the left, right, top and bottom edges
        out = []
        for axis, size in ((0, cw), (1, ch)):
            for pos in (d, size - 1 - d):
                kp = np.tile(mid, (len(d), 1))
                kp[:, axis] = pos
                out.append(kp)
        return np.concatenate(out)

    kp = along_borders(np.arange(-0.5, 12.0, 0.25))
    decoded, _ = codec.decode(codec.encode(kp)[0][None], blur_sigma=0)
    np.testing.assert_allclose(decoded[0], kp, atol=0.01)
    kp = along_borders(np.arange(-0.5, min(sx, sy) - 0.6, 0.1))  # heatmap x or y in [-0.5, 0.5): the border pixel
    decoded, _ = codec.decode(codec.encode(kp)[0][None])
    np.testing.assert_allclose(decoded[0], kp, atol=0.01)
