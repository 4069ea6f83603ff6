"""to_bgr_uint8: every accepted photo layout and type becomes (H, W, 3) uint8 BGR; the rest is refused by name."""
import warnings

import cv2
import numpy as np
import pytest

from fasterpose_rt import to_bgr_uint8

RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def test_bgr_uint8_passes_through():
    out = to_bgr_uint8(BGR)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, BGR)
    np.testing.assert_array_equal(to_bgr_uint8(np.asfortranarray(BGR)), BGR)
    assert to_bgr_uint8(BGR[:, ::-1]).flags.c_contiguous


@pytest.mark.parametrize("gray", [BGR[:, :, 0], BGR[:, :, :1]])
def test_gray_is_repeated_into_three_channels(gray):
    out = to_bgr_uint8(gray)
    assert out.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], BGR[:, :, 0])


def test_bgra_drops_alpha():
    bgra = np.concatenate([BGR, RNG.integers(0, 256, (5, 7, 1), dtype=np.uint8)], axis=2)
    np.testing.assert_array_equal(to_bgr_uint8(bgra), BGR)


def test_16_bit_is_scaled():
    np.testing.assert_array_equal(to_bgr_uint8(BGR.astype(np.uint16) * 257), BGR)
    np.testing.assert_array_equal(to_bgr_uint8(np.array([[0, 128, 65535]], np.uint16))[:, :, 0], [[0, 0, 255]])


def test_16_bit_holding_8_bit_values_is_warned_of_unless_decoded():
    """An array of 8-bit values in uint16 reads as black on the 16-bit scale: nobody was found, without a word
    (review s68). A decoded 16-bit file is on that scale by its own word: no warning."""
    from fasterpose_rt.image import decoded_to_bgr_uint8
    with pytest.warns(UserWarning, match="uint16 image whose values are all 0..255"):
        assert to_bgr_uint8(BGR.astype(np.uint16)).max() <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded_to_bgr_uint8(BGR.astype(np.uint16))
        to_bgr_uint8(np.zeros((2, 2), np.uint16))  # black is black on either scale


def test_floats_in_unit_range_and_in_pixel_range():
    np.testing.assert_array_equal(to_bgr_uint8(BGR / 255.0), BGR)
    np.testing.assert_array_equal(to_bgr_uint8(BGR.astype(np.float32)), BGR)  # max > 1: 0..255 scale
    odd = np.array([[np.nan, -3.0, 0.5, 1.0]], np.float64)
    np.testing.assert_array_equal(to_bgr_uint8(odd)[:, :, 0], [[0, 0, 128, 255]])


def test_a_unit_range_photo_resampled_past_1_stays_on_the_unit_scale():
    """A 0..1 photo enlarged bicubically overshoots 1 at its edges; one value above 1 made the whole photo
    0..255, nearly black, and its persons were lost."""
    photo = cv2.resize((BGR / 255.0).astype(np.float32), (70, 50), interpolation=cv2.INTER_CUBIC)
    assert 1.0 < photo.max() <= 1.5
    expected = np.clip(photo * 255.0 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(to_bgr_uint8(photo), expected)
    np.testing.assert_array_equal(to_bgr_uint8(np.array([[0.5, 1.0001]]))[:, :, 0], [[128, 255]])
    np.testing.assert_array_equal(to_bgr_uint8(np.array([[0.5, 1.6]]))[:, :, 0], [[1, 2]])  # beyond: 0..255


def test_small_integer_types_in_pixel_range():
    np.testing.assert_array_equal(to_bgr_uint8(BGR.astype(np.int64)), BGR)


@pytest.mark.parametrize("image,msg", [
    (np.zeros((4, 4, 2), np.uint8), "got shape"),
    (np.zeros((4,), np.uint8), "got shape"),
    (np.zeros((2, 4, 4, 3), np.uint8), "got shape"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 4), bool), "unsupported image dtype"),
    (np.zeros((4, 4), complex), "unsupported image dtype"),
    (np.full((4, 4), 300, np.int32), r"values in \[300, 300\]"),
    (np.full((4, 4), -1, np.int8), "values in"),
])
def test_refused_with_the_reason(image, msg):
    with pytest.raises(ValueError, match=msg):
        to_bgr_uint8(image)


def test_a_photo_cv2_imread_could_not_read_is_named_as_none():
    """cv2.imread returns None for a file it cannot read; np.asarray(None) has shape (), which said nothing."""
    with pytest.raises(ValueError, match="image is None: cv2.imread returns None when it cannot read the file"):
        to_bgr_uint8(None)


def test_big_endian_16_bit_is_scaled_as_16_bit():
    """">u2" (FITS and raw readers, np.frombuffer(raw, ">u2")) was refused as an integer type beyond 0..255."""
    wide = BGR.astype(np.uint16) * 257 + np.uint16(100)
    np.testing.assert_array_equal(to_bgr_uint8(wide.astype(">u2")), to_bgr_uint8(wide))
    np.testing.assert_array_equal(to_bgr_uint8(wide.astype(">u2")[..., 0]), to_bgr_uint8(wide[..., 0]))  # gray


def test_a_path_is_not_an_image(tmp_path):
    with pytest.raises(TypeError, match="cv2.imread"):
        to_bgr_uint8(str(tmp_path / "photo.jpg"))


def test_one_infinite_pixel_does_not_move_a_unit_range_photo_to_the_0_255_scale():
    """The scale is read from the finite values: a 0..1 photo with one inf pixel was taken for 0..255 and came out
    nearly black (review s62)."""
    photo = np.full((4, 5, 3), 0.5, np.float32)
    photo[0, 0, 0] = np.inf
    out = to_bgr_uint8(photo)
    assert out[1, 1, 0] == 128 and out[0, 0, 0] == 255
    photo[0, 0, 0] = -np.inf
    assert to_bgr_uint8(photo)[0, 0, 0] == 0
    assert (to_bgr_uint8(np.full((2, 2), np.inf, np.float32)) == 255).all()
