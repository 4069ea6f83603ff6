"""The exporter's tools and an --out they cannot write: refused in one line before their costly work (measuring,
quantising, fitting), not a traceback after it; and a write that fails anyway is one line too."""
from dataclasses import replace

import pytest

from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
from export import ExportError  # noqa: E402
from export.metadata import rewrite_metadata  # noqa: E402
from fasterpose_rt import PosePredictor  # noqa: E402


def _tools():
    from export import padding, presence_head, quantize, score_calibration

    return {"padding": (padding.main, []),
            "quantize": (quantize.main, ["--calibration", "{tmp}"]),
            "score_calibration": (score_calibration.main, []),
            "presence_head": (presence_head.main, ["--negatives", "{tmp}"])}


@pytest.mark.parametrize("tool", ["padding", "quantize", "score_calibration", "presence_head"])
def test_an_out_that_cannot_be_written_is_refused_before_the_work(tool, standin_path, tmp_path, capsys):
    main, more = _tools()[tool]
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "x.onnx"  # its folder is a file
    args = ["--model", str(standin_path), "--out", str(out)] + [a.format(tmp=tmp_path) for a in more]
    if tool != "quantize":
        args += ["--ann", str(tmp_path / "persons.json")]  # never read: the out is checked first
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == f"error: cannot write {out}: {tmp_path / 'afile'} is not a folder\n"


def test_rewriting_metadata_where_it_cannot_be_written_is_an_export_error(standin_path, tmp_path):
    (tmp_path / "afile").write_text("")
    meta = PosePredictor(standin_path, threads=1).metadata
    with pytest.raises(ExportError, match="cannot write .*x.onnx"):  # had been NotADirectoryError
        rewrite_metadata(standin_path, replace(meta, box_padding=1.5), tmp_path / "afile" / "x.onnx")
