"""A small COCO training file around the demo photo, for the label-repair tools (fix_sides, doubtful_labels)."""
import json
from pathlib import Path

import cv2
import numpy as np

from fasterpose_rt import PosePredictor
from fasterpose_rt.skeletons import LSP14

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def demo_prediction():
    """(image, box [x, y, w, h] around the model's first prediction, PoseResult of the flip-tested default for
    that box)."""
    image = cv2.imread(str(PHOTO))
    pred = PosePredictor(flip_test=True)
    first = pred.predict(image).keypoints[0]
    x0, y0 = first.min(0)
    x1, y1 = first.max(0)
    box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    return image, box, pred.predict(image, [box])


def write_demo_coco(root: Path, image, box, labels):
    """Photos a.jpg and b.jpg (the image) and missing.jpg (never written), annotated with ``labels`` (3 arrays
    (14, 2), all labelled) as ids 10, 20, 30 on images 1, 2, 3. Returns (ann path, images dir, coco dict)."""
    def ann(i, image_id, points):
        kp = np.concatenate([np.round(points, 2), np.full((14, 1), 2.0)], axis=1).reshape(-1)
        return {"id": i, "image_id": image_id, "category_id": 1, "bbox": box, "area": box[2] * box[3],
                "iscrowd": 0, "num_keypoints": 14, "keypoints": kp.tolist()}

    images_dir = root / "images"
    images_dir.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(images_dir / name), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"},
                       {"id": 3, "file_name": "missing.jpg"}],
            "annotations": [ann(10 * (n + 1), n + 1, points) for n, points in enumerate(labels)],
            "categories": [{"id": 1, "name": "person", "keypoints": LSP14["keypoints"],
                            "skeleton": LSP14["skeleton"]}]}
    path = root / "ann.json"
    path.write_text(json.dumps(coco))
    return path, images_dir, coco
