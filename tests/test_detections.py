"""fasterpose_rt.detections: COCO's top-down protocol on a detector's boxes (reading, rescoring, OKS-NMS, matching),
and metrics.oks against pycocotools' own computeOks."""
import json

import numpy as np
import pytest

from fasterpose_rt.detections import DetectionsError, keep_poses, load_detections, match_poses, oks_nms, rescore
from fasterpose_rt.metrics import oks

SIGMAS = np.array([0.026, 0.079, 0.107, 0.087])


def test_oks_is_pycocotools_computeoks():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    gt = rng.uniform(20, 180, (3, 4, 2))
    vis = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 1, 1]], bool)
    areas = np.array([900.0, 2500.0, 400.0])
    pred = gt[[0, 1, 2, 0, 1]] + rng.normal(0, 6, (5, 4, 2))
    data = {"images": [{"id": 1, "width": 200, "height": 200}],
            "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b", "c", "d"]}],
            "annotations": [{"id": j + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(areas[j]),
                             "bbox": [0, 0, 30, 30], "num_keypoints": int(vis[j].sum()),
                             "keypoints": np.concatenate([gt[j], 2 * vis[j, :, None]], axis=1).ravel().tolist()}
                            for j in range(3)]}
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    scores = np.linspace(0.9, 0.5, 5)  # computeOks orders detections by score: already in that order here
    dets = coco.loadRes([{"image_id": 1, "category_id": 1, "score": float(s),
                          "keypoints": np.concatenate([p, np.ones((4, 1))], axis=1).ravel().tolist()}
                         for p, s in zip(pred, scores)])
    ev = COCOeval(coco, dets, "keypoints")
    ev.params.kpt_oks_sigmas = SIGMAS
    ev.params.imgIds = [1]
    ev.evaluate()  # fills ev._gts / ev._dts
    theirs = ev.computeOks(1, 1)  # (detections, labelled persons)
    ours = oks(pred[:, None], gt[None], vis[None], areas[None], SIGMAS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert oks(pred[:1], gt[:1], np.zeros((1, 4), bool), areas[:1], SIGMAS)[0] == 0.0  # nothing labelled


def test_rescore_is_box_score_times_mean_of_the_sure_joints():
    joints = np.array([[0.9, 0.5, 0.1, 0.2], [0.1, 0.0, 0.2, 0.05]])
    np.testing.assert_allclose(rescore([0.5, 1.0], joints), [0.5 * 0.7, 0.0])  # 0.2 itself is not above 0.2


def test_oks_nms_drops_a_pose_found_twice_and_keeps_a_second_person():
    a = np.array([[10, 10], [20, 10], [10, 40], [20, 40]], np.float64)
    poses = np.stack([a + 1.0, a, a + [100, 0]])  # the first two are one person
    areas = np.full(3, 40 * 30.0)
    assert oks_nms(poses, [0.5, 0.9, 0.3], areas, SIGMAS).tolist() == [1, 2]  # best first
    assert sorted(oks_nms(poses, [0.5, 0.9, 0.3], areas, SIGMAS, threshold=1.0).tolist()) == [0, 1, 2]


def test_keep_poses_rescores_then_drops_the_pose_found_twice_by_its_boxes_areas():
    a = np.array([[10, 10], [20, 10], [10, 40], [20, 40]], np.float64)
    poses = np.stack([a + 1.0, a, a + [100, 0]])
    joints = np.array([[0.9, 0.9, 0.9, 0.9], [0.5, 0.5, 0.5, 0.1], [0.3, 0.3, 0.3, 0.3]])
    boxes = np.array([[0, 0, 40, 60], [0, 0, 40, 60], [100, 0, 40, 60]], np.float64)
    keep, final = keep_poses(poses, joints, [0.5, 0.9, 1.0], boxes, SIGMAS)
    assert keep.tolist() == [0, 2] and np.allclose(final, [0.45, 0.3])  # 0.5 x 0.9 beats 0.9 x 0.5 (0.1 not sure)
    assert keep.tolist() == oks_nms(poses, rescore([0.5, 0.9, 1.0], joints), np.full(3, 2400.0), SIGMAS).tolist()


def test_match_poses_one_pose_per_person_best_oks_first_and_only_where_the_boxes_meet():
    person = np.array([[10, 10], [20, 10], [10, 40], [20, 40]], np.float64)
    gt = np.stack([person, person + [60, 0]])
    vis, gt_boxes, areas = np.ones((2, 4), bool), np.array([[8, 8, 14, 34], [68, 8, 14, 34]]), np.full(2, 476.0)
    poses = np.stack([person + 3.0, person + 0.5, person + [60, 0]])
    boxes = np.array([[5, 5, 20, 40], [5, 5, 20, 40], [200, 5, 20, 40]])  # the third pose's box is elsewhere
    assert match_poses(poses, boxes, gt, vis, gt_boxes, areas, SIGMAS).tolist() == [1, -1]
    boxes[2] = [65, 5, 20, 40]
    assert match_poses(poses, boxes, gt, vis, gt_boxes, areas, SIGMAS).tolist() == [1, 2]
    assert match_poses(poses[:0], boxes[:0], gt, vis, gt_boxes, areas, SIGMAS).tolist() == [-1, -1]


def test_load_detections_keeps_the_persons_of_listed_photos(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [50, 2, 30, 40], "score": 0.2},
        {"image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 40], "score": 0.9},  # a car
        {"image_id": 7, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},  # a photo the file lacks
        {"image_id": 2, "bbox": [1, 2, 0, 40], "score": 0.9},  # empty
    ]))
    found, counts = load_detections(path, [1, 2], category_id=1)
    np.testing.assert_array_equal(found[1][0], [[1, 2, 30, 40], [50, 2, 30, 40]])
    np.testing.assert_array_equal(found[1][1], [0.9, 0.2])
    assert found[2][0].shape == (0, 4) and found[2][1].shape == (0,)
    assert counts == {"entries": 5, "used": 2, "other_category": 1, "other_images": 1, "other_files": 0,
                      "empty_boxes": 1, "remapped": 0, "other_file_example": None}


@pytest.mark.parametrize("content, message", [
    ({"annotations": []}, "is a JSON list of {image_id, bbox, score}"),
    ([{"bbox": [0, 0, 1, 1], "score": 1}], "entry 0 needs an integer 'image_id'"),
    ([{"image_id": 1, "bbox": [0, 0, 1], "score": 1}], "entry 0: 'bbox' must be [x, y, w, h] numbers"),
    ([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}], "entry 0: 'score' must be a number"),
    ([{"image_id": 9, "bbox": [0, 0, 1, 1], "score": 1}], "none of its 1 detections can be used: 1 name photos"),
    # boxes preprocess.check_boxes refuses: named here, not a crash of the run that crops them
    ([{"image_id": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 1, "bbox": [66, 17, 1e300, 1e300]}],
     "entry 1: 'bbox' [66, 17, 1e+300, 1e+300] is out of range (values within +-1e+08 px, sides at least 0.001 px)"),
    ([{"image_id": 1, "bbox": [0, 0, 1e-5, 1]}], "entry 0: 'bbox' [0, 0, 1e-05, 1] is out of range"),
    ([{"image_id": 1, "bbox": [-2e8, 0, 0, 1]}], "entry 0: 'bbox' [-200000000.0, 0, 0, 1] is out of range"),
])
def test_load_detections_names_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DetectionsError, match=None) as e:
        load_detections(path, [1])
    assert message in str(e.value) and str(path) in str(e.value)


def test_load_detections_places_an_entry_by_its_file_name_over_its_image_id(tmp_path):
    path = tmp_path / "dets.json"
    names = {10: "val/a.jpg", 20: "val/b.jpg"}
    path.write_text(json.dumps([
        {"image_id": 1, "file_name": "/data/val/a.jpg", "bbox": [1, 2, 30, 40], "score": 0.9},  # predict's numbering
        {"image_id": 20, "file_name": "val/b.jpg", "bbox": [2, 2, 30, 40], "score": 0.8},  # agrees
        {"file_name": "C:\\data\\val\\b.jpg", "bbox": [3, 2, 30, 40], "score": 0.7},  # a Windows path, no id
        {"image_id": 10, "file_name": "other/a.jpg", "bbox": [4, 2, 30, 40], "score": 0.6},  # the name wins: none
        {"image_id": 10, "bbox": [5, 2, 30, 40], "score": 0.5},  # no name: by image_id, as before
    ]))
    found, counts = load_detections(path, names, 1, file_names=names)
    np.testing.assert_array_equal(found[10][0][:, 0], [1, 5])
    np.testing.assert_array_equal(found[20][0][:, 0], [2, 3])
    assert (counts["used"], counts["remapped"], counts["other_files"]) == (4, 1, 1)
    assert counts["other_file_example"] == "other/a.jpg"
    path.write_text(json.dumps([d for d in json.loads(path.read_text()) if "image_id" in d]))
    found, counts = load_detections(path, names, 1)  # without the file's names: image_id alone, as before
    assert counts["other_images"] == 1 and counts["remapped"] == 0
    np.testing.assert_array_equal(found[10][0][:, 0], [4, 5])


@pytest.mark.parametrize("content, message", [
    ([{"file_name": "x/c.jpg", "bbox": [0, 0, 1, 1], "score": 1}],
     "none of its 1 detections can be used: 1 name files the annotation file does not list (e.g. 'x/c.jpg')"),
    ([{"file_name": 7, "image_id": 1, "bbox": [0, 0, 1, 1]}], "entry 0: 'file_name' must be a photo's file name"),
    ([{"bbox": [0, 0, 1, 1]}], "entry 0 needs an integer 'image_id' or a 'file_name'"),
])
def test_load_detections_by_file_name_names_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DetectionsError) as e:
        load_detections(path, [1], file_names={1: "a.jpg"})
    assert message in str(e.value) and str(path) in str(e.value)


@pytest.mark.parametrize("names, message", [
    # two photos of two folders that the file's one name ends in (review s57: both placed on it, scored as one)
    (["x/a.jpg", "y/a.jpg"], "entries 0 and 1 name 2 photos, 'x/a.jpg' and 'y/a.jpg', placed by name on one photo "
                             "of the annotation file, 'a.jpg' (image_id 1): their detections would be scored as one "
                             "photo's; keep only that photo's detections, or list each photo in the annotation "
                             "file by more of its path (as 'x/a.jpg')"),
    (["a.jpg", "x/a.jpg"], "entries 0 and 1 name 2 photos, 'a.jpg' and 'x/a.jpg'"),  # predict . of a folder
    (["/d1/a.jpg", "/d2/a.jpg"], "entries 0 and 1 name 2 photos, '/d1/a.jpg' and '/d2/a.jpg'"),
    (["C:\\d\\a.jpg", "a.jpg", "/d/x/a.jpg"], "entries 0, 1 and 2 name 3 photos"),  # two absolute ones differ
])
def test_load_detections_refuses_two_photos_placed_by_name_on_one(tmp_path, names, message):
    path = tmp_path / "dets.json"
    dets = [{"image_id": 1, "file_name": n, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9} for n in names]
    dets[-1]["category_id"] = 3  # a car: still a photo the file's a.jpg cannot be as well
    dets.append({"image_id": 1, "file_name": names[0], "bbox": [5, 2, 30, 40]})  # more boxes of a photo: one photo
    path.write_text(json.dumps(dets))
    with pytest.raises(DetectionsError) as e:
        load_detections(path, [1, 2], 1, file_names={1: "a.jpg", 2: "b.jpg"})
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value) and "\n" not in str(e.value)


def test_load_detections_names_every_photo_of_the_file_named_twice(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"file_name": f"{d}/{n}", "bbox": [1, 2, 30, 40]} for n in ("a.jpg", "b.jpg")
                                for d in ("x", "y")]))
    with pytest.raises(DetectionsError, match=r"entries 0 and 1 name 2 photos, 'x/a.jpg' and 'y/a.jpg', .* 'a.jpg' "
                                              r"\(image_id 1\).* \(1 other photo of the annotation file is named so "
                                              r"too\)$"):
        load_detections(path, [1, 2], 1, file_names={1: "a.jpg", 2: "b.jpg"})


def test_load_detections_by_name_takes_one_photo_spelled_two_ways_and_photos_the_file_tells_apart(tmp_path):
    path = tmp_path / "dets.json"

    def load(names, file_names):
        path.write_text(json.dumps([{"image_id": 9, "file_name": n, "bbox": [k, 2, 30, 40], "score": 0.5}
                                    for k, n in enumerate(names)]))
        found, counts = load_detections(path, file_names, 1, file_names=file_names)
        return {i: b[:, 0].tolist() for i, (b, _) in found.items()}, counts

    # an absolute path and a relative one it ends in: one photo (as a Windows path is); repeated names too
    assert load(["val/a.jpg", "/data/val/a.jpg", "val/a.jpg", "C:\\data\\val\\b.jpg", "val/b.jpg"],
                {1: "a.jpg", 2: "val/b.jpg"})[0] == {1: [0, 1, 2], 2: [3, 4]}
    # the file's longer names tell x/a.jpg and y/a.jpg apart: each its own photo (the longest match)
    assert load(["/data/x/a.jpg", "/data/y/a.jpg"], {1: "x/a.jpg", 2: "y/a.jpg"})[0] == {1: [0], 2: [1]}
    assert load(["x/a.jpg", "y/a.jpg"], {1: "a.jpg", 2: "x/a.jpg"})[0] == {1: [1], 2: [0]}
    found, counts = load(["x/a.jpg", "y/a.jpg"], {1: "x/a.jpg", 2: "b.jpg"})  # y/a.jpg is no photo of the file
    assert found == {1: [0], 2: []} and counts["other_files"] == 1


def test_load_detections_by_image_id_is_as_before(tmp_path):
    """COCO's own detection results name photos by image_id only: any number of boxes on a photo, with or without
    the file's names; without them (models.validate, benchmarks) a file_name is not read at all."""
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [k, 2, 30, 40], "score": 0.9}
                                for k in range(3)] + [{"image_id": 2, "bbox": [9, 2, 30, 40]}]))
    for file_names in (None, {1: "a.jpg", 2: "x/a.jpg"}):
        found, counts = load_detections(path, [1, 2], 1, file_names=file_names)
        assert found[1][0][:, 0].tolist() == [0, 1, 2] and found[2][0][:, 0].tolist() == [9]
        assert counts["used"] == 4 and counts["remapped"] == 0
    path.write_text(json.dumps([{"image_id": 1, "file_name": f"{d}/a.jpg", "bbox": [k, 2, 30, 40]}
                                for k, d in enumerate("xy")]))
    found, counts = load_detections(path, [1])  # no file names given: placed by image_id, as before
    assert found[1][0][:, 0].tolist() == [0, 1] and counts["used"] == 2


def test_load_detections_by_name_on_a_photo_the_file_lists_twice_takes_the_image_id_or_refuses(tmp_path):
    # review s57: an annotation file listing a.jpg under ids 1 and 3 had every detection named a.jpg go to id 3
    path = tmp_path / "dets.json"
    file_names = {1: "val/a.jpg", 2: "b.jpg", 3: "./val/a.jpg"}
    path.write_text(json.dumps([{"image_id": i, "file_name": "/d/val/a.jpg", "bbox": [i, 2, 30, 40]} for i in (1, 3)]
                               + [{"image_id": 1, "file_name": "b.jpg", "bbox": [7, 2, 30, 40]}]))
    found, counts = load_detections(path, file_names, 1, file_names=file_names)
    assert {i: b[:, 0].tolist() for i, (b, _) in found.items()} == {1: [1], 2: [7], 3: [3]}
    assert counts["remapped"] == 1  # b.jpg's entry, numbered 1, is photo 2
    for entry, told in (({"file_name": "val/a.jpg"}, "has no image_id"),
                        ({"image_id": 2, "file_name": "x/val/a.jpg"}, "its image_id 2 is none of them")):
        path.write_text(json.dumps([{**entry, "bbox": [1, 2, 30, 40]}]))
        with pytest.raises(DetectionsError) as e:
            load_detections(path, file_names, 1, file_names=file_names)
        assert str(e.value) == (f"{path}: entry 0: 'file_name' {entry['file_name']!r} is the annotation file's "
                                f"'val/a.jpg', which it lists under image ids 1 and 3, and the entry {told}: give it "
                                f"the image_id of its photo")


def test_load_detections_names_are_not_read_from_the_current_folder(tmp_path, monkeypatch):
    """A detections file's names are not paths from where eval runs: "a.jpg" was placed on val2017/a.jpg when run
    from inside val2017/, and refused from its parent (review s58)."""
    (tmp_path / "val2017").mkdir()
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"file_name": "a.jpg", "bbox": [1, 2, 30, 40]}]))
    file_names = {7: "val2017/a.jpg", 8: "train2017/a.jpg"}
    for where in (tmp_path, tmp_path / "val2017"):
        monkeypatch.chdir(where)
        with pytest.raises(DetectionsError, match="1 name files the annotation file does not list"):
            load_detections(path, file_names, 1, file_names=file_names)
