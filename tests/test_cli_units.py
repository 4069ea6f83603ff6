"""Unit tests of the CLI's building blocks: inputs, boxes, results writer, drawing, bench and eval helpers."""
import errno
import json
import os
import sys
import struct
import types

import cv2
import numpy as np
import pytest
from pathlib import Path

from fasterpose_rt import bench, boxes as boxes_mod, results as results_mod
from fasterpose_rt.boxes import BoxesFileError, HogPeopleDetector, box_iou, load_boxes_file, nms
from fasterpose_rt.draw import draw_poses, keypoint_sides, line_width
from fasterpose_rt.evaluate import EvalError, match_keypoints, pck_report
from fasterpose_rt.metrics import (body_orientation, left_right_confusions, pck, pck_by_orientation,
                                  pck_interval, torso_sizes)
from fasterpose_rt.inputs import InputItem, InputReadError, expand_inputs, read_image, read_input_list
from fasterpose_rt.predictor import PoseResult
from fasterpose_rt.results import ResultsWriter, atomic_write_text, coco_entries
from fasterpose_rt.skeletons import COCO17, LSP14


def exif_jpeg(image_bgr, orientation: int) -> bytes:
    """A JPEG of image_bgr with an EXIF APP1 segment carrying the orientation tag, inserted by hand."""
    ok, buf = cv2.imencode(".jpg", image_bgr)
    assert ok
    # Big-endian TIFF header, one IFD with one SHORT entry (0x0112 orientation), no next IFD.
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


# ------------------------------------------------------------------------------------------------------ inputs

def test_a_list_file_names_inputs_from_its_folder_and_names_what_it_cannot_use(tmp_path, monkeypatch):
    """photos.txt: one input per line, relative to the list's folder, comments and blanks skipped, duplicates kept
    once; missing paths and lists inside lists are problems, not fatal; without lists=True it is just a file."""
    d = tmp_path / "set"
    (d / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png", "sub/c.jpg"):
        (d / name).write_bytes(b"x")
    (d / "inner.txt").write_text("a.jpg\n")
    outside = tmp_path / "far.jpg"
    outside.write_bytes(b"x")
    lst = d / "photos.txt"
    lst.write_text(f"\ufeff# picked by hand\r\n a.jpg \r\n\r\n./sub/b.png\nmissing.jpg\n{outside}\na.jpg\n"
                   "inner.txt\nsub\ncamera:1\n")
    monkeypatch.chdir(tmp_path)  # the list given by a relative path: its entries still from its own folder
    items, problems = expand_inputs([Path("set/photos.txt")], videos=True, lists=True)
    assert [(i.path.as_posix(), i.rel.as_posix(), i.kind) for i in items] == [
        ("set/a.jpg", "a.jpg", "image"), ("set/sub/b.png", "sub/b.png", "image"),
        (outside.as_posix(), "far.jpg", "image"),  # outside the list's folder: its file name
        ("set/sub/c.jpg", "sub/c.jpg", "image"),  # a listed folder as a folder argument (b.png: already in)
        ("camera_1", "camera_1", "stream")]
    assert [(p.as_posix(), r) for p, r in problems] == [
        ("set/missing.jpg", "no such file or folder (line 5 of the list set/photos.txt)"),
        ("set/inner.txt", "a list inside a list is not read (line 8 of the list set/photos.txt)")]
    assert read_input_list(lst)[:2] == [(2, "a.jpg"), (4, "./sub/b.png")]
    items, problems = expand_inputs([lst])  # lists off (export.crops): a .txt is a file like any other
    assert [i.path for i in items] == [lst] and not problems
    for content, reason in ((b"", "names no inputs"), (b"# only a comment\n\n", "names no inputs"),
                            (b"\xff\xd8\xff\xe0\x00 a JPEG", "binary data"), (b"a.jpg\x00\x01", "binary data")):
        lst.write_bytes(content)
        items, problems = expand_inputs([lst], lists=True)
        assert not items and len(problems) == 1 and reason in problems[0][1], (content, problems)
        with pytest.raises(InputReadError, match=reason):
            read_input_list(lst)
    if os.name == "posix":  # a name that is not UTF-8 (a Latin-1 card): the list was refused whole (review s61)
        latin = os.fsencode(tmp_path / "set") + b"/caf\xe9.jpg"
        with open(latin, "wb") as f:
            f.write((tmp_path / "set" / "a.jpg").read_bytes())
        lst.write_bytes(b"a.jpg\ncaf\xe9.jpg\n")
        items, problems = expand_inputs([lst], lists=True)
        assert [os.fsencode(i.path) for i in items] == [os.fsencode(tmp_path / "set" / "a.jpg"), latin]
        assert not problems
        lst.write_bytes(b"na\xefve.jpg\n")  # a Latin-1 list naming a file stored in UTF-8: say why it is missing
        items, problems = expand_inputs([lst], lists=True)
        assert not items and "the list is not UTF-8 there, and names keep its bytes" in problems[0][1]


def test_a_pattern_names_the_photos_it_matches_as_a_folder_argument_would(tmp_path, monkeypatch):
    """"shoot/*.jpg" unexpanded by the shell (Windows, quotes): its photos sorted, named below the pattern's fixed
    folder as that folder's photos are; folders it matches expanded, other files left out; no match is a problem."""
    from fasterpose_rt.inputs import is_pattern

    d = tmp_path / "shoot"
    (d / "day2").mkdir(parents=True)
    for name in ("b.jpg", "a.JPG", "notes.txt", "day2/c.jpg", "day2/d.png", "clip.mp4"):
        (d / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert is_pattern("shoot/*.jpg") and not is_pattern("shoot/b.jpg") and not is_pattern(["*"])
    items, problems = expand_inputs(["shoot/*.[jJ][pP][gG]", "shoot/**/*.png"], patterns=True)
    assert [(i.path.as_posix(), i.rel.as_posix()) for i in items] == [
        ("shoot/a.JPG", "shoot/a.JPG"), ("shoot/b.jpg", "shoot/b.jpg"), ("shoot/day2/d.png", "shoot/day2/d.png")]
    assert not problems
    items, problems = expand_inputs(["shoot/*", "nobody/*.jpg"], videos=True, patterns=True)
    assert [(i.rel.as_posix(), i.kind) for i in items] == [  # notes.txt left out; day2/ as a folder argument
        ("shoot/a.JPG", "image"), ("shoot/b.jpg", "image"), ("shoot/clip.mp4", "video"), ("day2/c.jpg", "image"),
        ("day2/d.png", "image")]
    assert [(p.as_posix(), r) for p, r in problems] == [("nobody/*.jpg", "the pattern matches no photos or videos")]
    items, _ = expand_inputs([str(d / "*.jpg")], patterns=True)  # an absolute pattern: below its fixed folder too
    assert [i.rel.as_posix() for i in items] == ["shoot/b.jpg"]
    with pytest.raises(FileNotFoundError):  # patterns off: a path like any other
        expand_inputs(["shoot/*.jpg"])


def test_folders_and_patterns_follow_symlinked_folders_once_and_pass_over_hidden_files(tmp_path, monkeypatch):
    """A link back to a folder above (a loop) ends there: a "**" pattern went round it without end (Python's glob),
    and a folder argument did not follow symlinked folders at all, which a pattern did. Hidden files and folders (a
    camera card's ._IMG AppleDouble files, .thumbnails/) are not photos of their own; a pattern part starting with
    "." still matches them."""
    d = tmp_path / "card"
    for name in ("DCIM/a.jpg", "DCIM/._a.jpg", "DCIM/.thumbnails/t.jpg", "elsewhere/e.jpg"):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"x")
    (d / "DCIM" / "up").symlink_to("..")  # a loop: card/DCIM/up/DCIM/up/...
    (d / "DCIM" / "up2").symlink_to("..")
    (d / "DCIM" / "linked").symlink_to(d / "elsewhere")
    (d / "DCIM" / "nowhere").symlink_to(d / "missing")
    monkeypatch.chdir(tmp_path)
    items, problems = expand_inputs([Path("card/DCIM")])
    assert [i.path.as_posix() for i in items] == ["card/DCIM/a.jpg", "card/DCIM/linked/e.jpg"] and not problems
    items, problems = expand_inputs(["card/**/*.jpg"], patterns=True)
    assert sorted(os.path.realpath(i.path) for i in items) == sorted(
        os.path.realpath(d / n) for n in ("DCIM/a.jpg", "elsewhere/e.jpg")) and not problems
    items, _ = expand_inputs(["card/**/._*.jpg"], patterns=True)
    assert [i.path.as_posix() for i in items] == ["card/DCIM/._a.jpg"]
    items, _ = expand_inputs([Path("card/DCIM/._a.jpg")])  # named: read
    assert len(items) == 1


def test_a_pattern_walks_only_what_its_parts_match_and_links_keep_real_paths(tmp_path, monkeypatch):
    """review s67 of the first walk: "shoot*/**/*.jpg" walked the whole current folder (naming folders it could not
    list anywhere in it), "**/.thumbnails/*.jpg" matched nothing, a missing fixed folder was said twice, and a link
    to a subfolder that sorted first took its files' paths (a resumed run then missed their --out-dir files)."""
    for name in ("shoot1/a/x.jpg", "shoot1/.thumbnails/t.jpg", "other/deep/y.jpg", "trip/day2/z.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "trip" / "best").symlink_to("day2")  # sorts before day2
    scandir = os.scandir

    def refusing(path="."):
        if os.path.basename(os.fspath(path)) == "deep":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    monkeypatch.chdir(tmp_path)
    items, problems = expand_inputs(["shoot*/**/*.jpg"], patterns=True)
    assert [i.path.as_posix() for i in items] == ["shoot1/a/x.jpg"] and not problems  # other/ never walked
    items, _ = expand_inputs(["**/.thumbnails/*.jpg"], patterns=True)
    assert [i.path.as_posix() for i in items] == ["shoot1/.thumbnails/t.jpg"]
    items, problems = expand_inputs(["missing/**/*.jpg"], patterns=True)
    assert not items and problems == [(Path("missing/**/*.jpg"), "the pattern matches no photos")]
    items, _ = expand_inputs([Path("trip")])
    assert [i.path.as_posix() for i in items] == ["trip/day2/z.jpg"]


def test_a_folder_that_cannot_be_listed_is_named_and_the_rest_is_walked(tmp_path, monkeypatch):
    """pathlib's rglob passed an unreadable subfolder over in silence, and the run exited 0."""
    d = tmp_path / "shoot"
    for name in ("ok/a.jpg", "locked/b.jpg"):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"x")
    scandir = os.scandir

    def refusing(path="."):  # as for a folder of mode 000 (root, who runs the tests here, reads those)
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    items, problems = expand_inputs([d])
    assert [i.path.name for i in items] == ["a.jpg"]
    assert problems == [(d / "locked", "cannot read the folder: Permission denied")]
    items, problems = expand_inputs([d / "locked"])  # named once, not also as holding no photos
    assert not items and problems == [(d / "locked", "cannot read the folder: Permission denied")]
    items, problems = expand_inputs([f"{d}/**/*.jpg", f"{d}/**"], patterns=True)  # "**" walks alike, named once
    assert [i.path.name for i in items] == ["a.jpg"]
    assert problems == [(d / "locked", "cannot read the folder: Permission denied")]


def test_expand_inputs_recursive_sorted_case_insensitive(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    for name in ["b.jpg", "A.PNG", "sub/c.webp", "notes.txt", "sub/clip.mp4"]:
        (d / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    video = tmp_path / "run.MOV"
    video.write_bytes(b"x")
    items, problems = expand_inputs([d, video, d / "b.jpg", tmp_path / "empty"])
    assert [i.path.relative_to(tmp_path).as_posix() for i in items] == [
        "photos/A.PNG", "photos/b.jpg", "photos/sub/c.webp", "run.MOV"]  # folders hold photos only
    assert [i.kind for i in items] == ["image", "image", "image", "video"]
    assert items[2].rel.as_posix() == "photos/sub/c.webp"
    assert len(problems) == 1 and problems[0][0] == tmp_path / "empty" and "no photos" in problems[0][1]
    items, problems = expand_inputs([d, tmp_path / "empty"], videos=True)  # the CLI's: folders' videos too
    assert [(i.path.relative_to(tmp_path).as_posix(), i.kind) for i in items] == [
        ("photos/A.PNG", "image"), ("photos/b.jpg", "image"), ("photos/sub/c.webp", "image"),
        ("photos/sub/clip.mp4", "video")]
    assert items[3].rel.as_posix() == "photos/sub/clip.mp4" and "no photos or videos" in problems[0][1]
    with pytest.raises(FileNotFoundError, match="missing"):
        expand_inputs([tmp_path / "missing"])


def test_folders_and_patterns_leave_out_the_runs_own_output_folders(tmp_path, monkeypatch):
    """leave_out (predict's --vis and --out-dir): a folder or pattern does not read back the files under them, and
    says which it left out; a file or a folder inside them named as an input is read."""
    monkeypatch.chdir(tmp_path)
    for name in ["shoot/a.jpg", "shoot/drawn/shoot/a.jpg", "shoot/results/x/b.png", "other/c.jpg"]:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"x")
    outputs = [Path("shoot/drawn"), tmp_path / "shoot" / "results"]
    left_out = set()
    items, problems = expand_inputs(["shoot", "shoot/**/*.jpg", "other"], patterns=True, leave_out=outputs,
                                    left_out=left_out)
    assert [i.path.as_posix() for i in items] == ["shoot/a.jpg", "other/c.jpg"] and not problems
    assert left_out == {os.path.realpath(f) for f in ("shoot/drawn/shoot/a.jpg", "shoot/results/x/b.png")}
    items, _ = expand_inputs(["shoot/drawn", "shoot/results/x/b.png"], leave_out=outputs)  # named: read
    assert [i.path.as_posix() for i in items] == ["shoot/drawn/shoot/a.jpg", "shoot/results/x/b.png"]


def test_missing_paths_can_be_problems_and_a_list_names_its_files_without_dot_dot(tmp_path, monkeypatch):
    """skip_missing (predict's): a missing path given is a problem as a missing list line is, the rest expanded.
    A list's ../x.jpg is named x.jpg (lexically, where that is the same file), its rel the file's name; a.jpg
    through ../lst/ keeps the list's folder in its rel."""
    monkeypatch.chdir(tmp_path)
    for name in ["shoot/a.jpg", "lst/b.jpg"]:
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_bytes(b"x")
    Path("lst/list.txt").write_text("../shoot/a.jpg\n../lst/./b.jpg\n../gone.jpg\n")
    items, problems = expand_inputs(["gone", "lst/list.txt", "shoot"], lists=True, skip_missing=True)
    assert [(i.path.as_posix(), i.rel.as_posix(), i.folder) for i in items] == [
        ("shoot/a.jpg", "a.jpg", None), ("lst/b.jpg", "b.jpg", None)]  # shoot's a.jpg: named in the list first
    assert [(p.as_posix(), r) for p, r in problems] == [
        ("gone", "no such file or folder"), ("gone.jpg", "no such file or folder (line 3 of the list lst/list.txt)")]
    items, _ = expand_inputs(["shoot"])
    assert [(i.rel.as_posix(), i.folder) for i in items] == [("shoot/a.jpg", Path("shoot"))]


def test_folders_leave_out_the_runs_own_drawings_unless_named(tmp_path, monkeypatch):
    """outputs (predict's --vis: own_drawings): a folder does not read back the drawings beside its photos
    (a_pose.jpg, a_pose_2.jpg beside a.jpg) nor the file another input's drawing is written to (shoot/b.jpg of
    far/b.jpg), counted in left_out; named directly, each is read. A JPEG or PNG is a drawing only if it carries
    the drawings' mark: without it, it is somebody's photo, read as an input."""
    from functools import partial

    from fasterpose_rt.cli.predict_run import own_drawings
    from fasterpose_rt.drawing_mark import MARK

    monkeypatch.chdir(tmp_path)
    drawings = ["shoot/a_pose.jpg", "shoot/a_pose_2.jpg", "shoot/b.jpg", "shoot/sub/c_pose.png"]
    for name in ["shoot/a.jpg", "shoot/a_pose.jpg", "shoot/a_pose_2.jpg", "shoot/a_posed.jpg", "shoot/b.jpg",
                 "shoot/sub/c.png", "shoot/sub/c_pose.png", "far/b.jpg"]:
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_bytes(b"x" + MARK if name in drawings else b"x")
    outputs = partial(own_drawings, vis_dir=Path("shoot"))
    left_out = set()
    items, _ = expand_inputs(["shoot", "far/b.jpg"], outputs=outputs, left_out=left_out)
    assert [i.path.as_posix() for i in items] == ["shoot/a.jpg", "shoot/a_posed.jpg", "shoot/sub/c.png", "far/b.jpg"]
    assert left_out == {os.path.realpath(f) for f in ("shoot/a_pose.jpg", "shoot/a_pose_2.jpg", "shoot/b.jpg",
                                                      "shoot/sub/c_pose.png")}
    left_out = set()
    items, _ = expand_inputs(["shoot", "shoot/a_pose.jpg"], outputs=outputs, left_out=left_out)
    assert "shoot/a_pose.jpg" in [i.path.as_posix() for i in items] and len(left_out) == 2  # a_pose_2, c_pose
    for name in drawings:  # the same names without the mark: photos of somebody's, each read
        Path(name).write_bytes(b"x")
    left_out = set()
    items, _ = expand_inputs(["shoot", "far/b.jpg"], outputs=outputs, left_out=left_out)
    assert sorted(i.path.as_posix() for i in items) == sorted(
        ["shoot/a.jpg", "shoot/a_posed.jpg", "far/b.jpg", *drawings, "shoot/sub/c.png"]) and not left_out


@pytest.mark.skipif(os.name != "posix", reason="file names that are not UTF-8 are a POSIX matter")
def test_a_video_name_opencv_cannot_take_fails_alone_where_no_link_can_be_made(tmp_path, monkeypatch):
    """OpenCV crashes on a video file name that is not UTF-8, so it is given an ASCII link's name; where no link
    can be made, the video fails with a reason (never reaching OpenCV) and no temporary folder is left."""
    import tempfile

    from fasterpose_rt import inputs

    def no_links(*args):
        raise OSError(errno.EPERM, "Operation not permitted")

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(inputs.os, "symlink", no_links)
    with pytest.raises(InputReadError, match="^file name is not valid UTF-8, which OpenCV's video writer cannot "
                                             "open: rename it$"):
        with inputs.opencv_video_path(tmp_path / os.fsdecode(b"vid\xe9.mp4"), "writer"):
            pass  # (open_video and --vis open their files in such a block; OpenCV itself would crash here)
    assert not list((tmp_path / "tmp").iterdir())
    with inputs.opencv_video_path(tmp_path / "vidé.mp4") as name:  # UTF-8: as it is
        assert name == str(tmp_path / "vidé.mp4")


def test_read_image_converts_gray_alpha_palette_16bit(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is absent (a dev dependency, via matplotlib): it writes "
                                "the palette photo")  # the runtime never needs it

    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    bgra = np.zeros((6, 5, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 200, 100
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 4, 3), 65535, np.uint16))
    rgb = (0, 51, 102)  # on the web palette that convert("P") maps to
    Image.fromarray(np.full((5, 7, 3), rgb, np.uint8)).convert("P").save(tmp_path / "pal.png")

    g = read_image(tmp_path / "gray.png")
    assert g.shape == (8, 25, 3) and g.dtype == np.uint8 and (g[..., 0] == gray).all()
    rgba = read_image(tmp_path / "rgba.png")
    assert rgba.shape == (6, 5, 3) and tuple(rgba[0, 0]) == (0, 0, 200)
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and (deep == 255).all()  # scaled, not clipped from 65535
    pal = read_image(tmp_path / "pal.png")
    assert pal.shape == (5, 7, 3) and tuple(pal[0, 0]) == rgb[::-1]


def test_read_image_honours_exif_orientation(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = 255  # a wide photo, left half white
    (tmp_path / "rot.jpg").write_bytes(exif_jpeg(img, 6))  # 6: display rotated 90° clockwise
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)  # tall now
    assert out[2, 10, 0] > 200 and out[-3, 10, 0] < 50  # the white half moved to the top


def test_a_folder_takes_camcorder_dvd_and_ogg_videos(tmp_path):
    """review s64: .m2ts (AVCHD), .vob, .ogv and .mjpeg files, which OpenCV reads, were left out of a folder
    without a word, and given by name were tried as photos."""
    from fasterpose_rt.inputs import expand_inputs

    names = ["00001.m2ts", "VTS_01_1.vob", "clip.ogv", "cam.mjpeg", "broadcast.mxf"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    items, problems = expand_inputs([tmp_path], videos=True)
    assert not problems and sorted((Path(i.path).name, i.kind) for i in items) == sorted((n, "video") for n in names)


def test_a_photo_under_a_videos_name_is_named_as_such_not_run_as_a_one_frame_video(tmp_path):
    """review s68: a JPEG named .mp4 ran as a 1-frame video, its EXIF orientation not applied, where the other way
    round (a video named .jpg) is told. A Motion JPEG stream (.mjpg: JPEGs one after another) is still a video."""
    from fasterpose_rt.inputs import open_video

    image = np.full((40, 60, 3), 90, np.uint8)
    for ext, name in ((".jpg", "JPEG"), (".png", "PNG"), (".bmp", "BMP"), (".tif", "TIFF"), (".webp", "WebP")):
        path = tmp_path / f"clip{ext}.mp4"
        path.write_bytes(cv2.imencode(ext, image)[1].tobytes())
        with pytest.raises(InputReadError, match=rf"looks like a photo \({name}\), not a video: rename it with a "
                                                 rf"photo extension such as \{ext}"):
            open_video(path)
    stream = tmp_path / "cam.mjpg"
    stream.write_bytes(cv2.imencode(".jpg", image)[1].tobytes() * 3)
    cap, _, _ = open_video(stream)
    try:
        assert cap.read()[0]
    finally:
        cap.release()


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"this is not a photo", "not a decodable image"),
    ("truncated", "not a decodable image"),
    # a video saved under a photo's name: its container named, and a name to give it
    pytest.param(b"\0\0\0\x20ftypisom" + bytes(40), r"looks like a video \(MP4 container\), not a photo: rename "
                 r"it with a video extension such as \.mp4", id="mp4"),
    pytest.param(b"\0\0\0\x14ftypqt  " + bytes(40), r"\(QuickTime MOV container\).* \.mov", id="mov"),
    pytest.param(b"RIFF\x10\0\0\0AVI LIST" + bytes(40), r"\(AVI container\).* \.avi", id="avi"),
    pytest.param(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm" + bytes(40), r"\(WebM container\).* \.webm", id="webm"),
    pytest.param(b"\x1a\x45\xdf\xa3\xa3\x42\x82\x88matroska" + bytes(40), r"\(Matroska container\).* \.mkv",
                 id="mkv"),
    # review s64: an Ogg, program stream or (camcorder) transport stream was "not a decodable image"
    pytest.param(b"OggS\0\x02" + bytes(60), r"\(Ogg container\).* \.ogv", id="ogv"),
    pytest.param(b"\0\0\x01\xba\x44" + bytes(60), r"\(MPEG program stream container\).* \.mpg", id="vob"),
    pytest.param((b"\x47\x40\x00\x10" + bytes(184)) * 3, r"\(MPEG transport stream container\).* \.ts", id="ts"),
    pytest.param((bytes(4) + b"\x47\x40\x00\x10" + bytes(184)) * 3, r"\(MPEG-2 transport stream \(camcorder\) "
                 r"container\).* \.m2ts", id="m2ts"),
    pytest.param(b"GIF89a" + bytes(182) + b"G" + bytes(250), "not a decodable image", id="gif"),  # G at 0, 188: no TS
    pytest.param(b"\0\0\0\x1cftypavif" + bytes(40), "not a decodable image", id="avif"),
    # review s66: an M4A was told to be renamed .mp4, which then did not open as a video either
    pytest.param(b"\0\0\0\x1cftypM4A " + bytes(40), r"an audio file \(MPEG-4 audio, M4A\), not a photo or video",
                 id="m4a"),  # an AVIF photo: no video
    pytest.param(b"RIFF\x10\0\0\0WEBPVP8 " + bytes(40), "not a decodable image", id="webp"),  # nor a WebP one
])
def test_read_image_names_the_reason(tmp_path, content, reason):
    if content == "truncated":
        ok, buf = cv2.imencode(".png", np.zeros((30, 30, 3), np.uint8))
        content = buf.tobytes()[:40]  # header only: nothing left to decode
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputReadError, match=reason):
        read_image(p)


# ------------------------------------------------------------------------------------------------------- boxes

def _coco(tmp_path):
    data = {
        "images": [{"id": 7, "file_name": "val/a.jpg"}, {"id": 9, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "person", "keypoints": ["k"] * 17}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"image_id": 7, "category_id": 1, "bbox": [1, 2, 30, 40]},
            {"image_id": 7, "category_id": 1, "bbox": []},  # empty: skipped
            {"image_id": 7, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # crowd: skipped
            {"image_id": 7, "category_id": 2, "bbox": [5, 5, 10, 10]},  # a dog: skipped
            {"image_id": 7, "category_id": 1, "bbox": [10, 20, 5, 6]},
        ],
    }
    p = tmp_path / "coco.json"
    p.write_text(json.dumps(data))
    return p


def test_coco_boxes_file_matches_by_file_name(tmp_path):
    lookup = load_boxes_file(_coco(tmp_path))
    found = lookup.find("data/val/a.jpg")  # file_name is a suffix of the path
    assert found.image_id == 7 and found.boxes.tolist() == [[1, 2, 30, 40], [10, 20, 5, 6]]
    assert found.ann_index.tolist() == [0, 4]
    assert lookup.find("b.jpg").boxes.shape == (0, 4)  # listed, nobody in it
    assert lookup.find("other/a.jpg") is None  # same name, wrong folder
    assert lookup.find("c.jpg") is None
    assert lookup.category_id == 1 and lookup.keypoint_names == ["k"] * 17  # the person category's
    data = json.loads(_coco(tmp_path).read_text())
    data["categories"] = [{"id": 3, "name": "human"}]  # no "person": the only category's boxes and id
    (tmp_path / "human.json").write_text(json.dumps(data))
    lookup = load_boxes_file(tmp_path / "human.json")
    assert lookup.category_id == 3 and lookup.keypoint_names is None and len(lookup.find("val/a.jpg").boxes) == 3


def test_map_boxes_file(tmp_path):
    p = tmp_path / "boxes.json"
    p.write_text(json.dumps({"a.jpg": [[1, 2, 3, 4]], "sub/b.png": []}))
    lookup = load_boxes_file(p)
    assert lookup.find("x/a.jpg").boxes.tolist() == [[1, 2, 3, 4]] and lookup.find("x/a.jpg").image_id is None
    assert lookup.find("photos/sub/b.png").boxes.shape == (0, 4)


def test_the_longest_entry_naming_a_photo_is_its_entry(tmp_path):
    """Entries a.jpg and x/a.jpg both name x/a.jpg: the longer is its entry, however the photo was given (a file
    argument's rel is its bare name, whose exact match had won over the longer end of the path)."""
    p = tmp_path / "boxes.json"
    p.write_text(json.dumps({"a.jpg": [[1, 1, 5, 5]], "x/a.jpg": [[2, 2, 5, 5]], "ln/b.jpg": [], "tg/b.jpg": []}))
    lookup = load_boxes_file(p)
    for path, rel in (("x/a.jpg", "a.jpg"), ("/data/x/a.jpg", "a.jpg"), ("/data/x/a.jpg", "x/a.jpg"),
                      ("data/x/a.jpg", None), ("a.jpg", "x/a.jpg")):  # the last: `predict .` inside x
        assert lookup.find(path, rel).boxes.tolist() == [[2, 2, 5, 5]], (path, rel)
    assert lookup.match("/data/x/a.jpg", "a.jpg") == "x/a.jpg"
    assert lookup.match("/data/y/a.jpg", "a.jpg") == "a.jpg"
    assert lookup.match("ln/b.jpg", "tg/b.jpg") == "ln/b.jpg"  # two as long: the path as given's (a symlink)
    assert lookup.match("z/c.jpg", "c.jpg") is None


def _inputs(*paths, kind="image"):
    return [InputItem(Path(p), kind, Path(r)) for p, r in paths]


def test_an_entry_naming_several_inputs_is_a_conflict(tmp_path):
    """An entry a.jpg gave x/a.jpg and y/a.jpg the same boxes and image id: a conflict naming the entry and the
    inputs, unless a longer entry names one of them."""
    p = tmp_path / "boxes.json"
    p.write_text(json.dumps([{"file_name": "a.jpg", "bbox": [1, 1, 5, 5], "image_id": 3},
                             {"file_name": "b.jpg", "bbox": [1, 1, 5, 5]}]))
    two = _inputs(("shoot/x/a.jpg", "x/a.jpg"), ("shoot/y/a.jpg", "y/a.jpg"), ("shoot/x/b.jpg", "x/b.jpg"))
    problem = load_boxes_file(p).conflict(two)
    assert problem == (f"{p}: entry 'a.jpg' names 2 inputs, shoot/x/a.jpg and shoot/y/a.jpg, and would give each "
                       "its boxes and image id; give each an entry naming more of its path (as 'x/a.jpg')")
    assert load_boxes_file(p).conflict(two[:1] + two[2:]) is None  # one photo of that name: no question
    p.write_text(json.dumps({"a.jpg": [], "b.jpg": [], "c.jpg": []}))
    many = two + _inputs(("shoot/y/b.jpg", "y/b.jpg"), ("q/a.jpg", "a.jpg"), ("r/a.jpg", "a.jpg"))
    problem = load_boxes_file(p).conflict(many)
    assert problem.startswith(f"{p}: entry 'a.jpg' names 4 inputs, shoot/x/a.jpg, shoot/y/a.jpg, q/a.jpg and 1 "
                              "more, and would give each its boxes;") and "(1 other entry names several" in problem
    p.write_text(json.dumps({"x/a.jpg": [[1, 1, 5, 5]], "y/a.jpg": [[2, 2, 5, 5]]}))
    assert load_boxes_file(p).conflict(two[:2]) is None  # each named by its own entry
    p.write_text(json.dumps({"x/a.jpg": [[1, 1, 5, 5]], "a.jpg": [[2, 2, 5, 5]]}))
    assert load_boxes_file(p).conflict(two[:2]) is None  # x's entry is the longer: a.jpg names y/a.jpg alone
    p.write_text(json.dumps({"clip.mp4": [[1, 1, 5, 5]]}))
    clips = _inputs(("x/clip.mp4", "x/clip.mp4"), ("y/clip.mp4", "y/clip.mp4"), kind="video")
    assert "entry 'clip.mp4' names 2 inputs" in load_boxes_file(p).conflict(clips)  # both started from its boxes


def test_a_list_giving_two_photos_one_image_id_drops_their_ids(tmp_path):
    """A list whose entries for x/a.jpg and y/b.jpg both carry image_id 1 (two predict runs' results in one list:
    each numbers from 1) was refused; their ids are dropped (they take running ids) with a warning naming them. A
    COCO file's ids are the dataset's own: two photos given one there stay refused."""
    p = tmp_path / "dets.json"
    p.write_text(json.dumps([{"file_name": "x/a.jpg", "bbox": [1, 1, 5, 5], "image_id": 1},
                             {"file_name": "y/b.jpg", "bbox": [1, 1, 5, 5], "image_id": 1},
                             {"file_name": "clip.mp4", "bbox": [1, 1, 5, 5], "image_id": 2},
                             {"file_name": "z/c.jpg", "bbox": [1, 1, 5, 5], "image_id": 2},
                             {"file_name": "w/d.jpg", "bbox": [1, 1, 5, 5], "image_id": 3}]))
    photos = _inputs(("x/a.jpg", "x/a.jpg"), ("y/b.jpg", "y/b.jpg"), ("w/d.jpg", "d.jpg"))
    lookup = load_boxes_file(p)
    assert lookup.conflict(photos) is None
    assert lookup.renumber_shared_ids(photos) == (
        f"warning: {p}: entries 'x/a.jpg' and 'y/b.jpg' both give image_id 1, to two photos, x/a.jpg and y/b.jpg; "
        "they get new image ids, numbered after the largest the file gives (3)")
    assert [lookup.find(n).image_id for n in ("x/a.jpg", "y/b.jpg", "w/d.jpg", "z/c.jpg")] == [None, None, 3, 2]
    assert lookup.largest_image_id(photos) == 3  # the dropped ids are the file's still
    lookup = load_boxes_file(p)
    assert lookup.renumber_shared_ids(photos[:1]) is None  # the other photo is not among the inputs
    assert lookup.find("x/a.jpg").image_id == 1
    # a video's frames take ids of their own: its entry's id is no photo's
    assert lookup.renumber_shared_ids(_inputs(("z/c.jpg", "c.jpg")) + _inputs(("clip.mp4", "clip.mp4"),
                                                                              kind="video")) is None
    three = photos[:2] + _inputs(("v/e.jpg", "e.jpg"), ("z/c.jpg", "c.jpg"), ("u/f.jpg", "f.jpg"))
    p.write_text(json.dumps([{"file_name": n, "bbox": [1, 1, 5, 5], "image_id": i}
                             for n, i in (("x/a.jpg", 1), ("y/b.jpg", 1), ("e.jpg", 1), ("c.jpg", 2), ("f.jpg", 2))]))
    assert load_boxes_file(p).renumber_shared_ids(three) == (
        f"warning: {p}: entries 'x/a.jpg', 'y/b.jpg' and 'e.jpg' all give image_id 1, to 3 photos, x/a.jpg, y/b.jpg "
        "and v/e.jpg (1 other image id is each given to several photos too, 5 photos in all); they get new image "
        "ids, numbered after the largest the file gives (2)")
    # a COCO file's ids are the dataset's own: one given to two images is refused as the file is read (the later
    # record hid the earlier photo, whose persons were dropped without a word)
    p = tmp_path / "coco.json"
    p.write_text(json.dumps({"images": [{"id": 1, "file_name": "x/a.jpg"}, {"id": 1, "file_name": "y/b.jpg"}],
                             "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(boxes_mod.BoxesFileError, match=r"images\[1\] has the id 1 of another image; each photo "
                                                       "needs an id of its own"):
        load_boxes_file(p)


def test_the_largest_image_id_a_boxes_file_gives_leaves_out_the_runs_videos_entries(tmp_path):
    """Running ids start after the largest id the file gives any entry, a photo's whether run or not (from the
    run's photos', a video's frames took the ids of the file's other photos), any frame of a video's results, but
    not the entry of a video being run: its frames take ids of their own."""
    p = tmp_path / "coco.json"
    p.write_text(json.dumps({"images": [{"id": i, "file_name": n} for i, n in
                                        ((1, "b.jpg"), (2, "clip.mp4"), (3, "c.jpg"), (4, "d.jpg"), (9, "e.mp4"))],
                             "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    lookup = load_boxes_file(p)
    b, clip, e = _inputs(("s/b.jpg", "b.jpg")), _inputs(("s/clip.mp4", "clip.mp4"), kind="video"), \
        _inputs(("s/e.mp4", "e.mp4"), kind="video")
    assert lookup.largest_image_id(b + clip) == 9 and lookup.largest_image_id(b + clip + e) == 4
    assert lookup.largest_image_id([]) == 9
    p = tmp_path / "results.json"  # a results list: a video's later frames' ids count too, its first's alone kept
    p.write_text(json.dumps([{"file_name": "s/b.jpg", "bbox": [1, 1, 5, 5], "image_id": 1}]
                            + [{"file_name": "s/clip.mp4", "bbox": [1, 1, 5, 5], "image_id": i, "frame": i - 2}
                               for i in (2, 3, 4)]))
    lookup = load_boxes_file(p)
    assert lookup.find("s/clip.mp4").image_id == 2
    assert lookup.largest_image_id(b) == 4 and lookup.largest_image_id(b + clip) == 1
    p.write_text(json.dumps({"b.jpg": [[1, 1, 5, 5]]}))
    assert load_boxes_file(p).largest_image_id(b) == 0  # a map gives no ids


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("3", "expected a JSON object"),
    ("[1, 2]", "entry 0 is not an object"),
    ('{"a.jpg": [[1, 2, 3]]}', "'a.jpg' must be a list"),
    ('{"a.jpg": [[1, 2, 0, 4]]}', "width or height <= 0"),
    ('{"a.jpg": [[1, 2, "x", 4]]}', "must be a list"),
    ('{"images": [{"id": 1}], "annotations": []}', "images\\[0\\]"),
    ('{"images": [], "annotations": [{"image_id": 3, "bbox": [0, 0, 1, 1]}]}', "image_id 3"),
    ('{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 1, "bbox": [0, "0", 1, 1]}]}',
     "annotations\\[0\\]: bbox"),
    ('{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": [1], "bbox": [0, 0, 1, 1]}]}',
     "image_id \\[1\\]"),  # an unhashable id
    ('{"a.jpg": [[1, 2, 1e999, 4]]}', "'a.jpg' must be a list"),  # Python reads 1e999 as inf
    ('{"a.jpg": [[1, 2, 1%s, 4]]}' % ("0" * 400), "'a.jpg' must be a list"),  # an int float64 cannot hold
    ('[{"file_name": "a.jpg", "bbox": [0, 0, 5, 5], "frame": NaN}]', "'frame' must be a number"),
    ('[{"file_name": "a.jpg", "bbox": [0, 0, 5, 5], "score": 1%s}]' % ("0" * 400), "'score' must be a number"),
])
def test_malformed_boxes_files_are_named(tmp_path, text, match):
    p = tmp_path / "boxes.json"
    p.write_text(text)
    with pytest.raises(BoxesFileError, match=match) as e:
        load_boxes_file(p)
    assert str(p) in str(e.value)


def test_box_iou_broadcasts_pairs_and_grids():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5]], float)
    np.testing.assert_allclose(box_iou(a, b), [50 / 150, 0.0])  # pairwise
    np.testing.assert_allclose(box_iou(a[:1, None], b[None]), [[50 / 150, 0.0]])  # every a against every b
    assert box_iou([0, 0, 4, 4], [0, 0, 4, 4]) == 1.0


def test_nms_keeps_best_of_overlapping():
    b = np.array([[0, 0, 10, 20], [1, 1, 10, 20], [50, 0, 10, 20]], float)
    assert nms(b, np.array([0.5, 0.9, 0.1])).tolist() == [1, 2]


def test_hog_detector_boxes(monkeypatch):
    class FakeHog:  # stands in for cv2.HOGDescriptor, absent from OpenCV 5 builds
        def setSVMDetector(self, w):
            self.w = w

        def detectMultiScale(self, img, **kw):
            assert img.shape[:2] == (480, 640)  # long side scaled to 640
            return np.array([[64, 0, 64, 128], [68, 4, 64, 128]]), np.array([1.5, 0.9])

    monkeypatch.setattr(cv2, "HOGDescriptor", FakeHog, raising=False)
    monkeypatch.setattr(cv2, "HOGDescriptor_getDefaultPeopleDetector", lambda: np.zeros(3), raising=False)
    found, scores = HogPeopleDetector()(np.zeros((960, 1280, 3), np.uint8))
    # One window survives NMS; back in photo px (x2) and shrunk to the person inside (32x96 of 64x128).
    assert scores.tolist() == [1.5]
    np.testing.assert_allclose(found, [[2 * 80, 2 * 16, 2 * 32, 2 * 96]])


def test_hog_detector_pickles_with_its_settings():
    """A tracker that acquires with it goes to a process pool ("cannot pickle 'cv2.HOGDescriptor' object")."""
    import copy
    import pickle

    if not hasattr(cv2, "HOGDescriptor"):
        pytest.skip(f"OpenCV {cv2.__version__} has no HOG people detector")
    detector = HogPeopleDetector(long_side=320, min_score=0.2, iou_threshold=0.3)
    photo = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for made in (pickle.loads(pickle.dumps(detector)), copy.deepcopy(detector)):
        assert (made.long_side, made.min_score, made.iou_threshold) == (320, 0.2, 0.3)
        for a, b in zip(made(photo), detector(photo)):
            np.testing.assert_array_equal(a, b)


def test_hog_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(cv2, "HOGDescriptor", raising=False)
    monkeypatch.delattr(cv2, "HOGDescriptor_getDefaultPeopleDetector", raising=False)
    with pytest.raises(boxes_mod.DetectorUnavailable, match="--boxes"):
        HogPeopleDetector()


# ----------------------------------------------------------------------------------------------------- results

def _result(n=2, k=3):
    kp = np.arange(n * k * 2, dtype=np.float32).reshape(n, k, 2) + 0.123456
    sc = np.full((n, k), 0.5, np.float32)
    return PoseResult(kp, sc, np.tile(np.float32([1, 2, 3, 4]), (n, 1)), ["a", "b", "c"])


def test_coco_entries_format():
    res = _result()
    res.keypoints[0, 0, 0] = np.nan
    e = coco_entries(res, 5, "x.jpg", frame=3, time=0.123456)
    assert len(e) == 2 and list(e[0]) == ["image_id", "file_name", "category_id", "bbox", "keypoints", "score",
                                          "frame", "time"]
    assert e[0]["time"] == 0.1235 and "time" not in coco_entries(res, 5, "x.jpg")[0]
    assert e[1]["keypoints"][:3] == [6.12, 7.12, 0.5] and e[0]["keypoints"][0] == 0.0  # NaN never reaches JSON
    assert e[0]["image_id"] == 5 and e[0]["category_id"] == 1 and e[0]["frame"] == 3 and e[0]["score"] == 0.5
    json.loads(json.dumps(e, allow_nan=False))


def test_writer_keeps_file_valid_and_complete(tmp_path):
    out = tmp_path / "r.json"
    w = ResultsWriter(out, every_s=1e9, every_n=2)
    w.add(coco_entries(_result(), 1, "a.jpg"))
    w.step()
    assert not out.exists()  # not due yet
    w.add(coco_entries(_result(1), 2, "b.jpg"))
    w.step()
    assert len(json.loads(out.read_text())) == 3  # due after 2 photos
    w.add(coco_entries(_result(1), 3, "c.jpg"))
    w.close()
    assert [e["image_id"] for e in json.loads(out.read_text())] == [1, 1, 2, 3]
    assert os.listdir(tmp_path) == ["r.json"]  # no temporary file left behind


def test_writer_prints_to_stream_without_path():
    import io

    s = io.StringIO()
    w = ResultsWriter(None, stream=s)
    w.close()
    assert json.loads(s.getvalue()) == []



def test_json_lines_are_written_as_they_come(tmp_path):
    import io

    out = tmp_path / "r.jsonl"
    w = ResultsWriter(out, fmt="jsonl", every_s=1e9, every_n=10**6)
    w.check_writable()
    assert out.read_text() == ""  # created up front, empty
    w.add(coco_entries(_result(1), 1, "a.jpg"))
    w.step()
    assert [json.loads(line)["image_id"] for line in out.read_text().splitlines()] == [1]  # there at once
    w.add(coco_entries(_result(2), 2, "clip.mp4", frame=3, time=0.1))
    w.step()
    w.close()
    lines = out.read_text().splitlines()
    assert [json.loads(line)["image_id"] for line in lines] == [1, 2, 2] and len(w) == 3
    assert json.loads(lines[2])["frame"] == 3 and os.listdir(tmp_path) == ["r.jsonl"]
    s = io.StringIO()
    w = ResultsWriter(None, stream=s, fmt="jsonl")
    w.add(coco_entries(_result(2), 7, "b.jpg"))
    assert [json.loads(line)["image_id"] for line in s.getvalue().splitlines()] == [7, 7]  # before close
    w.close()
    empty = tmp_path / "empty.jsonl"
    ResultsWriter(empty, fmt="jsonl").close()
    assert empty.read_text() == ""
    with pytest.raises(OSError, match="cannot write"):
        ResultsWriter(tmp_path / "no" / "such" / "dir.jsonl", fmt="jsonl").check_writable()


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_json_lines_cut_off_by_a_full_disk_keep_whole_lines(tmp_path):
    """The last line was left cut mid-number (review s59): the file is cut back to its last whole line. A file
    size limit stands in for the full disk (EFBIG; Python ignores the SIGXFSZ that comes with it)."""
    import resource

    out = tmp_path / "r.jsonl"
    w = ResultsWriter(out, fmt="jsonl")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, hard))
    try:
        with pytest.raises(OSError, match="cannot write"):
            for i in range(100):
                w.add(coco_entries(_result(2), i, "clip.mp4", frame=i, time=i / 30))
                w.step()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    text = out.read_text()
    assert 0 < len(text) <= 3000 and text.endswith("\n")
    assert [json.loads(line)["frame"] for line in text.splitlines()] == sorted(i for i in range(i) for _ in (0, 1))
    w.add(coco_entries(_result(1), i, "clip.mp4", frame=i, time=i / 30))  # room again: it goes on from there
    w.close()
    assert [json.loads(line)["frame"] for line in out.read_text().splitlines()][-1] == i


@pytest.mark.skipif(sys.platform == "win32", reason="O_APPEND and RLIMIT_FSIZE are POSIX")
def test_json_lines_appended_to_a_log_never_cut_what_was_there(tmp_path):
    """`>> log`: the offset of an appending file is 0 until its first write, so a first write cut off (a full disk)
    truncated the whole log (self-review s59)."""
    import resource

    from fasterpose_rt.results import _WholeLines

    log = tmp_path / "log"
    log.write_text("x" * 999 + "\n")
    lines = _WholeLines(os.open(log, os.O_WRONLY | os.O_APPEND))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, hard))
    try:
        with pytest.raises(OSError):
            lines.write("b" * 1000 + "\n")  # the first write, cut off at 1500 bytes
        lines.write("a" * 100 + "\n")  # fits
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    lines.write("c\n")
    lines.close()
    assert log.read_text() == "x" * 999 + "\n" + "a" * 100 + "\n" + "c\n"


def test_cameras_and_urls_are_streams_and_kept_as_written(tmp_path):
    from fasterpose_rt.inputs import stream_source

    for text in ("camera:0", "camera:12", "rtsp://10.0.0.2:554/live?a=1", "http://h/x.mp4", "file:///tmp/c.mp4"):
        assert stream_source(text) == text
    for text in ("camera:", "camera:x", "cam:0", "c:/videos/a.mp4", "a.mp4", "://x", "rtsp://"):
        assert stream_source(text) is None
    items, problems = expand_inputs(["camera:0", "rtsp://10.0.0.2:554/live", "camera:0"], videos=True)
    assert [(i.kind, i.source, i.label, i.rel.as_posix()) for i in items] == [
        ("stream", "camera:0", "camera:0", "camera_0"),
        ("stream", "rtsp://10.0.0.2:554/live", "rtsp://10.0.0.2:554/live", "rtsp_10_0_0_2_554_live")] and not problems
    with pytest.raises(FileNotFoundError):  # photos only: a stream is not an input there
        expand_inputs(["camera:0"])

def test_csv_results_one_row_per_person(tmp_path):
    import csv

    out = tmp_path / "r.csv"
    w = ResultsWriter(out, fmt="csv", keypoint_names=["a", "b", "c"])
    w.check_writable()
    assert out.read_text() == ("file_name,frame,time,image_id,track_id,score,bbox_x,bbox_y,bbox_w,bbox_h,"
                               "a_x,a_y,a_score,b_x,b_y,b_score,c_x,c_y,c_score\n")  # the header even when empty
    w.add(coco_entries(_result(1), 1, 'odd, "name".jpg'))
    tracked = _result(2)
    tracked.track_ids = np.array([7, 9])
    w.add(coco_entries(tracked, 2, "clip.mp4", frame=4, time=0.16))
    w.close()
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["file_name"] for r in rows] == ['odd, "name".jpg', "clip.mp4", "clip.mp4"]  # quoted as CSV does
    assert [(r["frame"], r["time"], r["track_id"]) for r in rows] == [("", "", ""), ("4", "0.16", "7"),
                                                                      ("4", "0.16", "9")]
    entry = coco_entries(tracked, 2, "clip.mp4")[1]
    assert [float(rows[2][c]) for c in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")] == entry["bbox"]
    assert [float(rows[2][f"{n}_{p}"]) for n in "abc" for p in ("x", "y", "score")] == entry["keypoints"]
    with pytest.raises(ValueError, match="keypoint names"):
        ResultsWriter(out, fmt="csv")
    with pytest.raises(ValueError, match="fmt must be one of"):
        ResultsWriter(out, fmt="xml")


def test_atomic_write_interrupted_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    atomic_write_text(out, "[1]")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(out, "[1, 2]")
    assert json.loads(out.read_text()) == [1] and os.listdir(tmp_path) == ["r.json"]


def test_atomic_write_error_names_the_target_not_the_temporary_file(tmp_path):
    out = tmp_path / "missing_folder" / "r.json"
    with pytest.raises(OSError) as info:
        atomic_write_text(out, "[1]")
    assert info.value.filename == str(out) and ".tmp" not in str(info.value)
    assert not (tmp_path / "missing_folder").exists()


def test_atomic_write_failure_mid_write_names_the_target_and_keeps_old_file(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    atomic_write_text(out, "[1]")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results_mod.os, "fsync", disk_full)
    with pytest.raises(OSError) as info:
        atomic_write_text(out, "[1, 2]")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(out)
    assert json.loads(out.read_text()) == [1] and os.listdir(tmp_path) == ["r.json"]


# -------------------------------------------------------------------------------------------------------- draw

def test_draw_poses_sides_thresholds_and_widths():
    img = np.full((200, 300, 3), 128, np.uint8)
    names = ["left_hip", "right_hip", "nose"]
    kp = np.array([[[50, 100], [250, 100], [150, 30]]], float)
    out = draw_poses(img, kp, np.array([[0.9, 0.9, 0.1]]), [[0, 1], [1, 2]], names, threshold=0.3)
    assert out.shape == img.shape and (img == 128).all()  # the input is untouched
    assert keypoint_sides(names).tolist() == [1, 2, 0]
    left, right, centre = out[100, 50], out[100, 250], out[30, 150]
    assert left[2] > left[0] and right[0] > right[2]  # orange vs blue (BGR)
    assert (centre == 128).all() and (out[65, 200] == 128).all()  # hidden joint, and its limb
    assert not (out[100, 150] == 128).all()  # the limb between two confident joints is drawn
    assert line_width((480, 640)) == 2 and line_width((2160, 3840)) == 11 and line_width((50, 50)) == 1


def test_draw_poses_writes_labels_inside_their_boxes():
    img = np.full((200, 300, 3), 128, np.uint8)
    kp, sc, names = np.zeros((2, 1, 2)), np.zeros((2, 1)), ["nose"]
    boxes = np.array([[10, 20, 100, 100], [180, 60, 100, 100]], float)
    plain = draw_poses(img, kp, sc, [], names, boxes=boxes)
    out = draw_poses(img, kp, sc, [], names, boxes=boxes, labels=["#1", "#22"])
    changed = np.argwhere((out != plain).any(axis=2))
    assert len(changed) and (changed.min(axis=0) >= [20, 10]).all()  # written inside the first box ...
    near_second = changed[changed[:, 1] >= 180]
    assert len(near_second) and (near_second.min(axis=0) >= [60, 180]).all()  # ... and the second
    assert (out[changed[:, 0], changed[:, 1]] == 255).all(axis=1).any()  # white text on a dark outline
    with pytest.raises(ValueError, match="one label per box"):
        draw_poses(img, kp, sc, [], names, boxes=boxes, labels=["#1"])


# ------------------------------------------------------------------------------------------------------- bench

def test_latency_stats_and_table():
    s = bench.latency_stats([0.01] * 9 + [0.02], persons=4)
    assert s["p50_ms"] == pytest.approx(10) and s["p50_ms_per_person"] == pytest.approx(2.5)
    assert s["persons_per_s"] == pytest.approx(400) and s["p99_ms"] > s["p50_ms"]
    row = {"model": "fp32", "threads": 1, "batch": 4, **s, "gflop_per_s": None}
    table = bench.format_table([row])
    assert "persons/s" in table and "n/a" in table and "400.0" in table
    assert "cpu_ms_per_person" not in s  # not measured: no made-up figure
    s = bench.latency_stats([0.01] * 4, persons=2, cpu_seconds=[0.004, 0.006, 0.008, 0.030])
    assert s["cpu_ms_per_person"] == pytest.approx(3.5)  # median 7 ms per call, 2 persons


def test_cpu_description_names_model_and_isa():
    d = bench.cpu_description()
    assert set(d) == {"cpu", "cpu_features"} and d["cpu"] and d["cpu_features"]
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.lower().startswith("flags"))
        assert ("avx2" in d["cpu_features"].split()) == (" avx2" in flags)


def test_advice_follows_the_cpus_int8_instructions_and_what_was_timed(tmp_path):
    from fasterpose_rt import DEFAULT_MODELS

    default, fast, other = DEFAULT_MODELS["default"], DEFAULT_MODELS["fast"], tmp_path / "mine.onnx"
    (hint,) = bench.advice("avx2", [(default, "onnxruntime")])  # an AVX2-only CPU, the default timed
    assert "--fast" in hint and "bench --compare" in hint
    assert bench.advice("avx2", [(default, "onnxruntime"), (fast, "onnxruntime")]) == []  # both timed already
    assert bench.advice("avx2", [(other, "onnxruntime")]) == []  # a model of the user's own: no figures for it
    assert bench.advice("avx2 avx512f avx512_vnni", [(default, "onnxruntime")]) == []  # VNNI: the default is fast
    (hint,) = bench.advice("avx2 avx512f avx512_vnni amx_int8", [(other, "onnxruntime")])
    assert "--backend openvino" in hint and "--compare-backends" in hint
    assert bench.advice("avx2 amx_int8", [(other, "onnxruntime"), (other, "openvino")]) == []
    assert bench.advice("unknown", [(default, "onnxruntime")]) == []  # not x86 / no flags: nothing said


def test_speed_ratios_pair_rows_by_threads_and_batch():
    rows = [{"model": m, "threads": t, "batch": 1, "p50_ms_per_person": ms, "cpu_ms_per_person": cpu}
            for m, t, ms, cpu in [("fp32", 1, 10.0, 10.0), ("fp32", 2, 6.0, 12.0), ("int8", 1, 4.0, 4.5),
                                  ("int8", 2, 3.0, 5.0)]]
    rows.append({"model": "fp32", "threads": 4, "batch": 1, "p50_ms_per_person": 5.0})  # no int8 partner
    ratios = bench.speed_ratios(rows, "fp32", "int8")
    assert [(r["threads"], r["wall"], r["cpu"]) for r in ratios] == [
        (1, pytest.approx(0.4), pytest.approx(0.45)), (2, pytest.approx(0.5), pytest.approx(5 / 12))]


def test_compared_models_are_timed_in_turn():
    """review s64: `bench --compare` timed one model's every row, then the other's: a load that came or went in
    between fell on one alone (a busy machine's 0.44 for the fast model's ratio, 0.58-0.60 when quiet). Their calls
    now alternate, after each one's warm-up."""
    calls = []

    class Recorder:
        input_size, batch_size = (48, 64), 8
        metadata = types.SimpleNamespace(extra={"macs": 1000})

        def __init__(self, name):
            self.name = name

        def predict(self, photo, boxes):
            calls.append(self.name)

    stats = bench.bench_alternating([Recorder("a"), Recorder("b")], 2, runs=3, warmup=2,
                                    photo=np.zeros((48, 64, 3), np.uint8))
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3 and len(stats) == 2
    assert all(s["p50_ms"] >= 0 for s in stats)
    calls.clear()
    rows = bench.run_bench_side_by_side([("a", lambda t, b: Recorder("a")), ("b", lambda t, b: Recorder("b"))],
                                        [1], [1, 2], runs=2, warmup=0)
    assert [(r["model"], r["batch"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert calls == ["a", "b"] * 4  # each (threads, batch) row pair measured in the same moments


def test_verification_line_reports_stored_figures():
    from fasterpose_rt.cli.bench import verification_line

    line = verification_line({"crops": 1000, "source": "val.json", "mean_px": 0.25, "moved": 0.026,
                               "pck_float": 0.8123, "pck_int8": 0.8101})
    assert "1000 crops of val.json" in line and "2.6 %" in line and "drop 0.22 points" in line
    assert "no verification" in verification_line(None)


def test_macs_from_metadata_then_graph(standin_path):
    from fasterpose_rt import PosePredictor

    pred = PosePredictor(standin_path, threads=1)
    # Stand-in: one 1x1 conv 3 -> 4 channels on a 64x96 crop (pooling and the rest cost no MACs).
    assert bench.macs_from_onnx(standin_path) == 4 * 96 * 64 * 3
    assert bench.model_macs(pred) == 4 * 96 * 64 * 3
    pred.metadata.extra["macs"] = 123
    assert bench.model_macs(pred) == 123


# -------------------------------------------------------------------------------------------------------- eval

def test_match_keypoints_checks_count_and_sigmas():
    data = {"categories": [{"id": 1, "name": "person", "keypoints": COCO17["keypoints"]}]}
    m = match_keypoints(data, COCO17["keypoints"], "a.json", COCO17["flip_pairs"])
    assert m.category["id"] == 1 and np.allclose(m.sigmas, COCO17["sigmas"]) and m.warnings == []
    assert not m.partial and m.names == COCO17["keypoints"] and m.flip_pairs == COCO17["flip_pairs"]
    assert m.restrict(data) is data
    with pytest.raises(EvalError, match="predicts 4 keypoints but a.json's category 'person' has 17, and they "
                                        "share 0 keypoint names"):
        match_keypoints(data, ["a", "b", "c", "d"], "a.json")
    four = {"categories": [{"id": 3, "name": "person", "keypoints": ["a", "b", "c", "d"]}]}
    with pytest.raises(EvalError, match="sigmas"):
        match_keypoints(four, ["a", "b", "c", "d"], "a.json")
    four["categories"][0]["sigmas"] = [0.1] * 4
    m = match_keypoints(four, ["w", "x", "y", "z"], "a.json")
    assert m.sigmas.tolist() == [0.1] * 4 and "compared by position" in m.warnings[0] and not m.partial
    four["categories"][0]["sigmas"] = [0.1, 0.2, 0.3, 0.4]
    m = match_keypoints(four, ["d", "c", "b", "a"], "a.json", [[0, 1]])  # the same names in another order
    assert m.partial and m.names == ["d", "c", "b", "a"] and m.file_columns.tolist() == [3, 2, 1, 0]
    assert m.sigmas.tolist() == [0.4, 0.3, 0.2, 0.1] and m.flip_pairs == [[0, 1]] and "by name" in m.warnings[0]
    for bad in ([True] * 4, [0.1, 0.1, float("inf"), 0.1], [0.1, 0.1, float("nan"), 0.1]):  # training refuses these
        four["categories"][0]["sigmas"] = bad  # (review s68: eval read true as a sigma of 1.0)
        with pytest.raises(EvalError, match="sigmas' must be 4 positive numbers"):
            match_keypoints(four, ["a", "b", "c", "d"], "a.json")


def test_a_coco17_file_and_an_lsp_model_meet_on_the_joints_both_name():
    k = len(COCO17["keypoints"])
    cat = {"id": 1, "name": "person", "keypoints": COCO17["keypoints"], "flip_pairs": COCO17["flip_pairs"],
           "skeleton": [[a + 1, b + 1] for a, b in COCO17["skeleton"]]}  # as COCO writes it: from 1
    labels = np.arange(3 * k, dtype=np.float64).reshape(k, 3)
    labels[:, 2] = 2
    labels[COCO17["keypoints"].index("left_hip"), 2] = 0
    data = {"categories": [cat], "annotations": [{"id": 5, "image_id": 1, "category_id": 1,
                                                  "keypoints": labels.ravel().tolist(), "num_keypoints": k}]}
    m = match_keypoints(data, LSP14["keypoints"], "coco.json", LSP14["flip_pairs"])
    shared = [n for n in LSP14["keypoints"] if n in COCO17["keypoints"]]
    assert m.partial and m.names == shared and len(shared) == 12  # all but LSP's neck and head top
    assert [LSP14["keypoints"][i] for i in m.model_columns] == shared
    assert [COCO17["keypoints"][i] for i in m.file_columns] == shared
    np.testing.assert_allclose(m.sigmas, np.asarray(COCO17["sigmas"])[m.file_columns])
    assert sorted(sorted(shared[a] for a in p) for p in m.flip_pairs) == sorted(
        sorted(LSP14["keypoints"][a] for a in p) for p in LSP14["flip_pairs"])  # LSP's pairs are all shared
    assert "left out: nose, left_eye, right_eye, left_ear, right_ear, neck, head_top" in m.warnings[0]
    cut = m.restrict(data)
    ann, new_cat = cut["annotations"][0], cut["categories"][0]
    np.testing.assert_array_equal(np.reshape(ann["keypoints"], (-1, 3)), labels[m.file_columns])
    assert ann["num_keypoints"] == 11 and new_cat["keypoints"] == shared and new_cat["sigmas"] == m.sigmas.tolist()
    limbs = [[shared[a - 1], shared[b - 1]] for a, b in new_cat["skeleton"]]  # renumbered, still from 1
    assert limbs == [[COCO17["keypoints"][a], COCO17["keypoints"][b]] for a, b in COCO17["skeleton"]
                     if COCO17["keypoints"][a] in shared and COCO17["keypoints"][b] in shared]
    assert len(limbs) == 12 and "flip_pairs" not in new_cat  # the face's limbs are gone; no stale indices
    assert len(data["annotations"][0]["keypoints"]) == 3 * k and data["categories"][0] is cat  # not changed
    with pytest.raises(EvalError, match="share 3 keypoint names"):
        match_keypoints(data, ["nose", "left_eye", "right_eye", "x", "y"], "coco.json")


def test_pck_report_counts_predicted_annotations_only():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = [[0, 0, 2], [10, 0, 2], [0, 10, 2], [10, 10, 2]]  # torso: left shoulder -> right hip = 14.1
    data = {"annotations": [{"image_id": 1, "keypoints": sum(gt, [])}, {"image_id": 2, "keypoints": sum(gt, [])}]}
    pred = np.array([[[0, 0], [10, 0], [0, 10], [10, 20]], [[0, 0]] * 4], float)
    rep = pck_report(data, pred, names, [1])  # image 2 was not processed
    assert rep["pck"] == 0.75 and rep["joints"] == 4 and rep["per_keypoint"]["right_hip"] == 0.0
    assert rep["ci95"] == [0.75, 0.75]  # one person: resampling cannot change it
    assert pck_report(data, pred, ["a", "b", "c", "d"], [1])["pck"] is None


def test_pck_interval_resamples_persons():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    n = 400
    gt = np.tile(np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float), (n, 1, 1))
    vis = np.ones((n, 4), bool)
    pred = gt.copy()
    pred[: n // 2] += 100  # half of the persons miss every joint: PCK is then a proportion of persons
    low, high = pck_interval(pred, gt, vis, names)
    half_width = 1.96 * np.sqrt(0.25 / n)  # binomial, normal approximation: persons, not joints, are the samples
    assert low == pytest.approx(0.5 - half_width, abs=0.01) and high == pytest.approx(0.5 + half_width, abs=0.01)
    assert pck_interval(gt, gt, vis, names) == (1.0, 1.0)  # no spread when every person scores the same
    # Paired: the baseline misses the same 200 persons plus 20 more; the difference is 20/400 = +0.05.
    worse = pred.copy()
    worse[n // 2: n // 2 + 20] += 100
    low, high = pck_interval(pred, gt, vis, names, baseline=worse)
    assert 0 < low < 0.05 < high < 0.1 and high - low < 0.06  # two separate intervals would each span ~0.1
    assert pck_interval(pred, gt, vis, names, baseline=pred) == (0.0, 0.0)
    vis[:] = False
    assert all(np.isnan(pck_interval(pred, gt, vis, names)))


def test_pck_is_nan_when_no_joint_is_counted():
    # nothing to score is not "every joint missed": 0.0 would read as a model that finds nothing
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = np.zeros((3, 4, 2))  # no measurable torso anywhere
    overall, per_kp, counted = pck(gt, gt, np.ones((3, 4), bool), names)
    assert np.isnan(overall) and np.isnan(per_kp).all() and counted == 0


def test_pck_interval_in_chunks_draws_the_same_resamples(monkeypatch):
    import fasterpose_rt.metrics as metrics
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    rng = np.random.default_rng(3)
    n = 301
    gt = np.tile(np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float), (n, 1, 1))
    pred = gt + rng.normal(0, 2.5, gt.shape)
    vis = rng.random((n, 4)) > 0.2
    whole = pck_interval(pred, gt, vis, names, reps=500)
    monkeypatch.setattr(metrics, "_RESAMPLE_ELEMENTS", 7 * n + 5)  # chunks of 7 resamples, the last one shorter
    assert pck_interval(pred, gt, vis, names, reps=500) == whole
    assert whole[0] < whole[1]


def test_left_right_confusions_separate_side_mixups_from_other_misses():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "nose"]
    flips = [[0, 1], [2, 3]]
    gt = np.array([[[100, 0], [0, 0], [100, 100], [0, 100], [50, -30]]] * 3, float)
    pred = gt.copy()
    pred[0] = gt[0][[1, 0, 3, 2, 4]]  # person 0: every side exchanged, nose right
    pred[1, 4] = [50, 60]  # person 1: only the nose is off; mirroring cannot help
    rep = left_right_confusions(pred, gt, np.ones((3, 5), bool), names, flips)
    assert rep == {"misses": 5, "mirror_hits": 4, "persons_mirrored": 1, "pck_mirror_forgiven": 14 / 15}
    assert pck(pred, gt, np.ones((3, 5), bool), names)[0] == pytest.approx(10 / 15)
    # through the eval report (flip pairs from the model) and the printed summary
    data = {"annotations": [{"image_id": 1, "keypoints": np.c_[g, np.full(5, 2)].ravel().tolist()} for g in gt]}
    full = pck_report(data, pred, names, [1], 0.2, flips)
    assert full["left_right"] == rep and "left_right" not in pck_report(data, pred, names, [1])



def test_a_one_sided_mix_up_counts_the_joint_whose_prediction_sits_on_its_partners_label():
    # both wrists on one: the left wrist predicted on the right wrist's label, the right one right. The miss is the
    # left wrist's, and its prediction lands on its partner's label (it was counted only when both swapped)
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_wrist", "right_wrist"]
    flips = [[0, 1], [2, 3], [4, 5]]
    gt = np.array([[[100, 0], [0, 0], [100, 100], [0, 100], [150, 50], [-50, 50]]], float)
    pred = gt.copy()
    pred[0, 4] = gt[0, 5]
    rep = left_right_confusions(pred, gt, np.ones((1, 6), bool), names, flips)
    assert rep["misses"] == 1 and rep["mirror_hits"] == 1
    pred = gt.copy()
    pred[0, 5], pred[0, 4] = gt[0, 4], [500, 500]  # the right wrist on the left's label, the left one far off
    rep = left_right_confusions(pred, gt, np.ones((1, 6), bool), names, flips)
    assert rep["misses"] == 2 and rep["mirror_hits"] == 1  # the right wrist's; the left one landed nowhere


def test_a_torso_diagonal_of_length_zero_falls_back_to_the_other():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = np.array([[[20, 10], [0, 0], [10, 10], [20, 10]]], float)  # left shoulder on the right hip's point
    assert torso_sizes(gt, np.ones((1, 4), bool), names)[0] == pytest.approx(np.hypot(10, 10))

def test_body_orientation_and_pck_per_orientation():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "nose"]
    upright = np.array([[60, 0], [0, 0], [60, 100], [0, 100], [30, -30]], float)  # shoulders above hips
    rot = lambda deg: upright @ np.array([[np.cos(np.radians(deg)), np.sin(np.radians(deg))],
                                          [-np.sin(np.radians(deg)), np.cos(np.radians(deg))]]).T
    gt = np.stack([upright, rot(45), rot(-60), rot(180), rot(120), upright])
    vis = np.ones((6, 5), bool)
    vis[5, 2] = False  # a hip unlabelled: orientation unknown
    angle = body_orientation(gt, vis, names)
    assert angle[:5] == pytest.approx([0, 45, 60, 180, 120]) and np.isnan(angle[5])  # sign-free: left = right tilt
    pred = gt.copy()
    pred[3] += 500  # the upside-down person misses everything
    bins = pck_by_orientation(pred, gt, vis, names)
    assert [(b["orientation"], b["persons"], b["joints"], b["pck"]) for b in bins] == [
        ("upright", 1, 5, 1.0), ("tilted", 2, 10, 1.0), ("inverted", 2, 10, 0.5), ("unknown", 1, 4, 1.0)]
    assert bins[2]["degrees"] == [90.0, 180.0] and bins[3]["degrees"] is None
    vis[:] = False
    assert all(b["persons"] == 0 and b["pck"] is None for b in pck_by_orientation(pred, gt, vis, names))
    with pytest.raises(ValueError, match="shoulder"):
        body_orientation(gt, vis, ["a", "b", "c", "d", "e"])
    # through the eval report and its printed summary
    data = {"annotations": [{"image_id": 1, "keypoints": np.c_[g, np.full(5, 2)].ravel().tolist()} for g in gt[:5]]}
    assert pck_report(data, pred[:5], names, [1])["by_orientation"][2]["pck"] == 0.5


def test_pck_report_gives_the_curve_around_the_threshold():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "nose"]
    gt = np.array([[100, 0], [0, 0], [100, 100], [0, 100], [50, -30]], float)  # torso (l.shoulder-r.hip) 100√2
    torso = 100 * np.sqrt(2)
    errors = [0.04, 0.12, 0.18, 0.25, 0.6]  # each joint's error as a fraction of the torso, along x
    pred = gt + np.c_[np.array(errors) * torso, np.zeros(5)]
    data = {"annotations": [{"image_id": 1, "keypoints": np.c_[gt, np.full(5, 2)].ravel().tolist()}]}
    rep = pck_report(data, pred[None], names, [1], 0.2)
    assert rep["by_threshold"] == {"0.05": 0.2, "0.1": 0.2, "0.15": 0.4, "0.2": 0.6, "0.3": 0.8, "0.5": 0.8}
    assert rep["by_threshold"]["0.2"] == rep["pck"]
    assert "0.25" in pck_report(data, pred[None], names, [1], 0.25)["by_threshold"]  # the asked threshold is in


def test_a_picture_of_nobody_carries_its_note_and_only_then():
    photo = np.full((120, 160, 3), 90, np.uint8)
    nobody = np.zeros((0, 2, 2)), np.zeros((0, 2))
    one = np.array([[[40.0, 40.0], [80.0, 80.0]]]), np.ones((1, 2))
    assert np.array_equal(draw_poses(photo, *nobody, [[0, 1]], ["a", "b"]), photo)  # no note asked for
    noted = draw_poses(photo, *nobody, [[0, 1]], ["a", "b"], note="nobody found")
    assert (noted != 90).any() and (noted[:30, :] != 90).any() and not (noted[60:, :] != 90).any()  # top left
    drawn = draw_poses(photo, *one, [[0, 1]], ["a", "b"])
    assert np.array_equal(draw_poses(photo, *one, [[0, 1]], ["a", "b"], note="nobody found"), drawn)  # somebody


def test_python_dash_m_runs_the_command_line():
    """``python -m fasterpose_rt.cli`` (benchmarks.end_to_end's fallback where no console script is installed) is the
    same command: its version, and its four commands in the help."""
    import subprocess
    import sys

    from fasterpose_rt import __version__

    root = Path(__file__).resolve().parents[1]
    run = [sys.executable, "-m", "fasterpose_rt.cli"]
    r = subprocess.run(run + ["--version"], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0 and r.stdout.strip() == f"fasterpose, version {__version__}", r.stdout + r.stderr
    r = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=60, cwd=root)
    commands = r.stdout.split("Commands:")[1].split()
    assert r.returncode == 0 and {"predict", "bench", "info", "eval"} <= set(commands), r.stdout
    bare = subprocess.run(run, capture_output=True, text=True, timeout=60, cwd=root)  # s64: 0 on click 8.1, 2 on 8.2+
    assert bare.returncode == 2 and bare.stdout == r.stdout, bare.stdout + bare.stderr  # the help, a usage error


def test_finite_json_numbers():
    """What the JSON readers (boxes, COCO files, detections) take for a number: no bools, no NaN or infinities,
    no integer float64 cannot hold; the list check agrees with the one-by-one check where a sum would mislead."""
    from fasterpose_rt.jsonfile import finite_number, finite_numbers

    for values, ok in (([1, 2.5, -3], True), ([1e308, 1e308], True), ([1, True], False), ([1, "2"], False),
                       ([float("inf"), float("-inf")], False), ([float("nan")], False), ([10 ** 400], False), ([], True)):
        assert finite_numbers(values) is ok and all(map(finite_number, values)) is ok, values


@pytest.mark.skipif(os.name != "posix", reason="symbolic links as a POSIX user makes them")
def test_a_link_to_nothing_or_a_loop_of_links_is_named_as_such(tmp_path, monkeypatch):
    """A loop of links (ln -s self self) was named "no such file or folder", which the user can see is wrong."""
    monkeypatch.chdir(tmp_path)
    os.symlink("self.jpg", "self.jpg")
    os.symlink("gone.jpg", "dangling.jpg")
    Path("list.txt").write_text("self.jpg\n")
    items, problems = expand_inputs(["self.jpg", "dangling.jpg", "missing.jpg", "list.txt"], lists=True,
                                    skip_missing=True)
    reasons = {p.name: why for p, why in problems}
    assert not items and reasons["dangling.jpg"] == "a symbolic link to nothing (or a loop of links)"
    assert reasons["missing.jpg"] == "no such file or folder"
    assert [why for p, why in problems if p.name == "self.jpg"] == [
        "a symbolic link to nothing (or a loop of links)",
        "a symbolic link to nothing (or a loop of links) (line 1 of the list list.txt)"]


def test_the_out_dir_record_reads_back_what_it_recorded_and_passes_over_a_cut_line(tmp_path):
    """out_dir_sources: the last line per file counts, a line cut short by a stopped run is passed over, a name
    that is not UTF-8 comes back as it went in; fingerprints tell files apart by size and by either end."""
    from fasterpose_rt.cli.out_dir_sources import SourceRecord, fingerprint
    name = os.fsdecode(b"p\xe9.jpg") if sys.platform == "linux" else "p.jpg"
    photo, other = tmp_path / name, tmp_path / "q.jpg"
    photo.write_bytes(b"a" * 200_000)
    other.write_bytes(b"b" * 10)
    (tmp_path / "sub").mkdir()
    for results in (tmp_path / "x.json", tmp_path / "sub" / "x.json"):
        results.write_text("[]")
    record = SourceRecord(tmp_path)
    record.add(tmp_path / "x.json", other)
    record.add(tmp_path / "sub" / "x.json", other)
    record.add(tmp_path / "x.json", photo)  # written again, for another input
    with open(record.path, "ab") as f:
        f.write(b'{"results": "sub/x.json", "sour')  # a stopped run's last line
    again = SourceRecord(tmp_path)
    assert again.get(tmp_path / "x.json") == (os.path.realpath(photo), fingerprint(photo))
    assert again.get(tmp_path / "sub" / "x.json") == (os.path.realpath(other), fingerprint(other))
    assert again.get(tmp_path / "y.json") is None
    prints = {fingerprint(photo)}
    for change in (b"a" * 200_001, b"b" + b"a" * 199_999, b"a" * 199_999 + b"b"):
        photo.write_bytes(change)
        prints.add(fingerprint(photo))
    assert len(prints) == 4 and fingerprint(tmp_path / "none.jpg") is None


def test_pck_finds_the_torso_in_other_common_spellings_of_its_joints():
    """review s63: PCK (and so --best-by pck, export.quantize's check, export.padding) knew only left_shoulder ...
    right_hip; OpenPose's LShoulder/RHip style is read as the same joints, two spellings of one joint are no guess."""
    from fasterpose_rt.skeletons import torso_pairs

    lsp = list(LSP14["keypoints"])
    openpose = [("L" + n[5:].title() if n.startswith("left_") else "R" + n[6:].title() if n.startswith("right_")
                 else n).replace("_", "") for n in lsp]
    assert "LShoulder" in openpose and "RHip" in openpose
    assert torso_pairs(openpose) == torso_pairs(lsp) == ((9, 2), (8, 3))
    assert torso_pairs([n.replace("left_", "").replace("right_", "") for n in lsp]) is None  # no sides
    assert torso_pairs(["shoulder_l", "Right Hip", "shoulder.r", "hipLeft"]) == ((0, 1), (2, 3))
    assert torso_pairs(["LShoulder", "l_shoulder", "RHip", "RShoulder", "LHip"]) is None  # which left shoulder?
    assert torso_pairs(["shoulderL", "shoulderR", "hipL", "hipR"]) == ((0, 3), (1, 2))  # camelCase sides last
    assert torso_pairs(["lShoulder", "rShoulder", "lHip", "rHip"]) == ((0, 3), (1, 2))  # ... and first
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (6, 14, 2))
    pred = gt + rng.normal(0, 8, gt.shape)
    visible = np.ones((6, 14), bool)
    mine, theirs = pck(pred, gt, visible, openpose, 0.2), pck(pred, gt, visible, lsp, 0.2)
    assert mine[0] == theirs[0] and mine[2] == theirs[2] == 6 * 14 and 0 < mine[0] < 1


def test_the_out_dir_record_ignores_a_line_its_file_no_longer_matches_and_compacts_itself(tmp_path):
    """review s63: a line outranked what the results file held (written since by a run whose line was lost, another
    tool, a copy from another folder); reruns grew the record without end."""
    from fasterpose_rt.cli import out_dir_sources as sources

    photo, results = tmp_path / "p.jpg", tmp_path / "x.json"
    photo.write_bytes(b"photo")
    results.write_text("[]")
    record = sources.SourceRecord(tmp_path)
    record.add(results, photo)
    assert record.get(results) == (os.path.realpath(photo), sources.fingerprint(photo))
    results.write_text('[{"file_name": "other.jpg"}]')  # rewritten without a line: the line no longer counts
    assert record.get(results) is None and sources.SourceRecord(tmp_path).get(results) is None
    for _ in range(2 * sources._COMPACT_AT):
        record.add(results, photo)
    assert len(record.path.read_bytes().splitlines()) == 2 * sources._COMPACT_AT + 1
    again = sources.SourceRecord(tmp_path)
    assert again.get(results) == (os.path.realpath(photo), sources.fingerprint(photo))
    assert len(record.path.read_bytes().splitlines()) == 1  # one line per file, rewritten when read
