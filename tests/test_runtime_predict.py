"""PosePredictor end to end on stand-in ONNX models whose heatmaps are known functions of the photo.

A blob of keypoint k's colour painted at photo point p must come back as keypoint k at p. Errors are measured
in crop pixels (photo error × crop scale): a wrong stride offset costs 1.5 crop px, a one-pixel shift of the
flip 2 crop px, a wrong colour order or aspect fix loses the blob entirely, so TOL = 0.1 crop px separates
right (≤ 0.02 here) from wrong by a wide margin (the sensitivity test below checks that it does).
"""
import json
import threading

import numpy as np
import pytest

import fasterpose_rt.predictor as predictor_mod
from fasterpose_rt import PosePredictor, PoseResult
from fasterpose_rt.draw import draw_poses
from fasterpose_rt.geometry import box_centers_and_sizes
from fasterpose_rt.preprocess import crop_transforms
from standin import KEYPOINTS, paint_blobs, set_metadata, standin_metadata, standin_model, write_standin

TOL = 0.1  # crop px
CROP_SIGMA = 4.0  # blob sigma in crop px
PHOTO_HW = (200, 240)

# (box [x, y, w, h], keypoint offsets as fractions of the padded, aspect-fixed crop region (K, 2)).
# green_left (1) sits left of the box centre, green_right (2) right of it; several points lie outside the
# raw box but inside the padded region, so a missing aspect fix or padding loses them.
CASES = {
    "tall": ([90, 20, 50, 160], [[0.05, -0.35], [-0.35, 0.1], [0.33, -0.05], [-0.1, 0.38]]),
    "wide": ([20, 70, 200, 60], [[0.1, -0.12], [-0.3, 0.11], [0.27, -0.03], [0.0, 0.12]]),
    "top_outside": ([60, -60, 100, 160], [[0.02, 0.12], [-0.3, 0.3], [0.31, 0.22], [-0.05, 0.34]]),
    "left_outside": ([-20, 40, 140, 150], [[0.17, -0.2], [-0.15, 0.08], [0.2, 0.1], [0.05, 0.2]]),
}


def scene(box, offsets, meta, shape_hw=PHOTO_HW):
    """Photo (H, W, 3) uint8 with the case's blobs, the true points (K, 2) and the crop scale (crop px / photo px)."""
    center, size = box_centers_and_sizes(np.array([box], float), meta.input_size, meta.box_padding)
    points = center[0] + np.asarray(offsets, float) * size[0]
    scale = meta.input_size[0] / size[0, 0]
    h, w = shape_hw
    assert ((points >= 0) & (points <= [w - 1, h - 1])).all(), "test setup: every blob centre inside the photo"
    return paint_blobs(shape_hw, points, sigma=CROP_SIGMA / scale), points, scale


def crop_px_errors(result, points, scale, person=0):
    return np.linalg.norm(result.keypoints[person] - points, axis=1) * scale


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("output,color", [("logits", "RGB"), ("probabilities", "BGR")])
@pytest.mark.parametrize("flip", [False, True])
def test_blobs_come_back_at_their_photo_position(standin_factory, case, output, color, flip):
    path = standin_factory(output=output, color=color)
    pred = PosePredictor(path, threads=1, flip_test=flip)
    box, offsets = CASES[case]
    img, points, scale = scene(box, offsets, pred.metadata)
    res = pred.predict(img, [box])
    assert crop_px_errors(res, points, scale).max() < TOL
    assert (res.scores > 0.5).all() and (res.scores <= 1).all()
    np.testing.assert_array_equal(res.boxes, np.array([box], np.float32))


def test_probability_maps_beyond_1_are_clipped_as_in_validation(tmp_path):
    """A probabilities model (e.g. trained with MSE) overshooting 1: scores stay in [0, 1] and keypoints are decoded
    from the clipped maps, as models/validate.py decodes them (they were decoded unclipped, scores up to 1.2)."""
    import onnx
    from onnx import helper, numpy_helper

    meta = standin_metadata(output="probabilities")
    model = standin_model(meta)
    model.graph.output[0].name = "heatmaps_x2"
    model.graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    model.graph.node.append(helper.make_node("Mul", ["heatmaps", "two"], ["heatmaps_x2"]))
    path = tmp_path / "overshoot.onnx"
    onnx.save(set_metadata(model, meta), str(path))
    pred = PosePredictor(path, threads=1)
    x = np.random.default_rng(0).normal(size=(2, 3, 96, 64)).astype(np.float32)
    raw = pred._session.run(None, {"image": x})[0]
    assert raw.max() > 1.2  # the test's premise: the model overshoots
    maps, _ = pred._infer(x)
    np.testing.assert_array_equal(maps, np.clip(raw, 0, 1))
    box, offsets = CASES["tall"]
    img, points, scale = scene(box, offsets, pred.metadata)
    res = pred.predict(img, [box])
    assert (res.scores <= 1).all() and (res.scores == 1).any()


def test_a_predictor_pickles_as_its_file_and_options(standin_path):
    """multiprocessing and copy.deepcopy need it (onnxruntime's session raised a bare TypeError)."""
    import copy
    import pickle

    fast = PosePredictor(variant="fast", threads=1)
    pred = PosePredictor(standin_path, threads=1, flip_test=True, batch_size=3, box_padding=1.5)
    for original in (pred, fast):
        for made in (pickle.loads(pickle.dumps(original)), copy.deepcopy(original)):
            assert made is not original and made.model_path == original.model_path
            assert (made.flip_test, made.batch_size, made.threads, made.box_padding) == \
                (original.flip_test, original.batch_size, original.threads, original.box_padding)
    box, offsets = CASES["tall"]
    img, _, _ = scene(box, offsets, pred.metadata)
    a, b = pred.predict(img, [box]), pickle.loads(pickle.dumps(pred)).predict(img, [box])
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    pred.flip_test, pred.batch_size = False, 5  # as they are when copied
    copied = pickle.loads(pickle.dumps(pred))
    assert (copied.flip_test, copied.batch_size, copied.box_padding) == (False, 5, 1.5)
    searching = PosePredictor(standin_path, threads=1, search_with=PosePredictor(standin_path, threads=1))
    assert pickle.loads(pickle.dumps(searching)).search_with.model_path == str(standin_path)


def test_flip_test_matches_plain_inference(standin_path):
    """Mirrored crops flipped back (x -> w-1-x, left/right channels swapped) land on the same points and scores."""
    plain = PosePredictor(standin_path, threads=1)
    flip = PosePredictor(standin_path, threads=1, flip_test=True)
    for box, offsets in CASES.values():
        img, points, scale = scene(box, offsets, plain.metadata)
        a, b = plain.predict(img, [box]), flip.predict(img, [box])
        # Scores stay whole only if green_left/green_right were swapped back (else each map has two half peaks).
        np.testing.assert_allclose(b.scores, a.scores, atol=0.01)
        assert (np.linalg.norm(a.keypoints - b.keypoints, axis=2) * scale).max() < 0.02


def test_standin_is_mirror_consistent(standin_path):
    """The stand-in behaves as a real model under mirroring: model(mirror x) = swap(mirror(model(x)))."""
    pred = PosePredictor(standin_path, threads=1)
    x = np.random.default_rng(0).normal(size=(2, 3, 96, 64)).astype(np.float32)
    run = lambda t: pred._session.run(None, {"image": np.ascontiguousarray(t)})[0]  # noqa: E731
    np.testing.assert_allclose(run(x[..., ::-1]), run(x)[:, [0, 2, 1, 3], :, ::-1], atol=1e-5)


@pytest.mark.parametrize("fault", ["stride_offset", "no_aspect_fix", "colour_order", "flip_shift"])
def test_end_to_end_check_catches_faults(standin_factory, monkeypatch, fault):
    """Sensitivity: each deliberate geometry or colour fault makes the end-to-end check fail."""
    path = standin_factory()
    flip = fault == "flip_shift"
    if flip:  # flip back with x -> w - x (one heatmap px off) instead of w-1-x
        monkeypatch.setattr(predictor_mod, "merge_flipped", lambda hm, n, perm: 0.5 * (
            hm[:n] + np.roll(hm[n:, perm, :, ::-1], 1, axis=3)))
    elif fault == "stride_offset":  # heatmap i at crop i·s instead of (i + 0.5)·s - 0.5
        monkeypatch.setattr(predictor_mod, "heatmap_to_crop", lambda xy, s: np.asarray(xy, float) * np.asarray(s))
    elif fault == "no_aspect_fix":  # crop the raw box, stretched to the input size
        def stretched(boxes, meta):
            b = np.asarray(boxes, float)
            k = np.array(meta.input_size, float) / b[:, 2:]
            off = np.array(meta.input_size, float) / 2 - 0.5 - k * (b[:, :2] + b[:, 2:] / 2)
            return np.stack([np.stack([k[:, 0], 0 * k[:, 0], off[:, 0]], 1),
                             np.stack([0 * k[:, 1], k[:, 1], off[:, 1]], 1)], 1)
        monkeypatch.setattr(predictor_mod, "crop_transforms", stretched)
    else:  # graph built for RGB, metadata claims BGR
        meta = standin_metadata()
        wrong = json.loads(meta.to_json())
        wrong["color"] = "BGR"
        path = write_standin(path.with_name("wrong_colour.onnx"), meta, metadata_text=wrong)
    pred = PosePredictor(path, threads=1, flip_test=flip)
    worst = 0.0
    for box, offsets in CASES.values():
        img, points, scale = scene(box, offsets, pred.metadata)
        worst = max(worst, crop_px_errors(pred.predict(img, [box]), points, scale).max())
    assert worst > 10 * TOL


def test_many_boxes_in_chunks_equal_one_by_one(standin_path):
    """Two persons side by side, each box alone and together, with batch sizes that split the call."""
    one = PosePredictor(standin_path, threads=1)
    parts, boxes, truth = [], [], []
    for i, name in enumerate(["tall", "wide", "tall"]):
        box, offsets = CASES[name]
        img, points, scale = scene(box, offsets, one.metadata)
        parts.append(img)
        boxes.append([box[0] + i * PHOTO_HW[1], *box[1:]])
        truth.append((points + [i * PHOTO_HW[1], 0], scale))
    photo = np.concatenate(parts, axis=1)
    singles = [one.predict(photo, [b]) for b in boxes]
    for bs, flip in [(16, False), (1, False), (2, False), (1, True), (3, True)]:
        res = PosePredictor(standin_path, threads=1, batch_size=bs, flip_test=flip).predict(photo, boxes)
        assert res.keypoints.shape == (3, 4, 2) and res.scores.shape == (3, 4) and res.boxes.shape == (3, 4)
        for n, (points, scale) in enumerate(truth):
            assert crop_px_errors(res, points, scale, person=n).max() < TOL
            if not flip:
                np.testing.assert_allclose(res.keypoints[n], singles[n].keypoints[0], atol=1e-4)


def test_several_photos_in_one_batch_equal_one_by_one(standin_path):
    """predict_batch: persons of photos of different sizes share the batches and come back to their own photo."""
    photos, boxes, truth = [], [], []
    for name, shape in [("tall", (200, 240)), ("wide", (220, 260)), ("left_outside", (210, 200))]:
        box, offsets = CASES[name]
        meta = PosePredictor(standin_path).metadata
        img, points, scale = scene(box, offsets, meta, shape)
        photos.append(img)
        boxes.append([box])
        truth.append((points, scale))
    photos.append(photos[0][:, :120])  # no boxes given: the whole photo
    boxes.append(None)
    photos.append(photos[1])  # an empty box list: nobody
    boxes.append(np.zeros((0, 4)))
    for bs, flip in [(16, False), (1, False), (2, True)]:
        pred = PosePredictor(standin_path, threads=1, batch_size=bs, flip_test=flip)
        results = pred.predict_batch(photos, boxes)
        assert [len(r) for r in results] == [1, 1, 1, 1, 0]
        for res, (points, scale) in zip(results, truth):
            assert crop_px_errors(res, points, scale).max() < TOL  # each person mapped back into its own photo
        for res, photo, b in zip(results, photos, boxes):
            one = pred.predict(photo, b)
            np.testing.assert_allclose(res.keypoints, one.keypoints, atol=1e-4)
            np.testing.assert_array_equal(res.boxes, one.boxes)
    assert pred.predict_batch([]) == []
    assert [r.boxes.tolist() for r in pred.predict_batch(photos[:2])] == [
        [[-0.5, -0.5, 240, 200]], [[-0.5, -0.5, 260, 220]]]  # boxes=None: the whole of every photo
    with pytest.raises(ValueError, match="2 photos but 1 box lists"):
        pred.predict_batch(photos[:2], [None])


def test_no_boxes_means_the_whole_photo(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    h, w = 150, 100
    img, points, scale = scene([-0.5, -0.5, w, h], [[0.0, -0.2], [-0.2, 0.0], [0.2, 0.1], [0.1, 0.25]],
                               pred.metadata, (h, w))
    res = pred.predict(img)
    np.testing.assert_array_equal(res.boxes, [[-0.5, -0.5, w, h]])
    assert crop_px_errors(res, points, scale).max() < TOL


def test_empty_boxes_give_an_empty_result(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    img = np.zeros((50, 40, 3), np.uint8)
    for empty in ([], np.zeros((0, 4))):
        res = pred.predict(img, empty)
        assert res.keypoints.shape == (0, 4, 2) and res.scores.shape == (0, 4) and res.boxes.shape == (0, 4)
        assert res.keypoints.dtype == np.float32 and len(res) == 0 and res.to_coco(1) == []


@pytest.mark.parametrize("boxes,which", [
    ([[0, 0, 10, 0]], "box 0"),
    ([[0, 0, 10, 10], [5, 5, -1, 10]], "box 1"),
    ([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan, 0, 10, 10]], "box 2"),
    ([[0, 0, np.inf, 10]], "box 0"),
    ([[0, 0, 10, 10], [1e300, 0, 10, 10]], "box 1 .* out of range"),  # keypoints would be inf, silently
    ([[0, 0, 1e-300, 1e-300]], "box 0 .* out of range"),  # a singular crop map
    ([[0, 0, 1e200, 1e200]], "box 0 .* out of range"),
])
def test_bad_boxes_are_refused_by_index(standin_path, boxes, which):
    pred = PosePredictor(standin_path, threads=1)
    with pytest.raises(ValueError, match=which):
        pred.predict(np.zeros((50, 40, 3), np.uint8), boxes)


def test_bad_box_shape_is_refused(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        pred.predict(np.zeros((50, 40, 3), np.uint8), [[1, 2, 3]])


def test_other_photo_types_give_the_same_answer(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    box, offsets = CASES["tall"]
    img, _, _ = scene(box, offsets, pred.metadata)
    ref = pred.predict(img, [box])
    alpha = np.random.default_rng(1).integers(0, 256, img.shape[:2] + (1,), dtype=np.uint8)
    variants = {
        "uint16": img.astype(np.uint16) * 257,
        "bgra": np.concatenate([img, alpha], axis=2),
        "float01": img.astype(np.float32) / 255,
        "non_contiguous": np.asfortranarray(img),
    }
    for name, variant in variants.items():
        res = pred.predict(variant, [box])
        np.testing.assert_allclose(res.keypoints, ref.keypoints, atol=1e-5, err_msg=name)


def test_gray_photo_is_accepted(standin_path):
    """A white blob in a gray photo is every colour at once: red, blue and the green of its half find it."""
    pred = PosePredictor(standin_path, threads=1)
    box = [90, 20, 50, 160]
    img, points, scale = scene(box, [[-0.2, 0.1]] * 4, pred.metadata)
    gray = img.max(axis=2)
    res = pred.predict(gray, [box])
    assert (np.linalg.norm(res.keypoints[0, [0, 1, 3]] - points[0], axis=1) * scale).max() < TOL


def test_predict_from_several_threads(standin_path):
    """One predictor, four threads, three calls each: every answer equals the serial one."""
    pred = PosePredictor(standin_path, threads=1)
    jobs = []
    for name, (box, offsets) in sorted(CASES.items()):
        img, _, _ = scene(box, offsets, pred.metadata)
        jobs.append((img, [box]))
    expected = [pred.predict(img, b).keypoints for img, b in jobs]
    got, errors = {}, []

    def work(t):
        try:
            for r in range(3):
                i = (t + r) % len(jobs)
                got[(t, r)] = (i, pred.predict(*jobs[i]).keypoints)
        except Exception as e:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 12
    for i, kp in got.values():
        np.testing.assert_array_equal(kp, expected[i])


def test_options_set_while_a_call_runs_do_not_reach_it(standin_path):
    """Another thread setting flip_test or batch_size between a call's model runs: the call finishes as it began
    (it read them again at each step: "could not broadcast input array from shape (6,14) into shape (3,14)")."""
    pred = PosePredictor(standin_path, threads=1, batch_size=2)
    box, offsets = CASES["tall"]
    img, _, _ = scene(box, offsets, pred.metadata)
    boxes = [box] * 3
    plain = pred.predict(img, boxes)
    flipped = PosePredictor(standin_path, threads=1, flip_test=True).predict(img, boxes)
    session = pred._session

    class Meddling:  # the session, with a second thread's assignments made during every run
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, *args, **kwargs):
            pred.flip_test, pred.batch_size = not pred.flip_test, 1 + pred.batch_size % 3
            return session.run(*args, **kwargs)

    pred._session = Meddling()
    for _ in range(4):
        began = pred.flip_test
        got = pred.predict(img, boxes)
        np.testing.assert_array_equal(got.keypoints, (flipped if began else plain).keypoints)


def test_flip_test_set_later_brings_its_score_table(standin_path):
    """The bundled model's confidences are measured for plain and flip-tested runs: setting flip_test after
    construction uses the flip-tested table, as a predictor made so does (it kept the plain one: up to 0.024 off,
    and its pickled copy disagreed with it)."""
    made = PosePredictor(threads=1, flip_test=True)
    later = PosePredictor(threads=1)
    assert later.calibration is not None and not np.array_equal(later.calibration.chances, made.calibration.chances)
    later.flip_test = True
    for name in ("calibration", "searched_calibration"):
        for field in ("scores", "chances"):
            np.testing.assert_array_equal(getattr(getattr(later, name), field), getattr(getattr(made, name), field))
    result = later.predict(np.zeros((200, 100, 3), np.uint8))
    np.testing.assert_array_equal(result.confidences, made.predict(np.zeros((200, 100, 3), np.uint8)).confidences)
    with pytest.raises(ValueError, match="read-only"):  # one result's table is every result's: not to be changed
        result.calibration.chances[:] = 0
    import copy
    import pickle

    for made in (pickle.loads(pickle.dumps([result, result]))[0], copy.deepcopy(result)):  # a process pool's copy
        assert not made.calibration.chances.flags.writeable and not made.calibration.scores.flags.writeable
        np.testing.assert_array_equal(made.confidences, result.confidences)


@pytest.mark.parametrize("value", ["no", "False", None, 2, 0.5])
def test_flip_test_takes_booleans_only(standin_path, value):
    """bool("no") is True: the flip test ran when asked not to (review s68)."""
    with pytest.raises(ValueError, match="flip_test must be True or False"):
        PosePredictor(standin_path, threads=1, flip_test=value)
    pred = PosePredictor(standin_path, threads=1)
    with pytest.raises(ValueError, match="flip_test must be True or False"):
        pred.flip_test = value
    assert pred.flip_test is False
    pred.flip_test = np.bool_(True)
    assert pred.flip_test is True


def test_drawing_threshold_must_be_a_number(standin_path):
    image = np.zeros((60, 40, 3), np.uint8)
    pred = PosePredictor(standin_path, threads=1)
    result = pred.predict(image)
    with pytest.raises(ValueError, match="threshold must be a number"):
        pred.draw(image, result, threshold="0.3")  # numpy's own error named a ufunc loop
    assert pred.draw(image, result, threshold=np.float32(0.3)).shape == (60, 40, 3)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4"])
def test_a_batch_size_set_later_is_checked_as_at_construction(standin_path, value):
    """-3 gave every score 0 and every keypoint the crop's corner, 0 "range() arg 3 must not be zero"."""
    pred = PosePredictor(standin_path, threads=1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pred.batch_size = value
    assert pred.batch_size == 16


def test_threads_cannot_be_set_once_the_session_is_open(standin_path):
    """The session keeps its threads: an assignment was taken, shown by repr, and ignored."""
    pred = PosePredictor(standin_path, threads=1)
    with pytest.raises(AttributeError):
        pred.threads = 2
    assert pred.threads == 1 and "threads=1" in repr(pred)


def test_model_properties(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    assert pred.model_path == str(standin_path)
    assert pred.keypoint_names == KEYPOINTS
    assert pred.skeleton == [[0, 1], [0, 2], [1, 3], [2, 3]]
    assert pred.flip_pairs == [[1, 2]]
    assert pred.input_size == (64, 96)
    assert pred.threads == 1
    assert "standin" in repr(pred)


def test_to_coco(standin_path):
    pred = PosePredictor(standin_path, threads=1)
    box, offsets = CASES["wide"]
    img, _, _ = scene(box, offsets, pred.metadata)
    res = pred.predict(img, [box, box])
    out = res.to_coco(image_id=42)
    assert json.loads(json.dumps(out)) == out  # plain Python numbers only
    assert len(out) == 2
    d = out[0]
    assert d["image_id"] == 42 and d["category_id"] == 1 and d["bbox"] == [float(v) for v in box]
    kp = np.array(d["keypoints"]).reshape(4, 3)
    np.testing.assert_allclose(kp[:, :2], res.keypoints[0], rtol=1e-6)
    np.testing.assert_allclose(kp[:, 2], res.scores[0], rtol=1e-6)
    assert d["score"] == pytest.approx(float(res.scores[0].mean()))
    assert json.dumps(res.to_coco(np.int64(7)))  # a numpy id (from an array of ids) becomes a plain int
    assert type(res.to_coco(np.int64(7))[0]["image_id"]) is int


def test_photos_beyond_opencvs_warp_limit(standin_path):
    """cv2.warpAffine refuses sources of 32,767 px or more: a panorama's person comes back where it is, and a
    crop over the whole panorama still runs (sampled every few pixels)."""
    pred = PosePredictor(standin_path, threads=1)
    box, offsets = CASES["wide"]
    img, _, _ = scene(box, offsets, pred.metadata)
    h, w = img.shape[:2]
    pano = np.zeros((h, 33000, 3), np.uint8)
    pano[:, 32500:32500 + w] = img
    near = pred.predict(img, [box])
    far = pred.predict(pano, [[box[0] + 32500, box[1], box[2], box[3]]])
    np.testing.assert_allclose(far.keypoints[0], near.keypoints[0] + [32500, 0], atol=1e-3)
    np.testing.assert_allclose(far.scores, near.scores, atol=1e-6)
    whole = pred.predict(pano)
    assert whole.keypoints.shape == (1, 4, 2) and np.isfinite(whole.keypoints).all()


def test_crops_are_warped_from_the_region_alone(standin_path, monkeypatch):
    """A photo past OpenCV's warp limit (here made small) is warped from each region's window of it, with the same
    pixels as one warp of it all (regions within the limit: no pixel skipped)."""
    import cv2

    import fasterpose_rt.preprocess as preprocess
    from fasterpose_rt.preprocess import check_boxes, warp_crops
    monkeypatch.setattr(preprocess, "_WARP_LIMIT", 300)
    meta = PosePredictor(standin_path, threads=1).metadata
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (200, 320, 3), np.uint8)
    boxes = np.r_[np.c_[rng.uniform(-40, 320, 30), rng.uniform(-30, 200, 30), rng.uniform(0.5, 120, 30),
                        rng.uniform(0.5, 100, 30)], [[-0.5, -0.5, 150, 90], [400, 400, 10, 10], [-60, -60, 20, 20]]]
    affines = crop_transforms(check_boxes(boxes, img.shape), meta)
    w, h = meta.input_size
    whole = np.stack([cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                      for m in affines])
    np.testing.assert_array_equal(warp_crops(img, affines, meta.input_size), whole)


def test_pose_result_is_a_plain_dataclass():
    r = PoseResult(np.zeros((1, 2, 2), np.float32), np.ones((1, 2), np.float32), np.zeros((1, 4), np.float32))
    assert len(r) == 1 and r.keypoint_names == []
    assert r.to_coco("a", category_id=3)[0]["category_id"] == 3


def three_persons(presence=True, track_ids=True):
    n = 3
    return PoseResult(np.arange(n * 2 * 2, dtype=np.float32).reshape(n, 2, 2), np.full((n, 2), 0.5, np.float32),
                      np.arange(n * 4, dtype=np.float32).reshape(n, 4), ["a", "b"],
                      track_ids=np.array([5, 6, 7]) if track_ids else None,
                      presence=np.array([0.1, 0.2, 0.3], np.float32) if presence else None)


@pytest.mark.parametrize("presence", [True, False])
def test_take_with_a_tuple_of_indices_is_those_persons(presence):
    """A tuple was one index per axis: an IndexError, or without presence and track ids a result of 2 persons
    with (2,) scores."""
    r = three_persons(presence, track_ids=presence)
    for rows in ((0, 2), [0, 2], np.array([0, 2]), [True, False, True], (True, False, True)):
        s = r.take(rows)
        assert s.keypoints.shape == (2, 2, 2) and s.scores.shape == (2, 2) and s.boxes.shape == (2, 4)
        np.testing.assert_array_equal(s.boxes, r.boxes[[0, 2]])
        if presence:
            assert s.track_ids.tolist() == [5, 7] and s.presence.tolist() == pytest.approx([0.1, 0.3])
    assert len(r.take((1,))) == 1 and len(r.take(np.int64(1))) == 1 and len(r.take(())) == 0
    assert len(r.take([])) == 0 and r.take(slice(1, None)).boxes.shape == (2, 4)


def test_pose_results_compare_by_identity_and_hash():
    """eq=True compared numpy fields: ==, `in` and sets raised. One result equals itself only."""
    a, b = three_persons(), three_persons()
    assert a == a and a != b and b not in [a] and a in [b, a]
    assert len({a, b, a}) == 2 and {a: 1}[a] == 1


def test_numpy_numbers_are_options_as_good_as_pythons(standin_path):
    """np.int64(1) for threads or batch_size and np.float32(1.2) for box_padding were refused as not numbers."""
    pred = PosePredictor(standin_path, threads=np.int64(1), batch_size=np.int64(8), box_padding=np.float32(1.5))
    assert pred.threads == 1 and pred.batch_size == 8 and type(pred.batch_size) is int
    assert pred.box_padding == 1.5 and type(pred.box_padding) is float
    for bad in (np.bool_(True), np.float64(8.0), np.int64(0)):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            PosePredictor(standin_path, threads=1, batch_size=bad)
    for bad in (np.bool_(True), np.float32("nan"), np.float64(-1.0)):
        with pytest.raises(ValueError, match="box_padding must be a number from 0.5 to 4"):
            PosePredictor(standin_path, threads=1, box_padding=bad)


def test_a_box_far_outside_the_photo_is_drawn_without_overflow(standin_path):
    """cv2 draws int32 fixed-point (x16) points: a box at 1e8 px gave an OpenCV parse error. Far points are cut
    to beyond the photo; a limb reaching far out keeps its direction within the photo."""
    pred = PosePredictor(standin_path, threads=1)
    img = np.zeros((96, 128, 3), np.uint8)
    for box in ([1e8, 1e8, 1e8, 1e8], [-1e8, 5, 1e8, 1e8], [1e8, -1e8, 1e-3, 1e8]):  # predict takes up to 1e8
        res = pred.predict(img, [box])
        res.scores[:] = 1.0  # every joint and limb drawn
        assert pred.draw(img, res).shape == img.shape
    far = draw_poses(img, [[[10.0, 10.0], [10.0 + 4e9, 10.0 + 2e9]]], [[1.0, 1.0]], [[0, 1]], ["a", "b"])
    near = draw_poses(img, [[[10.0, 10.0], [210.0, 110.0]]], [[1.0, 1.0]], [[0, 1]], ["a", "b"])
    np.testing.assert_array_equal(far, near)  # the same pixels as the limb ending beyond the photo's edge


def test_crop_transforms_follow_geometry(standin_path):
    """The box centre goes to the crop centre; the longer (padded) side spans the crop edge to edge."""
    meta = standin_metadata()
    m = crop_transforms(np.array([[10.0, 20.0, 30.0, 200.0]]), meta)[0]
    centre = m[:, :2] @ [25.0, 120.0] + m[:, 2]
    np.testing.assert_allclose(centre, [31.5, 47.5])
    top = m[:, :2] @ [25.0, 120.0 - 125.0] + m[:, 2]  # half of 200 · 1.25 above the centre
    np.testing.assert_allclose(top, [31.5, -0.5])


def test_box_padding_override_equals_a_model_that_records_it(standin_factory):
    own, other = standin_factory(), standin_factory(box_padding=1.6)
    pred = PosePredictor(own, threads=1, box_padding=1.6)
    assert pred.box_padding == 1.6 and PosePredictor(own, threads=1).box_padding == 1.25
    assert "box_padding=1.6" in repr(pred)
    box, offsets = CASES["top_outside"]
    img, points, scale = scene(box, offsets, pred.metadata)
    res, ref = pred.predict(img, [box]), PosePredictor(other, threads=1).predict(img, [box])
    np.testing.assert_array_equal(res.keypoints, ref.keypoints)  # the same crops, the same answer
    assert crop_px_errors(res, points, scale).max() < TOL
    # the override is this predictor's only: the model's own padding crops differently
    plain = PosePredictor(own, threads=1).predict(img, [box])
    assert not np.array_equal(plain.keypoints, res.keypoints)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1.1"])
def test_bad_box_padding_is_refused(standin_path, bad):
    with pytest.raises(ValueError, match="box_padding must be a number from 0.5 to 4"):
        PosePredictor(standin_path, threads=1, box_padding=bad)
