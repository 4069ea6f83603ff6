"""One ``fasterpose predict`` run, input by input: a photo read (ahead of the model) with its boxes, a group of
photos' poses found together and written in order with their --vis pictures, a video followed frame by frame;
failures named and counted, never fatal to the rest."""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..boxes import ImageBoxes
from ..decoder_messages import collect_decoder_messages, damage_said, decoder_words
from ..drawing_mark import MARKABLE, add_mark, has_mark, mark_video, may_draw_over
from ..geometry import box_centers_and_sizes, rescale_boxes
from ..inputs import (TEMP_PREFIX, InputItem, InputReadError, PhotoTooLarge, image_from_bytes, is_live,
                      open_stream, open_video, opencv_video_path, photo_from_bytes, read_file_bytes)
from ..predictor import PoseResult
from ..prefetch import READ_AHEAD, OrderedJobs
from ..results import ResultsWriter, atomic_write_bytes, coco_entries
from ..smoothing import DEFAULT_FPS
from ..tracking import find_poses, find_poses_batch
from ..video import VideoPoses
from .common import UsageProblem, folder_problem, plural, printable, say, trace
from .out_dir_sources import SOURCES_NAME, Owner, SourceRecord, owner, recorded_source

# a photo is drawn in its own format where that carries the drawings' mark (drawing_mark.MARKABLE), else as PNG:
# a BMP, TIFF or WebP drawing could not be told from a photo of that name, and would be drawn over next time
_VIS_EXTENSIONS = {".jpg", ".jpeg", ".png"}
NOBODY_NOTE = "nobody found"  # written on a --vis photo where no person was reported
_NUMBERED = re.compile(r"(.+)_[0-9]+")  # a name made unique: a_pose_2 of a_pose


@dataclass
class Photo:
    """A photo read and ready for the model: its input, pixels (decoded at 1/scale of its size), person boxes in
    those pixels (None: the whole photo), image id, its file's bytes (n,) uint8 when --vis draws it whole, and
    whether its decoder printed lines (named already: drawn, its decode is kept quiet)."""

    item: InputItem
    image: np.ndarray
    boxes: Optional[np.ndarray]
    image_id: int
    scale: int = 1
    data: Optional[np.ndarray] = None
    decoder_spoke: bool = False


class Decoded(NamedTuple):
    """What the reader thread hands over (``PredictRun.decode``): a photo's pixels, decoded at 1/scale of its size;
    its boxes file entry (boxes (N, 4) in the photo's px and COCO image id, or None); its size (H, W) where a boxes
    file had it read as stored (else None); the lines its decoder printed (libjpeg's on damaged data, to be said
    with its name: ``decoder_messages``); its file's bytes where --vis will draw it whole (else None)."""

    image: np.ndarray
    scale: int
    boxes: Optional[np.ndarray]
    coco_id: Optional[int]
    as_stored: Optional[Tuple[int, int]]
    said: List[str]
    data: Optional[np.ndarray] = None


def _vis_rel(item: InputItem, vis_dir: Optional[Path] = None, real=os.path.realpath) -> Path:
    """The --vis output of an input, inside the --vis folder: a photo drawn in its own format where OpenCV writes
    it (else .png), a video or camera as an .mp4. Named by its rel (``shoot/a.jpg``: two folders' a.jpg kept
    apart), or, when ``vis_dir`` is the very folder it was found in (a folder argument's, a pattern's fixed folder),
    by its path inside that folder, so it is drawn beside its input as a file argument's drawing is. real: how
    folders' real paths are found (:func:`_folders_real`)."""
    rel = item.rel
    if vis_dir is not None and item.folder is not None and real(vis_dir) == real(item.folder):
        with contextlib.suppress(ValueError):  # path is the folder joined with the path inside it
            rel = item.path.relative_to(item.folder)
    if item.kind != "image":
        return rel.with_suffix(".mp4")
    return rel if rel.suffix.lower() in _VIS_EXTENSIONS else rel.with_suffix(".png")


def _folders_real():
    """os.path.realpath remembering its answers, for the few folders of many inputs, while nothing is written."""
    return functools.lru_cache(maxsize=None)(os.path.realpath)


def _pose_name(rel: Path) -> Path:
    return rel.with_name(f"{rel.stem}_pose{rel.suffix}")


def _unique_path(folder: Path, rel: Path, beside: Optional[Path], names: Set[Path], inputs: Set[str],
                 real=os.path.realpath, drawing: bool = False) -> Path:
    """An output path (--vis, --out-dir) for rel in folder, made unique (name_2, name_3, ...) among ``names`` (the paths
    named so far, to which it is added) when two inputs share a name, and never one of ``inputs`` (real paths), nor
    for a ``drawing`` (--vis) anything there but a marked drawing (somebody's photo or video, a folder:
    :func:`fasterpose_rt.drawing_mark.may_draw_over`). A drawing into the folder of its input ``beside`` is always
    named <name>_pose (a.jpg as a_pose.jpg): drawn as another format (clip.mov as .mp4, IMG_1.heic as .png) it would
    otherwise take the name of a file beside it that is no input, and the name must not depend on which files are
    there (a rerun, --skip-existing, names it alike: its own drawing there is marked). So is one whose name is an
    input's or somebody's photo's. real: how folders' real paths are found (:func:`_folders_real`)."""
    target = folder / rel
    own_folder = beside is not None and real(target.parent) == real(beside.parent)
    if (own_folder or (inputs and os.path.realpath(target) in inputs)
            or (drawing and not may_draw_over(target))):
        rel = _pose_name(rel)
    target, n = folder / rel, 1
    while (target in names or (inputs and os.path.realpath(target) in inputs)
           or (drawing and not may_draw_over(target))):
        n += 1
        target = folder / rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
    names.add(target)
    return target


def own_drawings(items: List[InputItem], vis_dir: Path) -> Set[str]:
    """The real paths of the files among ``items`` that are --vis drawings of this run (into ``vis_dir``), written
    there by this run or one before it, which a folder input finds again when the --vis folder lies in it
    (``expand_inputs(outputs=...)`` leaves them out where a folder or pattern found them):

    - beside an input drawn into its own folder, <name>_pose or <name>_pose_N in its drawing's format (a_pose.jpg
      and a_pose_2.jpg beside a.jpg, clip_pose.mp4 beside clip.mov);
    - the file another input's drawing is named (x/y/a.jpg of ``predict x y --vis x``), as
      :meth:`PredictRun.name_own_files` names it, counting the files named directly as the inputs it keeps clear of.

    A JPEG, PNG or MP4 is one only if it carries the drawings' mark (:mod:`fasterpose_rt.drawing_mark`): one without
    it is somebody's photo or video, an input like any other, which no drawing is written over.
    """
    folder_real = _folders_real()
    files = [i for i in items if i.source is None]
    where = {i.path: folder_real(i.path.parent) for i in files}  # a file's place: its real folder and its name
    beside: Set[Tuple[str, str, str]] = set()  # (real folder, stem, suffix) of the drawings beside their inputs
    for item in files:
        rel = _vis_rel(item, vis_dir, folder_real)
        if folder_real((vis_dir / rel).parent) == where[item.path]:
            pose = _pose_name(rel)
            beside.add((where[item.path], pose.stem, pose.suffix))

    def drawing(item: InputItem) -> bool:  # <stem>_pose or <stem>_pose_N beside its input
        name = item.path
        numbered = _NUMBERED.fullmatch(name.stem)
        return any((where[name], stem, name.suffix) in beside
                   for stem in (name.stem, numbered.group(1) if numbered else None) if stem is not None
                   ) and may_draw_over(name)

    drawn = [i for i in files if i.folder is not None and drawing(i)]
    left = {i.path for i in drawn}
    rest = [i for i in items if i.source is not None or i.path not in left]
    names: Set[Path] = set()
    inputs = {os.path.realpath(i.path) for i in rest if i.source is None and i.folder is None}
    targets = set()
    for item in rest:
        target = _unique_path(vis_dir, _vis_rel(item, vis_dir, folder_real),
                              item.path if item.source is None else None, names, inputs, folder_real, drawing=True)
        targets.add(os.path.join(folder_real(target.parent), target.name))
    drawn += [i for i in rest if i.source is None and i.folder is not None
              and os.path.join(where[i.path], i.path.name) in targets]
    return {os.path.realpath(i.path) for i in drawn}


def marked_drawings(items: List[InputItem]) -> Set[str]:
    """The real paths of the files among ``items`` that a folder or pattern found beside other files and that carry
    the --vis drawings' mark (:mod:`fasterpose_rt.drawing_mark`): an earlier run's drawings, with or without --vis
    now, are pictures of its results, not photos (a rerun of ``predict shoot/`` after ``--vis shoot/`` read
    a_pose.jpg as a photo). A folder (or pattern) that found drawings alone was named for them: they are read."""
    found: Dict[Path, List[InputItem]] = {}
    for i in items:
        if i.source is None and i.folder is not None:
            found.setdefault(i.folder, []).append(i)
    left = set()
    for group in found.values():
        marked = {os.path.realpath(i.path) for i in group if i.path.suffix.lower() in MARKABLE and has_mark(i.path)}
        if len(marked) < len(group):
            left |= marked
    return left


def _last_image_id(results_file: Path) -> int:
    """The largest image id in an --out-dir results file of a photo (JSON list) or video (JSON Lines; ids grow
    frame by frame, so its last line's); 0 when it holds none or cannot be read."""
    try:
        with open(results_file, "rb") as f:
            if results_file.suffix == ".jsonl":
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))  # a line is a few kB: its tail holds the last one whole
                lines = [line for line in f.read().splitlines() if line.strip()]
                entries = [json.loads(lines[-1])] if lines else []
            else:
                entries = json.load(f)
        ids = [e.get("image_id") for e in entries if isinstance(e, dict)]
        return max((i for i in ids if isinstance(i, int) and not isinstance(i, bool)), default=0)
    except (OSError, ValueError):
        return 0


_ENTRY_KEYS = ("image_id", "file_name", "bbox", "keypoints", "score")  # what every results entry holds


def _results_entries(results_file: Path) -> List[dict]:
    """The entries of an --out-dir results file: a photo's JSON list, or a video's JSON Lines. Raises ValueError
    for anything else (an entry that is no results entry included), OSError when it cannot be read."""
    with open(results_file, "rb") as f:
        if results_file.suffix == ".jsonl":
            entries = [json.loads(line) for line in f if line.strip()]
        else:
            entries = json.load(f)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and all(k in e for k in _ENTRY_KEYS)
                                                 for e in entries):
        raise ValueError("not a list of results entries")
    return entries


def _unexpected(error: Exception) -> str:
    """An error no check foresaw, in one line (OpenCV's span several): its kind and first line."""
    text = str(error).strip().splitlines()
    return f"unexpected {type(error).__name__}: {text[-1] if text else ''} (--debug shows the traceback)"


def _why(error: OSError) -> str:
    """The system's reason for an OSError (not the wrapping text some writers add, e.g. "cannot write: ...")."""
    return os.strerror(error.errno) if error.errno else str(error.strerror or error)


class PredictRun:
    """State of one ``predict`` run: running image ids, counts, failures, --vis names."""

    def __init__(self, pred, writer, lookup, detect, *, vis_dir=None, vis_threshold=0.3, every=1, debug=False,
                 passes=0, track=False, smooth=False, search=True, max_persons=1, max_frames=None, live=None,
                 long_side=None, read_ahead=READ_AHEAD, window=None, min_presence=None, out_dir=None,
                 skip_existing=False, left_out=0, video_passes=None, drawings_left_out=0):
        self.pred, self.writer, self.lookup, self.detect = pred, writer, lookup, detect
        self.vis_dir, self.vis_threshold, self.every, self.debug = vis_dir, vis_threshold, every, debug
        self.passes, self.track, self.smooth, self.search = passes, track, smooth, search
        self.video_passes = video_passes  # --refine as given (None: VideoPoses' own: 0 for --boxes' first frame)
        self.max_persons, self.max_frames, self.live = max_persons, max_frames, live
        self.long_side, self.read_ahead, self.window = long_side, read_ahead, window
        self._show_photos = True  # until q or Esc in a photo's window
        self.min_presence = min_presence
        self.next_id = 0
        self.category_id = lookup.category_id if lookup is not None else 1  # a COCO --boxes file's person id
        # --skip-existing: the ids the inputs skipped before a run input would have taken, as (a, b): on reaching
        # it, next_id = max(next_id + a, b), so it gets the ids a whole run gives it
        self._skipped_ids: Dict[str, Tuple[int, int]] = {}
        self._carried: List[Tuple[InputItem, Path]] = []  # the skipped inputs and their --out-dir files, in order
        self._carried_entries: List[dict] = []  # their results, written before the run's first (``_add``)
        self.failed: Dict[str, None] = {}  # the inputs that failed, each once however many of its parts did
        self.photos_done = self.frames = self.dropped = self.videos = self.persons = 0
        self.photos_of_nobody = 0  # photos where nobody was found (or, without boxes, nobody was there)
        self.out_dir, self.skip_existing = out_dir, skip_existing  # --out-dir: each input's results on their own
        self._own: Dict[str, Path] = {}  # input label -> its --out-dir file
        self._sources = SourceRecord(out_dir) if out_dir is not None else None  # whose results each file holds
        self._unrecorded = False  # a file's input could not be recorded (said once)
        self._vis: Dict[str, Path] = {}  # input label -> its --vis picture or video
        self._inputs: Set[str] = set()  # the input files' real paths: no output is ever written over one
        self.skipped = 0  # --skip-existing: inputs whose --out-dir file was already there
        self.left_out = left_out  # files of input folders under --vis or --out-dir: outputs, not inputs
        self.drawings_left_out = drawings_left_out  # an earlier run's marked drawings a folder or pattern found
        self._names: Set[Path] = set()  # --vis and --out-dir files written so far: no two inputs share one
        self._named = False  # name_own_files has named them
        self._vis_jobs = OrderedJobs() if vis_dir is not None else None  # --vis drawn and written beside the model
        self._started = time.perf_counter()  # the model is loaded: the inputs' time starts

    def fail(self, path, reason: str) -> None:
        """Name an input's failure; ``path`` is its path or its label (a stream's source, else the path)."""
        self.failed[path if isinstance(path, str) else Path(path).as_posix()] = None
        say(f"error: {path}: {reason}")

    def _vis_failed(self, failures) -> None:
        for path, error in failures:
            self.fail(path, str(error))

    def finish_vis(self) -> None:
        """Wait for the --vis pictures still being drawn and written (their failures named)."""
        if self._vis_jobs is not None:
            self._vis_failed(self._vis_jobs.finish())

    def name_own_files(self, items: List[InputItem], out: Optional[Path] = None) -> None:
        """Name each input's own output files, its --out-dir results and its --vis picture or video, in input order,
        so a run given the same inputs again (resumed with --skip-existing) names them alike. An --out file that
        is one of them is a usage error (UsageProblem): the two would write over each other."""
        self._inputs = {os.path.realpath(i.path) for i in items if i.kind != "stream"}
        folder_real = _folders_real()
        if self.out_dir is not None:  # its record's name is taken (a video named .fasterpose_sources.mp4)
            self._names.add(self.out_dir / SOURCES_NAME)
        for item in items:
            if self.out_dir is not None:
                self._own[item.label] = self._unique(
                    self.out_dir, item.rel.with_suffix(".json" if item.kind == "image" else ".jsonl"), real=folder_real)
            if self.vis_dir is not None:
                self._vis[item.label] = self._unique(self.vis_dir, _vis_rel(item, self.vis_dir, folder_real),
                                                     beside=item.path if item.kind != "stream" else None,
                                                     real=folder_real, drawing=True)
        self._named = True
        if out is None:
            return
        planned = [(f"the --vis output of {label}", path) for label, path in self._vis.items()]
        for label, path in self._own.items():  # a video's is written as .part until its end
            planned += [(f"the --out-dir results file of {label}", p)
                        for p in (path, path.with_name(path.name + ".part"))]
        if self.out_dir is not None:
            planned.append(("the --out-dir record of whose results each file holds", self.out_dir / SOURCES_NAME))
        same = next((what for what, p in planned if os.path.realpath(p) == os.path.realpath(out)), None)
        if same is not None:
            raise UsageProblem(f"cannot write results to {out}: it is {same}; give --out another file")

    def plan_own_files(self, items: List[InputItem]) -> List[InputItem]:
        """With --skip-existing, leave out the photos and video files whose results file is there already, and their
        --vis picture or video if --vis is given (their own files named first: ``name_own_files``). An input whose
        --out-dir file holds another input's results (two folders' a.jpg into one --out-dir in two runs) fails,
        neither skipped nor written over. The running image ids are planned here too, from every input. Returns
        the inputs to run."""
        if not self._named:
            self.name_own_files(items)
        self._settle_namesakes(items)
        self._start_after_the_boxes_files_ids(items)
        kept = []
        ahead = floor = 0  # the skipped inputs since the last kept one: next_id = max(next_id + ahead, floor)
        for item in items:
            own = self._own.get(item.label)
            if own is not None and item.kind != "stream":  # links and others' files are not written over
                planted = self._not_to_write(own, item)
                if planted is not None:
                    self.fail(item.path, planted)
                    continue
            if own is None or item.kind == "stream" or not _is_file(own):
                kept.append(item)
                self._skipped_ids[item.label], ahead, floor = (ahead, floor), 0, 0
                continue
            assert self._sources is not None
            whose = owner(own, item, self._sources, self._inputs)
            if whose.kind == "other":
                # two inputs of one name, given in another order than before (or one alone): its own file may be
                # the one the other's name took (name_2 and name), which --skip-existing then finds
                found = self._own_file_among_namesakes(item, len(items))
                if found is not None:
                    own, whose, n = found
                    self._own[item.label] = own
                    self._vis_as_namesake(item, n, items)
            if whose.kind in ("none", "other"):
                what = "is not a results file" if whose.kind == "none" else f"holds the results of {whose.source}"
                self.fail(item.path, f"its --out-dir file {own} {what}; give another --out-dir (or move that file)")
                continue
            if whose.kind == "changed" and self.skip_existing:  # its results are of the file as it was
                say(f"warning: {item.path}: changed since its results in {own} were written: run again")
            drawn = item.label not in self._vis or _is_file(self._vis[item.label])  # (a failed --vis: run again)
            if self.skip_existing and drawn and whose.kind == "own":  # ("[]": nobody found, taken as its own)
                if item.kind == "video" and item.label in self._vis:  # a later run cut short: its drawing is done
                    part = self.vis_part(item.label)
                    if _is_file(part) and has_mark(part):
                        with contextlib.suppress(OSError):
                            os.remove(part)
                self.skipped += 1
                self._carried.append((item, own))
                # Its ids are passed over where it stands in input order (an input before it keeps a whole run's
                # ids): a photo takes one id, a video one per frame, and its file's last id says how many (short
                # only of trailing frames with nobody).
                ahead += item.kind == "image"
                floor = max(floor + (item.kind == "image"), _last_image_id(own))
                continue
            kept.append(item)
            self._skipped_ids[item.label], ahead, floor = (ahead, floor), 0, 0
        return kept

    def carry_skipped(self) -> None:
        """--skip-existing: the skipped inputs' results, read from their --out-dir files, go into --out (or stdout)
        first, in input order, so a run resumed there ends with the whole run's results, not only its own; each
        entry's file_name is the input as named now (a run resumed from another folder names them alike). They
        are written with the run's first results, or by ``flush_carried`` at the end: a JSON Lines --out is not
        opened before then, so a run that processes nothing may still leave it as it was. An input whose file
        cannot be read as results fails (its results would be missing from --out)."""
        for item, own in self._carried:
            try:
                entries = _results_entries(own)
            except (OSError, ValueError) as e:
                self.skipped -= 1  # failed, not skipped
                self.fail(item.label, f"its --out-dir file {own} cannot be read as results ({e}), so its results "
                                      "are not in --out; run it again without --skip-existing")
                continue
            name = item.path.as_posix() if item.kind == "image" else item.label
            self._carried_entries.extend({**e, "file_name": name} for e in entries)
        self._carried = []

    def flush_carried(self) -> None:
        """Write the carried results not written yet (``carry_skipped``)."""
        if self._carried_entries:
            entries, self._carried_entries = self._carried_entries, []
            self.writer.add(entries)

    def _add(self, entries: List[dict]) -> None:
        """Results to --out (or stdout), after the carried ones."""
        self.flush_carried()
        self.writer.add(entries)

    def unwritable(self, items: List[InputItem]) -> Optional[str]:
        """Why the output of one of ``items`` (the inputs to run, after ``plan_own_files``) cannot be written: the
        nearest folder there is above its --out-dir file or --vis output does not take files. Checked before any
        work, so a run is refused once instead of failing input by input; a folder nothing will be written to
        (every input's results there already, --skip-existing) is not asked. None when all can be written."""
        checked: Set[Path] = set()
        for option, targets in (("--out-dir", self._own), ("--vis", self._vis)):
            for item in items:
                folder = targets[item.label].parent if item.label in targets else None
                while folder is not None and not folder.exists() and folder != folder.parent:  # made on the way
                    folder = folder.parent
                if folder is None or folder in checked:
                    continue
                checked.add(folder)
                problem = folder_problem(folder)
                if problem is not None:
                    return f"cannot write to the {option} folder {folder}: {problem}"
        return None

    def _settle_namesakes(self, items: List[InputItem]) -> None:
        """Give a namesake's --out-dir file (and --vis output) back to the input whose results it holds: names follow
        input order, so a folder grown by a namesake that sorts first (x.avi beside an x.mp4 done before) named
        x.avi after x.mp4's file, which then failed x.avi on every run and redid x.mp4 into a new x_2 (review s68).
        An input whose planned file holds a namesake's results takes that namesake's planned name where the
        namesake's own file is not there yet, else a free one (x_3: an earlier version's duplicate x_2 is left)."""
        if self.out_dir is None or self._sources is None:
            return
        by_name: Dict[Path, List[InputItem]] = {}
        for item in items:
            if item.kind != "stream" and item.label in self._own:
                by_name.setdefault(item.rel.with_suffix(""), []).append(item)

        def holds_own(path: Path, item: InputItem) -> bool:
            assert self._sources is not None
            return _is_file(path) and owner(path, item, self._sources, self._inputs).kind in ("own", "changed")

        for group in (g for g in by_name.values() if len(g) > 1):
            for item in group:
                own = self._own[item.label]
                if not _is_file(own) or owner(own, item, self._sources, self._inputs).kind != "other":
                    continue
                holder = next((i for i in group if i is not item and self._own[i.label] != own
                               and holds_own(own, i) and not holds_own(self._own[i.label], i)), None)
                if holder is None:  # whoever it holds has a file of its own: another name for this one
                    if self._own_file_among_namesakes(item, len(items)) is None:
                        base, n = self.out_dir / item.rel.with_suffix(own.suffix), 2
                        while any(p in self._names or p.exists() for p in (
                                _number_name(base, n), _number_name(base, n).with_name(_number_name(base, n).name
                                                                                     + ".part"))):
                            n += 1
                        self._own[item.label] = _number_name(base, n)
                        self._names.add(self._own[item.label])
                        self._vis_as_namesake(item, n, items)
                    continue
                self._own[item.label], self._own[holder.label] = self._own[holder.label], own
                self._vis_as_namesake(holder, self._namesake_number(holder, own), items)

    def _not_to_write(self, own: Path, item: InputItem) -> Optional[str]:
        """Why ``item``'s --out-dir file ``own`` (or, for a video, its ``.part`` file) must not be written, or None:
        a symbolic link (results were written through it, over the file it named, outside the folder: review s68),
        or for ``.part`` a file there that is no results file (it was written over)."""
        paths = [own, own.with_name(own.name + ".part")] if item.kind == "video" else [own]
        for path in paths:
            if os.path.islink(path):
                return (f"its --out-dir file {path} is a symbolic link, which results are not written through; "
                        "remove it or give another --out-dir")
        part = paths[-1]
        if item.kind == "video" and _is_file(part):
            try:
                with open(part, "rb") as f:
                    head = f.read(16)
            except OSError:
                head = b""
            # this command's JSON Lines, however cut short (a torn line too), or nothing yet
            if head and not head.startswith(b'{"image_id":'):
                return f"its --out-dir file {part} is not a results file; give another --out-dir (or move that file)"
        return None

    def vis_part(self, label: str) -> Path:
        """Where input ``label``'s --vis video goes when cut short: clip.part.mp4, or where that is another output's
        name (an input named clip.part.mp4 draws there) clip.part_2.mp4, ..."""
        part, n = _part_name(self._vis[label]), 1
        while any(p == part for p in self._vis.values()) or part in self._names:
            n += 1
            part = _number_name(_part_name(self._vis[label]), n)
        return part

    def _namesake_number(self, item: InputItem, path: Path) -> int:
        """n of the --out-dir file ``path`` named as ``item``'s name (1) or a namesake's (name_n)."""
        assert self.out_dir is not None
        rel = item.rel.with_suffix(".json" if item.kind == "image" else ".jsonl")
        base = self.out_dir / rel
        if path == base:
            return 1
        tail = path.stem[len(base.stem) + 1:] if path.stem.startswith(base.stem + "_") else ""
        return int(tail) if tail.isdigit() else 1

    def _own_file_among_namesakes(self, item: InputItem, most: int) -> Optional[Tuple[Path, Owner, int]]:
        """The --out-dir file, named as ``item``'s name or a namesake's (name, name_2, ... name_<most + 1>), that holds
        ``item``'s own results (changed since or not; ``[]`` names nobody's), how it is its own, and its number n
        (1 for name); or None."""
        assert self.out_dir is not None and self._sources is not None
        rel = item.rel.with_suffix(".json" if item.kind == "image" else ".jsonl")
        for n in range(1, most + 2):
            path = self.out_dir / (rel if n == 1 else rel.with_name(f"{rel.stem}_{n}{rel.suffix}"))
            if _is_file(path):
                whose = owner(path, item, self._sources, self._inputs)
                names_it = self._sources.get(path) is not None or bool(recorded_source(path))  # not [] alone
                if whose.kind in ("own", "changed") and names_it:
                    return path, whose, n
        return None

    def _vis_as_namesake(self, item: InputItem, n: int, items: List[InputItem]) -> None:
        """Give ``item``'s --vis output the number n its --out-dir file was found under (``_own_file_among_namesakes``),
        so the two names still mean one input: a run given two inputs of one name in the other order drew each over
        the other's picture. The namesake that held that name takes ``item``'s."""
        old = self._vis.get(item.label)
        if old is None or self.vis_dir is None:
            return
        beside = item.path if item.kind != "stream" else None
        base = _unique_path(self.vis_dir, _vis_rel(item, self.vis_dir), beside, set(), self._inputs, drawing=True)
        wanted = base if n == 1 else base.with_name(f"{base.stem}_{n}{base.suffix}")
        if wanted == old:
            return
        holder = next((i.label for i in items if i.label != item.label and self._vis.get(i.label) == wanted), None)
        if holder is not None:
            self._vis[holder] = old
        elif wanted in self._names or not may_draw_over(wanted):  # another output's name, or somebody's photo
            return
        else:
            self._names.discard(old)
            self._names.add(wanted)
        self._vis[item.label] = wanted

    def _record_source(self, item: InputItem, results_file: Path) -> None:
        """Record in --out-dir that ``results_file`` holds ``item``'s results (``out_dir_sources``); one that
        cannot be is said once: a later run tells that file by the name it records."""
        assert self._sources is not None
        try:
            self._sources.add(results_file, item.path)
        except OSError as e:
            if not self._unrecorded:
                self._unrecorded = True
                say(f"warning: cannot record whose results {results_file} holds in {self._sources.path}: {_why(e)} "
                    "(a later run tells such files by the input names they hold)")

    def _start_after_the_boxes_files_ids(self, items: List[InputItem]) -> None:
        """Running image ids (a video's frames, a photo whose --boxes entry gives it none) start after the largest
        image id the --boxes file gives, to any entry but the entries of the videos among ``items`` (their frames
        take ids of their own), never taking an id of the file's: a COCO file's photo 1 and a video's first frame
        were both 1, and from the largest the run's photos keep, a video took the ids of the file's photos not
        run. Not from which inputs are run, so a run resumed with --skip-existing numbers its inputs as a whole
        run does."""
        if self.lookup is not None:
            self.next_id = self.lookup.largest_image_id(items)

    def _pass_skipped(self, item: InputItem) -> None:
        """Before ``item`` takes its first id: pass over the ids of the inputs skipped just before it."""
        ahead, floor = self._skipped_ids.pop(item.label, (0, 0))
        self.next_id = max(self.next_id + ahead, floor)

    @property
    def processed(self) -> bool:
        """Whether any photo or video frame was done (with or without persons in it)."""
        return bool(self.photos_done or self.frames)

    def summary(self, out, kept: bool = False) -> str:
        nobody = f" ({self.photos_of_nobody} with nobody found)" if self.photos_of_nobody else ""
        parts = [plural(self.photos_done, "photo") + nobody]
        if self.videos:
            dropped = f", {self.dropped} dropped to keep up" if self.dropped else ""
            parts.append(f"{plural(self.videos, 'video')} ({plural(self.frames, 'frame')}{dropped})")
        seconds = time.perf_counter() - self._started
        done, unit = (self.frames, "frames") if not self.photos_done else (self.photos_done, "photos")
        rate = f" ({done / seconds:.1f} {unit}/s)" if done and not (self.photos_done and self.frames) else ""
        text = (f"{', '.join(parts)}, {plural(self.persons, 'person')} in {seconds:.1f} s{rate} -> "
                f"{out if out is not None else 'stdout'}" + (" (left as it was: nothing processed)" if kept else ""))
        if self.skipped:
            carried = "" if kept else f", also in {out}" if out is not None else ", also printed"
            text += f"; {plural(self.skipped, 'input')} skipped (results already in {self.out_dir}{carried})"
        if self.left_out:
            text += f"; {plural(self.left_out, 'file')} under --vis or --out-dir left out of the input folders"
        if self.drawings_left_out:
            text += (f"; {plural(self.drawings_left_out, 'drawing')} of an earlier --vis run left out of the input "
                     "folders (name one to run it)")
        if self.failed:
            text += f"; {plural(len(self.failed), 'input')} failed"
        return text

    def _boxes_for(self, item, image):
        """(boxes (N, 4) or None for the whole photo, COCO image id or None); raises InputReadError if unlisted."""
        if self.lookup is not None:
            found = self._listed(item)
            return found.boxes, found.image_id
        if self.detect is not None:
            boxes, _ = self.detect(image)
            return (boxes if len(boxes) else None), None
        return None, None

    def _listed(self, item) -> ImageBoxes:
        """The boxes file's entry of ``item``; raises InputReadError if unlisted."""
        found = self.lookup.find(item.path, item.rel, from_cwd=True)  # type: ignore[union-attr]
        if found is None:
            raise InputReadError(f"not listed in the boxes file {self.lookup.source}")  # type: ignore[union-attr]
        return found

    def _predict(self, image, boxes=None):
        """Poses in a photo: ``boxes`` with the run's refine passes (a boxes file's persons all stay)."""
        try:
            return find_poses(self.pred, image, boxes, self.passes, keep_all=self.lookup is not None,
                              search=self.search, max_persons=self.max_persons, min_presence=self.min_presence)
        except (ValueError, RuntimeError) as e:  # a bad box, or the model failing on this input
            trace(self.debug)
            raise InputReadError(f"prediction failed: {e}") from None
        except Exception as e:  # anything else fails this photo alone, the rest of the run goes on
            trace(self.debug)
            raise InputReadError(f"prediction failed: {_unexpected(e)}") from None

    def decode(self, item) -> "Decoded":
        """A photo's pixels and its boxes file entry (:class:`Decoded`). Runs ahead of the model (``prefetch``);
        raises InputReadError when the photo cannot be read or is not listed in the boxes file. A photo a COCO boxes
        file lists in its stored frame, which its EXIF orientation turns (the file's width and height across the
        upright photo's), is read as stored, where the file's boxes are, as ``fasterpose eval`` reads it."""
        found = self._listed(item) if self.lookup is not None else None
        boxes, coco_id = (found.boxes, found.image_id) if found is not None else (None, None)
        data = read_file_bytes(item.path)  # read once: --vis decodes these bytes again whole, never the file
        with collect_decoder_messages() as said:  # libjpeg's own lines on damaged data, said with the photo's name
            try:
                image, scale = photo_from_bytes(data, self.long_side, self._most_reduction(boxes))
            except InputReadError as e:
                if said:
                    raise InputReadError(f"{e}: {decoder_words(said)}") from None
                raise
            size = found.image_size if found is not None else None
            if size is not None and size[0] != size[1] and (image.shape[0] > image.shape[1]) != (size[0] > size[1]):
                stored = image_from_bytes(data, orientation=False)  # (read_as_listed's check, the upright read done)
                if stored.shape[:2] == tuple(size):
                    return Decoded(stored, 1, boxes, coco_id, size, said)
        kept = data if scale > 1 and self.vis_dir is not None else None
        return Decoded(image, scale, boxes, coco_id, None, said, kept)

    def _most_reduction(self, boxes) -> int:
        """The largest decoding scale at which every box's crop region keeps at least the model's input px."""
        if boxes is None or not len(boxes):
            return 8
        _, regions = box_centers_and_sizes(boxes, self.pred.input_size, self.pred.box_padding)  # (N, 2) w, h
        return int(max(1.0, float(regions[:, 1].min()) / self.pred.input_size[1]))

    def read_photo(self, item, decoded) -> Optional[Photo]:
        """The photo ``decode`` read (``decoded.result()``) with its boxes in the decoded px (a detector's, run
        here); None (the failure named) when it cannot be read or is not listed."""
        self._pass_skipped(item)
        self.next_id += 1
        try:
            image, scale, boxes, coco_id, as_stored, decoder_said, data = decoded.result()
            if decoder_said:
                say(f"warning: {item.path}: {damage_said(decoder_said)}")
            if as_stored is not None:
                say(f"warning: {item.path}: read as stored, its EXIF orientation ignored: the --boxes file lists it "
                    f"as {as_stored[1]}x{as_stored[0]} px, the frame of its boxes (its results are in that frame)")
            if self.lookup is None:
                boxes, coco_id = self._boxes_for(item, image)
            else:
                if scale > 1:
                    boxes = rescale_boxes(boxes, 1.0 / scale).astype(np.float32)
                self._warn_outside(item, image, boxes)
        except InputReadError as e:
            self.fail(item.path, str(e))
            return None
        except Exception as e:  # e.g. a photo too large to decode: this photo alone fails
            trace(self.debug)
            self.fail(item.path, f"cannot read it: {_unexpected(e)}")
            return None
        return Photo(item, image, boxes, coco_id if coco_id is not None else self.next_id, scale, data,
                     bool(decoder_said))

    @staticmethod
    def _warn_outside(item: InputItem, image: np.ndarray, boxes, video: bool = False) -> None:
        """Warn of --boxes boxes that miss the photo (``video``: the first frame) altogether (often given in the
        stored frame of a photo whose EXIF orientation turns it); they are still run, as boxes partly outside the
        photo are fine."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        h, w = image.shape[:2]  # the photo covers [-0.5, w - 0.5] x [-0.5, h - 0.5] (geometry.py convention 1)
        outside = int(((b[:, 0] + b[:, 2] <= -0.5) | (b[:, 1] + b[:, 3] <= -0.5) | (b[:, 0] >= w - 0.5)
                       | (b[:, 1] >= h - 0.5)).sum())
        if outside:
            which = ("its box lies" if len(b) == 1 else
                     f"{outside} of its {len(b)} boxes {'lie' if outside > 1 else 'lies'}")
            say(f"warning: {item.path}: {which} wholly outside the " + (
                "first frame; a video's --boxes are its first frame's, in the px it is decoded to (its rotation "
                "applied, as results give them)" if video else
                "photo; --boxes coordinates are in the upright photo's px (EXIF orientation applied, as results and "
                "--vis show it)"))

    def photos(self, group: List[Photo], bar) -> None:
        """Find the poses of a group of photos together (their persons share the model's batches), then write
        each one's results and --vis picture in order."""
        if not group:
            return
        try:
            results: List[Optional[PoseResult]] = list(find_poses_batch(
                self.pred, [g.image for g in group], [g.boxes for g in group], self.passes,
                keep_all=self.lookup is not None, search=self.search, max_persons=self.max_persons,
                min_presence=self.min_presence))
        except Exception:  # one photo's bad box or model failure: find which, photo by photo
            results = []
            for g in group:
                try:
                    results.append(self._predict(g.image, g.boxes))
                except InputReadError as e:
                    self.fail(g.item.path, str(e))
                    results.append(None)
        for g, res in zip(group, results):
            if res is not None:
                self._write_photo(g, res)
            bar.update(1)

    def _write_photo(self, photo: Photo, res: PoseResult) -> None:
        item, decoded = photo.item, res  # decoded: in the px of photo.image, which --show draws on
        if photo.scale > 1:  # in the photo's own px
            res = res.rescaled(photo.scale)
        entries = coco_entries(res, photo.image_id, item.path.as_posix(), category_id=self.category_id)
        self._add(entries)
        if self.out_dir is not None:
            self._write_own(item, entries)
        self.photos_done += 1
        self.persons += len(res)
        self.photos_of_nobody += not len(res)
        if self._vis_jobs is not None:
            draw = functools.partial(self._draw_photo, photo, res, self._vis[item.label])
            self._vis_failed(self._vis_jobs.submit(item.path, draw))
        self.writer.step()
        if self.window is not None and self._show_photos:  # the window lives in this thread; drawn as decoded
            drawn = self.pred.draw(photo.image, decoded, self.vis_threshold, note=NOBODY_NOTE)
            self._show_photos = self.window.hold(drawn)  # q or Esc: the rest are processed, not shown

    def _write_own(self, item: InputItem, entries: List[dict]) -> None:
        """--out-dir: a photo's entries as a JSON list of their own (``[]``: nobody found), written atomically."""
        target = self._own[item.label]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            own = ResultsWriter(target)
            own.add(entries)
            own.close()
        except OSError as e:
            self.fail(item.path, f"cannot write its results to {target}: {_why(e)}")
            return
        self._record_source(item, target)

    def _draw_photo(self, photo: Photo, res: PoseResult, target: Path) -> None:
        """Draw ``res`` on the photo (decoded again whole from the bytes read with it if it was decoded smaller: no
        second read of the file, which could have changed, or hang on a network mount in this thread that the
        run waits for) and write it to ``target``. Runs beside the model; raises InputReadError saying what went
        wrong."""
        try:
            # a damaged photo, named when first read, decoded again without its decoder's lines; the others
            # (silent then, so now) decode beside the reader's, not one after the other (decoder_messages' lock)
            with collect_decoder_messages() if photo.decoder_spoke else contextlib.nullcontext():
                image = photo.image if photo.data is None else image_from_bytes(photo.data)
        except PhotoTooLarge:  # only its reduced decoding fits OpenCV: drawn at that size
            image, res = photo.image, res.rescaled(1.0 / photo.scale)
        except InputReadError as e:  # (the bytes decoded smaller: whole, they should too)
            raise InputReadError(f"cannot decode it whole for --vis: {e}") from None
        ok, buf = cv2.imencode(target.suffix, self.pred.draw(image, res, self.vis_threshold, note=NOBODY_NOTE))
        try:
            if not ok:
                raise OSError(f"OpenCV cannot encode {target.suffix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            # marked as a drawing (a later run's to draw over, not a photo); a full disk leaves the one before whole
            atomic_write_bytes(target, add_mark(buf.tobytes(), target.suffix))
        except OSError as e:
            raise InputReadError(f"cannot write --vis image {target}: {_why(e)}") from None

    def video(self, item, bar_shown: bool) -> None:
        self._pass_skipped(item)
        errors, vis, own = 0, None, None
        # --out-dir: the video's own JSON Lines, named .part until its end (only whole ones are skipped); a camera's
        # or stream's has no end to wait for
        own_path = self._own.get(item.label)
        writing = own_path if own_path is None or item.kind == "stream" else own_path.with_name(own_path.name + ".part")

        def frame_failed(index, e):
            nonlocal errors
            errors += 1
            self.next_id += 1  # a failed frame keeps its image id: the video's other ids do not move
            trace(self.debug)
            say(f"error: {item.label} frame {index}: prediction failed: {e}")

        try:
            boxes = self._boxes_for(item, None)[0] if self.lookup is not None else None
            detect = None if self.detect is None else (lambda frame: self._boxes_for(item, frame)[0])
            source = open_stream(item.source) if item.source is not None else item.path
            live = item.source is not None and (is_live(item.source) if self.live is None else self.live)
            video = VideoPoses(self.pred, source, every=self.every, track=self.track, smooth=self.smooth,
                               boxes=boxes, detector=detect, refine_passes=self.video_passes, on_error=frame_failed,
                               search=self.search, max_persons=self.max_persons, max_frames=self.max_frames,
                               live=live, read_ahead=self.read_ahead, min_presence=self.min_presence,
                               keep_failed=self._vis_jobs is not None)  # drawn raw: the --vis video keeps its pace
        except InputReadError as e:
            self.next_id += 1
            self.fail(item.label, e.reason)  # (VideoPoses names the file in its message: the label names it here)
            return
        except Exception as e:  # a video OpenCV fails to open in a way no check foresaw: this input, not the run
            self.next_id += 1
            trace(self.debug)
            self.fail(item.label, _unexpected(e))
            return
        aspect = video.pixel_aspect
        if aspect != 1.0:
            shape = f"{aspect:.4g} times as wide as tall" if aspect > 1 else f"{1 / aspect:.4g} times as tall as wide"
            say(f"note: {item.label}: its pixels are shown {shape} (an anamorphic video): run as shown; results in "
                f"the decoded frame's px (\"pixel_aspect\": {aspect:.4g} in JSON), --vis as shown")
        if self._vis_jobs is not None:  # at the rate the results' times count (DEFAULT_FPS when the video's unknown)
            vis = _VisVideo(self, item.label, self._vis[item.label], video.fps or DEFAULT_FPS, self.every)
        bar = tqdm(total=video.expected_frames, desc=printable(item.path.name), unit="frame", leave=False,
                   disable=None if bar_shown else True, file=sys.stderr)  # None: on a terminal only
        ended = False
        try:
            for n, frame in enumerate(video):
                self.videos += n == 0  # counted from its first frame: a camera stopped by Ctrl-C is one too
                if n == 0 and boxes is not None:  # its boxes are the first frame's: missing it, as a photo's are told
                    self._warn_outside(item, frame.image, boxes, video=True)
                bar.update(1)
                res = frame.poses
                failed = frame.error is not None  # named by frame_failed, which took its image id
                if not failed:
                    self.next_id += 1
                    # a frame is an image of its own: a --boxes file's image id of the video would name them all
                    entries = coco_entries(res, self.next_id, item.label, frame=frame.index, time=frame.time,
                                           category_id=self.category_id, pixel_aspect=aspect)
                    self._add(entries)
                    if writing is not None:  # written as the frames are done
                        if own is None:
                            try:
                                writing.parent.mkdir(parents=True, exist_ok=True)
                                opened = ResultsWriter(writing, fmt="jsonl")
                                opened.check_writable()  # opened here: one that fails leaves nothing to close
                            except OSError as e:
                                raise InputReadError(f"cannot write its results to {writing}: {_why(e)}") from None
                            own = opened
                        own.add(entries)
                        own.step()
                    self.frames += 1
                    self.persons += len(res)
                # --show draws here (a window lives in the main thread); --vis writes that picture, or draws its own;
                # both as a player shows the frame (an anamorphic video's pixels made square)
                image, shown = video.as_shown(frame.image, None if failed else res) if (
                    self.window is not None or vis is not None) else (frame.image, None)
                drawn = None if self.window is None else (
                    image if shown is None else self.pred.draw(image, shown, self.vis_threshold))
                if vis is not None:
                    vis.add(image, shown, drawn, frame.time, frame.index)
                self.writer.step()
                if drawn is not None and not self.window.show(drawn):
                    break  # q, Esc or the window closed: this input ends here
            ended = True
        except InputReadError as e:
            self.fail(item.label, e.reason)  # (VideoPoses names the file: the label names it here)
            return
        except OSError as e:  # a folder or file to write (--out-dir)
            if self._results_failed(e):  # --out or stdout takes no more: the run ends, not this input alone
                raise
            self.fail(item.label, f"cannot write {e.filename or 'its output'}: {_why(e)}")
            return
        except Exception as e:  # anything else fails this video alone; its frames so far are kept
            trace(self.debug)
            self.fail(item.label, _unexpected(e))
            return
        finally:
            try:
                if own is not None:
                    own.close()
                bar.close()
                video.close()
                self.dropped += video.dropped_frames
            finally:  # (also when a Ctrl-C cut the closing above short)
                if vis is not None:
                    # also on Ctrl-C: the frames so far make a whole video, named .part but for a camera's or stream's
                    vis.close(video.frame_count, cut_short=not ended and item.kind != "stream")
        if own is not None and writing is not None and own_path is not None and writing != own_path:  # it ended
            try:
                os.replace(writing, own_path)
            except OSError as e:
                self.fail(item.label, f"cannot write its results to {own_path}: {_why(e)}")
            else:
                self._record_source(item, own_path)
        if errors:
            self.fail(item.label, f"{plural(errors, 'frame')} failed")

    def _results_failed(self, error: OSError) -> bool:
        """Whether ``error`` came from writing the run's results: its reader closed stdout (a broken pipe), or the
        --out file cannot take them (the disk full): every later input would fail alike."""
        out = self.writer.path
        return error.errno == errno.EPIPE or (out is not None and error.filename is not None
                                              and os.path.realpath(error.filename) == os.path.realpath(out))

    def _unique(self, folder: Path, rel: Path, beside: Optional[Path] = None, real=os.path.realpath,
                drawing: bool = False) -> Path:
        """An output path (--vis, --out-dir) for rel in folder: :func:`_unique_path` among this run's outputs,
        never an input's own file (nor for a ``drawing``, somebody's photo)."""
        return _unique_path(folder, rel, beside, self._names, self._inputs, real, drawing)


def _new_file(folder: Path, suffix: str) -> Path:
    """A new empty file in ``folder`` that no other file had the name of, ending in ``suffix``, made with the
    permissions any new file gets (tempfile's are private to the user, and it takes the final file's place)."""
    while True:
        path = folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue
        except BaseException:  # Ctrl-C or SIGTERM as it was made: not left behind (its random name is ours)
            with contextlib.suppress(OSError):
                os.remove(path)
            raise


def _even(n: int) -> int:
    """A --vis video's side for a frame's side of n px: MPEG-4 takes even sizes only, up to 8190 here (the writer
    opens 2 to 8191 px): one more (its last row or column repeated), or one less at that limit."""
    return n if n % 2 == 0 else n + 1 if n < 8191 else n - 1


MAX_HOLD_S = 60.0  # a --vis video holds a frame at most this long: a longer gap is a broken clock, not a pause
MIN_VIS_FPS = 1.0  # a --vis video's rate at least: with --every, one written frame spans at most a second


def _is_file(path: Path) -> bool:
    """Path.is_file, False for a path no file can have too (a name over the file system's limit raised
    ENAMETOOLONG, which ended a whole rerun: review s68; the input fails alone when its output is written)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _number_name(path: Path, n: int) -> Path:
    """name_n: the n-th namesake's name of ``path`` (n >= 2)."""
    return path.with_name(f"{path.stem}_{n}{path.suffix}")


def _part_name(target: Path) -> Path:
    """The name of a --vis video cut short: clip.mp4 as clip.part.mp4 (still a name players open)."""
    return target.with_name(f"{target.stem}.part{target.suffix}")


class _VisVideo:
    """An input's --vis video, drawn and written beside the model (``PredictRun._vis_jobs``). It is written to a
    temporary file beside its name and takes that name once it is whole: OpenCV's writer names no error (a full
    disk leaves a file without its index, which no player opens). A writer that cannot be opened, or a file that
    is not whole, fails the input once; its results are written all the same (--vis is a drawing of them)."""

    def __init__(self, run: PredictRun, label: str, target: Path, source_fps: float, every: int = 1):
        self.run, self.label, self.target, self.source_fps = run, label, target, source_fps
        # written at the rate the drawn frames come (every --every-th), each the same number of times (``step``)
        # when that is below MIN_VIS_FPS: the video ends within one written frame of its source's end
        rate = source_fps / every
        self.step = 1 if rate >= MIN_VIS_FPS else math.ceil(MIN_VIS_FPS / rate)
        self.fps = rate * self.step
        self._last_index: Optional[int] = None  # the source's index of the last frame added
        self._writer: Optional[cv2.VideoWriter] = None
        self._temp: Optional[Path] = None
        self._failed = False
        self._written = 0  # frames handed to the writer (by the --vis thread)
        self._slots = 0  # frames queued for the writer, repeats included (main thread)
        # the last frame added (image, result, drawing), queued once the next one's time is known
        self._held: Optional[Tuple[np.ndarray, Optional[PoseResult], Optional[np.ndarray]]] = None

    def _fail(self, reason: str) -> None:
        self._failed = True
        self.run.fail(self.label, f"cannot write the --vis video {self.target}{reason}")

    def add(self, image: np.ndarray, res: Optional[PoseResult], drawn: Optional[np.ndarray] = None,
            time: Optional[float] = None, index: Optional[int] = None) -> None:
        """Add a frame: ``res`` drawn on ``image`` (``drawn``: already drawn; res None: the frame as it is), shown
        from ``time`` (s, the source's own clock; None: one drawn frame after the one before), the source's frame
        ``index``. The video is written at one rate, so the frame before is held until then: a
        variable-frame-rate source's drawing keeps its pace (written at the mean rate, it ran ahead in the slow
        parts: 0.9 s in 2 s)."""
        if self._failed:
            return
        if self._writer is None and not self._open(_even(image.shape[1]), _even(image.shape[0])):  # (see _write)
            return
        if self._held is not None:
            slot = None if time is None else round(time * self.fps)  # where this frame belongs in the video
            hold = self.step if slot is None else min(max(1, slot - self._slots), round(MAX_HOLD_S * self.fps) + 1)
            self._queue(*self._held, hold)
        self._held = (image, res, drawn)
        self._last_index = index

    def _queue(self, image: np.ndarray, res: Optional[PoseResult], drawn: Optional[np.ndarray], copies: int) -> None:
        self._slots += copies
        job = functools.partial(self._write, image, res, drawn, copies)
        self.run._vis_failed(self.run._vis_jobs.submit(self.label, job))  # type: ignore[union-attr]

    def _open(self, w: int, h: int) -> bool:
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            if self.target.is_dir():  # known now, not after the whole video is drawn
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            self._temp = _new_file(self.target.parent, self.target.suffix)
            with opencv_video_path(self._temp, "writer") as name:
                writer = cv2.VideoWriter(name, cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
        except OSError as e:
            self._drop_temp()
            self._fail(f": {_why(e)}")
            return False
        except InputReadError as e:
            self._drop_temp()
            self._fail(f": {e}")
            return False
        except BaseException:  # Ctrl-C or SIGTERM while OpenCV opens it: no hidden file left behind
            self._drop_temp()
            raise
        if not writer.isOpened():  # (it says nothing of why: the frame size is the one cause known to us)
            self._drop_temp()
            self._fail(f": OpenCV's MPEG-4 (mp4v) encoder would not open a {w}x{h} px video" + (
                " (it takes 2 to 8191 px each way)" if min(w, h) < 2 or max(w, h) > 8191 else ""))
            return False
        self._writer = writer
        return True

    def _write(self, image: np.ndarray, res: Optional[PoseResult], drawn: Optional[np.ndarray], copies: int) -> None:
        """Runs in the --vis thread."""
        if drawn is None:
            drawn = image if res is None else self.run.pred.draw(image, res, self.run.vis_threshold)
        h, w = drawn.shape[:2]
        if h % 2 or w % 2:  # MPEG-4 takes even sizes only, and OpenCV's writer would drop the last row or column
            drawn = cv2.copyMakeBorder(drawn[:_even(h), :_even(w)], 0, max(_even(h) - h, 0), 0, max(_even(w) - w, 0),
                                       cv2.BORDER_REPLICATE)
        for _ in range(copies):
            self._writer.write(drawn)  # type: ignore[union-attr]
            self._written += 1

    def _drop_temp(self) -> None:
        if self._temp is not None:
            with contextlib.suppress(OSError):
                os.remove(self._temp)
            self._temp = None

    def close(self, source_frames: Optional[int] = None, cut_short: bool = False) -> None:
        """Finish the video: its queued frames written, the last one until the source's end (of ``source_frames``
        frames, when known) but at most one drawn frame's time, the file checked (it opens, with every frame
        written) and given its name, or with ``cut_short`` (a video file not run to its end: Ctrl-C, a frame that
        could not be read) its name's ``.part`` form (:func:`_part_name`), which --skip-existing does not take for
        done; else the input failed and no broken file left."""
        if self._writer is None:
            self._drop_temp()  # (a run stopped while its writer opened)
            return
        try:
            if self._held is not None and not self._failed:  # the last frame
                held, self._held = self._held, None
                left = None if source_frames is None or self._last_index is None else source_frames - self._last_index
                hold = self.step if left is None else round(left * self.fps / self.source_fps)
                self._queue(*held, min(max(1, hold), self.step))
            self._finish(cut_short)
        except BaseException:  # a Ctrl-C or SIGTERM while it was being finished: no hidden file left behind
            if self._writer is not None:
                self._writer.release()
                self._writer = None
            self._drop_temp()
            raise

    def _finish(self, cut_short: bool) -> None:
        self.run.finish_vis()  # its frames are written before it is closed
        assert self._writer is not None
        self._writer.release()
        self._writer = None
        assert self._temp is not None
        try:
            cap, count, _ = open_video(self._temp)
            cap.release()
        except InputReadError:
            count = None
        if count != self._written:
            self._drop_temp()
            self._fail(": the file written does not open as a video (is the disk full?)" if count is None else
                       f": the file written holds {count} of its {self._written} frames (is the disk full?)")
            return
        part = self.run.vis_part(self.label)
        if cut_short and not may_draw_over(part):  # somebody's own video of that name: not written over
            self._drop_temp()
            return
        try:
            mark_video(self._temp)  # a later run's to draw over, not a video of somebody's
            os.replace(self._temp, part if cut_short else self.target)
            if not cut_short and _is_file(part) and may_draw_over(part):  # an earlier run's, cut short: done now
                os.remove(part)
        except OSError as e:
            self._drop_temp()
            self._fail(f": {_why(e)}")
