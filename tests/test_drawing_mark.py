"""The mark inside --vis drawings (fasterpose_rt.drawing_mark): decoders see the same pixels, a marked file is told
from a photo, and only a JPEG or PNG without the mark is kept from being drawn over."""
import cv2
import numpy as np
import pytest

from fasterpose_rt.drawing_mark import MARK, add_mark, has_mark, may_draw_over


def picture():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".png", ".JPG"])
def test_a_marked_picture_decodes_to_the_same_pixels_and_carries_the_mark(tmp_path, suffix):
    ok, buf = cv2.imencode(suffix.lower(), picture())
    assert ok
    plain = buf.tobytes()
    marked = add_mark(plain, suffix)
    assert len(marked) > len(plain) and MARK in marked[:100]
    (tmp_path / f"plain{suffix}").write_bytes(plain)
    (tmp_path / f"marked{suffix}").write_bytes(marked)
    a = cv2.imread(str(tmp_path / f"plain{suffix}"))
    b = cv2.imread(str(tmp_path / f"marked{suffix}"))
    assert a is not None and b is not None and np.array_equal(a, b)
    assert has_mark(tmp_path / f"marked{suffix}") and not has_mark(tmp_path / f"plain{suffix}")
    assert may_draw_over(tmp_path / f"marked{suffix}") and not may_draw_over(tmp_path / f"plain{suffix}")


def test_the_jpeg_mark_keeps_the_jfif_segment_first_and_the_png_mark_is_a_valid_chunk(tmp_path):
    """JFIF readers look for APP0 right after the start of the image; a PNG chunk with a wrong CRC is refused by
    strict decoders (libpng warns), so the CRC is checked here against zlib's."""
    import struct
    import zlib

    ok, buf = cv2.imencode(".jpg", picture())
    jpg = add_mark(buf.tobytes(), ".jpg")
    assert jpg[:4] == b"\xff\xd8\xff\xe0"
    app0_end = 4 + struct.unpack(">H", jpg[4:6])[0]
    assert jpg[app0_end:app0_end + 2] == b"\xff\xfe"
    ok, buf = cv2.imencode(".png", picture())
    png = add_mark(buf.tobytes(), ".png")
    at = 8 + 12 + 13  # after the signature and IHDR
    length = struct.unpack(">I", png[at:at + 4])[0]
    body = png[at + 4:at + 8 + length]
    assert body[:4] == b"tEXt" and body[4:].split(b"\x00") == [b"Software", MARK]
    assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(body) & 0xFFFFFFFF


def test_other_formats_and_bytes_that_are_not_what_the_suffix_says_are_left_as_they_are(tmp_path):
    ok, buf = cv2.imencode(".bmp", picture())
    assert add_mark(buf.tobytes(), ".bmp") == buf.tobytes()
    assert add_mark(b"not a jpeg", ".jpg") == b"not a jpeg"
    assert add_mark(b"not a png", ".png") == b"not a png"


def test_may_draw_over_nothing_there_and_unmarked_formats_but_not_a_photo_or_a_folder(tmp_path):
    assert may_draw_over(tmp_path / "missing.jpg")
    (tmp_path / "old.bmp").write_bytes(b"BM")  # a format without a mark: known by its name, as before
    assert may_draw_over(tmp_path / "old.bmp")
    cv2.imwrite(str(tmp_path / "photo.jpg"), picture())
    assert not may_draw_over(tmp_path / "photo.jpg")
    for name in ("folder.png", "folder.bmp", "clip.mp4"):  # nothing that is no regular file, whatever its name
        (tmp_path / name).mkdir()
        assert not may_draw_over(tmp_path / name)
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert not may_draw_over(tmp_path / "dangling.jpg")


def test_a_marked_video_plays_the_same_frames_and_carries_the_mark_at_its_end(tmp_path):
    """The MP4 mark is a free box appended after the others: OpenCV reads the same frames, and the edit-list reader
    (mp4_edits) walks past it."""
    from standin import read_video, write_video

    from fasterpose_rt.drawing_mark import mark_video
    from fasterpose_rt.mp4_edits import shown_seconds

    plain = write_video(tmp_path / "plain.mp4", frames=6)
    marked = tmp_path / "marked.mp4"
    marked.write_bytes(plain.read_bytes())
    mark_video(marked)
    assert not has_mark(plain) and has_mark(marked) and marked.read_bytes()[-len(MARK):] == MARK
    assert not may_draw_over(plain) and may_draw_over(marked)
    a, b = read_video(plain), read_video(marked)
    assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert shown_seconds(marked) == shown_seconds(plain)
