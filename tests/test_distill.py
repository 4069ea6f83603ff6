"""Knowledge distillation: soft-target mixing, the flip-averaged teacher, and `models.train --teacher`."""
import json
import shutil

import numpy as np
import pytest
from conftest import TORCH_ABSENT
pytest.importorskip("torch", reason=TORCH_ABSENT)
import torch

from fasterpose_rt.skeletons import LSP14, flip_permutation
from models import build_model
from models.codec import HeatmapCodec
from models.distill import Teacher, TeacherError, distillation_targets, load_teacher
from models.losses import RCELoss

from test_training import _lsp_like_dataset, _main_in_process, _train_cmd

LSP_FLIP_PAIRS = [[0, 5], [1, 4], [2, 3], [6, 11], [7, 10], [8, 9]]


def test_distillation_targets_mix_labelled_joints_and_fill_unlabelled_ones():
    gt = torch.zeros(1, 3, 4, 4)
    gt[0, 0, 1, 1] = 1.0
    teacher = torch.full((1, 3, 4, 4), 0.2)
    weights = torch.tensor([[1.0, 0.0, 1.0]])
    y, w = distillation_targets(gt, weights, teacher, alpha=0.25)
    assert y[0, 0, 1, 1].item() == pytest.approx(0.75 * 1.0 + 0.25 * 0.2)  # labelled: mixed
    assert y[0, 0, 0, 0].item() == pytest.approx(0.25 * 0.2)
    assert torch.allclose(y[0, 1], teacher[0, 1])  # unlabelled: the teacher's map ...
    assert w.tolist() == [[1.0, 0.25, 1.0]]  # ... with weight alpha
    y0, w0 = distillation_targets(gt, weights, teacher, alpha=0.0)  # alpha 0: ground truth only
    assert torch.equal(y0[:, [0, 2]], gt[:, [0, 2]]) and w0.tolist() == weights.tolist()
    # RCE's gradient σ(z) - y pulls a logit towards the mixed target, which lies between label and teacher.
    z = torch.zeros(1, 3, 4, 4, requires_grad=True)
    RCELoss()(z, y, w).backward()
    assert z.grad[0, 1].abs().sum() > 0  # the unlabelled joint now has a signal
    with pytest.raises(ValueError, match="alpha"):
        distillation_targets(gt, weights, teacher, alpha=1.5)


def test_flip_averaged_teacher_is_mirror_equivariant_and_frozen():
    torch.manual_seed(0)
    model = build_model("fasterpose_r18", 14)
    for m in model.modules():  # non-trivial BN statistics, so eval mode matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    teacher = Teacher(model, logits=True, flip_pairs=LSP_FLIP_PAIRS, num_keypoints=14, flip=True)
    teacher.train()  # a teacher never switches to batch statistics
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 64, 48)
    probs = teacher(x)
    assert probs.shape == (2, 14, 16, 12) and 0 <= probs.min() and probs.max() <= 1
    perm = torch.as_tensor(flip_permutation(14, LSP_FLIP_PAIRS))
    mirrored = teacher(x.flip(3)).flip(3)[:, perm]  # predicting the mirrored crop = mirroring the prediction
    torch.testing.assert_close(mirrored, probs, atol=1e-5, rtol=1e-4)
    single = Teacher(model, logits=True, flip_pairs=LSP_FLIP_PAIRS, num_keypoints=14, flip=False)
    torch.testing.assert_close(single(x), torch.sigmoid(model.eval()(x)))


class _PeakAt(torch.nn.Module):
    """A stand-in network whose logits peak where the codec puts fixed crop points, at whatever input size it
    is given; it records the sizes it saw."""

    def __init__(self, points_for_size):
        super().__init__()
        self.points_for_size, self.seen = points_for_size, []

    def forward(self, x):
        size = (x.shape[3], x.shape[2])
        self.seen.append(size)
        maps, _ = HeatmapCodec(size).encode(self.points_for_size(size))
        p = torch.as_tensor(maps).clamp(1e-4, 1 - 1e-4)[None].expand(x.shape[0], -1, -1, -1)
        return torch.logit(p)


def test_teacher_at_its_own_input_size_returns_maps_on_the_students_grid_exactly():
    student, teacher_size = (96, 128), (128, 176)  # the fast model taught by the default: x 1.33, y 1.375
    pts = np.array([[10.3, 20.7], [60.0, 95.25], [70.2, 40.4]])  # student crop px, off the edges
    scale = np.array(teacher_size) / np.array(student)
    net = _PeakAt(lambda size: pts if size == student else (pts + 0.5) * scale - 0.5)  # pixel centres aligned
    teacher = Teacher(net, logits=True, flip_pairs=[], num_keypoints=3, flip=False, input_size=teacher_size)
    probs = teacher(torch.zeros(2, 3, student[1], student[0]))
    assert net.seen == [teacher_size] and probs.shape == (2, 3, 32, 24)
    codec = HeatmapCodec(student)
    decoded, _ = codec.decode(probs.numpy())
    direct, _ = codec.decode(codec.encode(pts)[0][None])  # the same points encoded on the student's own grid
    # crop px: the resizes are exact scalings, so what is left is bilinear resampling of the Gaussians (<0.04
    # heatmap px); a misaligned convention (align_corners=True, or no half-pixel shift) would be off by 0.5+ px
    assert np.abs(decoded - direct).max() < 0.15
    same = Teacher(net, logits=True, flip_pairs=[], num_keypoints=3, flip=False, input_size=student)
    x = torch.zeros(1, 3, 128, 96)
    torch.testing.assert_close(same(x), torch.sigmoid(net(x)))


class _Stride32(torch.nn.Module):
    """A stand-in with a stride-32 network's output size: the first channel's 4x4 means (pixel i at crop 4i + 1.5,
    the unbiased grid) followed by the extra pixels a stride-32 net returns past the crop's bottom/right at a size
    that is no multiple of 32 (8 * ceil(size / 32) in all); the extras hold junk."""

    def forward(self, x):
        grid = torch.nn.functional.avg_pool2d(x[:, :1], 4)
        h, w = 8 * -(-x.shape[2] // 32), 8 * -(-x.shape[3] // 32)
        return torch.nn.functional.pad(grid, (0, w - grid.shape[3], 0, h - grid.shape[2]), value=0.9)


def test_a_stride32_teacher_at_a_size_off_its_stride_keeps_its_own_grid_crop_and_mirror():
    net, x = _Stride32(), torch.rand(2, 3, 80, 48)  # 48x80: the net returns 16x24, the grid is 12x20
    assert net(x).shape[2:] == (24, 16)
    want = torch.nn.functional.avg_pool2d(x[:, :1], 4)
    for flip in (False, True):  # a mirrored pass mirrors about the crop's centre, not the padded map's
        teacher = Teacher(net, logits=False, flip_pairs=[], num_keypoints=1, flip=flip)
        torch.testing.assert_close(teacher(x), want)
    # run at 80x112 (net: 24x32 for a 20x28 grid) and resized back: only the grid is, never the extras
    big = Teacher(net, logits=False, flip_pairs=[], num_keypoints=1, flip=True, input_size=(80, 112))
    x = torch.rand(2, 3, 56, 40)
    resize = torch.nn.functional.interpolate
    grid = torch.nn.functional.avg_pool2d(resize(x, size=(112, 80), mode="bilinear")[:, :1], 4)
    torch.testing.assert_close(big(x), resize(grid, size=(14, 10), mode="bilinear", antialias=True))


def _teacher_checkpoint(path, k=14, loss="rce", names=None, flip_pairs=None):
    torch.manual_seed(1)
    model = build_model("fasterpose_r18", k)
    meta = {"architecture": "fasterpose_r18", "num_keypoints": k, "input_size": [64, 64], "loss": loss,
            "model_options": {"head_width": 256, "final_bias": -4.0}}
    if names is not None:  # as models.train records its data's category
        meta["dataset"] = {"keypoints": list(names), "flip_pairs": flip_pairs}
    torch.save({"model": model.state_dict(), "meta": meta}, path)
    return path


def test_load_teacher_checks_keypoints_and_architecture(tmp_path):
    good = _teacher_checkpoint(tmp_path / "t.pth")
    teacher, info = load_teacher(good, 14, (64, 64), LSP_FLIP_PAIRS)
    assert info["architecture"] == "fasterpose_r18" and len(info["sha256"]) == 64 and teacher.flip
    assert teacher.input_size is None and info["input_size"] == [64, 64]
    with pytest.warns(UserWarning, match="trained at input 64x64, run at 48x64"):
        load_teacher(good, 14, (48, 64), LSP_FLIP_PAIRS)
    bigger, info = load_teacher(good, 14, (48, 64), LSP_FLIP_PAIRS, teacher_input_size=(64, 64))  # no warning
    assert bigger.input_size == (64, 64) and info["input_size"] == [64, 64]
    assert bigger(torch.zeros(1, 3, 64, 48)).shape == (1, 14, 16, 12)
    with pytest.raises(TeacherError, match="17 keypoints, the student 14"):
        load_teacher(_teacher_checkpoint(tmp_path / "k17.pth", k=17), 14, (64, 64), LSP_FLIP_PAIRS)
    torch.save({"model": build_model("fasterpose_r18", 14).state_dict()}, tmp_path / "bare.pth")
    with pytest.raises(TeacherError, match="architecture"):
        load_teacher(tmp_path / "bare.pth", 14, (64, 64), LSP_FLIP_PAIRS)


@pytest.mark.filterwarnings("ignore:--teacher .* does not name its keypoints")  # the test's teacher names none
def test_train_with_a_teacher_records_it_and_refuses_bad_use(tmp_path, capsys):
    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    teacher = _teacher_checkpoint(tmp_path / "teacher.pth")
    work = tmp_path / "kd"
    code, err = _main_in_process(capsys, _train_cmd(ann, images, work, [
        "--steps-per-epoch", "2", "--teacher", str(teacher), "--distill-alpha", "0.4"]))
    assert code == 0, err
    assert 0 <= json.loads((work / "log.jsonl").read_text().splitlines()[-1])["val_pck@0.2"] <= 1
    recipe = torch.load(work / "last.pth", map_location="cpu", weights_only=True)["meta"]["recipe"]
    from export.checkpoint import file_sha256

    assert recipe["distill"]["sha256"] == file_sha256(teacher)
    assert recipe["distill"]["alpha"] == 0.4 and recipe["distill"]["flip"] is True
    moved = tmp_path / "moved_teacher.pth"  # the teacher is known by its content: a moved copy goes on
    shutil.copy(teacher, moved)
    resume = ["--steps-per-epoch", "2", "--distill-alpha", "0.4", "--resume", "--epochs", "2"]
    code, err = _main_in_process(capsys, _train_cmd(ann, images, work, resume + ["--teacher", str(moved)]))
    assert code == 0 and "resumed from" in err, err
    other = _teacher_checkpoint(tmp_path / "other_teacher.pth", names=LSP14["keypoints"], flip_pairs=LSP_FLIP_PAIRS)
    code, err = _main_in_process(capsys, _train_cmd(ann, images, work, [*resume[:-1], "3", "--teacher", str(other)]))
    assert code != 0 and "distillation (--teacher and its options)" in err, err
    assert len((work / "log.jsonl").read_text().splitlines()) == 2, err
    for extra, message in [(["--loss", "mse"], "needs --loss rce"), (["--distill-alpha", "2"], "distill-alpha"),
                           (["--teacher", str(tmp_path / "none.pth")], "does not exist"),
                           (["--teacher-input-size", "64x64"], "needs --teacher")]:
        args = ["--teacher", str(teacher)] + extra if extra[0] not in ("--teacher", "--teacher-input-size") else extra
        code, err = _main_in_process(capsys, _train_cmd(ann, images, tmp_path / "bad", args))
        assert code == 2 and message in err, err


def test_teacher_check_scores_the_targets_the_student_would_get(tmp_path, capsys):
    """models.teacher_check: without resize or flip the teacher's score is the model's own validation score, to the
    digit; with --teacher-input-size it scores the resized teacher; bad input exits 2 with a reason."""
    from models.data.coco_keypoints import TopDownDataset, load_coco_keypoints
    from models.teacher_check import main as check_main
    from models.validate import validate

    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    ckpt = _teacher_checkpoint(tmp_path / "t.pth")
    args = ["--teacher", str(ckpt), "--ann", str(ann), "--images", str(images), "--input-size", "64x64",
            "--threads", "1"]
    assert check_main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    samples, meta = load_coco_keypoints(ann, images)
    model = load_teacher(ckpt, 14, (64, 64), LSP_FLIP_PAIRS, flip=False)[0].model
    own = validate(model, TopDownDataset(samples, meta, (64, 64), train=False), logits=True)
    assert plain["pck@0.2"] == own["pck@0.2"] and plain["persons"] == 4 and plain["flip"] is False
    assert check_main(args[:-4] + ["--input-size", "48x48", "--teacher-input-size", "64x64", "--flip"]) == 0
    resized = json.loads(capsys.readouterr().out)
    assert resized["teacher_input_size"] == [64, 64] and resized["student_input_size"] == [48, 48]
    assert 0 <= resized["pck@0.2"] <= 1 and resized["flip"] is True
    assert check_main(args[:1] + [str(tmp_path / "none.pth")] + args[2:]) == 2
    assert "does not exist" in capsys.readouterr().err


LSP_NAMES = list(LSP14["keypoints"])
REVERSED_PAIRS = [[13 - a, 13 - b] for a, b in LSP_FLIP_PAIRS]  # LSP's flip pairs in the reversed order


def test_a_teacher_of_another_keypoint_order_teaches_in_the_students_with_its_own_flip_pairs(tmp_path):
    ckpt = _teacher_checkpoint(tmp_path / "rev.pth", names=LSP_NAMES[::-1], flip_pairs=REVERSED_PAIRS)
    with pytest.warns(UserWarning, match="another order"):
        teacher, _ = load_teacher(ckpt, 14, (64, 64), LSP_FLIP_PAIRS, keypoints=LSP_NAMES)
    own = Teacher(teacher.model, logits=True, flip_pairs=REVERSED_PAIRS, num_keypoints=14, flip=True)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(teacher(x), own(x)[:, list(range(13, -1, -1))])  # channel k: the student's k
    other = _teacher_checkpoint(tmp_path / "other.pth", names=LSP_NAMES[:-1] + ["nose"])
    with pytest.raises(TeacherError, match="not in the file: nose; not predicted: head_top"):
        load_teacher(other, 14, (64, 64), LSP_FLIP_PAIRS, keypoints=LSP_NAMES)
    same, _ = load_teacher(other, 14, (64, 64), LSP_FLIP_PAIRS)  # models.train passes no names: the count only
    assert same.order is None


def test_teacher_check_matches_a_file_of_another_order_by_name_and_refuses_a_bad_box_padding(tmp_path, capsys):
    from keypoint_order import write_reversed
    from models.teacher_check import main as check_main

    ann, images, _ = _lsp_like_dataset(tmp_path, n=4)
    ckpt = _teacher_checkpoint(tmp_path / "t.pth", names=LSP_NAMES, flip_pairs=LSP_FLIP_PAIRS)
    args = ["--teacher", str(ckpt), "--images", str(images), "--input-size", "64x64", "--threads", "1", "--flip"]
    assert check_main(args + ["--ann", str(ann)]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert check_main(args + ["--ann", str(write_reversed(ann, tmp_path / "rev.json"))]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == plain and "warning: --teacher" in err and "another order" in err
    for padding in ("0", "-1"):  # 0 had failed with "Singular matrix"; -1 scored mirrored crops
        assert check_main(args + ["--ann", str(ann), "--box-padding", padding]) == 2
        assert "--box-padding must be a number from 0.5 to 4" in capsys.readouterr().err
