"""Photos of nobody with somebody-like things in them: cut-outs (animals, objects) pasted onto person-free pictures.

Why: the presence head (``export.presence_head``) learns "nobody" from desktop wallpapers, mostly landscapes and
patterns. On pictures it had not seen, the crops it still took for a person were mostly animals (docs/usage.md,
"Photos of nobody"): four legs, a head and a trunk look more like a person than a meadow does. Cut-outs with a
transparent background, such as the photographed animals of Debian's ``tuxpaint-stamps-default``, pasted onto
the wallpapers give it such pictures to learn from, as many as it needs, without labelling anything.

Each picture written: a random part of one background (``PART_RANGE`` of its width and height, so that pictures
on one background differ, and none is a copy of the whole background that ``fasterpose_rt.photo_sets`` would drop
as a repeat), scaled to ``export.presence_head.NEGATIVE_SIDE`` on its long side, and one cut-out, mirrored at
random, scaled so its long side is ``SIZE_RANGE`` of the picture's short side, at a random place wholly inside it,
blended by its alpha channel. The cut-outs must show nobody: leave out folders of people (``--exclude``).

Python API::

    written = stamp_negatives(["stamps/animals"], ["walls/"], "negatives/", count=300)

Command line: ``python -m export.stamp_negatives --help``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, List, Sequence

import cv2
import numpy as np

from fasterpose_rt.photo_sets import PhotoSetError, read_photo_set

from .errors import InputError
from .presence_head import NEGATIVE_SIDE, to_long_side

__all__ = ["read_cutouts", "paste", "part_of", "stamp_negatives", "main"]

SIZE_RANGE = (0.3, 0.95)  # a cut-out's long side, as a share of the background's short side
PART_RANGE = (0.4, 0.8)  # the part of a background a picture shows, as a share of its width and height
MIN_OPAQUE = 0.05  # cut-outs whose alpha covers less than this share of their pixels are not cut-outs


def read_cutouts(sources: Sequence[os.PathLike], exclude: Iterable[str] = ()) -> List[np.ndarray]:
    """The PNG cut-outs under ``sources`` (folders, searched recursively, in name order), skipping every path with
    a part named in ``exclude`` (a folder, e.g. "people", or a file, e.g. "statue.png"), unreadable files and
    pictures without transparency. Returns
    (h, w, 4) uint8 BGRA arrays."""
    skip = set(exclude)
    out = []
    for source in sources:
        root = Path(source)
        if not root.is_dir():
            raise InputError(f"--cutouts {root}: not a folder")
        for path in sorted(root.rglob("*.png")):
            if skip & set(path.relative_to(root).parts):
                continue
            im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if im is None or im.ndim != 3 or im.shape[2] != 4 or (im[..., 3] > 127).mean() < MIN_OPAQUE:
                continue
            out.append(im)
    if not out:
        raise InputError(f"--cutouts: no PNG with transparency in {', '.join(map(str, sources))}")
    return out


def paste(background: np.ndarray, cutout: np.ndarray, rng) -> np.ndarray:
    """``cutout`` (h, w, 4) BGRA, mirrored at random and scaled to SIZE_RANGE of the short side of ``background``
    (H, W, 3) BGR, blended at a random place wholly inside it. Returns a new (H, W, 3) uint8 picture."""
    bh, bw = background.shape[:2]
    scale = rng.uniform(*SIZE_RANGE) * min(bh, bw) / max(cutout.shape[:2])
    size = (max(int(round(cutout.shape[1] * scale)), 1), max(int(round(cutout.shape[0] * scale)), 1))
    stamp = cv2.resize(cutout, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        stamp = stamp[:, ::-1]
    h, w = min(stamp.shape[0], bh), min(stamp.shape[1], bw)
    stamp = stamp[:h, :w]
    y0, x0 = int(rng.integers(0, bh - h + 1)), int(rng.integers(0, bw - w + 1))
    out = background.copy()
    region = out[y0:y0 + h, x0:x0 + w].astype(np.float32)
    alpha = stamp[..., 3:4].astype(np.float32) / 255.0
    out[y0:y0 + h, x0:x0 + w] = np.round(stamp[..., :3] * alpha + region * (1.0 - alpha)).astype(np.uint8)
    return out


def part_of(photo: np.ndarray, rng) -> np.ndarray:
    """A random part of ``photo`` (H, W, 3): PART_RANGE of its height and width (one share for both, so the
    aspect stays), at a random place. Returns a view."""
    h, w = photo.shape[:2]
    share = rng.uniform(*PART_RANGE)
    ph, pw = max(int(h * share), 1), max(int(w * share), 1)
    y0, x0 = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    return photo[y0:y0 + ph, x0:x0 + pw]


def stamp_negatives(cutouts: Sequence[os.PathLike], backgrounds: Sequence[os.PathLike], out_dir: os.PathLike,
                    count: int = 0, seed: int = 0, exclude: Iterable[str] = (), progress: bool = True) -> int:
    """Write ``count`` pictures (0: one per cut-out) to ``out_dir`` as ``stamped_00000.jpg``, ...: cut-outs of
    ``cutouts`` (``read_cutouts``) pasted onto parts of photos of ``backgrounds`` (folders or zip files,
    ``fasterpose_rt.photo_sets``: each picture once), every cut-out used in turn, backgrounds drawn at random.
    Each file is written whole or not at all (a failed write: InputError naming it). Returns the number written."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise InputError(f"--count must be a whole number >= 0 (0: one per cut-out), got {count!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # before the work: the pictures could not be written there
        raise InputError(f"--out {out}: not a folder (a file of that name exists)")
    stamps = read_cutouts(cutouts, exclude)
    try:
        _, photos, _ = read_photo_set(backgrounds, min_side=64)
    except PhotoSetError as e:
        raise InputError(f"--backgrounds {e}") from None
    if not photos:
        raise InputError("--backgrounds: no readable photo")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. a file where a parent folder should be, or no permission
        raise InputError(f"--out {out}: cannot make the folder: {e.strerror or e}") from None
    rng = np.random.default_rng(seed)
    total = int(count) or len(stamps)
    order = np.concatenate([rng.permutation(len(stamps)) for _ in range(-(-total // len(stamps)))])[:total]
    from tqdm import tqdm
    for n, i in enumerate(tqdm(order, desc="pictures", unit="pic", disable=not progress)):
        background = to_long_side(part_of(photos[int(rng.integers(len(photos)))], rng), NEGATIVE_SIDE)
        picture = paste(background, stamps[i], rng)
        target = out / f"stamped_{n:05d}.jpg"
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise InputError(f"could not encode {target.name}")
        partial = target.with_suffix(".jpg.part")
        try:
            partial.write_bytes(data.tobytes())
            os.replace(partial, target)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise InputError(f"cannot write {target}: {e.strerror or e}") from None
    return total


def main(argv=None) -> None:
    import click

    @click.command(help=__doc__.split("\n")[0], context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--cutouts", "cutouts", multiple=True, required=True, type=click.Path(path_type=Path),
                  help="folder of PNG cut-outs with transparency (repeatable), e.g. tuxpaint's stamps/animals")
    @click.option("--backgrounds", multiple=True, required=True, type=click.Path(path_type=Path),
                  help="folder or zip file of person-free photos (repeatable)")
    @click.option("--out", required=True, type=click.Path(path_type=Path), help="folder to write the pictures to")
    @click.option("--count", type=click.IntRange(min=0), default=0, show_default=True,
                  help="pictures to write (0: one per cut-out)")
    @click.option("--exclude", multiple=True, default=("people",), show_default=True,
                  help="leave out cut-outs under a folder of this name, or files of this name, e.g. statue.png "
                       "(repeatable; giving any replaces the default)")
    @click.option("--seed", default=0, show_default=True)
    def cli(cutouts, backgrounds, out, count, exclude, seed):
        real_out = Path(os.path.realpath(out))
        inside = next((s for s in (*cutouts, *backgrounds) if real_out == Path(os.path.realpath(s))
                       or Path(os.path.realpath(s)) in real_out.parents), None)
        if inside is not None:  # its pictures would be read as sources by the next run
            raise click.UsageError(f"--out {out} lies in the source {inside}: give a folder outside the sources")
        try:
            n = stamp_negatives(cutouts, backgrounds, out, count, seed, exclude)
        except InputError as e:
            raise click.UsageError(str(e)) from None
        click.echo(f"wrote {n} pictures to {out}")

    cli.main(args=argv, prog_name="python -m export.stamp_negatives", standalone_mode=True)


if __name__ == "__main__":
    main(sys.argv[1:])
