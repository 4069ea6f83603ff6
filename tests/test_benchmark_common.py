"""benchmarks/common.py and what every benchmark gets from it: the stamped command is the one that ran (options and
all), results are strict JSON written atomically, ``--help`` and bad options run nothing, expected errors are one
``error: ...`` line (exit 2), ``--rounds 0`` is refused, timings rotate the order and their ratios cancel position
effects.

Parse-level and synthetic checks run anywhere; the ones that load persons need LSPET (skipped when ../shared is
absent) and are kept to a couple of persons: each stops at its error before any model runs (or runs one tiny pass).
"""
import importlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

import benchmarks.common as common
from benchmarks.common import (BenchmarkParser, interleaved_times, non_negative_int, positive_int, run_main,
                               write_results)
from conftest import LSPET, NEEDS_LSPET, ROOT, TORCH_ABSENT
from fasterpose_rt import DEFAULT_MODELS
from fasterpose_rt.session import ModelNotFoundError

BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in ("__init__", "common"))
BUNDLED = all(p.is_file() for p in DEFAULT_MODELS.values())
NEEDS_BUNDLED = pytest.mark.skipif(not BUNDLED, reason="bundled models absent")


@pytest.fixture(autouse=True)
def _no_committed_results(monkeypatch, tmp_path):
    """Whatever a test runs, benchmarks/results is never written: the default folder points into tmp_path."""
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "default_results")
    monkeypatch.setattr(common, "_invocation", None)


def _benchmark(name: str):
    """benchmarks.<name>, or a skip where it needs torch and this venv has none (a runtime-only install)."""
    try:
        return importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as e:
        if e.name == "torch":
            pytest.skip(TORCH_ABSENT)
        raise


def _command(md_path: Path) -> str:
    return re.search(r"^Command: `(.*)`$", md_path.read_text(), re.M).group(1)


# --- write_results ------------------------------------------------------------------------------------------------

def test_results_are_strict_json_with_null_for_what_is_not_finite(tmp_path):
    data = {"nan": float("nan"), "inf": float("inf"), "np_nan": np.float32("nan"), "np_int": np.int64(3),
            "arr": np.array([1.5, np.nan]), "nested": [{"x": -math.inf, "ok": 0.25}], "flag": np.bool_(True)}
    write_results("t", "T", "body", data, results_dir=tmp_path)
    text = (tmp_path / "t.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    got = json.loads(text)
    assert (got["nan"], got["inf"], got["np_nan"], got["np_int"], got["arr"], got["nested"], got["flag"]) == (
        None, None, None, 3, [1.5, None], [{"x": None, "ok": 0.25}], True)
    assert "machine" in got and (tmp_path / "t.md").read_text().startswith("# T\n")


def test_both_files_are_replaced_whole_and_a_failed_write_keeps_the_old_pair(tmp_path):
    write_results("t", "Old", "old body", {"v": 1}, results_dir=tmp_path)
    old = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(TypeError):  # not JSON-serialisable: found before either file is touched
        write_results("t", "New", "new body", {"v": object()}, results_dir=tmp_path)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == old  # no temporary file left either
    write_results("t", "New", "new body", {"v": 2}, results_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.md"]
    assert json.loads((tmp_path / "t.json").read_text())["v"] == 2
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "t.md").stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain write makes it


def test_the_stamp_is_the_command_that_ran_with_every_option(tmp_path):
    ap = BenchmarkParser("benchmarks.example")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--ann")
    ap.add_argument("--results-dir")
    ann = ROOT / "data" / "lspet_val.json"  # inside the repository: shown relative to it
    ap.parse_args(["--rounds", "3", "--ann", str(ann), "--results-dir", str(tmp_path / "a b")])
    md = write_results("example", "E", "", {}, results_dir=tmp_path)
    assert _command(md) == f"python -m benchmarks.example --rounds 3 --ann data/lspet_val.json --results-dir " \
                           f"'{tmp_path / 'a b'}'"
    # stamped once: a later write in this process without a parse of its own is not given that command
    assert _command(write_results("example", "E", "", {}, results_dir=tmp_path)) == "python -m benchmarks.example"
    assert _command(write_results("example", "E", "", {}, command="given", results_dir=tmp_path)) == "given"


def test_no_benchmark_builds_its_own_stamp_or_parser_or_entry_point():
    for name in BENCHMARKS:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        assert "argparse.ArgumentParser(" not in source, name
        assert "BenchmarkParser(\"benchmarks." + name + "\"" in source, name
        assert re.search(r'if __name__ == "__main__":\n    run_main\(main\)\n*$', source), name
        for call in re.findall(r"write_results\((.*?)\)\n", source, re.S):
            assert "command=" not in call, name
        assert "RESULTS_DIR /" not in source, name  # results files go through write_results


# --- parsing and the entry point --------------------------------------------------------------------------------

def test_whole_number_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    for bad, fn in (("0", positive_int), ("-1", non_negative_int), ("2.5", positive_int)):
        with pytest.raises(Exception, match="must be|not a whole number"):
            fn(bad)


def _exit(main, argv, capsys):
    """(exit code, stderr) of ``run_main(main, argv)``; stdout is left in capsys."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_main(main, argv)
    captured = capsys.readouterr()
    print(captured.out, end="")  # back into capsys for a caller that wants it
    return e.value.code, captured.err


def test_run_main_turns_expected_errors_and_refusals_into_one_error_line(capsys):
    def raising(exc):
        def main(argv):
            raise exc
        return main

    assert _exit(raising(ModelNotFoundError("model file not found: x.onnx")), [], capsys) == (
        2, "error: model file not found: x.onnx\n")
    assert _exit(raising(SystemExit("cannot read a.jpg\n(wrong folder?)")), [], capsys) == (
        2, "error: cannot read a.jpg (wrong folder?)\n")
    assert _exit(raising(SystemExit("error: said once")), [], capsys) == (2, "error: said once\n")
    assert _exit(raising(FileNotFoundError(2, "No such file or directory", "d.json")), [], capsys)[0] == 2
    assert _exit(lambda argv: {"a": 1}, [], capsys) == (0, "")  # a result that is not an exit code
    assert _exit(lambda argv: 3, [], capsys)[0] == 3
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_main(raising(ZeroDivisionError()), [])


def test_interleaved_times_rotate_the_order_round_by_round():
    order = []
    times = interleaved_times({n: (lambda n=n: order.append(n)) for n in "abc"}, rounds=4, warmup=0)
    assert "".join(order) == "abcbcacababc" and all(t.shape == (4,) for t in times.values())
    assert all(t.cycle == 3 for t in times.values())
    assert type(np.median(times["a"])) is np.float64  # reductions stay plain scalars
    order.clear()
    interleaved_times({n: (lambda n=n: order.append(n)) for n in "ab"}, rounds=4, warmup=1)
    assert "".join(order) == "ba" + "abbaabba"  # two: the warm-up ends with a, then the alternation; each boundary repeats


@pytest.mark.parametrize("n", [3, 4, 5])
def test_interleaved_times_give_every_position_equally_and_never_repeat_across_rounds(n):
    # the old forward/reverse order ran the end competitors twice in a row at every boundary (a b c | c b a | a ...)
    # and kept the middle one in the middle
    names = "abcde"[:n]
    order = []
    interleaved_times({x: (lambda x=x: order.append(x)) for x in names}, rounds=2 * n, warmup=2)
    assert all(x != y for x, y in zip(order, order[1:]))  # warm-up included
    rounds = [order[i:i + n] for i in range(2 * n, len(order), n)]
    assert len(rounds) == 2 * n and all(sorted(r) == list(names) for r in rounds)
    for start in range(n + 1):  # any n consecutive rounds: every competitor in every position once
        for pos in range(n):
            assert sorted(r[pos] for r in rounds[start:start + n]) == list(names)


class _PositionClock:
    """A fake ``time`` for ``benchmarks.common``: each competitor's call costs its base time times a factor of
    its position in the round, halved when it runs right after itself (warm caches)."""

    def __init__(self, base, position_factor, repeat_factor=0.5):
        self.base, self.factor, self.repeat_factor = base, position_factor, repeat_factor
        self.now, self.calls = 100.0, []

    def perf_counter(self):
        return self.now

    def fns(self):
        def call(name):
            cost = self.base[name] * self.factor[len(self.calls) % len(self.base)]
            if self.calls and self.calls[-1] == name:
                cost *= self.repeat_factor
            self.calls.append(name)
            self.now += cost
        return {name: (lambda name=name: call(name)) for name in self.base}


@pytest.mark.parametrize("rounds", [6, 7, 8, 9, 10])
@pytest.mark.parametrize("base, factor", [
    ({"a": 2.0, "b": 1.0}, (1.0, 0.8)),  # the one running second is 20 % faster
    ({"a": 3.0, "b": 1.0, "c": 1.5}, (1.0, 0.7, 0.9)),
    ({"a": 1.0, "b": 4.0, "c": 2.0, "d": 0.5}, (1.0, 0.6, 0.9, 0.75)),
])
def test_paired_ratio_of_interleaved_times_cancels_a_position_effect_exactly(base, factor, rounds, monkeypatch):
    # old: with a b | b a the per-round ratios of (2, 1) are 2.5 and 1.6, and their median is 2.05 (even number of
    # rounds) or 2.5 (odd); with 3+ the order gave no balance at all
    clock = _PositionClock(base, factor)
    monkeypatch.setattr(common, "time", clock)
    times = interleaved_times(clock.fns(), rounds, warmup=1)
    for x in base:
        for y in base:
            assert common.paired_ratio(times[x], times[y]) == pytest.approx(base[x] / base[y], rel=1e-12), (x, y)


@pytest.mark.parametrize("rounds", [2, 3, 4])
def test_two_competitors_cancel_running_after_themselves_from_the_first_round(rounds, monkeypatch):
    # the warm-up ended with b, so round 0's a did not follow itself as every later first one does: 2.108 for 2
    # rounds, 2.053 for 3
    clock = _PositionClock({"a": 2.0, "b": 1.0}, (1.0, 1.0), repeat_factor=0.9)
    monkeypatch.setattr(common, "time", clock)
    times = interleaved_times(clock.fns(), rounds, warmup=1)
    assert common.paired_ratio(times["a"], times["b"]) == pytest.approx(2.0, rel=1e-12)


def test_round_times_keep_their_cycle_through_pickle():
    import pickle

    t = common.RoundTimes([3.0, 1.0, 2.0], cycle=3)
    back = pickle.loads(pickle.dumps(t))
    assert back.cycle == 3 and np.array_equal(back, t) and isinstance(back, common.RoundTimes)


def _alternating(rounds):
    """Plain (rounds,) times as the benchmarks' own forward/reverse loops make them: a takes 2, b 1, and whoever
    runs second in a round (b in even rounds, a in odd ones) is 20 % faster. Per-round ratios: 2.5, 1.6, 2.5, ..."""
    second = np.arange(rounds) % 2
    return 2.0 * np.where(second == 1, 0.8, 1.0), np.where(second == 0, 0.8, 1.0)


@pytest.mark.parametrize("rounds", [2, 4, 5, 8, 9])
def test_paired_ratio_of_alternating_rounds_does_not_depend_on_their_number(rounds):
    # old (median of per-round ratios): 2.05 for an even number of rounds, 2.5 for an odd one
    a, b = _alternating(rounds)
    assert common.paired_ratio(a, b) == pytest.approx(2.0, rel=1e-12)
    assert common.paired_ratio(b, a) == pytest.approx(0.5, rel=1e-12)
    assert common.paired_ratio(a[:1], b[:1]) == pytest.approx(2.5, rel=1e-12)  # one round: its ratio


@pytest.mark.parametrize("rounds, disturbed", [(9, [4]), (10, [0]), (10, [9]), (20, [3, 12]), (20, [7, 8])])
def test_paired_ratio_is_robust_to_outlier_rounds(rounds, disturbed):
    a, b = _alternating(rounds)
    a[disturbed] *= 10  # a round where something else took the core while a ran
    b[disturbed[0]] /= 3
    assert common.paired_ratio(a, b) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help_prints_usage_and_runs_nothing(name, capsys, tmp_path):
    module = _benchmark(name)
    code, _ = _exit(module.main, ["--help"], capsys)
    assert code == 0 and capsys.readouterr().out.startswith(f"usage: python -m benchmarks.{name}")
    code, err = _exit(module.main, ["--no-such-option"], capsys)  # refused, not ignored (or a required one named)
    assert code == 2 and f"python -m benchmarks.{name}: error: " in err
    assert not (tmp_path / "default_results").exists()


ROUNDS = {  # every benchmark with --rounds, and the other options it cannot parse without
    "tradeoff": ["--models", "default", "fast"], "ensemble": ["--models", "default", "fast"],
    "bench_runtime": [], "backends": [], "int8": [], "person_presence": [], "frame_reading": [],
    "photo_reading": [], "decoding": [], "latency": []}


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_zero_rounds_are_refused_before_anything_runs(name, capsys, tmp_path):
    module = _benchmark(name)
    code, err = _exit(module.main, ROUNDS[name] + ["--rounds", "0", "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and "--rounds: must be >= 1, got 0" in err
    assert not (tmp_path / "r").exists()



@pytest.mark.parametrize("name", ["close_up_videos", "frame_reading", "smoothing", "tracking", "vs_mediapipe"])
def test_zero_clips_are_refused_before_anything_runs(name, capsys, tmp_path):
    # --clips 0 had reached numpy: a traceback ("need at least one array to stack") after the photos were read
    module = _benchmark(name)
    code, err = _exit(module.main, ["--clips", "0", "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and "--clips: must be >= 1, got 0" in err
    assert not (tmp_path / "r").exists()

# --- missing models and photos, with real persons -----------------------------------------------------------------

MISSING_MODEL = {  # benchmark -> how it is given a model
    **{n: "--models" for n in ("backends", "score_meaning", "person_presence")},
    **{n: "--model" for n in ("detected_boxes", "orientation", "scale_tta", "smoothing", "tracking", "frame_reading",
                              "close_up_videos", "photo_reading", "miss_audit")}}


@NEEDS_LSPET
@pytest.mark.parametrize("name", sorted(MISSING_MODEL))
def test_a_missing_model_is_one_error_line(name, lspet_coco, capsys, tmp_path):
    module = _benchmark(name)
    argv = [MISSING_MODEL[name], str(tmp_path / "absent.onnx"), "--ann", str(lspet_coco(1, 40)), "--images",
            str(LSPET / "images"), "--limit", "2", "--results-dir", str(tmp_path / "r")]
    if name == "miss_audit":
        argv += ["--panels", str(tmp_path / "panels")]
    code, err = _exit(module.main, argv, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "absent.onnx" in err
    assert not (tmp_path / "r").exists()


def test_bench_runtime_refuses_a_missing_model(capsys, tmp_path):
    from benchmarks import bench_runtime

    code, err = _exit(bench_runtime.main, ["--model", str(tmp_path / "absent.onnx")], capsys)
    assert code == 2 and err == f"error: --model {tmp_path / 'absent.onnx'}: file not found\n"


@NEEDS_LSPET
@NEEDS_BUNDLED
@pytest.mark.parametrize("name", ["tradeoff", "ensemble", "orientation", "backends"])
def test_a_wrong_images_folder_is_one_error_line(name, lspet40, capsys, tmp_path):
    module = _benchmark(name)
    argv = ["--ann", str(lspet40), "--images", str(tmp_path), "--limit", "2", "--results-dir", str(tmp_path / "r")]
    if name in ("tradeoff", "ensemble"):
        argv += ["--models", "default", "default", "--rounds", "1"]
    code, err = _exit(module.main, argv, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "im00001.jpg" in err and "wrong --images folder?" in err
    assert not (tmp_path / "r").exists()


# --- single benchmarks --------------------------------------------------------------------------------------------

def test_bench_runtime_names_its_model_stamps_its_options_and_interleaves(standin_path, tmp_path, monkeypatch):
    from benchmarks import bench_runtime

    assert not hasattr(bench_runtime, "interleaved")  # its own fixed-order timer is gone
    calls = []

    def spy(fns, rounds, warmup=1):
        calls.append((list(fns), rounds))
        return interleaved_times(fns, rounds, warmup)

    monkeypatch.setattr(bench_runtime, "interleaved_times", spy)
    bench_runtime.main(["--rounds", "1", "--model", str(standin_path), "--results-dir", str(tmp_path)])
    md = tmp_path / "runtime.md"  # the committed name, not bench_runtime.md
    assert _command(md) == f"python -m benchmarks.bench_runtime --rounds 1 --model {standin_path} --results-dir " \
                           f"{tmp_path}"
    assert f"`{standin_path}` (given on the command line)" in md.read_text()
    data = json.loads((tmp_path / "runtime.json").read_text())
    assert data["model_path"] == str(standin_path) and data["rounds"] == 1
    assert [len(names) for names, _ in calls] == [6, 4, 1] and calls[0][1] == 1


def test_decoding_times_every_decoder_in_alternating_rounds(monkeypatch):
    from benchmarks import decoding

    order = []
    monkeypatch.setattr(decoding, "DECODERS", {n: (lambda hm, n=n: order.append(n)) for n in ("x", "y")})
    times = decoding.timing(np.random.default_rng(0), rounds=2)
    assert order[-4:] == ["x", "y", "y", "x"] and times["x"].shape == (2,)


def test_int8_reads_the_checkouts_data_and_its_help_is_true(capsys):
    int8 = _benchmark("int8")

    assert int8.DATA == ROOT / "data"
    _exit(int8.main, ["--help"], capsys)
    out = " ".join(capsys.readouterr().out.split())
    assert "--model MODEL float32 FasterPose ONNX (default: a random-weights FasterPose-R18" in out
    assert "--results-dir" in out


@NEEDS_LSPET
def test_int8_refuses_a_missing_model_before_any_work(lspet40, capsys, tmp_path):
    int8 = _benchmark("int8")

    code, err = _exit(int8.main, ["--model", str(tmp_path / "absent.onnx"), "--eval", str(lspet40),
                                  "--calibration", str(lspet40), "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and err == f"error: --model {tmp_path / 'absent.onnx'}: file not found\n"


def test_end_to_end_names_the_mode_its_in_process_section_times():
    from benchmarks import end_to_end

    assert end_to_end.VARIANTS[end_to_end.IN_PROCESS_VARIANT] == ["--refine", "0", "--no-search", "--batch-size", "1"]
    source = (ROOT / "benchmarks" / "end_to_end.py").read_text()
    assert "The per-photo work of `--batch-size 1`" not in source


def test_training_claims_refuses_a_given_annotation_file_that_is_missing(tmp_path):
    from benchmarks import training_claims

    present = tmp_path / "val.json"
    present.write_text("{}")
    for given in (["--train-ann", str(tmp_path / "absent.json"), "--val-ann", str(present)],
                  ["--train-ann", str(tmp_path / "absent.json")], ["--val-ann", str(tmp_path / "absent.json")]):
        with pytest.raises(SystemExit, match="absent.json: file not found"):
            training_claims.main(given + ["--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "r")])
        assert not (tmp_path / "absent.json").exists() and not (tmp_path / "cache").exists()
    with pytest.raises(SystemExit, match="--val-ann .*absent.json: file not found"):
        training_claims.ensure_annotations(tmp_path / "cache", None, tmp_path / "absent.json")
    assert not (tmp_path / "absent.json").exists()


# --- too few persons ----------------------------------------------------------------------------------------------

def test_close_up_crops_of_nobody_upright_are_empty_arrays_of_the_right_shapes():
    from benchmarks.tracking import close_up_crops, require_close_ups
    from fasterpose_rt.skeletons import LSP14

    names = LSP14["keypoints"]
    gt = np.zeros((2, 14, 2))
    gt[:, names.index("neck"), 1], gt[:, [names.index("left_hip"), names.index("right_hip")], 1] = 200, 100  # lying
    crops, labels, visible, torso, kept = close_up_crops([np.zeros((300, 300, 3), np.uint8)] * 2, names, gt,
                                                         np.ones((2, 14), bool))
    assert crops == [] and labels.shape == (0, 14, 2) and visible.shape == (0, 14) and visible.dtype == bool
    assert torso.shape == (0,) and kept.shape == (0,) and kept.dtype == np.int64
    with pytest.raises(SystemExit, match="error: too few persons: none of the 2 persons is upright"):
        require_close_ups(crops, 2)


@NEEDS_LSPET
@NEEDS_BUNDLED
@pytest.mark.parametrize("name", ["close_up_videos", "person_presence", "tracking"])
def test_close_up_benchmarks_refuse_persons_of_whom_none_is_upright(name, lspet_coco, capsys, tmp_path):
    module = _benchmark(name)
    code, err = _exit(module.main, ["--ann", str(lspet_coco(8001, 8002)), "--images", str(LSPET / "images"),
                                    "--results-dir", str(tmp_path / "r")], capsys)  # LSPET val's first two: none
    assert code == 2 and err.startswith("error: too few persons: none of the 2 persons is upright")
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


def test_score_meaning_needs_joints_in_both_halves():
    from benchmarks.score_meaning import require_both_halves

    require_both_halves(np.array([[True], [True], [False]]), "x")
    with pytest.raises(SystemExit, match="error: too few persons: 3 persons .* both halves"):
        require_both_halves(np.array([[True], [False], [True]]), "x")  # the odd half (row 1) has none


@NEEDS_LSPET
@NEEDS_BUNDLED
def test_score_meaning_refuses_too_few_persons_before_any_model_runs(lspet_coco, capsys, tmp_path):
    from benchmarks import score_meaning

    # LSPET val's first three: the second has no measurable torso, so the odd half has no joint to fit on
    code, err = _exit(score_meaning.main, ["--ann", str(lspet_coco(8001, 8003)), "--images", str(LSPET / "images"),
                                           "--models", str(tmp_path / "absent.onnx"), "--results-dir",
                                           str(tmp_path / "r")], capsys)
    assert code == 2 and "absent.onnx" in err  # the models are checked first ...
    code, err = _exit(score_meaning.main, ["--ann", str(lspet_coco(8001, 8003)), "--images", str(LSPET / "images"),
                                           "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith("error: too few persons: 3 persons")  # ... then the persons
