"""Photos of a COCO file read in the frame of its keypoints (the stored bitmap's, where its width and height are),
whatever EXIF orientation they carry: the training dataset (models/data/coco_keypoints.py), the exporter's crops
(export/crops.py), score calibration's searched persons and the presence head's photos all read them as
``fasterpose eval`` does (fasterpose_rt.annotated_photos.read_as_listed), and the dataset says once what it read otherwise.

Photos are synthetic: one texture saved as a JPEG, and the same JPEG bytes with an EXIF block saying Orientation 6
(turn a quarter to display), so the stored pixels of both are the same.
"""
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch  # noqa: E402

from export.crops import list_persons, load_crops  # noqa: E402
from fasterpose_rt.annotated_photos import read_as_listed  # noqa: E402
from fasterpose_rt.inputs import read_image  # noqa: E402
from fasterpose_rt.metadata import ModelMetadata  # noqa: E402
from models.data.coco_keypoints import TopDownDataset, load_coco_keypoints  # noqa: E402
from test_cli_units import exif_jpeg  # noqa: E402

NAMES = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]
W, H = 120, 80  # the stored bitmap: wider than tall, so a quarter turn changes its size
BOX = [20.0, 10.0, 50.0, 60.0]  # [x, y, w, h] in the stored frame
POINTS = [[30, 20], [60, 20], [32, 60], [58, 62]]
INPUT = (32, 48)  # (w, h) of the crops


def _texture() -> np.ndarray:
    """(H, W, 3) uint8 BGR: smooth noise, so that any turn or shift of the photo changes a crop."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)  # what exif_jpeg encodes: the same bytes, without the EXIF block
    assert ok
    return buf.tobytes()


def _dataset(tmp_path: Path, photos, listed=None, sizes: bool = True) -> Path:
    """A COCO keypoint file over ``photos`` ({file name: JPEG bytes}, written to tmp_path/images), one person
    (BOX, POINTS) each; ``listed`` {file name: (width, height)} overrides the listed size (default W x H), and
    ``sizes=False`` lists none."""
    images = tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    entries, anns = [], []
    for i, (name, data) in enumerate(photos.items(), 1):
        (images / name).write_bytes(data)
        w, h = (listed or {}).get(name, (W, H))
        entries.append({"id": i, "file_name": name, **({"width": w, "height": h} if sizes else {})})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": BOX, "area": BOX[2] * BOX[3],
                     "iscrowd": 0, "num_keypoints": 4, "keypoints": [v for x, y in POINTS for v in (x, y, 2)]})
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": entries, "annotations": anns,
                               "categories": [{"id": 1, "name": "person", "keypoints": NAMES}]}))
    return ann


@pytest.fixture
def photos():
    """{"plain.jpg": the texture, "turned.jpg": the same JPEG with EXIF Orientation 6}."""
    texture = _texture()
    return {"plain.jpg": _jpeg(texture), "turned.jpg": exif_jpeg(texture, 6)}


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "read-per-item"])
def test_training_crops_of_a_photo_with_an_exif_orientation_are_those_of_the_stored_bitmap(tmp_path, photos, cache):
    ann = _dataset(tmp_path, photos)
    images = ann.parent / "images"
    assert read_image(images / "turned.jpg").shape[:2] == (W, H)  # the premise: OpenCV turns it (training did)
    assert np.array_equal(read_image(images / "turned.jpg", orientation=False), read_image(images / "plain.jpg"))
    image, frame = read_as_listed(images / "turned.jpg", (H, W))
    assert frame == "stored" and np.array_equal(image, read_image(images / "plain.jpg"))
    samples, meta = load_coco_keypoints(ann, images)
    assert [s.image_path.name for s in samples] == ["plain.jpg", "turned.jpg"]
    for train in (False, True):  # validation crops, and augmented training crops (the same draw for both)
        plain = TopDownDataset(samples[:1], meta, INPUT, train=train, cache=cache, warn=False)[(0, 7)]
        turned = TopDownDataset(samples[1:], meta, INPUT, train=train, cache=cache, warn=False)[(0, 7)]
        assert torch.equal(plain[0], turned[0]), "the turned photo's crop is not the stored bitmap's"
        assert torch.equal(plain[1], turned[1])  # targets: the same keypoints in the same crop
    assert [s.image_size for s in samples] == [(H, W), (H, W)]  # the listed (H, W) each sample carries
    # a file that lists no size: read as before, EXIF orientation applied
    bare = _dataset(tmp_path / "bare", photos, sizes=False)
    samples, meta = load_coco_keypoints(bare, bare.parent / "images")
    assert [s.image_size for s in samples] == [None, None]
    upright = TopDownDataset(samples[1:], meta, INPUT, train=False, cache=cache, warn=False)[0][0]
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    cv2.imwrite(str(rotated / "r.png"), cv2.rotate(read_image(images / "plain.jpg"), cv2.ROTATE_90_CLOCKWISE))
    samples[1].image_path = rotated / "r.png"
    assert torch.equal(upright, TopDownDataset(samples[1:], meta, INPUT, train=False, cache=cache, warn=False)[0][0])


def test_the_dataset_warns_once_with_the_counts(tmp_path, photos, capsys):
    texture = _texture()
    ann = _dataset(tmp_path, {"plain.jpg": photos["plain.jpg"], "turned.jpg": photos["turned.jpg"],
                              "turned2.jpg": exif_jpeg(texture, 8), "odd.jpg": photos["plain.jpg"]},
                   listed={"odd.jpg": (100, 80)})
    samples, meta = load_coco_keypoints(ann, ann.parent / "images")
    odd = ann.parent / "images" / "odd.jpg"
    for cache, check in ((True, False), (False, True)):  # cached up front; checked up front (validation, --no-cache)
        capsys.readouterr()
        ds = TopDownDataset(samples, meta, INPUT, train=False, cache=cache, check_photos=check)
        err = capsys.readouterr().err
        assert len(ds) == 4 and not ds.skipped
        assert err.count("warning:") == 1, err
        assert ("warning: 2 photos read as stored, an EXIF orientation ignored: it would turn them away from the "
                "width and height the annotation file gives (the frame of its keypoints); 1 photo is not the size "
                f"the annotation file gives, with or without EXIF orientation: {odd} is 120x80 px, listed as 100x80; "
                "the file's keypoints may be in another frame\n") in err
        for i in range(len(ds)):  # the items read again (uncached) in the same frame
            assert ds[i][0].shape == (3, INPUT[1], INPUT[0])
    TopDownDataset(samples, meta, INPUT, train=False, warn=False)  # another process of the run: says nothing
    assert "warning" not in capsys.readouterr().err
    TopDownDataset(samples[:1], meta, INPUT, train=False)  # nothing read otherwise: nothing to say
    assert "warning" not in capsys.readouterr().err


def test_export_crops_of_a_photo_with_an_exif_orientation_are_those_of_the_stored_bitmap(tmp_path, photos):
    ann = _dataset(tmp_path, photos)
    meta = ModelMetadata(input_size=INPUT, keypoints=list(NAMES), skeleton=[], flip_pairs=[[0, 1], [2, 3]])
    persons = list_persons(ann, NAMES)
    assert [p.name for p in persons.paths] == ["plain.jpg", "turned.jpg"]
    crops = load_crops(persons, [0, 1], meta)
    assert len(crops) == 2 and crops.skipped == 0
    assert np.array_equal(crops.crops[0], crops.crops[1]), "the turned photo's crop is not the stored bitmap's"
    assert np.array_equal(crops.affines[0], crops.affines[1]) and np.array_equal(crops.keypoints[0],
                                                                                 crops.keypoints[1])


def test_score_calibration_searches_the_stored_bitmap(tmp_path, photos, monkeypatch):
    import export.score_calibration as sc

    ann = _dataset(tmp_path, photos)
    seen = []
    monkeypatch.setattr(sc, "find_poses_batch", lambda pred, images, **_: seen.extend(images) or [[] for _ in images])
    pred = SimpleNamespace(metadata=SimpleNamespace(num_keypoints=len(NAMES)), batch_size=8)
    sc.predict_searched(pred, json.loads(ann.read_text()), ann.parent / "images")
    plain = read_image(ann.parent / "images" / "plain.jpg")
    assert len(seen) == 2 and all(np.array_equal(im, plain) for im in seen)


def test_the_presence_head_fits_on_the_stored_bitmaps(tmp_path, photos, monkeypatch, standin_path):
    import export.presence_head as ph
    from tests.standin import KEYPOINTS

    class Stop(Exception):
        pass

    seen = []

    class Features:  # stands in for the model run: the photos the fit would read, then stop
        def __init__(self, path, threads):
            pass

        def found(self, images, boxes=None, progress=None):
            seen.extend(images)
            raise Stop

    ann = _dataset(tmp_path, {f"{name[:-4]}{i}.jpg": data for i in range(10) for name, data in photos.items()})
    data = json.loads(ann.read_text())
    data["categories"][0].update(keypoints=KEYPOINTS, flip_pairs=[[1, 2]])
    ann.write_text(json.dumps(data))
    monkeypatch.setattr(ph, "_Features", Features)
    monkeypatch.setattr(ph, "_negative_photos", lambda sources, log: [])
    said = []
    with pytest.raises(Stop):
        ph.fit_presence_head(standin_path, ann, ann.parent / "images", negatives=[tmp_path],
                             out_path=tmp_path / "o.onnx", log=said.append)
    plain = read_image(ann.parent / "images" / "plain0.jpg")
    assert len(seen) == 20 and all(np.array_equal(im, plain) for im in seen)
    assert [s for s in said if s.startswith("warning:")] == [
        "warning: 10 photos read as stored, an EXIF orientation ignored: it would turn them away from the width and "
        "height the annotation file gives (the frame of its keypoints)"]
