"""``fasterpose eval`` on inputs that used to be misread: --out naming an input, boxes no model can crop, files
without sigmas, photos with an EXIF orientation, degenerate boxes, other categories' boxes, repeated image ids, a
report with nothing to calibrate; and photo_sets on a source without a photo. Stand-in models, tiny photos."""
import copy
import json
import os
import struct

import cv2
import numpy as np
import pytest
from clirunner import invoke
from standin import paint_blobs, standin_metadata, write_standin

from fasterpose_rt.cli import main

TORSO_NAMES = ["left_shoulder", "left_hip", "right_hip", "right_shoulder"]  # the stand-in's keypoints, with a torso
POINTS = [[40, 30], [30, 60], [50, 60], [40, 90]]


def run(*args):
    return invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def torso_model(tmp_path_factory):
    meta = standin_metadata()
    meta.keypoints = list(TORSO_NAMES)
    return write_standin(tmp_path_factory.mktemp("torso") / "torso.onnx", meta=meta)


def write_dataset(tmp_path, data=None, ext=".png", photo=None):
    """Two 80x120 photos (``photo(i, path)`` writes them; default: blobs where the stand-in finds them), one person
    each, annotated where the stand-in finds them. Returns (annotation file, images folder, data)."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    if data is None:
        data = {"images": [], "annotations": [],
                "categories": [{"id": 1, "name": "person", "keypoints": TORSO_NAMES, "sigmas": [0.05] * 4}]}
        for i in (1, 2):
            data["images"].append({"id": i, "file_name": f"{i}{ext}", "width": 80, "height": 120})
            data["annotations"].append({
                "id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 70, 110], "area": 70 * 110, "iscrowd": 0,
                "num_keypoints": 4, "keypoints": [v for x, y in POINTS for v in (x, y, 2)]})
    for im in data["images"]:
        path = images / im["file_name"]
        if photo is None:
            cv2.imwrite(str(path), paint_blobs((120, 80), POINTS))
        else:
            photo(im["id"], path)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return ann, images, data


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path)


def report_of(path):
    """The --out report, read as strict JSON (NaN or Infinity in it fails the test)."""
    def refuse(name):
        raise AssertionError(f"{name} in the report: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


# ------------------------------------------------------------------------------------------- 1: --out is an input

@pytest.mark.parametrize("option", ["--coco", "--detections", "--model", "--baseline"])
def test_eval_refuses_an_out_that_is_one_of_its_inputs(torso_model, dataset, tmp_path, option):
    ann, images, data = dataset
    inputs = {"--coco": ann, "--model": tmp_path / "model.onnx", "--detections": tmp_path / "dets.json",
              "--baseline": tmp_path / "baseline.onnx"}
    inputs["--model"].write_bytes(torso_model.read_bytes())
    inputs["--baseline"].write_bytes(torso_model.read_bytes())
    inputs["--detections"].write_text(json.dumps([{"image_id": 1, "bbox": [5, 5, 70, 110], "score": 1.0}]))
    before = inputs[option].read_bytes()
    args = ["eval", "--coco", ann, "--images", images, "--model", inputs["--model"], "-q"]
    if option in ("--detections", "--baseline"):
        args += [option, inputs[option]]
    r = run(*args, "--out", tmp_path / "." / inputs[option].name)  # another spelling of the same file
    assert r.exit_code == 2 and f"it is the {option} file; give --out another file" in r.stderr, r.output
    assert r.stdout == "" and inputs[option].read_bytes() == before


def test_eval_refuses_an_out_that_is_one_of_the_photos_it_scores(torso_model, dataset, tmp_path):
    """--out naming a photo under --images wrote the report over it, exit 0 (review s62)."""
    ann, images, data = dataset
    before = (images / "2.png").read_bytes()
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q", "--out", images / "." / "2.png")
    assert r.exit_code == 2 and "it is the photo 2.png the --coco file lists" in r.stderr, r.output
    assert (images / "2.png").read_bytes() == before
    os.link(images / "2.png", tmp_path / "two.png")  # the same photo under another name
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q", "--out", tmp_path / "two.png")
    assert r.exit_code == 2 and "it is the photo 2.png" in r.stderr and (images / "2.png").read_bytes() == before
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q", "--out", images / "3.png")
    assert r.exit_code == 0 and report_of(images / "3.png")["persons"] == 2, r.output  # a name no photo has


# ---------------------------------------------------------------------------- 2: boxes the model cannot crop

@pytest.mark.parametrize("bbox", [[5, 5, 1e300, 1e300], [5, 5, 1e-5, 1e-5], [1e9, 5, 70, 110]])
def test_eval_names_a_box_no_model_can_crop(torso_model, dataset, tmp_path, bbox):
    from fasterpose_rt.evaluate import EvalError, check_annotations

    ann, images, data = dataset
    data["annotations"][1]["bbox"] = bbox
    with pytest.raises(EvalError, match=r"ann.json: annotations\[1\] \(id 2\): 'bbox' .* is out of range"):
        check_annotations(data, "ann.json")
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 2 and f"{ann}: annotations[1] (id 2): 'bbox'" in r.stderr, r.output
    assert "values within +-1e+08 px, sides at least 0.001 px" in r.stderr and "unexpected" not in r.stderr
    # a detector's box: named by its entry
    data["annotations"][1]["bbox"] = [5, 5, 70, 110]
    ann.write_text(json.dumps(data))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "bbox": [5, 5, 70, 110], "score": 1.0},
                                {"image_id": 2, "bbox": bbox, "score": 1.0}]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q")
    assert r.exit_code == 2 and f"{dets}: entry 1: 'bbox'" in r.stderr and "out of range" in r.stderr, r.output


# ------------------------------------------------------------------------------------- 3: a file without sigmas

def test_eval_without_sigmas_reports_pck_and_says_why_no_ap(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    del data["categories"][0]["sigmas"]
    ann.write_text(json.dumps(data))
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = report_of(out)
    assert rep["pck@0.2"]["pck"] == 1.0 and rep["coco"] is None
    assert "no per-keypoint 'sigmas' in the category; OKS needs them" in rep["coco_note"]
    assert "COCO keypoints  not computed: " in r.stdout and "PCK@0.2 (torso) 1.000" in r.stdout
    # with a detector's boxes OKS picks the poses: still refused up front
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "bbox": [5, 5, 70, 110], "score": 1.0}]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q")
    assert r.exit_code == 2 and "no per-keypoint 'sigmas'" in r.stderr and r.stdout == ""


def test_match_keypoints_without_sigmas_says_why_and_writes_no_placeholder(dataset):
    from fasterpose_rt.evaluate import EvalError, match_keypoints

    _, _, data = dataset
    del data["categories"][0]["sigmas"]
    with pytest.raises(EvalError, match="no per-keypoint 'sigmas'"):
        match_keypoints(data, TORSO_NAMES, "ann.json")
    match = match_keypoints(data, TORSO_NAMES[::-1], "ann.json", need_sigmas=False)  # reordered: restricted
    assert match.partial and "OKS needs them" in match.no_sigmas
    assert "sigmas" not in match.restrict(data)["categories"][0]
    assert match_keypoints(data | {"categories": [dict(data["categories"][0], sigmas=[0.05] * 4)]}, TORSO_NAMES,
                           "ann.json", need_sigmas=False).no_sigmas is None


# ------------------------------------------------------------------------------------ 4: EXIF orientation

def with_orientation(jpeg: bytes, value: int) -> bytes:
    """A JPEG with an EXIF APP1 holding only Orientation = ``value``; its pixels unchanged."""
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + b"\0" * 4
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_eval_reads_photos_in_the_frame_of_the_files_width_and_height(torso_model, tmp_path):
    """The file's width and height (and keypoints) are the stored bitmap's; an EXIF orientation that turns the
    photo a quarter is ignored, with one warning; a photo of another size either way is named."""
    def rotated(i, path):
        ok, jpeg = cv2.imencode(".jpg", paint_blobs((120, 80), POINTS), [cv2.IMWRITE_JPEG_QUALITY, 98])
        path.write_bytes(with_orientation(jpeg.tobytes(), 6))

    ann, images, data = write_dataset(tmp_path, ext=".jpg", photo=rotated)
    assert cv2.imread(str(images / "1.jpg")).shape[:2] == (80, 120)  # the premise: OpenCV turns it
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("warning: 2 photos read as stored, an EXIF orientation ignored: it would turn them") == 1
    rep = report_of(out)
    assert rep["pck@0.2"]["pck"] == 1.0 and rep["coco"]["AP"] > 0.95
    data["images"][1].update(width=100)  # the size matches neither way: named
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 0, r.output
    assert "warning: 1 photo read as stored, an EXIF orientation ignored: it would turn it away" in r.stderr
    assert f"1 photo is not the size the annotation file gives, with or without EXIF orientation: " \
           f"{images / '2.jpg'} is 120x80 px, listed as 100x120" in r.stderr


# ------------------------------------------------------------------------------ 5: nothing to calibrate

def test_score_reliability_without_a_counted_joint_has_no_ece():
    from fasterpose_rt.metrics import score_reliability

    gt = np.array([[[40, 30], [30, 60], [50, 60], [40, 90]]], np.float64)
    rel = score_reliability(gt, gt, np.ones((1, 4), bool), TORSO_NAMES, np.full((1, 4), np.nan))
    assert rel == {"bins": [], "ece": None, "joints": 0}


def test_eval_report_is_json_when_no_pose_matched(torso_model, dataset, tmp_path):
    ann, images, _ = dataset
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    dets.write_text("[]")
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    rep = report_of(out)
    assert rep["pck@0.2"]["pck"] == 0.0 and rep["pck@0.2"]["by_score"]["ece"] is None


# ------------------------------------------------------------------------------ 6: degenerate boxes

def test_eval_runs_a_person_with_a_degenerate_box_on_the_box_around_its_keypoints(torso_model, dataset, tmp_path):
    ann, images, data = dataset
    data["annotations"][1]["bbox"] = [5, 5, -70, 110]
    del data["annotations"][1]["area"]
    ann.write_text(json.dumps(data))
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert f"warning: {ann}: 1 labelled person has a 'bbox' with w or h <= 0; run on the box around" in r.stderr
    rep = report_of(out)
    assert rep["persons"] == 2 and rep["pck@0.2"]["joints"] == 8 and rep["pck@0.2"]["pck"] == 1.0  # both metrics
    assert rep["coco"]["AR"] > 0.95


def test_check_annotations_takes_a_degenerate_boxs_area_from_the_labelled_keypoints(dataset):
    from fasterpose_rt.evaluate import check_annotations, persons_to_evaluate

    _, _, data = dataset
    for a in data["annotations"]:
        a["bbox"] = [5, 5, 0, 110]
        del a["area"]
    out = check_annotations(data, "ann.json")
    assert [a["area"] for a in out["annotations"]] == [20.0 * 60.0] * 2  # the joints span 20 x 60 px
    assert persons_to_evaluate(out, 1, "ann.json") == 2


def test_an_annotation_id_of_0_and_an_area_of_0_score_as_any_other(torso_model, dataset, tmp_path):
    """review s66: pycocotools' matches hold the matched person's id, 0 meaning "none", so a person of id 0 was never
    matched (coco-mini's AP 0.503 -> 0.355 with one such id, unsaid); and OKS divides by the area, so an 'area' of 0
    made AP 0.000, unsaid (in training's val_oks_ap too, which reads files as eval does)."""
    ann, images, data = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    base = report_of(out)["coco"]
    assert base["AP"] > 0.95
    data["annotations"][0]["id"] = 0
    for zero_areas in (False, True):
        for a in data["annotations"]:
            a["area"] = 0 if zero_areas else a["area"]
        ann.write_text(json.dumps(data))
        r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
        assert r.exit_code == 0, r.output
        assert report_of(out)["coco"] == base, zero_areas
    assert "2 of the persons have an 'area' of 0, which would make every OKS 0; COCO AP takes their box's w x h " \
           "instead" in r.stderr


def test_a_stale_num_keypoints_and_other_categories_are_said_and_scored_as_training_reads_them(torso_model, dataset,
                                                                                                tmp_path):
    """review s67: 'num_keypoints': 0 on persons with labelled keypoints left them out of COCO AP ("no labelled
    person"), where training's validation recounts them; persons of a second "person" category were left out
    unsaid."""
    ann, images, data = dataset
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    base = report_of(out)["coco"]
    for a in data["annotations"]:
        a["num_keypoints"] = 0
    data["categories"].append({"id": 7, "name": "person", "keypoints": []})
    data["annotations"].append(dict(data["annotations"][0], id=99, category_id=7))
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0 and report_of(out)["coco"] == base, r.output
    assert f"{ann}: {len(data['annotations']) - 1} of the persons have a 'num_keypoints' other than" in r.stderr
    assert "1 annotation of other categories ('person' (id 7)) left out: only the category 'person' (id 1)" in r.stderr


# --------------------------------------------------------------------- 7: other categories, repeated image ids

def test_eval_runs_only_the_keypoint_categorys_boxes(torso_model, dataset, tmp_path):
    """A keypoint category not named "person" beside a ball category: the balls are no persons."""
    ann, images, data = dataset
    data["categories"][0]["name"] = "human"
    data["categories"].append({"id": 37, "name": "sports ball"})
    data["annotations"] += [{"id": 10 + i, "image_id": i, "category_id": 37, "bbox": [5, 5, 70, 110],
                             "area": 7700, "iscrowd": 0} for i in (1, 2)]
    ann.write_text(json.dumps(data))
    out = tmp_path / "report.json"
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    rep = report_of(out)
    assert rep["persons"] == 2 and rep["coco"]["AP"] > 0.95


def test_coco_person_boxes_of_a_given_category():
    from fasterpose_rt.boxes import coco_person_boxes

    data = {"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "human"},
                                                                        {"id": 37, "name": "ball"}],
            "annotations": [{"image_id": 1, "category_id": 37, "bbox": [1, 1, 5, 5]},
                            {"image_id": 1, "category_id": 1, "bbox": [2, 2, 9, 9]}]}
    _, boxes = coco_person_boxes(data, "ann", category_id=1)
    assert boxes[1].boxes.tolist() == [[2, 2, 9, 9]] and boxes[1].ann_index.tolist() == [1]
    assert len(coco_person_boxes(data, "ann")[1][1].boxes) == 2  # predict --boxes: as before


def test_check_annotations_refuses_two_images_with_one_id(torso_model, dataset):
    from fasterpose_rt.evaluate import EvalError, check_annotations

    ann, images, data = dataset
    data["images"].append(dict(data["images"][1], id=1))
    with pytest.raises(EvalError, match=r"ann.json: images\[2\] has the id 1 of images\[0\]"):
        check_annotations(copy.deepcopy(data), "ann.json")
    ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 2 and "images[2] has the id 1 of images[0]" in r.stderr and r.stdout == ""



# ------------------------------------------------------------------- 7b: detections of two photos placed on one

def test_eval_refuses_detections_of_two_photos_placed_by_name_on_one(torso_model, dataset, tmp_path):
    """Review s57: the file lists 1.png; detections of x/1.png and y/1.png both ended in its name and were scored
    as one photo's (exit 0, a spurious pose lowering AP). Refused in one line, before any photo is run."""
    ann, images, data = dataset
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "file_name": "x/1.png", "category_id": 1, "bbox": [5, 5, 70, 110],
                                 "score": 0.9},
                                {"image_id": 2, "file_name": "y/1.png", "category_id": 1, "bbox": [0, 0, 40, 40],
                                 "score": 0.8}]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "-q")
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr == (f"Error: {dets}: entries 0 and 1 name 2 photos, 'x/1.png' and 'y/1.png', placed by name on "
                        "one photo of the annotation file, '1.png' (image_id 1): their detections would be scored as "
                        "one photo's; keep only that photo's detections, or list each photo in the annotation file "
                        "by more of its path (as 'x/1.png')\n")


def test_eval_places_detections_on_the_photos_the_files_longer_names_tell_apart(torso_model, tmp_path):
    """The file lists x/1.png and y/1.png: /data/x/1.png and /data/y/1.png are each its own photo's detections."""
    data = {"images": [], "annotations": [],
            "categories": [{"id": 1, "name": "person", "keypoints": TORSO_NAMES, "sigmas": [0.05] * 4}]}
    for i, name in ((1, "x/1.png"), (2, "y/1.png")):
        data["images"].append({"id": i, "file_name": name, "width": 80, "height": 120})
        data["annotations"].append({"id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 70, 110],
                                    "area": 70 * 110, "iscrowd": 0, "num_keypoints": 4,
                                    "keypoints": [v for x, y in POINTS for v in (x, y, 2)]})
        (tmp_path / "images" / name).parent.mkdir(parents=True, exist_ok=True)
    ann, images, data = write_dataset(tmp_path, data)
    dets, out = tmp_path / "dets.json", tmp_path / "report.json"
    dets.write_text(json.dumps([{"image_id": 1, "file_name": f"/data/{d}/1.png", "category_id": 1,
                                 "bbox": [5, 5, 70, 110], "score": 0.9} for d in ("y", "x")]))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "--detections", dets, "--out", out,
            "-q")
    assert r.exit_code == 0, r.output
    rep = report_of(out)["detections"]
    assert (rep["boxes"], rep["used"], rep["remapped"], rep["persons_matched"]) == (2, 2, 1, 2)


# ---------------------------------------------------------------------------------- 8: photo_sets, no photo

def test_read_photo_set_without_a_usable_photo_is_empty(tmp_path):
    from fasterpose_rt.photo_sets import read_photo_set

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((8, 8, 3), np.uint8))
    names, photos, counts = read_photo_set([tmp_path])
    assert names == [] and photos == []
    assert counts == {"files": 2, "unreadable": 1, "too_small": 1, "repeats": 0}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][0].update(category_id=[1]), "annotations[0]: 'category_id' must be an integer"),
    (lambda d: d["categories"][0].update(id=[1]), "the 'person' category needs an integer 'id'"),
    (None, "not valid JSON here: nested too deeply"),
])
def test_eval_names_a_malformed_annotation_file(torso_model, dataset, change, message):
    """A list for an id, JSON nested thousands deep: "unexpected TypeError" / "RecursionError", exit 1 (review
    s59); now named, exit 2."""
    ann, images, data = dataset
    if change is None:
        ann.write_text("[" * 200_000 + "]" * 200_000)
    else:
        change(data)
        ann.write_text(json.dumps(data))
    r = run("eval", "--coco", ann, "--images", images, "--model", torso_model, "-q")
    assert r.exit_code == 2 and message in r.stderr and "unexpected" not in r.stderr, r.output
