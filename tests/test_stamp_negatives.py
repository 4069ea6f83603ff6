"""Cut-outs pasted onto person-free pictures (export.stamp_negatives): the blend, the files, the errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("torch", reason="the exporter package (export/) needs torch: pip install -e '.[dev]'")

from export.errors import InputError  # noqa: E402
from export.presence_head import NEGATIVE_SIDE  # noqa: E402
from export.stamp_negatives import SIZE_RANGE, main, paste, read_cutouts, stamp_negatives  # noqa: E402


def cutout(h=40, w=20, colour=(0, 0, 255)):
    """A BGRA cut-out: an opaque coloured rectangle in its middle half, transparent around it."""
    im = np.zeros((h, w, 4), np.uint8)
    im[h // 4:3 * h // 4, w // 4:3 * w // 4] = (*colour, 255)
    return im


def write_sources(tmp_path):
    cuts, walls = tmp_path / "stamps", tmp_path / "walls"
    (cuts / "animals").mkdir(parents=True)
    (cuts / "people").mkdir()
    walls.mkdir()
    cv2.imwrite(str(cuts / "animals" / "red.png"), cutout())
    cv2.imwrite(str(cuts / "animals" / "blue.png"), cutout(colour=(255, 0, 0)))
    cv2.imwrite(str(cuts / "animals" / "opaque.png"), np.full((30, 30, 3), 9, np.uint8))  # no alpha: skipped
    cv2.imwrite(str(cuts / "people" / "person.png"), cutout(colour=(0, 255, 0)))
    (cuts / "animals" / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(walls / "grey.png"), np.full((300, 400, 3), 128, np.uint8))
    return cuts, walls


def test_paste_blends_by_alpha_inside_the_picture_at_the_size_range():
    background = np.full((200, 300, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = paste(background, cutout(), rng)
        assert out.shape == background.shape and out.dtype == np.uint8
        red = np.all(out == (0, 0, 255), axis=2)  # opaque: the cut-out's colour
        ys, xs = np.nonzero(red)
        changed = np.zeros_like(red)  # transparent: the background, but for the edge blended by the scaling
        changed[ys.min() - 6:ys.max() + 7, xs.min() - 6:xs.max() + 7] = True
        assert np.all(out[~changed] == 128)
        tall = ys.max() - ys.min() + 1  # the opaque half of a cut-out whose long side is 30-95 % of 200 px
        assert SIZE_RANGE[0] * 200 / 2 - 2 <= tall <= SIZE_RANGE[1] * 200 / 2 + 2
    assert np.all(background == 128)  # the background is not changed


def test_stamp_negatives_writes_one_picture_per_cut_out_leaving_out_people_and_non_cut_outs(tmp_path):
    cuts, walls = write_sources(tmp_path)
    assert len(read_cutouts([cuts], exclude=["people"])) == 2 and len(read_cutouts([cuts])) == 3
    only_blue = read_cutouts([cuts], exclude=["people", "red.png"])  # a file name leaves out that file
    assert len(only_blue) == 1 and only_blue[0][..., 0].max() == 255 and only_blue[0][..., 2].max() == 0
    out = tmp_path / "out"
    assert stamp_negatives([cuts], [walls], out, exclude=["people"], progress=False) == 2
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["stamped_00000.jpg", "stamped_00001.jpg"]
    pictures = [cv2.imread(str(f)) for f in files]
    assert all(p.shape[1] == NEGATIVE_SIDE and abs(p.shape[0] - 480) <= 2 for p in pictures)  # a part of 400 x 300
    colours = {int(np.argmax(p.reshape(-1, 3).astype(int).sum(0) - 128 * p.shape[0] * p.shape[1])) for p in pictures}
    assert colours == {0, 2}  # the blue and the red cut-out each once; no green person
    assert stamp_negatives([cuts], [walls], tmp_path / "more", count=5, exclude=["people"], progress=False) == 5


def test_stamp_negatives_errors_are_clear(tmp_path, capsys):
    cuts, walls = write_sources(tmp_path)
    with pytest.raises(InputError, match="no PNG with transparency"):
        stamp_negatives([walls], [walls], tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="not a folder"):
        stamp_negatives([tmp_path / "missing"], [walls], tmp_path / "out", progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--cutouts", str(walls), "--backgrounds", str(walls), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "no PNG with transparency" in capsys.readouterr().err  # a usage error


def test_a_negative_count_or_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    cuts, walls = write_sources(tmp_path)
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    with pytest.raises(InputError, match="--count must be a whole number >= 0"):  # had been numpy's ValueError
        stamp_negatives([cuts], [walls], tmp_path / "out", count=-5, progress=False)
    with pytest.raises(InputError, match="taken.txt: not a folder"):  # had been a FileExistsError traceback
        stamp_negatives([cuts], [walls], taken, progress=False)
    with pytest.raises(InputError, match="cannot make the folder"):
        stamp_negatives([cuts], [walls], taken / "sub", progress=False)
    args = ["--cutouts", str(cuts), "--backgrounds", str(walls)]
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--out", str(tmp_path / "out"), "--count", "-5"])
    assert exit_info.value.code == 2 and "-5 is not in the range x>=0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--out", str(taken)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "not a folder" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and taken.read_text() == "not a folder"
    # an --out inside a source: its pictures were read as sources by the next run (review s59)
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--out", str(walls / "stamped")])
    assert exit_info.value.code == 2 and "lies in the source" in capsys.readouterr().err
    assert not (walls / "stamped").exists()
