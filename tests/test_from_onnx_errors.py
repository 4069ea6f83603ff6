"""models.from_onnx on bad input: one "error:" line and exit code 2, no traceback, nothing written (its recovery
itself is tested in test_training.py)."""
import pytest

from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)

from models.from_onnx import RecoveryError, main, recover  # noqa: E402
from test_training import _lsp_like_dataset  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export import export_from_args

    path = tmp_path_factory.mktemp("from_onnx") / "tiny.onnx"
    export_from_args(path, arch="fasterpose_r18", num_keypoints=14, input_size=(64, 64),
                     keypoints_from=_lsp_like_dataset(path.parent, n=2)[0])
    return path


@pytest.mark.parametrize("problem, message", [
    ("no_ann", "none.json"),  # EvalError
    ("no_photos", "could be read"),  # the photo folder holds none of the file's photos: ValueError
    ("no_crops", "--crops must be at least 1"),  # had been torch's "stack expects a non-empty TensorList"
])
def test_expected_errors_are_one_line_and_write_nothing(exported, tmp_path, capsys, problem, message):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    out = tmp_path / "start.pth"
    args = {"no_ann": ["--ann", str(tmp_path / "none.json"), "--images", str(images)],
            "no_photos": ["--ann", str(ann), "--images", str(tmp_path)],
            "no_crops": ["--ann", str(ann), "--images", str(images), "--crops", "0"]}[problem]
    assert main(["--model", str(exported), "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    if problem == "no_crops":
        with pytest.raises(RecoveryError, match="positive number of crops"):
            recover(exported, ann, images, out, crops=0)
