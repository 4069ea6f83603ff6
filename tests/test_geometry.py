"""Coordinate conventions of fasterpose_rt/geometry.py: box -> crop affine maps and heatmap <-> crop pixels."""
import cv2
import numpy as np
import pytest

from fasterpose_rt.geometry import (
    apply_affine,
    box_centers_and_sizes,
    crop_affine,
    crop_to_heatmap,
    heatmap_to_crop,
    invert_affine,
)

INPUT = (48, 64)  # (W, H)


def _region(centers, sizes):
    """Region centre and its four edge midpoints, (N, 5, 2) photo px."""
    c, half = np.asarray(centers, float), np.asarray(sizes, float) / 2
    zero = np.zeros_like(half[:, 0])
    offs = [(zero, zero), (-half[:, 0], zero), (half[:, 0], zero), (zero, -half[:, 1]), (zero, half[:, 1])]
    return np.stack([c + np.stack(o, axis=1) for o in offs], axis=1)


def test_crop_affine_maps_region_edge_to_edge():
    centers = np.array([[100.0, 80.0], [33.3, 250.7]])
    sizes = np.array([[120.0, 160.0], [30.0, 40.0]])
    m = crop_affine(centers, sizes, INPUT)
    assert m.shape == (2, 2, 3)
    got = apply_affine(_region(centers, sizes), m)
    w, h = INPUT
    expected = [[(w - 1) / 2, (h - 1) / 2], [-0.5, (h - 1) / 2], [w - 0.5, (h - 1) / 2],
                [(w - 1) / 2, -0.5], [(w - 1) / 2, h - 0.5]]
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-9)


def test_invert_affine_round_trip():
    rng = np.random.default_rng(1)
    centers, sizes = rng.uniform(0, 500, (4, 2)), rng.uniform(20, 300, (4, 2))
    m = crop_affine(centers, sizes, INPUT, rotation_deg=rng.uniform(-40, 40, 4))
    pts = rng.uniform(-50, 550, (4, 7, 2))
    back = apply_affine(apply_affine(pts, m), invert_affine(m))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # and the composition's matrix is the identity
    inv = invert_affine(m)
    np.testing.assert_allclose(np.einsum("nij,njk->nik", inv[:, :, :2], m[:, :, :2]), np.broadcast_to(np.eye(2), (4, 2, 2)), atol=1e-12)



def test_invert_affine_is_lapacks_inverse_without_lapack(monkeypatch, standin_path):
    """The closed-form 2x2 inverse equals np.linalg.inv and refuses a singular map as it does; and a prediction
    never calls LAPACK (through older numpy's OpenBLAS, a call left a thread spinning on the second core)."""
    rng = np.random.default_rng(2)
    m = rng.normal(size=(500, 2, 3)) * rng.uniform(0.01, 100, (500, 1, 1))
    np.testing.assert_allclose(invert_affine(m)[:, :, :2], np.linalg.inv(m[:, :, :2]), rtol=1e-9, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        invert_affine(np.array([[[1.0, 2.0, 0.0], [2.0, 4.0, 1.0]]]))

    def no_lapack(*args, **kwargs):
        raise AssertionError("np.linalg.inv called")

    monkeypatch.setattr(np.linalg, "inv", no_lapack)
    from fasterpose_rt import PosePredictor

    photo = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
    result = PosePredictor(standin_path, threads=1).predict(photo, np.array([[5, 5, 40, 60]], np.float32))
    assert np.isfinite(result.keypoints).all()

def test_heatmap_crop_conversions_are_inverse():
    rng = np.random.default_rng(2)
    xy = rng.uniform(-1, 60, (3, 5, 2))
    stride = (4.0, 4.0)
    np.testing.assert_allclose(crop_to_heatmap(heatmap_to_crop(xy, stride), stride), xy, atol=1e-12)
    np.testing.assert_allclose(heatmap_to_crop(crop_to_heatmap(xy, (3.0, 4.5)), (3.0, 4.5)), xy, atol=1e-12)
    # heatmap pixel (i, j) sits at ((i + 0.5)·s − 0.5, (j + 0.5)·s − 0.5); the map's edges meet the crop's edges
    np.testing.assert_allclose(heatmap_to_crop([[0.0, 0.0], [-0.5, -0.5]], stride), [[1.5, 1.5], [-0.5, -0.5]])


@pytest.mark.parametrize("box, expect", [
    ([10, 20, 300, 100], (300.0, 400.0)),   # wide box: height grows to the model's 3:4 aspect
    ([10, 20, 30, 200], (150.0, 200.0)),    # tall box: width grows
    ([0, 0, 48, 64], (48.0, 64.0)),         # already the right aspect
])
def test_box_aspect_fix_keeps_centre(box, expect):
    centers, sizes = box_centers_and_sizes([box], INPUT)
    np.testing.assert_allclose(sizes[0], expect)
    np.testing.assert_allclose(centers[0], [box[0] + box[2] / 2, box[1] + box[3] / 2])
    assert sizes[0, 0] / sizes[0, 1] == pytest.approx(INPUT[0] / INPUT[1])


def test_box_padding_scales_both_sides():
    boxes = np.array([[5, 5, 300, 100], [0, 0, 30, 200]], float)
    c1, s1 = box_centers_and_sizes(boxes, INPUT)
    c2, s2 = box_centers_and_sizes(boxes, INPUT, padding=1.25)
    np.testing.assert_allclose(c2, c1)
    np.testing.assert_allclose(s2, 1.25 * s1)


@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_warp_puts_painted_blob_where_apply_affine_says(rotation):
    # A smooth blob with a sub-pixel centre, magnified 2x by the warp: its intensity centroid in the crop is where
    # apply_affine maps the centre (a half-pixel convention error would show as a 0.5-1 px offset).
    yy, xx = np.mgrid[:200, :300]
    centre = np.array([147.2, 104.9])
    photo = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 1.5**2)).astype(np.float32)
    m = crop_affine([[150.3, 100.7]], [[24.0, 32.0]], INPUT, rotation_deg=[rotation])
    crop = cv2.warpAffine(photo, m[0], INPUT, flags=cv2.INTER_LINEAR)
    expect = apply_affine(centre[None, None], m)[0, 0]
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    total = crop.sum()
    assert total > 0
    centroid = np.array([(xs * crop).sum() / total, (ys * crop).sum() / total])
    np.testing.assert_allclose(centroid, expect, atol=0.05)
    assert np.unravel_index(crop.argmax(), crop.shape)[::-1] == tuple(np.round(expect).astype(int))


def test_rotation_round_trip_and_direction():
    centers, sizes = np.array([[200.0, 150.0]]), np.array([[90.0, 120.0]])
    m = crop_affine(centers, sizes, INPUT, rotation_deg=[90.0])
    w, h = INPUT
    # A point straight above the centre (photo) ends up to the left of the crop centre: the region is turned
    # counter-clockwise in the photo, so content appears turned clockwise in the crop.
    p = apply_affine(np.array([[[200.0, 150.0 - 30.0]]]), m)[0, 0]
    np.testing.assert_allclose(p, [(w - 1) / 2 - 30.0 * w / 90.0, (h - 1) / 2], atol=1e-9)
    pts = np.random.default_rng(3).uniform(0, 400, (1, 6, 2))
    np.testing.assert_allclose(apply_affine(apply_affine(pts, m), invert_affine(m)), pts, atol=1e-9)


def test_turned_extent_is_the_tight_box_in_the_turned_crop():
    from fasterpose_rt.geometry import turned_extent

    pts = np.array([[[10.0, 0.0], [10.0, 100.0], [30.0, 50.0], [np.nan, np.nan]]])
    for rot in (0.0, 90.0, -30.0):
        centers, sizes = turned_extent(pts, [rot])
        m = crop_affine(centers, sizes, (64, 64), [rot])[0]  # the tight box mapped edge to edge onto the crop
        q = pts[0, :3] @ m[:, :2].T + m[:, 2]
        np.testing.assert_allclose([q.min(0), q.max(0)], [[-0.5, -0.5], [63.5, 63.5]], atol=1e-9)
    np.testing.assert_allclose(turned_extent(pts, [90.0])[1], [[100.0, 20.0]], atol=1e-9)
