"""--out of the training-side tools never names a file the tool reads (review s58: export.padding --out ann.json
wrote the model over the annotation file; models.from_onnx --out model.onnx replaced the ONNX file it recovers
from, often all that is left of a model). Each is refused before any work, the file unchanged."""
import importlib

import pytest

from conftest import TORCH_ABSENT

pytest.importorskip("torch", reason=TORCH_ABSENT)
from export import InputError  # noqa: E402
from export.outputs import check_writable  # noqa: E402


def test_check_writable_refuses_an_input_named_any_way(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text("{}")
    (tmp_path / "link.json").symlink_to(ann)
    for out in (ann, tmp_path / "link.json", tmp_path / "sub" / ".." / "ann.json"):
        with pytest.raises(InputError, match=f"cannot write {out}: it is the --ann file; give another --out"):
            check_writable(out, [("the --model file", None), ("the --ann file", ann)])
    assert check_writable(tmp_path / "new.onnx", [("the --ann file", ann)]) == tmp_path / "new.onnx"


@pytest.mark.parametrize("command, victim, message", [
    (["export.padding", "--model", "{m}", "--ann", "{a}", "--out", "{a}"], "a", "it is the --ann file"),
    (["export.score_calibration", "--model", "{m}", "--ann", "{a}", "--out", "{a}"], "a", "it is the --ann file"),
    (["models.from_onnx", "--model", "{m}", "--ann", "{a}", "--images", "{d}", "--out", "{m}"], "m",
     "it is the --model file"),
    (["models.soup", "--checkpoints", "{c}", "{c}", "--out", "{c}"], "c", "it is the checkpoint"),
])
def test_a_tool_refuses_an_out_that_is_one_of_its_inputs(tmp_path, capsys, command, victim, message):
    """Each tool's main, as `python -m <tool>` runs it (in this process: a subprocess paid 5 s of imports)."""
    files = {"m": tmp_path / "model.onnx", "a": tmp_path / "ann.json", "c": tmp_path / "a.pth", "d": tmp_path}
    for key in ("m", "a", "c"):
        files[key].write_bytes(b"precious")
    args = [part.format(**files) for part in command]
    with pytest.raises(SystemExit) as e:
        code = importlib.import_module(args[0]).main(args[1:])
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err, (e.value.code, err)
    assert files[victim].read_bytes() == b"precious"
