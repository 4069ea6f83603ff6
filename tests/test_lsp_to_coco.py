"""models.data.lsp_to_coco's command line: what it reads (tiny .mat files written here) and how it writes."""
import json

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from models.data.lsp_to_coco import main


def _dataset(tmp_path, n=2):
    """joints (14, 3, n), all labelled, and photos im00001.jpg .. in tmp_path/images."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n):
        cv2.imwrite(str(images / f"im{i + 1:05d}.jpg"), np.full((40, 50, 3), 90, np.uint8))
    j = np.zeros((14, 3, n))
    j[:, 0] = np.linspace(5, 40, 14)[:, None]
    j[:, 1] = np.linspace(3, 30, 14)[:, None]
    j[:, 2] = 1
    return j, images


def _run(tmp_path, capsys, joints, images, *extra, out=None):
    mat = tmp_path / "joints.mat"
    if isinstance(joints, np.ndarray):
        savemat(str(mat), {"joints": joints})
    else:
        mat.write_bytes(joints)
    out = out or tmp_path / "out.json"
    code = main(["--joints", str(mat), "--images", str(images), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.err, out


V73 = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
       + b"\0" * 512)


@pytest.mark.parametrize("content, says", [(b"not a mat file\n", "not a readable MATLAB .mat file"),
                                           (V73, "-v7.3 (HDF5)")])
def test_an_unreadable_mat_file_is_one_error_line(tmp_path, capsys, content, says):
    _, images = _dataset(tmp_path)
    code, err, out = _run(tmp_path, capsys, content, images)
    assert code == 2 and err.startswith("error:") and says in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_two_dimensional_joints_array_is_one_photo(tmp_path, capsys):
    j, images = _dataset(tmp_path, n=1)
    code, err, out = _run(tmp_path, capsys, j[:, :, 0], images)  # as MATLAB saves 14x3x1
    assert code == 0, err
    coco = json.loads(out.read_text())
    assert len(coco["annotations"]) == 1 and coco["annotations"][0]["num_keypoints"] == 14


def test_the_original_lsp_layout_is_refused(tmp_path, capsys):
    j, images = _dataset(tmp_path)
    code, err, out = _run(tmp_path, capsys, np.transpose(j, (1, 0, 2)), images)
    assert code == 2 and "this tool converts LSP Extended (14, 3, N); the original LSP release is not supported" in err
    assert not out.exists()


def test_other_shapes_are_refused(tmp_path, capsys):
    _, images = _dataset(tmp_path)
    code, err, _ = _run(tmp_path, capsys, np.zeros((14, 2, 3)), images)
    assert code == 2 and "expected LSP joints of shape (14, 3, N)" in err


def test_a_single_range_number_is_that_photo(tmp_path, capsys):
    j, images = _dataset(tmp_path, n=3)
    code, err, out = _run(tmp_path, capsys, j, images, "--range", "2")
    assert code == 0, err
    assert [im["file_name"] for im in json.loads(out.read_text())["images"]] == ["im00002.jpg"]


@pytest.mark.parametrize("text", ["1:2:3", "a:b", "2:", "x"])
def test_a_malformed_range_says_the_form(tmp_path, capsys, text):
    j, images = _dataset(tmp_path)
    code, err, _ = _run(tmp_path, capsys, j, images, "--range", text)
    assert code == 2 and "expected FIRST:LAST (1-based, inclusive)" in err, err


def test_out_naming_a_folder_or_under_a_file_is_one_error_line(tmp_path, capsys):
    j, images = _dataset(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    code, err, _ = _run(tmp_path, capsys, j, images, out=folder)
    assert code == 2 and err.startswith("error:") and "folder" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "images", "joints.mat"]  # no stray .tmp
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    code, err, _ = _run(tmp_path, capsys, j, images, out=plain / "x.json")
    assert code == 2 and err.startswith("error:") and "not a folder" in err


def test_out_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path, capsys):
    j, images = _dataset(tmp_path)
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    code, err, _ = _run(tmp_path, capsys, j, images, out=link)
    assert code == 0, err
    assert link.is_symlink() and len(json.loads(target.read_text())["annotations"]) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_out_in_new_folders_is_made(tmp_path, capsys):
    j, images = _dataset(tmp_path)
    code, err, out = _run(tmp_path, capsys, j, images, out=tmp_path / "a" / "b" / "c.json")
    assert code == 0 and out.is_file(), err
