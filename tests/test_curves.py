"""models.curves: training logs read, stages chained end to end, the summary's figures, the PNG and the CLI."""
import json

import cv2
import pytest

from models.curves import chain, main, parse_curve, plot_curves, read_log, summary


def _log(path, pcks, start=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"epoch": start + i, "train_loss": 0.03 - 0.001 * i, "val_pck@0.2": p,
                                        "val_oks_ap": p - 0.2}) + "\n" for i, p in enumerate(pcks)) + "\n")
    return path


def test_stages_are_chained_with_epochs_counted_on(tmp_path):
    a = read_log(_log(tmp_path / "a" / "log.jsonl", [0.1, 0.2, 0.3]).parent)  # a run folder finds its log
    b = read_log(_log(tmp_path / "b.jsonl", [0.25, 0.35]))
    epochs, entries, starts = chain([a, b])
    assert epochs == [1, 2, 3, 4, 5] and starts == [3] and [e["val_pck@0.2"] for e in entries][3] == 0.25
    table = summary([("run", [a, b])])
    row = table.splitlines()[-1]
    assert row == "| run | 2 | 5 | 0.350 | 0.350 (5) | 0.150 |"


def test_curve_specs_name_their_curves(tmp_path):
    run = _log(tmp_path / "r34" / "log.jsonl", [0.5]).parent
    assert parse_curve(str(run)) == ("r34", [run])
    assert parse_curve(f"{run / 'log.jsonl'}") == ("r34", [run / "log.jsonl"])
    assert parse_curve(f"stages={run},{tmp_path / 'x.jsonl'}") == ("stages", [run, tmp_path / "x.jsonl"])
    with pytest.raises(ValueError, match="no log"):
        parse_curve("empty=")


def test_bad_logs_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON line"):
        read_log(bad)
    with pytest.raises(FileNotFoundError, match="no training log"):
        read_log(tmp_path / "missing")


def test_plot_and_cli_write_a_png_and_a_summary(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is absent (a dev dependency): it draws the curves")
    a = _log(tmp_path / "a" / "log.jsonl", [0.1, 0.2, 0.3])
    b = _log(tmp_path / "b" / "log.jsonl", [0.2, 0.4])
    out = plot_curves([("a", [read_log(a)])], tmp_path / "deep" / "one.png", target=0.8)
    assert cv2.imread(str(out)).shape[2] == 3 and not list(out.parent.glob("*.tmp*"))
    assert main([f"both={a},{b}", str(b.parent), "--out", str(tmp_path / "c.png"), "--target", "0.8"]) == 0
    printed = capsys.readouterr()
    assert "| both | 2 | 5 | 0.400 | 0.400 (5) | 0.200 |" in printed.out and "| b | 1 | 2 |" in printed.out
    assert cv2.imread(str(tmp_path / "c.png")) is not None
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "d.png")]) == 2
    assert "no training log" in capsys.readouterr().err and not (tmp_path / "d.png").exists()
