"""The CLI's inputs: expand paths into photos and videos, decode photos robustly, iterate video frames.

Besides files and folders, an input may be a live source read as a video: a camera (``camera:N``, OpenCV's device
index N) or a stream URL (``rtsp://``, ``http://``, ``file://`` ..., whatever OpenCV's video backends read), a
list file naming inputs (``photos.txt``), or a file name pattern the shell left unexpanded (``"shoot/*.jpg"``).
A photo that cannot be decoded raises :class:`InputReadError` with a reason a person can act on; the CLI
names it on stderr, skips it and goes on. A path that does not exist raises FileNotFoundError, or (``skip_missing``,
the CLI's way) is a problem named and skipped as a missing list line is.
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator, Iterator, List, Optional, Sequence, Set, Tuple, Union, cast

import cv2
import numpy as np

from .decoder_messages import add_decoder_line, decoded_saying
from .image import decoded_to_bgr_uint8
from .mp4_edits import has_video_track, lists_its_samples, shown_seconds

__all__ = [
    "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "LIST_EXTENSIONS", "InputItem", "InputReadError", "PhotoTooLarge",
    "expand_inputs",
    "read_input_list", "is_pattern", "read_image",
    "open_video", "capture_info", "pixel_aspect", "iter_video_frames", "counts_frames", "ends_early", "stream_source",
    "is_live",
    "open_stream", "jpeg_size",
    "reduction_for", "read_photo", "REDUCED_LONG_SIDE", "opencv_video_path", "read_file_bytes", "photo_from_bytes",
    "image_from_bytes",
]

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
    ".pbm", ".pgm", ".ppm", ".pnm", ".pfm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif",
    ".heic", ".heif", ".hif",  # an iPhone's photos: read with pillow-heif when it is installed (fasterpose[heic])
}) | frozenset({".gif"} if tuple(map(int, cv2.__version__.split(".")[:2])) >= (4, 11) else ())  # first frame
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts",
    ".h264", ".264", ".h265", ".265", ".hevc",  # raw streams, as cameras and encoders write them (no timestamps)
    ".m2ts", ".m2t", ".vob", ".ogv", ".mjpeg", ".mjpg", ".mxf", ".asf", ".f4v", ".m2v", ".dv",  # camcorders,
})  # DVDs, Ogg, Motion JPEG streams, broadcast and Flash files: all FFmpeg's, so OpenCV's
LIST_EXTENSIONS = frozenset({".txt"})  # fasterpose predict photos.txt: one input per line

# IMREAD_COLOR converts gray, palette and alpha photos to 3-channel BGR and, unlike IMREAD_UNCHANGED, applies
# the EXIF orientation; ANYDEPTH keeps 16-bit and float samples so they are scaled down, not clipped.
# The command's files being written (a --vis video until its end): a folder scan passes them over, so one left by a
# killed run is not taken for an input.
TEMP_PREFIX = ".fasterpose-"
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH

# A big JPEG photo is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's scaled decoding: a 12 MP photo in 18 ms at
# 1/2 instead of 79 ms whole) as long as its long side stays at least this. The model sees a person through a crop
# 176 px tall, so a person whose crop spans at least 1/7 (176 / 1280) of the long side loses no detail the crop could
# hold (``python -m benchmarks.photo_reading``: 0.28-0.59x the CLI's time on 12 MP photos, PCK@0.2 level).
REDUCED_LONG_SIDE = 1280
_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers: they hold the size
# The EXIF orientations that mirror the stored bitmap's x / y axis (0: an Exif block too broken to read, taken as
# both). OpenCV turns the photo upright after a reduced decode, i.e. mirrors ceil(size / f) px, so a mirrored axis
# maps back exactly only when f divides its stored size.
_MIRRORS_X = frozenset({0, 2, 3, 7, 8})
_MIRRORS_Y = frozenset({0, 3, 4, 6, 7})

# HEIF's ftyp brands (ISO/IEC 23008-12): OpenCV reads none of them, pillow-heif does
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})

# Image brands of an ftyp box (AVIF, Canon's CR3 raw photos): any other ftyp is an MP4 or MOV video
_PHOTO_BRANDS = _HEIF_BRANDS | {b"avif", b"avis", b"crx "}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}  # MP4 files of sound alone (music, audiobooks)

_CAMERA = re.compile(r"camera:(\d+)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


class InputReadError(Exception):
    """A photo or video could not be read; the message says why (without the path: the caller names it, or
    ``path`` given: the message starts with it). ``reason``: the message without the path."""

    def __init__(self, reason: str, path: Optional[Union[str, os.PathLike]] = None):
        named = None if path is None else os.fsdecode(path)
        super().__init__(f"{named}: {reason}" if named else reason)  # (an empty path names nothing)
        self.reason = reason


class PhotoTooLarge(InputReadError):
    """A photo with more pixels than OpenCV decodes whole (``CV_IO_MAX_IMAGE_PIXELS``, 2^30 by default); a JPEG
    may still be read at 1/2 to 1/8 of its size (:func:`read_photo` with ``long_side``)."""


@dataclass(frozen=True)
class InputItem:
    """One input file. path: as the user would write it (the folder argument joined with the path inside it);
    kind: "image", "video" or "stream"; rel: the folder argument's name joined with the path inside it, or the
    file's name for a file argument (used to name --vis outputs and to match --boxes entries); folder: the folder
    argument (or a pattern's fixed folder) it was found in, path being that folder joined with the path inside it,
    None for a file named directly (on the command line or in a list).
    A stream (a camera or a URL, see :func:`stream_source`) keeps what the user wrote in ``source``; its path and
    rel are a file name made of it (``camera_0``), for --vis outputs."""

    path: Path
    kind: str
    rel: Path
    source: Optional[str] = None
    folder: Optional[Path] = None

    @property
    def label(self) -> str:
        """How results and messages name this input: the stream as written, else the path."""
        return self.source if self.source is not None else self.path.as_posix()


def stream_source(text: str) -> Optional[str]:
    """``text`` if it names a live source rather than a file: ``camera:N`` or a URL (``scheme://...``); else None."""
    text = str(text)
    return text if _CAMERA.fullmatch(text) or _URL.fullmatch(text) else None


def is_live(source: str) -> bool:
    """Whether a :func:`stream_source` delivers frames in real time (a camera, a network stream) rather than
    as fast as they are read (a ``file://`` URL)."""
    return not str(source).lower().startswith("file:")


def open_stream(source: str) -> cv2.VideoCapture:
    """Open a camera (``camera:N``) or a stream URL as a capture. Raises InputReadError saying why not."""
    camera = _CAMERA.fullmatch(source)
    if not camera and not _utf8(source):  # OpenCV crashes (segfault) on a URL that is not UTF-8
        raise InputReadError("the URL is not valid UTF-8, which OpenCV's video reader cannot open")
    # a camera opens at once (and, on macOS, asks for access from the main thread only); a URL may stall
    if camera and int(camera.group(1)) > 2 ** 31 - 1:  # OpenCV's overload error, which ended the whole run
        raise InputReadError(f"cannot open camera {camera.group(1)}: no such device (camera numbers are small)")
    cap = cv2.VideoCapture(int(camera.group(1))) if camera else _open_in_thread(source)
    if not cap.isOpened():
        cap.release()
        raise InputReadError(f"cannot open camera {camera.group(1)} (no such device, or in use)" if camera else
                             "cannot open the stream (unreachable, refused, or not a video OpenCV can read)")
    return cap


_POLL_SECONDS = 0.1  # the caller waits for an opening stream in steps this long, so Ctrl-C reaches it at once


def _open_in_thread(source: str) -> cv2.VideoCapture:
    """cv2.VideoCapture(source) with any backend that reads it, opened by a thread of its own: a stream that
    connects but sends nothing holds OpenCV up to its open timeout (30 s), which Ctrl-C cannot cut short in the
    thread that waits in OpenCV. The caller waits in short steps instead, free to take Ctrl-C; the thread, a
    daemon, is left to end on its own (it releases what it opened once nobody is waiting for it)."""
    done: list = []
    lock = threading.Lock()

    def run() -> None:
        cap: object
        try:
            cap = cv2.VideoCapture(source)
        except BaseException as e:  # handed to the caller
            cap = e
        with lock:
            done.append(cap)
            abandoned = len(done) > 1
        if abandoned and not isinstance(cap, BaseException):
            cap.release()

    thread = threading.Thread(target=run, name="fasterpose-stream-open", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(_POLL_SECONDS)
    finally:
        with lock:
            done.append(None)  # marks the caller gone: a capture opened after this is released by the thread
    if isinstance(done[0], BaseException):
        raise done[0]
    return done[0]


def _kind(path: Path) -> str:
    return "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "image"


def is_pattern(text) -> bool:
    """Whether ``text`` is a file name pattern (``*``, ``?`` or ``[``: "shoot/*.jpg", "shoot/**/*.png") rather than a
    path that exists: shells on Windows, and quoted arguments anywhere, pass patterns unexpanded."""
    return isinstance(text, str) and _has_magic(text) and not os.path.exists(text)


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def read_input_list(path: os.PathLike) -> List[Tuple[int, str]]:
    """A list file's entries: [(line number, entry)], one entry per line (a photo, video or folder path, or a camera
    or stream URL), surrounding spaces stripped, blank lines and lines starting with # left out. Raises
    InputReadError saying why the file cannot be read as such a list."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputReadError(f"cannot read the list: {e.strerror or e}") from None
    # a name that is not UTF-8 (`find > list.txt` over an old Latin-1 card) keeps its own bytes, as the file system
    # gives them to Python: the file opens; refusing the whole list left every other line undone (review s61)
    text = data.decode("utf-8-sig", errors="surrogateescape")
    if "\0" in text:
        raise InputReadError("not a list of inputs: binary data")
    entries = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    entries = [(n, e) for n, e in entries if e and not e.startswith("#")]
    if not entries:
        raise InputReadError("the list names no inputs (one path or URL per line; # starts a comment)")
    return entries


def _tidy(path: Path) -> Path:
    """``path`` without its ``.`` and ``..`` parts (``lst/../a.jpg`` as ``a.jpg``), lexically, where that names the
    same file: a ``..`` after a symlinked folder leads out of the folder linked to, so such a path is kept as it is."""
    tidy = Path(os.path.normpath(path))
    return tidy if tidy == path or os.path.realpath(tidy) == os.path.realpath(path) else path


def _hidden(name: str) -> bool:
    return name.startswith(".")  # also a camera card's AppleDouble "._IMG_0001.JPG" and ".thumbnails" folder


def walk_folder(folder: Path) -> Tuple[List[Path], List[Tuple[Path, str]]]:
    """Every file below ``folder`` -> (files, unreadable), files as paths below ``folder`` in walk order, unreadable
    as (folder, reason) for each folder that could not be listed (the rest is still walked).

    Symlinked folders are followed, except links into ``folder`` itself, which is walked by its own paths (a link
    to a folder above, a loop, ends there; a second name for a subfolder does not rename its files), each real
    folder once; hidden files and folders (names starting with ".", as shells' and glob's wildcards leave them out)
    are passed over."""
    files, unreadable, _ = _walk(folder)
    return files, unreadable


def _walk(folder: Path) -> Tuple[List[Path], List[Tuple[Path, str]], List[Path]]:
    """:func:`walk_folder`'s (files, unreadable) and the folders walked, ``folder`` first."""
    files: List[Path] = []
    folders: List[Path] = []
    unreadable: List[Tuple[Path, str]] = []
    seen: Set[Tuple[int, int]] = set()
    inside = os.path.join(os.path.realpath(folder), "")

    def failed(e: OSError) -> None:
        unreadable.append((Path(e.filename) if e.filename else folder, f"cannot read the folder: {e.strerror or e}"))

    with contextlib.suppress(OSError):  # (an unlistable top folder is named by os.walk's onerror)
        st = os.stat(folder)
        seen.add((st.st_dev, st.st_ino))
    for root, dirs, names in os.walk(folder, onerror=failed, followlinks=True):
        folders.append(Path(root))
        kept = []
        for d in sorted(dirs):
            path = os.path.join(root, d)
            if _hidden(d) or (os.path.islink(path) and os.path.join(os.path.realpath(path), "").startswith(inside)):
                continue
            try:
                st = os.stat(path)
            except OSError:  # a link that leads nowhere: no folder to walk
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                kept.append(d)
        dirs[:] = kept
        files.extend(Path(root, n) for n in names if not _hidden(n))
    return files, unreadable, folders


def _glob(pattern: str) -> Tuple[List[Path], List[Tuple[Path, str]]]:
    """The files and folders ``pattern`` matches, sorted, and the folders it could not list with the reason. As
    glob's recursive matching: part by part, ``**`` alone as a part spanning zero or more folders (walked as
    :func:`walk_folder` walks them: Python's glob follows a symlink loop without end), other wildcards within a
    part and, unless the part starts with ".", passing hidden names over."""
    parts = Path(pattern).parts
    if "**" not in parts:
        return sorted(Path(m) for m in glob.glob(pattern)), []  # (a fixed depth: no loop to follow)
    start = next(i for i, s in enumerate(parts) if _has_magic(s))
    base = Path(*parts[:start]) if start else Path(".")
    if not base.is_dir():
        return [], []
    current, unreadable = [base], []
    for j, part in enumerate(parts[start:], start):
        last, found = j == len(parts) - 1, []
        for folder in current:
            if part == "**":  # the folder and every one below, and with nothing after it their files too
                files, bad, below = _walk(folder)
                unreadable += bad
                found += below + (files if last else [])
            elif _has_magic(part):
                try:
                    names = sorted(os.listdir(folder))
                except OSError as e:
                    unreadable.append((folder, f"cannot read the folder: {e.strerror or e}"))
                    continue
                found += [folder / n for n in names if (not _hidden(n) or part.startswith("."))
                          and fnmatch.fnmatch(n, part) and (last or (folder / n).is_dir())]
            elif (os.path.lexists(folder / part) if last else (folder / part).is_dir()):
                found.append(folder / part)
        current = list(dict.fromkeys(found))
    return sorted(p for p in current if p != Path(".")), list(dict.fromkeys(unreadable))


def expand_inputs(paths: Sequence[os.PathLike], videos: bool = False, lists: bool = False, patterns: bool = False,
                  leave_out: Sequence[os.PathLike] = (), left_out: Optional[Set[str]] = None,
                  skip_missing: bool = False, outputs: Optional[Callable[[List[InputItem]], Set[str]]] = None
                  ) -> Tuple[List[InputItem], List[Tuple[Path, str]]]:
    """Paths -> (items, problems).

    A file is an image, or a video when its extension is one of :data:`VIDEO_EXTENSIONS`; a folder contributes
    its photos (extensions :data:`IMAGE_EXTENSIONS`, any case) and, with ``videos``, its videos, recursively,
    sorted by path. With ``videos``, a camera or stream URL (:func:`stream_source`, given as a str) is a "stream"
    item. With ``lists``, a file ending in .txt is a list of such inputs (:func:`read_input_list`), relative paths
    taken from the list's folder, ``.`` and ``..`` dropped where that names the same file (``lst/../a.jpg`` as
    ``a.jpg``); each keeps the path as listed (so tidied) for naming (--vis, --boxes matching). With
    ``patterns``, a str that :func:`is_pattern` is expanded (``**`` spans folders) to the photos (and, with
    ``videos``, videos) it matches, sorted, and the folders it matches as folder arguments; its matches keep their
    path below the pattern's fixed folder part, under that folder's name, as a folder argument's photos do. A file
    or stream given twice is kept once. problems: (path, reason) for folders and patterns without any such file,
    unreadable lists, and listed paths that do not exist (the rest is still processed). Missing paths given
    directly raise FileNotFoundError, or with ``skip_missing`` are problems too ("no such file or folder").
    leave_out: folders (a run's own output folders) whose files a folder or pattern does not contribute, unless
    that folder or the pattern's fixed part lies inside them. outputs: given the items, the real paths of those
    that are the run's own outputs (predict's --vis drawings: :func:`fasterpose_rt.cli.predict_run.own_drawings`),
    which are left out where a folder or pattern found them. A file named directly (on the command line or in a
    list) is never left out. The real paths of the files so left out are added to ``left_out`` when given.
    """
    items: List[InputItem] = []
    problems: List[Tuple[Path, str]] = []
    seen = set()
    named: Set[str] = set()  # the real paths of the files named directly: never left out
    wanted = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if videos else IMAGE_EXTENSIONS
    folders_out = [os.path.join(os.path.realpath(f), "") for f in leave_out]  # with a trailing separator

    def kept(found: List[Path], base: Path) -> List[Path]:
        """found without the files under an output folder that base (the folder searched) is not inside: a run's
        outputs are not read back as its inputs on the next run."""
        inside = tuple(o for o in folders_out if not os.path.join(os.path.realpath(base), "").startswith(o))
        if not inside:
            return found
        out = []
        for f in found:
            real = os.path.realpath(f)
            if not real.startswith(inside):
                out.append(f)
            elif left_out is not None:
                left_out.add(real)
        return out

    def add(item: InputItem) -> None:
        key = item.source if item.source is not None else os.path.realpath(item.path)
        if item.source is None and item.folder is None:
            named.add(key)
        if key not in seen:
            seen.add(key)
            items.append(item)

    def listed(list_path: Path) -> None:
        try:
            entries = read_input_list(list_path)
        except InputReadError as e:
            problems.append((list_path, str(e)))
            return
        for n, entry in entries:
            if videos and stream_source(entry) is not None:
                expand(entry, None)
                continue
            q = Path(entry)
            target = _tidy(q if q.is_absolute() else list_path.parent / q)
            where = f"line {n} of the list {list_path}"
            if not target.exists():
                # a name with bytes that are not UTF-8 may be a list saved in another encoding than the names'
                odd = " - the list is not UTF-8 there, and names keep its bytes" if not _utf8(entry) else ""
                problems.append((target, f"{_missing(target)} ({where}{odd})"))
            elif target.is_file() and target.suffix.lower() in LIST_EXTENSIONS:
                problems.append((target, f"a list inside a list is not read ({where})"))
            else:  # a path inside the list's folder keeps its folders in --vis names; others their file name
                q = Path(os.path.normpath(q))
                inside = not q.is_absolute() and q.parts[:1] != ("..",)
                expand(target, q if inside and target.is_file() else None)

    def matched(pattern: str) -> None:
        parts = Path(pattern).parts
        fixed = Path(*parts[:next(i for i, s in enumerate(parts) if _has_magic(s))] or ["."])
        top = Path(fixed.resolve().name) if str(fixed) != "." else Path()
        found, unreadable = _glob(pattern)
        problems.extend(unreadable)
        found = [m for m in found if m.is_dir() or (m.is_file() and m.suffix.lower() in wanted)]
        if not found:
            problems.append((Path(pattern), f"the pattern matches no {'photos or videos' if videos else 'photos'}"))
        files = set(kept([m for m in found if not m.is_dir()], fixed))
        for m in found:
            inside = m.relative_to(fixed) if str(fixed) != "." else m
            if m.is_dir():
                expand(m, None, base=fixed)
            elif m in files:
                add(InputItem(m, _kind(m), top / inside, folder=fixed))

    def expand(raw, rel: Optional[Path], base: Optional[Path] = None) -> None:
        """base: the folder the user named when raw is a folder a pattern matched (for ``leave_out``)."""
        stream = stream_source(raw) if videos and isinstance(raw, str) else None
        if stream is not None:
            name = Path(re.sub(r"[^A-Za-z0-9-]+", "_", stream).strip("_")[-80:])  # camera:0 -> camera_0
            add(InputItem(name, "stream", name, source=stream))
            return
        if patterns and rel is None and is_pattern(raw):
            matched(raw)
            return
        p = Path(raw)
        if lists and rel is None and p.is_file() and p.suffix.lower() in LIST_EXTENSIONS:
            listed(p)
        elif p.is_dir():
            walked, unreadable = walk_folder(p)
            problems.extend(unreadable)
            every = sorted((f for f in walked if f.suffix.lower() in wanted and f.is_file()),
                           key=lambda f: f.relative_to(p).as_posix())
            found = kept(every, base if base is not None else p)
            if not every and not unreadable:  # (a folder that could not be read is named as such)
                what, more = (("photos or videos", ", .mp4, .mov, .avi, .mkv, .webm and others") if videos
                              else ("photos", ""))
                problems.append((p, f"folder contains no {what} (searched recursively for .jpg, .png, .bmp, .tif, "
                                    f".webp and other image extensions{more})"))
            top = Path(p.resolve().name)  # keeps photos of two folders apart in --vis output
            for f in found:
                add(InputItem(f, _kind(f), top / f.relative_to(p), folder=p))
        elif p.exists():
            add(InputItem(p, _kind(p), rel if rel is not None else Path(p.name)))
        elif skip_missing:
            problems.append((p, _missing(p)))
        else:
            raise FileNotFoundError(f"{_missing(p)}: {p}")

    for raw in paths:
        expand(raw, None)
    if outputs is not None:  # the run's own outputs a folder or pattern found, as a later run's folders find them
        drop = outputs(items) - named
        if drop:
            found = {os.path.realpath(i.path) for i in items if i.folder is not None and i.source is None} & drop
            items = [i for i in items if i.source is not None or os.path.realpath(i.path) not in found]
            if left_out is not None:
                left_out.update(found)
    if left_out is not None:
        left_out.difference_update(named)  # left out of a folder, read as named
    return items, list(dict.fromkeys(problems))  # (a folder a pattern and a folder it matched both failed to list)


def read_image(path: Union[str, os.PathLike], orientation: bool = True) -> np.ndarray:
    """Decode a photo file into (H, W, 3) uint8 BGR, EXIF orientation applied (``orientation`` False: the stored
    bitmap, in whose frame COCO files give keypoints; HEIF photos are always read upright).

    Gray, palette, alpha (dropped), 16-bit and float photos are converted. Raises InputReadError naming the
    reason: unreadable file, empty file, or data no OpenCV codec can decode (not a photo, truncated, unsupported).
    """
    return image_from_bytes(read_file_bytes(path), orientation)


def image_from_bytes(data: np.ndarray, orientation: bool = True) -> np.ndarray:
    """:func:`read_image` of a photo file's bytes (``data`` (n,) uint8, as :func:`read_file_bytes` returns them)."""
    if orientation:
        return photo_from_bytes(data)[0]
    return _decode_heif(data) if _is_heif(data) else _decode(data, _DECODE_FLAGS | cv2.IMREAD_IGNORE_ORIENTATION)


def read_photo(path: Union[str, os.PathLike], long_side: Optional[int] = None, most: int = 8) -> Tuple[np.ndarray, int]:
    """Decode a photo file as :func:`read_image` does, a big JPEG at 1/f of its size -> (image, f).

    long_side: decode a JPEG at the smallest of 1/2, 1/4, 1/8 that keeps its long side at least this many px
    (:func:`reduction_for`; None: whole). most: the largest f allowed (e.g. so that given person boxes keep enough
    px). f is 1 for other formats and small photos. Points of the image map to the photo by
    ``geometry.rescale_points(points, f)`` (``PoseResult.rescaled(f)``).
    """
    return photo_from_bytes(read_file_bytes(path), long_side, most)


def photo_from_bytes(data: np.ndarray, long_side: Optional[int] = None, most: int = 8) -> Tuple[np.ndarray, int]:
    """:func:`read_photo` of a photo file's bytes (``data`` (n,) uint8, as :func:`read_file_bytes` returns them)."""
    if _is_heif(data):
        return _decode_heif(data), 1
    header = jpeg_header(data) if long_side is not None else None
    factor = 1
    if header is not None and long_side is not None:
        width, height, orientation = header
        factor = reduction_for((width, height), long_side, most, orientation)
    return _decode(data, _REDUCED_FLAGS.get(factor, _DECODE_FLAGS)), factor


def reduction_for(size, long_side: int = REDUCED_LONG_SIDE, most: int = 8, orientation: int = 1) -> int:
    """The largest f of 1, 2, 4, 8 (and at most ``most``) with max(size) / f >= ``long_side``. size: (W, H) as
    stored. orientation: the JPEG's EXIF orientation (:func:`jpeg_header`); for one that mirrors an axis (2-8) f
    also divides that axis's stored size, or the reduced image, mirrored whole, would be off by up to f - 1 px."""
    factor = 1
    while 2 * factor <= min(int(most), 8) and max(size) / (2 * factor) >= long_side:
        factor *= 2
    mirrored = [int(s) for s, axis in zip(size, (_MIRRORS_X, _MIRRORS_Y)) if orientation in axis]
    while factor > 1 and any(s % factor for s in mirrored):
        factor //= 2
    return factor


def jpeg_size(data) -> Optional[Tuple[int, int]]:
    """(width, height) in a JPEG's frame header (before EXIF orientation), or None when ``data`` (bytes or a
    uint8 array) is not a JPEG or its header is cut short."""
    header = jpeg_header(data)
    return None if header is None else header[:2]


def jpeg_header(data) -> Optional[Tuple[int, int, int]]:
    """(width, height, orientation) of a JPEG: the frame header's size (before EXIF orientation) and the EXIF
    orientation tag (1 without one, 0 when the Exif block is too broken to read), or None as :func:`jpeg_size`."""
    b = bytes(data[:65536]) if not isinstance(data, bytes) else data
    if b[:2] != b"\xff\xd8":
        return None
    i, size, orientation = 2, None, None
    while i + 4 <= len(b):  # up to the first scan: libjpeg (so OpenCV) reads an Exif block after the frame too
        if b[i] != 0xFF:
            break
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
        elif marker == 0xDA:  # start of scan: the header is over
            break
        else:
            length = (b[i + 2] << 8) | b[i + 3]
            if marker in _SOF_MARKERS and size is None and i + 9 <= len(b):
                size = (b[i + 7] << 8) | b[i + 8], (b[i + 5] << 8) | b[i + 6]
            elif marker == 0xE1 and orientation is None and b[i + 4:i + 10] == b"Exif\x00\x00":  # the first Exif
                orientation = _exif_orientation(b[i + 10:i + 2 + length])
            i += 2 + length
    if size is None:  # not a JPEG, cut short, or a header longer than 64 KB (a big embedded thumbnail): decoded whole
        return None
    return size[0], size[1], 1 if orientation is None else orientation


def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag (0x0112) in IFD0 of an Exif block's TIFF data: 1 without the tag, 0 when the data is
    cut short or the tag is not a SHORT (what OpenCV makes of it is unknown)."""
    if tiff[:2] not in (b"II", b"MM") or len(tiff) < 8:
        return 0
    big = tiff[:2] == b"MM"

    def number(at: int, n: int) -> int:
        return int.from_bytes(tiff[at:at + n], "big" if big else "little")

    ifd = number(4, 4)
    if ifd + 2 > len(tiff):
        return 0
    for at in range(ifd + 2, ifd + 2 + 12 * number(ifd, 2), 12):
        if at + 12 > len(tiff):
            return 0
        if number(at, 2) == 0x0112:
            return number(at + 8, 2) if number(at + 2, 2) == 3 and number(at + 4, 4) == 1 else 0
    return 1


def _is_heif(data: np.ndarray) -> bool:
    """Whether ``data`` starts with a HEIF file's ftyp box (an iPhone's .heic photo)."""
    head = bytes(data[:12])
    return len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _decode_heif(data: np.ndarray) -> np.ndarray:
    """A HEIC/HEIF photo -> (H, W, 3) uint8 BGR with pillow-heif (libheif turns it upright as the file says).
    Raises InputReadError when pillow-heif is missing or cannot decode it."""
    try:
        import pillow_heif
    except ImportError:
        raise InputReadError("a HEIC/HEIF photo (an iPhone's), which OpenCV cannot read: pip install pillow-heif "
                             "to read it") from None
    try:
        heif = pillow_heif.open_heif(data.tobytes(), convert_hdr_to_8bit=True)
        rgb = np.asarray(heif)
    except Exception as e:  # libheif's errors have no common type
        raise InputReadError(f"cannot decode this HEIC/HEIF photo: {e}") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGR if rgb.shape[-1] == 4 else cv2.COLOR_RGB2BGR)


def _pixel_limit() -> str:
    """OpenCV's limit on a decoded photo's pixels, as it reads it (OPENCV_IO_MAX_IMAGE_PIXELS, which may carry a
    unit such as 2MB: then said as given), for a message."""
    given = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS")
    return f"{1 << 30} pixels" if given is None else f"{given.strip()} (OPENCV_IO_MAX_IMAGE_PIXELS)"


def _refuse_irregular(mode: int, what: str) -> None:
    """Raise InputReadError for a file mode that is no regular file's: a pipe with no writer would block a read (or
    OpenCV's open) for ever, and a device never ends. what: "photo" or "video"."""
    if not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):  # (fasterpose predict takes folders; a folder reaches here from the Python API)
            raise InputReadError(f"a folder, not a {what} file")
        kind = "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputReadError(f"not a regular file ({kind}): save the {what} to a file first")


def _missing(path: Path) -> str:
    """Why a path that does not exist is none: nothing there, or a symbolic link to nothing (or a loop of them)."""
    return "a symbolic link to nothing (or a loop of links)" if os.path.islink(path) else "no such file or folder"


def read_file_bytes(path: Union[str, os.PathLike]) -> np.ndarray:
    """A photo file's bytes, (n,) uint8 (decoded by :func:`photo_from_bytes` / :func:`image_from_bytes`). Raises
    InputReadError for a file that cannot be read, is empty or is no regular file."""
    try:
        kind = os.stat(path).st_mode
    except OSError as e:
        raise InputReadError(f"cannot read file: {e.strerror or e}") from None
    _refuse_irregular(kind, "photo")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode: works for non-ASCII paths too
    except OSError as e:
        raise InputReadError(f"cannot read file: {e.strerror or e}") from None
    if data.size == 0:
        raise InputReadError("file is empty")
    return data


def _decode(data: np.ndarray, flags: int) -> np.ndarray:
    try:
        img = decoded_saying(lambda: cv2.imdecode(data, flags))  # (libjpeg's warnings kept for the CLI to name)
    except cv2.error as e:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(e):  # OpenCV's assertion spans lines of C++; say it plainly
            size = jpeg_size(data)
            px = f"{size[0]}x{size[1]} px, " if size is not None else ""
            raise PhotoTooLarge(f"too large to decode whole ({px}more than OpenCV's limit of {_pixel_limit()})"
                                ) from None
        raise InputReadError(f"cannot decode: {str(e).strip().splitlines()[-1]}") from None
    if img is None and _jpeg_cut_short(data):
        # OpenCV's decoder of bytes in memory gives up where the data ends; libjpeg reading a file puts an end
        # marker there and fills the rest in gray (cv2.imread does so): the same here, told as libjpeg tells it
        img = decoded_saying(lambda: cv2.imdecode(np.concatenate([data, _JPEG_END]), flags))
        if img is not None:
            add_decoder_line("Premature end of JPEG file")
    if img is None:
        if bytes(data[4:8]) == b"ftyp" and bytes(data[8:12]) in _AUDIO_BRANDS:
            raise InputReadError("an audio file (MPEG-4 audio, M4A), not a photo or video")
        video = _video_container(data)
        if video is not None:
            name, ext = video
            raise InputReadError(f"looks like a video ({name} container), not a photo: rename it with a video "
                                 f"extension such as {ext}")
        raise InputReadError("not a decodable image (unsupported format, or corrupt/truncated data)")
    try:
        return decoded_to_bgr_uint8(img)
    except ValueError as e:
        raise InputReadError(f"unsupported image layout: {e}") from None


_JPEG_END = np.frombuffer(b"\xff\xd9", np.uint8)  # EOI


def _jpeg_cut_short(data: np.ndarray) -> bool:
    """A JPEG file (SOI, then a marker) whose last bytes are not its end marker: a copy or download cut off."""
    return bytes(data[:3]) == b"\xff\xd8\xff" and bytes(data[-2:]) != b"\xff\xd9"


def _video_container(data: np.ndarray) -> Optional[Tuple[str, str]]:
    """(container name, its usual extension) when ``data`` starts like a video file, else None: a video saved
    under a photo's name (.jpg) would otherwise be called an undecodable image."""
    head = bytes(data[:64])
    if head[4:8] == b"ftyp" and head[8:12] not in _PHOTO_BRANDS:
        return ("QuickTime MOV", ".mov") if head[8:12] == b"qt  " else ("MP4", ".mp4")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI", ".avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, or WebM (its doctype says which)
        return ("WebM", ".webm") if b"webm" in head else ("Matroska", ".mkv")
    if head[:4] == b"OggS":
        return "Ogg", ".ogv"
    if head[:4] == b"\x00\x00\x01\xba":  # an MPEG program stream's pack header
        return "MPEG program stream", ".mpg"
    whole = bytes(data[:400])  # MPEG transport streams: a sync byte every 188 bytes (every 192 in a camcorder's .m2ts),
    if len(whole) >= 377 and whole[0] == whole[188] == whole[376] == 0x47:  # three of them (a GIF starts with "G")
        return "MPEG transport stream", ".ts"
    if len(whole) >= 389 and whole[4] == whole[196] == whole[388] == 0x47:
        return "MPEG-2 transport stream (camcorder)", ".m2ts"
    return None


def _photo_format(head: bytes) -> Optional[Tuple[str, str]]:
    """(format name, its usual extension) when the file's first bytes ``head`` are a still photo's (JPEG, PNG, BMP,
    TIFF, WebP, HEIC, AVIF), else None: a photo saved under a video's name (.mp4). GIFs, often animated, are not."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG", ".jpg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG", ".png"
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\0\0\0\0":  # (its reserved bytes: zero)
        return "BMP", ".bmp"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF", ".tif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", ".webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1"):
        return "HEIC", ".heic"
    if head[4:8] == b"ftyp" and head[8:12] == b"avif":
        return "AVIF", ".avif"
    return None


def counts_frames(path: Union[str, os.PathLike]) -> bool:
    """Whether the video file at ``path`` is in a container that counts its frames (MP4, MOV, 3GP: the sample
    tables of their ``moov``, unless fragmented; AVI: its header), so that OpenCV's frame count is the file's own.
    Other containers (Matroska, WebM, MPEG-TS, fragmented MP4, raw streams) give none: OpenCV estimates one as
    duration x fps, and their duration spans the audio too, which may run longer than the pictures. False for a
    stream's URL or a file that cannot be read."""
    if "://" in str(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or (
        head[4:8] != b"ftyp" or head[8:12] not in _PHOTO_BRANDS) and lists_its_samples(path)


def ends_early(path: Union[str, os.PathLike]) -> bool:
    """Whether the Matroska or WebM file at ``path`` ends before its Segment's recorded size: a copy or download cut
    off (its count, OpenCV's estimate from the duration its header recorded, is then worth holding it to). False
    for other files, a Segment of unknown size (a recording never finalised) or a file that cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            size = os.fstat(f.fileno()).st_size
    except (OSError, TypeError, ValueError):
        return False
    if head[:4] != b"\x1a\x45\xdf\xa3":  # EBML
        return False
    at = 4
    header = _ebml_size(head, at)  # the EBML header's own size, then the Segment (ID 18 53 80 67) after it
    if header is None:
        return False
    at = header[1] + header[0]
    if head[at:at + 4] != b"\x18\x53\x80\x67":
        return False
    segment = _ebml_size(head, at + 4)
    return segment is not None and segment[1] + segment[0] > size


def _ebml_size(data: bytes, at: int) -> Optional[Tuple[int, int]]:
    """(the size an EBML element's size field at ``at`` gives, the offset after the field); None when it is cut
    off, malformed or "unknown" (all its value bits set)."""
    if at >= len(data) or data[at] == 0:
        return None
    length = 9 - data[at].bit_length()  # the leading zeros of the first byte say how many bytes follow
    if at + length > len(data):
        return None
    value = int.from_bytes(data[at:at + length], "big") & ((1 << (7 * length)) - 1)
    return None if value == (1 << (7 * length)) - 1 else (value, at + length)


MAX_FPS = 1000.0  # frames per second no camera or video file delivers beyond

def open_video(path: Union[str, os.PathLike]) -> Tuple[cv2.VideoCapture, Optional[int], float]:
    """Open a video -> (capture, frame count or None when the container does not say, fps or 0.0).

    The count is the frames shown: an MP4 / MOV file trimmed without re-encoding lists frames before its cut that
    its edit list hides, which no decoder hands out (:func:`mp4_edits.shown_seconds`). Raises InputReadError when
    no backend can open it. A file name that is not UTF-8 is opened through an ASCII one (:func:`opencv_video_path`).
    """
    if not os.fspath(path):  # (OpenCV's own assertion would reach stderr first)
        raise InputReadError("no such file (an empty path)")
    if "://" not in str(path):  # a stream's URL names no file
        with contextlib.suppress(OSError):  # (a missing file is named below)
            _refuse_irregular(os.stat(path).st_mode, "video")
            with open(path, "rb") as f:
                photo = _photo_format(f.read(16))
            if photo is not None and not (photo[0] == "JPEG" and Path(path).suffix.lower() in (".mjpeg", ".mjpg")):
                # OpenCV would run it as a 1-frame video, its EXIF turn not applied (a Motion JPEG stream is JPEGs
                # one after another: a video)
                advice = ("give it as a photo" if Path(path).suffix.lower() in IMAGE_EXTENSIONS else
                          f"rename it with a photo extension such as {photo[1]}")
                raise InputReadError(f"looks like a photo ({photo[0]}), not a video: {advice}")
    with opencv_video_path(path, "reader") as name:
        cap = cv2.VideoCapture(name)
    if not cap.isOpened():
        cap.release()
        if "://" not in str(path) and not os.path.exists(path):  # a stream's URL names no file
            raise InputReadError("no such file")
        if "://" not in str(path) and has_video_track(path) is False:
            raise InputReadError("holds no video track (an audio file?)")
        raise InputReadError("cannot open as a video (unsupported format or corrupt file)")
    count, fps = capture_info(cap)
    seconds = shown_seconds(path) if count is not None and fps else None
    if seconds is not None and count is not None and round(seconds * fps) < count:
        count = max(1, round(seconds * fps))
    return cap, count, fps


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@contextlib.contextmanager
def opencv_video_path(path: Union[str, os.PathLike], use: str = "reader") -> Iterator[str]:
    """``path`` as a name OpenCV's video reader or writer (``use``) can open: as it is when UTF-8, else an ASCII
    symlink to it in a temporary folder, removed on leaving the block (open the file inside it; it stays open).

    OpenCV hands file names to its video backends as UTF-8 and crashes (segfault) on one that is not: a name in
    another encoding (Latin-1 bytes on Linux), which Python holds with surrogate escapes. Raises InputReadError
    when no such link can be made."""
    name = str(path)
    if _utf8(name):
        yield name
        return
    suffix = Path(name).suffix
    folder = None
    try:
        folder = tempfile.mkdtemp(prefix="fasterpose-")
        link = os.path.join(folder, "video" + (suffix if _utf8(suffix) else ""))  # the writer picks its format by it
        os.symlink(os.path.abspath(name), link)
    except OSError:  # no temporary folder, or no symlinks here
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise InputReadError(f"file name is not valid UTF-8, which OpenCV's video {use} cannot open: "
                             "rename it") from None
    try:
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def capture_info(cap: cv2.VideoCapture) -> Tuple[Optional[int], float]:
    """(frame count or None when the container does not say, fps or 0.0) of an opened capture (a capture-like
    object without ``get``: (None, 0.0))."""
    if not hasattr(cap, "get"):
        return None, 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    # Above MAX_FPS a rate is a container's clock, not frames (RTSP streams may report RTP's 90,000): unknown.
    return (count if count > 0 else None), (fps if np.isfinite(fps) and 0 < fps <= MAX_FPS else 0.0)


MAX_PIXEL_ASPECT = 4.0  # a sample aspect ratio this far from 1:1 (either way) is a broken header, not a lens


def pixel_aspect(cap) -> float:
    """How many times as wide as tall a decoded frame's pixel is shown: the stream's sample aspect ratio (an
    anamorphic DV, DVD or HDV file: 64:45, 8:9, 4:3, ...), turned with the frame when OpenCV turns it by a quarter
    (its rotation metadata); 1.0 for square pixels, a source that does not say (0:0, a capture-like object without
    ``get``), a ratio within 1 % of 1:1 (no model tells the difference) or one beyond MAX_PIXEL_ASPECT either way."""
    try:
        num, den = float(cap.get(cv2.CAP_PROP_SAR_NUM)), float(cap.get(cv2.CAP_PROP_SAR_DEN))
    except (AttributeError, TypeError, ValueError, cv2.error):
        return 1.0
    if not (np.isfinite(num) and np.isfinite(den) and num > 0 and den > 0):
        return 1.0
    aspect = num / den
    if not 1.0 / MAX_PIXEL_ASPECT <= aspect <= MAX_PIXEL_ASPECT or abs(aspect - 1.0) < 0.01:
        return 1.0
    try:  # OpenCV hands out turned frames (ORIENTATION_AUTO), but the ratio of the stored ones
        turned = bool(cap.get(cv2.CAP_PROP_ORIENTATION_AUTO)) and round(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 180
    except (AttributeError, TypeError, ValueError, cv2.error):
        turned = False
    return 1.0 / aspect if turned else aspect


MISSES_IN_A_ROW = 8  # a file's frames failing to decode in a row: fewer are damage passed over, more its end


def iter_video_frames(cap: cv2.VideoCapture, every: int = 1, expected: Optional[int] = None,
                      times: bool = False, counted: bool = True) -> Generator[tuple, None, None]:
    """Yield (frame index, (H, W, 3) uint8 BGR frame) for frames 0, every, 2·every, ...; releases ``cap`` at the end.
    times: yield (index, frame, timestamp) instead, the timestamp the frame's own in seconds as the source gives it
    (``CAP_PROP_POS_MSEC`` once it is read: a variable-frame-rate video's frames are not index / fps apart), None
    when the source gives none (no ``get``, or not a finite number >= 0).

    Skipped frames are only grabbed, not decoded. A file's frame that fails to decode is passed over (its index
    kept) when a later one decodes: fewer than MISSES_IN_A_ROW failures in a row are damage, that many the end.
    Raises InputReadError when not a single frame decodes, and, after the frames read, when frames were passed over
    (naming them) or a file whose container lists ``expected`` frames stops well short of them (a damaged or
    cut-off file): short by more than 1 % (2 frames at least), unless its last frame's timestamp reaches the
    duration the count makes (a trimmed file's count is its shown duration x fps). ``counted`` False: ``expected`` is
    OpenCV's estimate for a container that counts no frames (:func:`counts_frames`), whose duration spans its audio
    too: a file's frames stopping short of it are no evidence of damage, and only frames that fail to decode are
    named. A camera or stream (``expected`` None) ends at its first failed read.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    index, decoded = 0, 0
    last = previous = None  # the timestamps (s) of the last two frames read or grabbed
    fps = capture_info(cap)[1] if expected is not None else 0.0  # read before the capture is released
    limit = MISSES_IN_A_ROW if expected is not None else 1
    misses: List[int] = []  # the frames that failed since the last one that did not
    passed_over: List[int] = []  # wanted frames that failed to decode, a later frame decoding
    try:
        while True:
            wanted = index % every == 0
            if wanted:
                ok, frame = cap.read()
                ok = ok and frame is not None
            else:
                ok = cap.grab()
            if not ok:
                if len(misses) + 1 >= limit:
                    break
                misses.append(index)
                index += 1
                continue
            stamp = _timestamp(cap)
            if misses:
                # A failed read may use up more frames than one (a codec that reorders frames): this frame's own
                # timestamp places it, so later frames keep their numbers (never fewer than the reads counted)
                if stamp is not None and last is not None and fps:
                    index = max(index, misses[0] - 1 + round((stamp - last) * fps))
                passed_over += [i for i in range(misses[0], index) if i % every == 0]
                if index % every:
                    wanted = False  # decoded, but not one of the frames asked for
                elif not wanted:  # only grabbed, where a frame is asked for: decoded now
                    got, image = cap.retrieve() if hasattr(cap, "retrieve") else (False, None)
                    wanted = bool(got) and image is not None
                    if wanted:
                        frame = cast(np.ndarray, image)
                    else:
                        passed_over.append(index)
                misses = []
            last, previous = stamp, last
            if wanted:
                try:
                    image = decoded_to_bgr_uint8(frame)
                except (TypeError, ValueError) as e:  # a capture of one's own handing out something else
                    raise InputReadError(f"frame {index} is no picture: {e}") from None
                decoded += 1
                yield (index, image, last) if times else (index, image)
            index += 1
    finally:
        cap.release()
    index -= len(misses)  # failures at the end: the file ended there
    if decoded == 0:
        raise InputReadError("no frame could be decoded")
    if expected is None:
        return
    slack = max(2, expected // 100)
    lost = "" if not passed_over else f"; frame{'s' if len(passed_over) > 1 else ''} {_frame_list(passed_over)} " \
        "could not be decoded"
    if counted and index < expected - slack and not _reached(fps, expected, slack, last, previous):
        raise InputReadError(f"decoding stopped at frame {index} of the {expected} the file lists (damaged or cut "
                             f"off?); the frames before it were processed{lost}")
    if passed_over:
        raise InputReadError(f"frame{'s' if len(passed_over) > 1 else ''} {_frame_list(passed_over)} could not be "
                             "decoded (a damaged file?); the others were processed")


def _frame_list(frames: List[int], shown: int = 5) -> str:
    """'3, 9 and 12', or the first ``shown`` and how many more."""
    if len(frames) > shown:
        return f"{', '.join(map(str, frames[:shown]))} and {len(frames) - shown} more"
    return " and ".join(filter(None, [", ".join(map(str, frames[:-1])), str(frames[-1])]))


def _timestamp(cap) -> Optional[float]:
    """The timestamp in seconds of the frame just read from ``cap``, or None when it gives none."""
    try:
        seconds = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
    except (AttributeError, TypeError, ValueError):  # a capture-like source without timestamps
        return None
    return seconds if np.isfinite(seconds) and seconds >= 0 else None


def _reached(fps: float, expected: int, slack: int, last: Optional[float], previous: Optional[float]) -> bool:
    """Whether a file's last frame, at ``last`` s (the one before at ``previous``), ends within ``slack`` frames of
    the duration its ``expected`` frames make at its frame rate (a trimmed MP4's count is its shown duration x fps,
    and its frames need not be evenly spaced)."""
    if last is None or not fps:
        return False
    step = last - previous if previous is not None and last > previous else 1.0 / fps  # the last frame's length
    end = (last + step) * fps  # where the last frame ends, in frames of the listed rate
    return expected - slack <= end <= expected + slack  # far beyond: a timestamp not to trust
