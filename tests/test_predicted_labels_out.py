"""The label tools that predict every person first (fix_sides, doubtful_labels) check --out before predicting: a bad
one was found only after the whole prediction pass."""
import pytest

pytest.importorskip("torch", reason="the label tools are part of the training side: pip install -e '.[dev]'")

from models.data import doubtful_labels, fix_sides  # noqa: E402


@pytest.mark.parametrize("main", [fix_sides.main, doubtful_labels.main], ids=["fix_sides", "doubtful_labels"])
def test_a_bad_out_is_refused_before_predicting(main, tmp_path, capsys, monkeypatch):
    import models.data.predicted_labels as pl

    monkeypatch.setattr(pl, "predict_or_explain", lambda *a, **k: pytest.fail("predicted before checking --out"))
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    for out in (tmp_path, plain / "x.json"):
        assert main(["--ann", str(plain), "--images", str(tmp_path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "--out" in err
