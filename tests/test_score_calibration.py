"""What a joint's score means: the score table a model may carry (fasterpose_rt/confidence.py), the monotone fit
that makes it (export/score_calibration.py), the reliability `fasterpose eval` reports (metrics.score_reliability),
and confidences in every output format.

Real parts: stand-in ONNX models run by onnxruntime; the bundled default and 40 real LSPET persons for the fitting
tool (skipped when ../shared is absent).
"""
import csv
import hashlib
import io
import json

import numpy as np
import onnx
import pytest
from clirunner import invoke
from conftest import LSPET, NEEDS_LSPET, TORCH_ABSENT
from standin import paint_blobs, standin_metadata, write_standin

from fasterpose_rt import DEFAULT_MODELS, MetadataError, ModelMetadata, PosePredictor
from fasterpose_rt.cli import main as cli_main
from fasterpose_rt.confidence import CALIBRATION_KEY, ScoreCalibration, cross_fitted, fit_isotonic, table_problem
from fasterpose_rt.metrics import score_reliability
from fasterpose_rt.results import coco_entries, csv_header, csv_row

PLAIN = {"scores": [0.1, 0.5, 0.9], "chances": [0.3, 0.7, 0.9]}
FLIP = {"scores": [0.2, 0.6], "chances": [0.4, 0.8]}
SEARCHED = {"scores": [0.3, 0.8], "chances": [0.2, 0.6]}
BLOCK = {"within": 0.2, "source": "persons.json", "plain": PLAIN, "flip": FLIP, "searched": SEARCHED}


# ---------------------------------------------------------------------------------------- the table itself

def test_a_score_reads_through_the_table_linearly_and_holds_its_ends():
    table = ScoreCalibration.from_metadata({CALIBRATION_KEY: BLOCK}, flip_test=False)
    got = table(np.array([[0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]]))
    np.testing.assert_allclose(got, [[0.3, 0.3, 0.5, 0.7, 0.8, 0.9, 0.9]], atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (1, 7) and table.within == 0.2 and table.source == "persons.json"


def test_the_flip_test_reads_its_own_table_and_a_model_without_one_has_none():
    flip = ScoreCalibration.from_metadata({CALIBRATION_KEY: BLOCK}, flip_test=True)
    np.testing.assert_allclose(flip(np.array([0.4])), [0.6], atol=1e-6)
    assert ScoreCalibration.from_metadata({}, flip_test=False) is None
    assert ScoreCalibration.from_metadata({CALIBRATION_KEY: {"plain": PLAIN}}, flip_test=True) is None


def test_searched_persons_read_the_searchs_table_or_else_the_boxes_one():
    searched = ScoreCalibration.from_metadata({CALIBRATION_KEY: BLOCK}, flip_test=False, searched=True)
    np.testing.assert_allclose(searched(np.array([0.55])), [0.4], atol=1e-6)
    flip_searched = ScoreCalibration.from_metadata({CALIBRATION_KEY: BLOCK}, flip_test=True, searched=True)
    np.testing.assert_allclose(flip_searched(np.array([0.4])), [0.6], atol=1e-6)  # no searched_flip: the flip one


@pytest.mark.parametrize("block, problem", [
    ([1, 2], "must be an object"),
    ({"flip": FLIP}, "lacks its 'plain' table"),
    ({"plain": PLAIN, "within": 0}, "within must be a positive number"),
    ({"plain": {"scores": [0.1, 0.2], "chances": [0.5]}}, "two lists of as many numbers"),
    ({"plain": {"scores": [0.1, "x"], "chances": [0.5, 0.6]}}, "two lists of as many numbers"),
    ({"plain": {"scores": [0.2, 0.1], "chances": [0.5, 0.6]}}, "scores must increase"),
    ({"plain": {"scores": [0.1, 0.2], "chances": [0.6, 0.5]}}, "chances must not decrease"),
    ({"plain": {"scores": [0.1, 0.2], "chances": [0.5, 1.5]}}, "must lie in \\[0, 1\\]"),
    ({"plain": PLAIN, "flip": [0.1]}, "flip must be an object"),
    ({"plain": PLAIN, "searched_flip": {"scores": [0.3], "chances": [2]}}, "searched_flip: scores and chances"),
])
def test_a_malformed_table_is_named_and_the_model_refused(block, problem):
    assert table_problem(BLOCK) is None
    assert table_problem(block) is not None
    meta = json.loads(standin_metadata().to_json())
    with pytest.raises(MetadataError, match=problem):
        ModelMetadata.from_dict({**meta, CALIBRATION_KEY: block})


@pytest.mark.parametrize("number", [np.float32(0.2), np.float16(0.2), np.longdouble(0.2), np.float64(0.2)],
                         ids=lambda n: type(n).__name__)
def test_numpys_numbers_make_a_table_as_pythons_do(number):
    """A block built in Python from numpy's scalars (a fit's float32, an int64 0 or 1) is as sound as one read from
    JSON, as numpy's numbers are everywhere else in the API (metadata.is_box_padding); float32 was refused."""
    block = {"within": number, "plain": {"scores": [np.float32(0.05), number, np.float32(0.9)],
                                         "chances": [np.int64(0), np.float32(0.5), np.int64(1)]}}
    assert table_problem(block) is None
    meta = json.loads(standin_metadata().to_json())
    table = ScoreCalibration.from_metadata(ModelMetadata.from_dict({**meta, CALIBRATION_KEY: block}).extra, False)
    assert table.within == pytest.approx(0.2, abs=1e-3)
    np.testing.assert_allclose(table(np.array([number])), [0.5], atol=1e-6)


@pytest.mark.parametrize("value", [True, np.True_, "0.2", np.float32("nan"), np.float64("inf"), 10 ** 400],
                         ids=["bool", "numpy-bool", "str", "nan", "inf", "huge-int"])
def test_bools_strings_and_what_no_float_holds_stay_refused_in_a_table(value):
    """Refused by name, never raised (an int too large for a float was an OverflowError loading the model)."""
    assert "within must be a positive number" in table_problem({"within": value, "plain": PLAIN})
    problem = table_problem({"plain": {"scores": [0.1, 0.2, value], "chances": [0.3, 0.4, 0.5]}})
    assert problem is not None and problem.startswith(f"{CALIBRATION_KEY}.plain")


# ---------------------------------------------------------------------------------------- the monotone fit

def test_the_fit_recovers_a_known_chance_and_never_falls():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 40000)
    hits = rng.uniform(0, 1, 40000) < 0.2 + 0.7 * scores  # the true chance of a hit at each score
    knots, chances = fit_isotonic(scores, hits, bins=20)
    assert len(knots) <= 20 and (np.diff(knots) > 0).all() and (np.diff(chances) >= 0).all()
    np.testing.assert_allclose(chances, 0.2 + 0.7 * knots, atol=0.03)


def test_the_fit_pools_bins_whose_rates_fall():
    # four bins of two joints, hit rates 0.5, 1.0, 0.0, 1.0: the second and third pool to 0.5, which equals the
    # first, so those three pool into one knot (chances rise strictly from knot to knot)
    knots, chances = fit_isotonic([0.1, 0.15, 0.3, 0.35, 0.5, 0.55, 0.8, 0.85], [1, 0, 1, 1, 0, 0, 1, 1], bins=4)
    np.testing.assert_allclose(knots, [0.325, 0.825])
    np.testing.assert_allclose(chances, [0.5, 1.0])
    # one repeated score over several bins: a single knot, never two at the same score
    knots, chances = fit_isotonic(np.full(8, 0.5), [0, 0, 1, 1, 1, 1, 1, 1], bins=4)
    assert knots.tolist() == [0.5] and chances.tolist() == [0.75]
    with pytest.raises(ValueError, match="as many scores as hits"):
        fit_isotonic([0.1, 0.2], [1], bins=4)


def test_no_person_is_read_through_a_table_fitted_on_it():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, (40, 5))
    hit = rng.uniform(0, 1, (40, 5)) < scores
    use = np.ones((40, 5), bool)
    got = cross_fitted(scores, hit, use, scores)
    odd = np.arange(40) % 2 == 1
    knots, chances = fit_isotonic(scores[~odd].ravel(), hit[~odd].ravel())  # the even persons' table
    np.testing.assert_allclose(got[odd], np.interp(scores[odd], knots, chances))
    knots, chances = fit_isotonic(scores[odd].ravel(), hit[odd].ravel())
    np.testing.assert_allclose(got[~odd], np.interp(scores[~odd], knots, chances))
    read = scores.copy()
    read[0, 0] = np.nan  # a joint without a score has no confidence
    assert np.isnan(cross_fitted(scores, hit, use, read)[0, 0]) and np.isfinite(cross_fitted(scores, hit, use,
                                                                                              read)[0, 1])


# ---------------------------------------------------------------------------------------- reliability

def test_score_reliability_counts_each_bin_and_the_calibration_error():
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = np.array([[[0, 0], [10, 0], [0, 10], [10, 10]]] * 2, np.float64)  # torso: 0-to-(10,10) = 14.1 px
    pred = gt.copy()
    pred[0, 0] += 20  # a miss
    pred[1, 1] += 20  # a miss
    scores = np.array([[0.05, 0.15, 0.95, 0.95], [0.05, 0.15, 0.95, 0.95]])
    r = score_reliability(pred, gt, np.ones((2, 4), bool), names, scores)
    assert r["joints"] == 8
    assert [(b["low"], b["joints"], b["pck"]) for b in r["bins"]] == [(0.0, 2, 0.5), (0.1, 2, 0.5), (0.9, 4, 1.0)]
    # |0.5 - 0.05| * 2 + |0.5 - 0.15| * 2 + |1 - 0.95| * 4 over 8 joints
    assert r["ece"] == pytest.approx((0.45 * 2 + 0.35 * 2 + 0.05 * 4) / 8)
    perfect = score_reliability(pred, gt, np.ones((2, 4), bool), names, np.where(scores < 0.9, 0.5, 1.0))
    assert perfect["ece"] == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------- the runtime

@pytest.fixture(scope="module")
def calibrated_standin(tmp_path_factory):
    meta = standin_metadata()
    meta.extra[CALIBRATION_KEY] = BLOCK
    return write_standin(tmp_path_factory.mktemp("calibrated") / "calibrated.onnx", meta)


def _photo():
    points = np.array([[40, 50], [30, 80], [60, 80], [45, 110]], np.float64)
    return paint_blobs((160, 100), points, amplitude=0.8)


def test_confidences_are_the_table_read_at_the_scores_and_follow_every_result(calibrated_standin, standin_path):
    for flip, table in ((False, PLAIN), (True, FLIP)):
        pred = PosePredictor(calibrated_standin, threads=1, flip_test=flip)
        res = pred.predict(_photo(), [[0, 0, 100, 160], [10, 20, 80, 120]])
        expected = np.interp(res.scores, table["scores"], table["chances"])
        np.testing.assert_allclose(res.confidences, expected, atol=1e-6)
        np.testing.assert_allclose(res.take([1]).confidences, expected[1:], atol=1e-6)  # slices carry the table
        np.testing.assert_allclose(res.rescaled(2.0).confidences, expected, atol=1e-6)
        entry = coco_entries(res, 7, "p.jpg")[0]
        assert entry["keypoint_confidences"] == [round(float(v), 3) for v in res.confidences[0]]
    plain = PosePredictor(standin_path, threads=1).predict(_photo())
    assert plain.confidences is None and "keypoint_confidences" not in plain.to_coco(1)[0]


def test_a_searched_person_reads_the_searchs_table_and_a_boxed_or_refined_one_the_boxes(calibrated_standin):
    from fasterpose_rt import PoseTracker, find_poses
    pred = PosePredictor(calibrated_standin, threads=1)
    photo = _photo()
    searched = find_poses(pred, photo)
    assert len(searched) == 1
    np.testing.assert_allclose(searched.confidences, np.interp(searched.scores, SEARCHED["scores"],
                                                               SEARCHED["chances"]), atol=1e-6)
    for res in (find_poses(pred, photo, boxes=[[10, 20, 80, 120]]), find_poses(pred, photo, search=False)):
        np.testing.assert_allclose(res.confidences, np.interp(res.scores, PLAIN["scores"], PLAIN["chances"]),
                                   atol=1e-6)
    tracker = PoseTracker(pred)
    first, second = tracker(photo), tracker(photo)  # found by the search, then followed in its own box
    assert first.calibration is pred.searched_calibration and second.calibration is pred.calibration


def test_csv_keeps_its_columns_and_adds_one_confidence_per_keypoint(calibrated_standin):
    res = PosePredictor(calibrated_standin, threads=1).predict(_photo())
    names = res.keypoint_names
    header = csv_header(names, confidences=True)
    assert header[:len(csv_header(names))] == csv_header(names)  # the other columns keep their places
    assert header[len(csv_header(names)):] == [f"{n}_confidence" for n in names]
    row = csv_row(coco_entries(res, 1, "p.jpg")[0])
    assert len(row) == len(header) and row[-len(names):] == [round(float(v), 3) for v in res.confidences[0]]


def test_predict_writes_confidences_in_every_format(calibrated_standin, tmp_path):
    import cv2
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), _photo())
    for suffix in ("json", "jsonl", "csv"):
        out = tmp_path / f"r.{suffix}"
        r = invoke(cli_main, ["predict", str(photo), "--model", str(calibrated_standin), "--no-search", "--out",
                              str(out), "-q", "--threads", "1"])
        assert r.exit_code == 0, r.output
        text = out.read_text()
        if suffix == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert len(rows) == 1 and 0 <= float(rows[0]["blue_confidence"]) <= 1
        else:
            entry = json.loads(text)[0] if suffix == "json" else json.loads(text.splitlines()[0])
            assert len(entry["keypoint_confidences"]) == 4


def test_the_eval_report_holds_reliability_by_score_and_by_confidence():
    from fasterpose_rt.evaluate import pck_report
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    gt = np.array([[0, 0, 2, 10, 0, 2, 0, 10, 2, 10, 10, 2]], np.float64)
    data = {"annotations": [{"image_id": 1, "keypoints": gt.ravel().tolist()}]}
    pred = gt.reshape(1, 4, 3)[:, :, :2].copy()
    pred[0, 0] += 20  # one miss of four
    scores = np.array([[0.2, 0.6, 0.6, 0.6]])
    report = pck_report(data, pred, names, [1], scores=scores, confidences=scores + 0.25)
    assert report["pck"] == 0.75
    assert [(b["low"], b["joints"], b["pck"]) for b in report["by_score"]["bins"]] == [(0.2, 1, 0.0), (0.6, 3, 1.0)]
    assert [(b["low"], b["pck"]) for b in report["by_confidence"]["bins"]] == [(0.4, 0.0), (0.8, 1.0)]
    assert "by_score" not in pck_report(data, pred, names, [1])


# ---------------------------------------------------------------------------------------- the fitting tool

MODEL = DEFAULT_MODELS["fast"]  # the tool runs the same whatever the model: the faster one (the default took 33 s)


@pytest.fixture(scope="module")
def fitted(lspet40, tmp_path_factory):
    pytest.importorskip("torch", reason=TORCH_ABSENT)
    from export.score_calibration import calibrate_scores
    if not (LSPET / "joints.mat").is_file():
        pytest.skip(f"LSPET photos not found at {LSPET} (../shared is absent)")
    out = tmp_path_factory.mktemp("scores") / "fitted.onnx"
    before = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    result = calibrate_scores(MODEL, lspet40, LSPET / "images", out, threads=1)
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() == before  # the source model is never touched
    return result, out


@NEEDS_LSPET
def test_the_fitted_table_is_written_with_its_provenance_and_nothing_else_changes(fitted, lspet40):
    result, out = fitted
    a, b = onnx.load(str(MODEL)), onnx.load(str(out))
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    old, new = (PosePredictor(p, threads=1).metadata for p in (MODEL, out))
    assert {k: v for k, v in new.extra.items() if k != CALIBRATION_KEY} == \
        {k: v for k, v in old.extra.items() if k != CALIBRATION_KEY}
    block = new.extra[CALIBRATION_KEY]
    assert block["source"] == lspet40.name and block["box_padding"] == old.box_padding and block["within"] == 0.2
    for mode in ("plain", "flip", "searched", "searched_flip"):  # lspet40: 40 photos of one person each
        table = block[mode]
        assert table["joints"] > 300 and 0 <= table["ece_cross_fitted"] < table["ece_raw"]
        assert (np.diff(table["scores"]) > 0).all() and (np.diff(table["chances"]) >= 0).all()
        assert result.modes[mode]["joints"] == table["joints"]
    assert result.persons > 30 and "calibration error" in result.summary()


@NEEDS_LSPET
def test_the_table_is_the_hit_rate_the_runtime_measures(fitted, lspet40):
    """Every joint of the 40 persons read through the table: the mean confidence is the share of joints within
    0.2 torso (isotonic regression keeps the mean of what it fits)."""
    import cv2

    from fasterpose_rt.metrics import _hits
    _, out = fitted
    data = json.loads(lspet40.read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    pred = PosePredictor(out, threads=1)
    kp = np.array([np.reshape(a["keypoints"], (-1, 3)) for a in data["annotations"]], np.float64)
    results = [pred.predict(cv2.imread(str(LSPET / "images" / files[a["image_id"]])), [a["bbox"]])
               for a in data["annotations"]]
    xy = np.concatenate([r.keypoints for r in results])
    conf = np.concatenate([r.confidences for r in results])
    hit, use = _hits(xy, kp[..., :2], kp[..., 2] > 0, pred.keypoint_names, 0.2)
    assert conf[use].mean() == pytest.approx(hit[use].mean(), abs=0.01)


@NEEDS_LSPET
def test_a_file_listing_the_keypoints_in_another_order_gives_the_same_table(fitted, lspet40, tmp_path):
    from export import InputError
    from export.score_calibration import calibrate_scores
    from keypoint_order import without_keypoint, write_reversed
    said = []
    out = tmp_path / "rev.onnx"
    calibrate_scores(MODEL, write_reversed(lspet40, tmp_path / "rev.json"), LSPET / "images", out, threads=1,
                     flip=False, search=False, log=said.append)
    assert any("another order; matched by name" in s for s in said)  # it had been refused as not the model's
    got = PosePredictor(out, threads=1).metadata.extra[CALIBRATION_KEY]["plain"]
    want = PosePredictor(fitted[1], threads=1).metadata.extra[CALIBRATION_KEY]["plain"]
    assert got == want
    (tmp_path / "no_neck.json").write_text(json.dumps(without_keypoint(json.loads(lspet40.read_text()), "neck")))
    with pytest.raises(InputError, match=r"\(neck\)"):
        calibrate_scores(MODEL, tmp_path / "no_neck.json", LSPET / "images", tmp_path / "never.onnx")
    assert not (tmp_path / "never.onnx").exists()


@NEEDS_LSPET
def test_bad_input_writes_nothing_and_the_command_line_tells(lspet40, tmp_path, capsys):
    pytest.importorskip("torch", reason=TORCH_ABSENT)
    from export import InputError
    from export.score_calibration import calibrate_scores, main
    out = tmp_path / "never.onnx"
    no_kp = json.loads(lspet40.read_text())
    for a in no_kp["annotations"]:
        a["keypoints"] = [0] * len(a["keypoints"])
    (tmp_path / "no_kp.json").write_text(json.dumps(no_kp))
    with pytest.raises(InputError, match="a score table needs at least"):
        calibrate_scores(MODEL, tmp_path / "no_kp.json", LSPET / "images", out, threads=1, flip=False)
    with pytest.raises(InputError):
        calibrate_scores(tmp_path / "missing.onnx", lspet40, LSPET / "images", out)
    with pytest.raises(InputError, match="bins"):
        calibrate_scores(MODEL, lspet40, LSPET / "images", out, bins=1)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    args = ["--model", str(MODEL), "--ann", str(lspet40), "--images", str(LSPET / "images"), "--threads", "1"]
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(tmp_path / "cli.onnx"), "--no-flip", "--no-search"])
    assert e.value.code == 0 and "plain: calibration error" in capsys.readouterr().out
    block = PosePredictor(tmp_path / "cli.onnx", threads=1).metadata.extra[CALIBRATION_KEY]
    assert not {"flip", "searched", "searched_flip"} & set(block)
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(out), "--images", str(tmp_path)])
    assert e.value.code == 2 and not out.exists()


@NEEDS_LSPET
def test_eval_says_how_often_each_score_and_confidence_is_right(fitted, lspet40, tmp_path):
    _, out = fitted
    r = invoke(cli_main, ["eval", "--coco", str(lspet40), "--images", str(LSPET / "images"), "--model", str(out),
                          "-q", "--threads", "1", "--out", str(tmp_path / "report.json")])
    assert r.exit_code == 0, r.output
    assert "right (PCK) by joint score:" in r.output
    assert "right (PCK) by confidence:" in r.output and "in-sample" in r.output  # fitted on these very persons
    report = json.loads((tmp_path / "report.json").read_text())["pck@0.2"]
    assert report["by_confidence"]["in_sample"] is True and report["by_confidence"]["table_source"] == lspet40.name
    assert report["by_confidence"]["ece"] < report["by_score"]["ece"]
    plain = invoke(cli_main, ["eval", "--coco", str(lspet40), "--images", str(LSPET / "images"), "--model",
                              str(MODEL), "-q", "--threads", "1"])
    assert "by joint score" in plain.output and ("by confidence" in plain.output) == (
        PosePredictor(MODEL, threads=1).calibration is not None)


def test_knots_that_rounding_makes_equal_are_merged_into_a_valid_table():
    """A barely trained model's scores lie within 1e-4: the rounded knots repeated, the runtime refused the table
    ("scores must increase") and the tool ended in a traceback, writing nothing (review s59)."""
    pytest.importorskip("torch", reason=TORCH_ABSENT)
    from export.score_calibration import _rounded
    from fasterpose_rt.confidence import table_problem

    xs, ys = _rounded([0.01791, 0.01792, 0.018, 0.01801, 0.5], [0.1, 0.2, 0.2, 0.3, 0.9])
    assert xs == [0.0179, 0.018, 0.5] and ys == [0.2, 0.3, 0.9]
    assert table_problem({"within": 0.2, "plain": {"scores": xs, "chances": ys}}) is None
