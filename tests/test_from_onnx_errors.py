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
                     keypoints_from=_lsp_like_dataset(path.parent, n=2)[0], box_padding=1.1)
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


def test_a_recovered_checkpoint_exports_again_with_its_keypoint_set_and_box_padding(exported, tmp_path):
    """Its keypoints, skeleton and flip pairs are at the top of its meta: the exporter had read only
    meta["dataset"] (K=17 became COCO-17, other K were refused) and the recipe's box padding (1.25, not the
    file's 1.1)."""
    from clirunner import invoke
    from export.__main__ import main as export_main
    from fasterpose_rt import PosePredictor

    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    start = tmp_path / "start.pth"
    recover(exported, ann, images, start, crops=2)
    again = tmp_path / "again.onnx"
    r = invoke(export_main, ["--checkpoint", str(start), "--out", str(again)])  # nothing else to say
    assert r.exit_code == 0, r.output
    source, got = (PosePredictor(p, threads=1).metadata for p in (exported, again))
    assert (got.keypoints, got.skeleton, got.flip_pairs) == (source.keypoints, source.skeleton, source.flip_pairs)
    assert got.box_padding == source.box_padding == 1.1
    assert got.extra["sigmas"] == source.extra["sigmas"] and got.extra["keypoints_source"] == "checkpoint metadata"
