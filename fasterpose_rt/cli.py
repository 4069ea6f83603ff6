"""The ``fasterpose`` command line: ``predict`` on photos, folders, videos and cameras, ``bench``, ``eval``.

Exit codes: 0 every input processed; 1 some inputs failed (the rest is still written); 2 usage errors (missing
path, bad option, unusable model, malformed boxes or annotation file); 130 interrupted (Ctrl-C), after writing
what was finished. Expected errors print one line; ``--debug`` adds the traceback.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import click
import cv2
import numpy as np
from tqdm import tqdm

from . import __version__
from .boxes import BoxesFileError, DetectorUnavailable, HogPeopleDetector, load_boxes_file
from .detections import DET_SCORE, OKS_NMS
from .geometry import box_centers_and_sizes, rescale_boxes
from .inputs import (REDUCED_LONG_SIDE, InputItem, InputReadError, expand_inputs, is_live, open_stream, read_image,
                     read_photo, stream_source)
from .metadata import MetadataError
from .predictor import PHOTO_GROUP_BYTES, PoseResult
from .prefetch import READ_AHEAD, OrderedJobs, prefetch
from .results import FORMATS, ResultsWriter, atomic_write_text, coco_entries
from .session import BACKENDS
from .show import ShowUnavailable, Window
from .tracking import REFINE_PASSES, find_poses, find_poses_batch
from .video import VideoPoses

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
_VIS_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
NOBODY_NOTE = "nobody found"  # written on a --vis photo where no person was reported


class UsageProblem(click.ClickException):
    """An expected error caused by what the user passed: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE


def _say(msg: str) -> None:
    """A line on stderr that does not tear an active progress bar, flushed: an exit right after it must not lose
    it (where stderr is a buffered stream, e.g. captured by click 8.1's CliRunner)."""
    tqdm.write(msg, file=sys.stderr)
    sys.stderr.flush()


def _guarded(func):
    """Turn expected exceptions into one-line errors with truthful exit codes; --debug adds the traceback."""

    @functools.wraps(func)
    def wrapper(*args, debug=False, **kwargs):
        try:
            return func(*args, debug=debug, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _say("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except (MetadataError, BoxesFileError, DetectorUnavailable) as e:
            _trace(debug)
            raise UsageProblem(str(e)) from None
        except OSError as e:
            _trace(debug)
            raise click.ClickException(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}") from None
        except Exception as e:  # a bug: name it, keep the traceback for --debug
            if debug:
                raise
            raise click.ClickException(
                f"unexpected {type(e).__name__}: {e} (run again with --debug for the traceback)") from None

    return wrapper


def _trace(debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _debug_option(f):
    return click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")(f)


_BOX_PADDING_HELP = ("Context around each person box, e.g. 1.1: the crop covers the box enlarged 1.1x "
                     "[default: the model's own, calibrated for tight boxes around the person].")


def _model_options(f):
    f = click.option("--fast", "variant", flag_value="fast", default=None,
                     help="Use the bundled fast model (the default's network at 96x128: about 0.55x the time, "
                          "less accurate; for CPUs without VNNI).")(f)
    f = click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="FasterPose ONNX model file [default: the bundled model].")(f)
    return f


def _backend_option(f):
    return click.option(
        "--backend", type=click.Choice(BACKENDS), default="onnxruntime", show_default=True, envvar="FASTERPOSE_BACKEND",
        help="Inference engine: onnxruntime, or openvino (optional: pip install \"fasterpose[openvino]\"; 0.4-0.6x "
             "the time on a CPU with AMX; bench --compare-backends measures yours; README, 'Backends'). "
             "Environment: FASTERPOSE_BACKEND; OpenVINO keeps compiled networks in ~/.cache/fasterpose/openvino, "
             "FASTERPOSE_OPENVINO_CACHE=DIR or off to change that.")(f)


def _load_predictor(model, variant=None, threads=None, batch_size=16, flip=False, debug=False, box_padding=None,
                    backend="onnxruntime", search_with=None):
    """One PosePredictor for the whole run; an unusable model or a backend not installed is a usage error (exit 2).

    variant: None or a bundled model's name ("fast": --fast); with ``model`` it must be None.
    box_padding: None -> the model's own (its metadata)."""
    from .openvino_session import BackendUnavailable
    from .predictor import PosePredictor
    from .session import ModelError

    if variant and model is not None:
        raise click.UsageError(f"--{variant} selects a bundled model; give either --{variant} or --model")
    try:
        with warnings.catch_warnings(record=True) as caught:  # e.g. OpenVINO's cache folder unusable: one line each
            warnings.simplefilter("always")
            pred = PosePredictor(model=model, threads=threads, flip_test=flip, batch_size=batch_size,
                                 variant=variant, box_padding=box_padding, backend=backend, search_with=search_with)
        for w in caught:
            _say(f"warning: {w.message}")
        return pred
    except BackendUnavailable as e:
        raise UsageProblem(str(e)) from None
    except (ModelError, MetadataError, ValueError, OSError) as e:
        _trace(debug)
        raise UsageProblem(f"cannot load the model: {e}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fasterpose")
def main():
    """FasterPose: fast CPU human pose estimation (ONNX runtime)."""
    # FFmpeg's and OpenCV's own console lines (e.g. "moov atom not found", "can't open camera by index") would only
    # repeat our one-line errors.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    elif hasattr(cv2, "setLogLevel"):  # OpenCV before 4.7
        cv2.setLogLevel(2)  # errors only


class _InputArgument(click.ParamType):
    """A path that exists, or a camera (camera:N) or stream URL, kept as written (a Path would fold its //)."""

    name = "input"
    _path = click.Path(exists=True, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and stream_source(value) is not None:
            return value
        return self._path.convert(value, param, ctx)


# ----------------------------------------------------------------------------------------------------- predict

@main.command()
@click.argument("inputs", nargs=-1, required=True, type=_InputArgument())
@_model_options
@_backend_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads [default: physical cores].")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most person crops per model call; photos are read in groups of up to this many, whose persons "
                   "share the calls.")
@click.option("--flip", is_flag=True, help="Flip test: also run mirrored crops and average (slower, more accurate).")
@click.option("--box-padding", type=click.FloatRange(min=0, min_open=True), default=None, help=_BOX_PADDING_HELP)
@click.option("--boxes", "boxes_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Person boxes: a COCO annotation file (matched by file_name; results keep its image ids), a "
                   "JSON object mapping file name -> list of [x, y, w, h], or a JSON list of {file_name, bbox, "
                   "score} (a detector's output, or predict's own results). A video's entry starts the tracking "
                   "(--no-track: applies to every frame). Inputs the file does not list fail.")
@click.option("--box-score", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --boxes as a list with scores: leave out boxes scoring below this.")
@click.option("--detector", type=click.Choice(["none", "hog"]), default="none", show_default=True,
              help="Find persons with OpenCV's HOG people detector; photos where it finds nobody are "
                   "processed as without boxes (--search).")
@click.option("--search/--no-search", default=True, show_default=True,
              help="Photos and video frames without boxes: look for one person in the whole photo and a grid of "
                   "windows half its long side wide, refine the 3 that score best and keep the best (about 4x the "
                   "time of --no-search, more accurate where the person is small); --no-search: one box over the "
                   "whole photo.")
@click.option("--fast-search", is_flag=True,
              help="With --search: run the search's windows with the bundled fast model, and only the persons they "
                   "find with the model itself (about 0.78x the search's time, as accurate within 0.01 PCK; README, "
                   "'Photos without person boxes').")
@click.option("--max-persons", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --search: report up to this many persons, each further one scoring at least 0.3 and not "
                   "made of a reported person's joints (3 windows refined per person asked for; for photos of a few "
                   "persons without --boxes or --detector). Videos: the tracking starts with up to this many, and "
                   "searches again every 30 frames while fewer are followed.")
@click.option("--min-presence", type=click.FloatRange(0.0, 1.0), default=None,
              help="Photos and frames without boxes (searched, or the whole photo): report a person only when the "
                   "model's presence head gives at least this chance that somebody is there (a model without a head: "
                   "when its better half of joints average this confidence, which also drops many persons seen from "
                   "the waist up); 0: always the best guess (README, 'Photos of nobody'). [default: the threshold a "
                   "model's presence head records (0.3 for both bundled models), else 0]")
@click.option("--refine", "refine_passes", type=click.IntRange(min=0), default=None,
              help=f"Most extra passes per person, each on the box around the joints the pass before found (the "
                   f"tight box the model is calibrated for); a person stops once that box settles. Each pass is one "
                   f"more model call [default: {REFINE_PASSES} for guessed boxes (--search, the whole photo, "
                   f"--detector), 0 for --boxes].")
@click.option("--track/--no-track", default=True, show_default=True,
              help="Videos: a frame's boxes are the boxes around the joints found in the frame before (a search "
                   "of the frame, --detector or --boxes start it, and again when nobody is followed; a frame where "
                   "nobody is found has no entry); --no-track: every frame on its own, like a photo.")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Videos with --track: steady each followed person's joints over time (One-Euro filter: strong "
                   "on still joints, little lag on moving ones); --no-smooth: the model's keypoints of each frame.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Videos: process every N-th frame.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Videos, cameras and streams: stop each after this many processed frames [default: at its end; "
                   "a camera runs until Ctrl-C].")
@click.option("--live/--no-live", default=None,
              help="Cameras and streams: process the newest frame each time, dropping the frames that arrive while "
                   "the model is busy, so results keep pace with the source [default: on for cameras and network "
                   "streams, off for file:// URLs]; --no-live: every frame, falling behind a source faster than "
                   "the model. Video files are always read in full.")
@click.option("--full-resolution", is_flag=True,
              help=f"Decode every photo whole. By default a JPEG photo is decoded at 1/2, 1/4 or 1/8 of its size "
                   f"while its long side stays >= {REDUCED_LONG_SIDE} px and every given box keeps at least the "
                   f"model's input size (much faster for camera photos; keypoints are in the photo's own px).")
@click.option("--read-ahead", type=click.IntRange(min=0), default=READ_AHEAD, show_default=True,
              help="Photos and video frames decoded by a thread ahead of the model (0: decode between model calls).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results here: COCO keypoint results (a JSON list), JSON Lines (one result per line, "
                   "written as each frame is done) for a .jsonl file, or a CSV table (one row per person) for a "
                   ".csv file [default: print to stdout].")
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True,
              help="Results format; auto: csv or jsonl for an --out file ending in .csv or .jsonl, else json. "
                   "jsonl to stdout streams each frame's persons as they come (for a camera, into a pipe).")
@click.option("--vis", "vis_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write photos with skeletons drawn to this folder (videos: an annotated .mp4).")
@click.option("--vis-threshold", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Hide joints scoring below this in --vis output.")
@click.option("--show", is_flag=True,
              help="Videos, cameras and streams: show the drawn frames in a window as they are processed; q or Esc "
                   "(or closing the window) ends that input. Needs OpenCV with a GUI (pip install opencv-python in "
                   "place of opencv-python-headless) and a display.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary (errors are still shown).")
@_debug_option
@_guarded
def predict(inputs, model, variant, backend, threads, batch_size, flip, box_padding, boxes_file, box_score, detector,
            search, fast_search, max_persons, min_presence, refine_passes, track, smooth, every, max_frames, live, full_resolution,
            read_ahead, out, fmt, vis_dir, vis_threshold, show, quiet, debug):
    """Predict poses on photos, videos and folders of them (searched recursively), and on cameras (camera:0)
    and video streams (rtsp://..., http://...).

    By default each photo's person is searched for in the whole photo and a grid of windows, sharpened by
    --refine passes, and a video's persons are followed from frame to frame (--track); give --boxes,
    --detector hog or --max-persons for photos of several persons. Results are COCO keypoint results, one entry
    per person (a video's entries carry the frame and its time; a followed person's entries share a track_id),
    or the same as CSV rows (--out x.csv) or JSON Lines (--out x.jsonl, or --format jsonl to stdout, written as
    frames are done). A camera runs until Ctrl-C or --max-frames.
    """
    if boxes_file is not None and detector != "none":
        raise click.UsageError("give either --boxes or --detector, not both")
    if max_persons > 1 and not search:
        raise click.UsageError("--max-persons counts the persons a search reports; drop --no-search")
    if fast_search and not search:
        raise click.UsageError("--fast-search speeds up the search; drop --no-search")
    if fast_search and variant == "fast":
        raise click.UsageError("--fast searches with the fast model already; drop --fast-search")
    items, problems = expand_inputs(inputs, videos=True)
    lookup = load_boxes_file(boxes_file, box_score) if boxes_file is not None else None
    detect = HogPeopleDetector() if detector == "hog" else None
    if out is not None:
        parent = out.parent if str(out.parent) else Path(".")
        if out.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageProblem(f"cannot write results to {out}: "
                               f"{'is a folder' if out.is_dir() else 'its folder does not exist or is not writable'}")
    if vis_dir is not None:
        try:
            vis_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageProblem(f"cannot create --vis folder {vis_dir}: {e.strerror or e}") from None
    try:
        window = Window() if show else None
    except ShowUnavailable as e:
        raise UsageProblem(str(e)) from None
    scout = _load_predictor(None, "fast", threads, batch_size, debug=debug, backend=backend) if fast_search else None
    pred = _load_predictor(model, variant, threads, batch_size, flip, debug, box_padding, backend, search_with=scout)

    if fmt == "auto":
        fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(out.suffix.lower() if out is not None else "", "json")
    writer = ResultsWriter(out, fmt=fmt, keypoint_names=pred.keypoint_names,
                           confidences=pred.calibration is not None, presence=pred.has_presence)
    passes = refine_passes if refine_passes is not None else (0 if lookup is not None else REFINE_PASSES)
    run = _PredictRun(pred, writer, lookup, detect, vis_dir, vis_threshold, every, debug, passes, track, smooth,
                      search, max_persons, max_frames, live, None if full_resolution else REDUCED_LONG_SIDE,
                      read_ahead, window, min_presence)
    for path, reason in problems:
        run.fail(path, reason)
    show = not quiet and (len(items) > 1 or any(i.kind != "image" for i in items))
    bar = tqdm(total=len(items), desc="fasterpose", unit="file", disable=not show, file=sys.stderr)
    # photos are decoded by a thread, --read-ahead photos ahead of the model
    decoded = prefetch(run.decode, [i for i in items if i.kind == "image"], read_ahead)
    try:
        group: List[_Photo] = []  # photos read, waiting to share the model's batches
        for item in items:
            if item.kind != "image":  # a video, camera or stream
                run.photos(group, bar)
                group = []
                run.video(item, show)
                bar.update(1)
                continue
            photo = run.read_photo(*next(decoded))
            if photo is None:  # unreadable: named and skipped
                bar.update(1)
                continue
            group.append(photo)
            # up to --batch-size photos share the model's batches (a call for many small photos, not one each)
            if len(group) >= batch_size or sum(g.image.size for g in group) >= PHOTO_GROUP_BYTES:
                run.photos(group, bar)
                group = []
        run.photos(group, bar)
        run.finish_vis()
        bar.close()
    except KeyboardInterrupt:
        bar.close()
        run.finish_vis()  # the few pictures already queued
        writer.close()
        _say(f"interrupted: {run.summary(out)}")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        decoded.close()
        if window is not None:
            window.close()
    writer.close()
    if not quiet:
        _say(run.summary(out))
    if run.failed:
        sys.exit(EXIT_FAILED)


@dataclass
class _Photo:
    """A photo read and ready for the model: its input, pixels (decoded at 1/scale of its size), person boxes in
    those pixels (None: the whole photo), image id."""

    item: InputItem
    image: np.ndarray
    boxes: Optional[np.ndarray]
    image_id: int
    scale: int = 1


class _PredictRun:
    """State of one ``predict`` run: running image ids, counts, failures, --vis names."""

    def __init__(self, pred, writer, lookup, detect, vis_dir, vis_threshold, every, debug, passes=0, track=False,
                 smooth=False, search=True, max_persons=1, max_frames=None, live=None, long_side=None,
                 read_ahead=READ_AHEAD, window=None, min_presence=None):
        self.pred, self.writer, self.lookup, self.detect = pred, writer, lookup, detect
        self.vis_dir, self.vis_threshold, self.every, self.debug = vis_dir, vis_threshold, every, debug
        self.passes, self.track, self.smooth, self.search = passes, track, smooth, search
        self.max_persons, self.max_frames, self.live = max_persons, max_frames, live
        self.long_side, self.read_ahead, self.window = long_side, read_ahead, window
        self.min_presence = min_presence
        self.next_id = 0
        self.failed: List[str] = []
        self.photos_done = self.frames = self.dropped = self.videos = self.persons = 0
        self.photos_of_nobody = 0  # photos where nobody was found (or, without boxes, nobody was there)
        self._vis_names = set()
        self._vis_jobs = OrderedJobs() if vis_dir is not None else None  # --vis drawn and written beside the model
        self._started = time.perf_counter()  # the model is loaded: the inputs' time starts

    def fail(self, path, reason: str) -> None:
        self.failed.append(str(path))
        _say(f"error: {path}: {reason}")

    def _vis_failed(self, failures) -> None:
        for path, error in failures:
            self.fail(path, str(error))

    def finish_vis(self) -> None:
        """Wait for the --vis pictures still being drawn and written (their failures named)."""
        if self._vis_jobs is not None:
            self._vis_failed(self._vis_jobs.finish())

    def summary(self, out) -> str:
        nobody = f" ({self.photos_of_nobody} with nobody found)" if self.photos_of_nobody else ""
        parts = [_count(self.photos_done, "photo") + nobody]
        if self.videos:
            dropped = f", {self.dropped} dropped to keep up" if self.dropped else ""
            parts.append(f"{_count(self.videos, 'video')} ({_count(self.frames, 'frame')}{dropped})")
        seconds = time.perf_counter() - self._started
        done, unit = (self.frames, "frames") if not self.photos_done else (self.photos_done, "photos")
        rate = f" ({done / seconds:.1f} {unit}/s)" if done and not (self.photos_done and self.frames) else ""
        text = (f"{', '.join(parts)}, {_count(self.persons, 'person')} in {seconds:.1f} s{rate} -> "
                f"{out if out is not None else 'stdout'}")
        if self.failed:
            text += f"; {_count(len(self.failed), 'input')} failed"
        return text

    def _boxes_for(self, item, image):
        """(boxes (N, 4) or None for the whole photo, COCO image id or None); raises InputReadError if unlisted."""
        if self.lookup is not None:
            found = self.lookup.find(item.path, item.rel)
            if found is None:
                raise InputReadError(f"not listed in the boxes file {self.lookup.source}")
            return found.boxes, found.image_id
        if self.detect is not None:
            boxes, _ = self.detect(image)
            return (boxes if len(boxes) else None), None
        return None, None

    def _predict(self, image, boxes=None):
        """Poses in a photo: ``boxes`` with the run's refine passes (a boxes file's persons all stay)."""
        try:
            return find_poses(self.pred, image, boxes, self.passes, keep_all=self.lookup is not None,
                              search=self.search, max_persons=self.max_persons, min_presence=self.min_presence)
        except (ValueError, RuntimeError) as e:  # a bad box, or the model failing on this input
            _trace(self.debug)
            raise InputReadError(f"prediction failed: {e}") from None

    def decode(self, item):
        """A photo's pixels, the scale they were decoded at, and its boxes file entry: (image, scale, boxes (N, 4)
        in the photo's px or None, COCO image id or None). Runs ahead of the model (``prefetch``); raises
        InputReadError when the photo cannot be read or is not listed in the boxes file."""
        boxes, coco_id = self._boxes_for(item, None) if self.lookup is not None else (None, None)
        image, scale = read_photo(item.path, self.long_side, self._most_reduction(boxes))
        return image, scale, boxes, coco_id

    def _most_reduction(self, boxes) -> int:
        """The largest decoding scale at which every box's crop region keeps at least the model's input px."""
        if boxes is None or not len(boxes):
            return 8
        _, regions = box_centers_and_sizes(boxes, self.pred.input_size, self.pred.box_padding)  # (N, 2) w, h
        return int(max(1.0, float(regions[:, 1].min()) / self.pred.input_size[1]))

    def read_photo(self, item, decoded) -> Optional[_Photo]:
        """The photo ``decode`` read (``decoded.result()``) with its boxes in the decoded px (a detector's, run
        here); None (the failure named) when it cannot be read or is not listed."""
        self.next_id += 1
        try:
            image, scale, boxes, coco_id = decoded.result()
            if self.lookup is None:
                boxes, coco_id = self._boxes_for(item, image)
            elif scale > 1:
                boxes = rescale_boxes(boxes, 1.0 / scale).astype(np.float32)
        except InputReadError as e:
            self.fail(item.path, str(e))
            return None
        return _Photo(item, image, boxes, coco_id if coco_id is not None else self.next_id, scale)

    def photos(self, group: List[_Photo], bar) -> None:
        """Find the poses of a group of photos together (their persons share the model's batches), then write
        each one's results and --vis picture in order."""
        if not group:
            return
        try:
            results: List[Optional[PoseResult]] = list(find_poses_batch(
                self.pred, [g.image for g in group], [g.boxes for g in group], self.passes,
                keep_all=self.lookup is not None, search=self.search, max_persons=self.max_persons,
                min_presence=self.min_presence))
        except (ValueError, RuntimeError):  # one photo's bad box or model failure: find which, photo by photo
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

    def _write_photo(self, photo: _Photo, res: PoseResult) -> None:
        item = photo.item
        if photo.scale > 1:  # in the photo's own px
            res = res.rescaled(photo.scale)
        self.writer.add(coco_entries(res, photo.image_id, item.path.as_posix()))
        self.photos_done += 1
        self.persons += len(res)
        self.photos_of_nobody += not len(res)
        if self._vis_jobs is not None:
            target = self._vis_name(item.rel if item.rel.suffix.lower() in _VIS_EXTENSIONS
                                    else item.rel.with_suffix(".png"))
            draw = functools.partial(self._draw_photo, photo, res, target)
            self._vis_failed(self._vis_jobs.submit(item.path, draw))
        self.writer.step()

    def _draw_photo(self, photo: _Photo, res: PoseResult, target: Path) -> None:
        """Draw ``res`` on the photo (read again whole if it was decoded smaller) and write it to ``target``.
        Runs beside the model; raises InputReadError saying what went wrong."""
        try:
            image = photo.image if photo.scale == 1 else read_image(photo.item.path)
        except InputReadError as e:  # the file changed since it was read
            raise InputReadError(f"cannot read it again for --vis: {e}") from None
        ok, buf = cv2.imencode(target.suffix, self.pred.draw(image, res, self.vis_threshold, note=NOBODY_NOTE))
        try:
            if not ok:
                raise OSError(f"OpenCV cannot encode {target.suffix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            buf.tofile(str(target))
        except OSError as e:
            raise InputReadError(f"cannot write --vis image {target}: {getattr(e, 'strerror', None) or e}") from None

    def _draw_frame(self, out: cv2.VideoWriter, image: np.ndarray, res: PoseResult, drawn=None) -> None:
        """Draw ``res`` on a video frame (unless ``drawn`` already is) and write it to ``out`` (runs beside the
        model)."""
        out.write(self.pred.draw(image, res, self.vis_threshold) if drawn is None else drawn)

    def video(self, item, show: bool) -> None:
        errors, vis_writer = 0, None

        def frame_failed(index, e):
            nonlocal errors
            errors += 1
            self.next_id += 1  # a failed frame keeps its image id: the video's other ids do not move
            _trace(self.debug)
            _say(f"error: {item.label} frame {index}: prediction failed: {e}")

        try:
            boxes, coco_id = self._boxes_for(item, None) if self.lookup is not None else (None, None)
            detect = None if self.detect is None else (lambda frame: self._boxes_for(item, frame)[0])
            source = open_stream(item.source) if item.source is not None else item.path
            live = item.source is not None and (is_live(item.source) if self.live is None else self.live)
            video = VideoPoses(self.pred, source, every=self.every, track=self.track, smooth=self.smooth,
                               boxes=boxes, detector=detect, refine_passes=self.passes, on_error=frame_failed,
                               search=self.search, max_persons=self.max_persons, max_frames=self.max_frames,
                               live=live, read_ahead=self.read_ahead, min_presence=self.min_presence)
        except InputReadError as e:
            self.next_id += 1
            self.fail(item.label, str(e))
            return
        bar = tqdm(total=video.expected_frames, desc=item.path.name, unit="frame", leave=False, disable=not show,
                   file=sys.stderr)
        try:
            for n, frame in enumerate(video):
                self.videos += n == 0  # counted from its first frame: a camera stopped by Ctrl-C is one too
                self.next_id += 1
                bar.update(1)
                res = frame.poses
                image_id = coco_id if coco_id is not None else self.next_id
                self.writer.add(coco_entries(res, image_id, item.label, frame=frame.index,
                                             time=frame.time))
                self.frames += 1
                self.persons += len(res)
                # --show draws here (a window lives in the main thread); --vis writes that picture, or draws its own
                drawn = None if self.window is None else self.pred.draw(frame.image, res, self.vis_threshold)
                if self._vis_jobs is not None:
                    if vis_writer is None:
                        vis_path = self._vis_name(item.rel.with_suffix(".mp4"))
                        vis_path.parent.mkdir(parents=True, exist_ok=True)
                        h, w = frame.image.shape[:2]
                        vis_writer = cv2.VideoWriter(str(vis_path), cv2.VideoWriter.fourcc(*"mp4v"),
                                                     (video.fps or 25.0) / self.every, (w, h))
                        if not vis_writer.isOpened():
                            raise InputReadError(f"cannot write the --vis video {vis_path}")
                    draw = functools.partial(self._draw_frame, vis_writer, frame.image, res, drawn)
                    self._vis_failed(self._vis_jobs.submit(item.label, draw))
                self.writer.step()
                if drawn is not None and not self.window.show(drawn):
                    break  # q, Esc or the window closed: this input ends here
        except InputReadError as e:
            self.fail(item.label, str(e))
            return
        finally:
            bar.close()
            video.close()
            self.dropped += video.dropped_frames
            if vis_writer is not None:
                self.finish_vis()  # its frames are written before it is closed
                vis_writer.release()
        if errors:
            self.fail(item.label, f"{_count(errors, 'frame')} failed")

    def _vis_name(self, rel: Path) -> Path:
        """A --vis output path for rel, made unique (name_2, name_3, ...) when two inputs share a name."""
        target, n = self.vis_dir / rel, 1
        while target in self._vis_names:
            n += 1
            target = self.vis_dir / rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
        self._vis_names.add(target)
        return target


# ------------------------------------------------------------------------------------------------------- bench

def _int_list(ctx, param, value: str) -> Optional[List[int]]:
    if value is None:
        return None
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 1,2, got {value!r}") from None
    if not out or min(out) < 1:
        raise click.BadParameter(f"expected positive integers like 1,2, got {value!r}")
    return list(dict.fromkeys(out))


@main.command()
@_model_options
@_backend_option
@click.option("--threads", default=None, callback=_int_list,
              help="Comma-separated thread counts [default: 1 and the physical cores].")
@click.option("--batch", default="1,8", show_default=True, callback=_int_list,
              help="Comma-separated persons per call.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="Timed calls per setting.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed calls first.")
@click.option("--compare", is_flag=True,
              help="Benchmark both bundled models (default and fast) side by side, with their time ratios.")
@click.option("--compare-backends", is_flag=True,
              help="Benchmark the model on onnxruntime and on OpenVINO side by side, with their time ratios: which "
                   "engine is faster on this CPU (needs openvino: pip install \"fasterpose[openvino]\").")
@click.option("--profile", is_flag=True,
              help="Instead of the latency table: where the time goes, operator by operator, as the engine measures "
                   "it (at the first --threads and --batch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@_debug_option
@_guarded
def bench(model, variant, backend, threads, batch, runs, warmup, compare, compare_backends, profile, as_json, quiet,
          debug):
    """Latency (p50/p90/p99 per call and per person), persons/s and GFLOP/s of the runtime on a 640x480 photo."""
    from .bench import PHOTO_SIZE, advice, cpu_description, format_table, model_macs, run_bench, speed_ratios
    from .predictor import DEFAULT_MODELS, DEFAULT_VARIANT
    from .session import physical_cores

    if compare and (model is not None or variant):
        raise click.UsageError("--compare times the two bundled models; drop --model / --fast")
    if compare and compare_backends:
        raise click.UsageError("give --compare (two models) or --compare-backends (two engines), not both")
    if profile and (compare or compare_backends):
        raise click.UsageError("--profile looks inside one model on one engine: drop --compare / --compare-backends")
    if threads is None:
        threads = list(dict.fromkeys([1, max(1, physical_cores())]))
    if profile:
        _profile(model, variant, backend, threads[0], batch[0], runs, warmup, as_json, debug)
        return
    variants = [(name, None, name, backend) for name in DEFAULT_MODELS] if compare else \
        [(model.stem if model is not None else variant or DEFAULT_VARIANT, model, variant, backend)]
    if compare_backends:
        variants = [(f"{label} ({b})", path, var, b) for label, path, var, _ in variants for b in BACKENDS]
    # Load every model before timing anything: a missing one is a usage error, not a late surprise.
    firsts = [_load_predictor(path, var, threads[0], max(batch), debug=debug, backend=b)
              for _, path, var, b in variants]
    rows, models = [], {}
    for (label, path, var, chosen), first in zip(variants, firsts):
        models[label] = {"path": first.model_path, "backend": first.backend,
                         "architecture": first.metadata.architecture,
                         "network": first.metadata.network,
                         "input_size": list(first.input_size),
                         "keypoints": first.metadata.num_keypoints, "macs_per_person": model_macs(first),
                         "validation": first.metadata.extra.get("validation"),
                         "int8_verification": (first.metadata.extra.get("quantization") or {}).get("verification")}

        def make(t, bs, _path=path, _var=var, _first=first, _backend=chosen):
            return _first if t == _first.threads else _load_predictor(_path, _var, t, bs, debug=debug,
                                                                      backend=_backend)

        rows += run_bench(make, threads, batch, runs, warmup, label=label,
                          progress=None if quiet else (lambda msg: click.echo(f"bench {msg}", err=True)))
    ratios = speed_ratios(rows, "default", "fast") if compare else None
    engine_ratios = speed_ratios(rows, variants[0][0], variants[1][0]) if compare_backends else None
    cpu = cpu_description()
    hints = advice(cpu["cpu_features"], [(m["path"], m["backend"]) for m in models.values()])
    if as_json:
        out = {"photo_size": list(PHOTO_SIZE), "runs": runs, "warmup": warmup, **cpu, "models": models,
               "rows": rows, "advice": hints}
        if ratios is not None:
            out["ratios"] = ratios
        if engine_ratios is not None:
            out["backend_ratios"] = engine_ratios
        click.echo(json.dumps(out, indent=2))
        return
    for label, m in models.items():
        macs = m["macs_per_person"]
        macs = "n/a" if not macs else f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.3f} M"
        click.echo(f"{label}: {m['path']}  {m['network']}  input {m['input_size'][0]}x{m['input_size'][1]}  "
                   f"K={m['keypoints']}  MACs/person {macs}  backend {m['backend']}")
    click.echo(f"CPU {cpu['cpu']} ({cpu['cpu_features']}); photo {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, "
               f"{warmup} warm-up + {runs} timed calls per row")
    click.echo(format_table(rows))
    if engine_ratios is not None:
        click.echo("openvino / onnxruntime per person (below 1: OpenVINO is faster): " + ", ".join(
            f"threads={r['threads']} batch={r['batch']}: {r['wall']:.2f} wall"
            + ("" if r["cpu"] is None else f", {r['cpu']:.2f} CPU") for r in engine_ratios))
    if ratios is not None:
        click.echo("fast / default per person (below 1: fast is faster): " + ", ".join(
            f"threads={r['threads']} batch={r['batch']}: {r['wall']:.2f} wall"
            + ("" if r["cpu"] is None else f", {r['cpu']:.2f} CPU") for r in ratios))
        for label, m in models.items():
            click.echo(f"{label}: {_accuracy_line(m['validation'], m['int8_verification'])}")
    for hint in hints:
        click.echo(f"hint: {hint}")


def _profile(model, variant, backend, threads, batch, runs, warmup, as_json, debug) -> None:
    """bench --profile: the model's operators timed by its engine, as a table or JSON."""
    from .bench import cpu_description
    from .profiling import format_profile, profile_model

    pred = _load_predictor(model, variant, threads, batch, debug=debug, backend=backend)  # a usable model, or exit 2
    label = model.name if model is not None else f"the bundled {variant or 'default'} model"
    result = profile_model(pred.model_path, threads, batch, runs, warmup, backend, input_size=pred.input_size)
    if as_json:
        click.echo(json.dumps({"model": str(pred.model_path), **cpu_description(), "profile": result}, indent=2))
        return
    cpu = cpu_description()
    click.echo(f"CPU {cpu['cpu']} ({cpu['cpu_features']})")
    click.echo(format_profile(result, label))


def _accuracy_line(validation, verification) -> str:
    """What a bundled model's metadata records of its accuracy: the training run's validation PCK@0.2 (float, at
    the training's box padding) and the exporter's int8 check (int8 at the shipped padding)."""
    pck = validation.get("pck@0.2") if isinstance(validation, dict) else None
    head = f"validation PCK@0.2 at training time {pck:.3f}" if isinstance(pck, (int, float)) else \
        "no validation figures in the model's metadata"
    return head + "; " + _verification_line(verification)


def _verification_line(v) -> str:
    """The int8 model's accuracy check, as its exporter measured and stored it in the metadata."""
    if not isinstance(v, dict):
        return "int8 accuracy: no verification figures in the model's metadata"
    line = (f"int8 accuracy, measured at export on {v.get('crops', '?')} crops of {v.get('source', '?')}: "
            f"keypoints moved {v.get('mean_px', float('nan')):.3f} heatmap px on average, "
            f"{100 * v.get('moved', float('nan')):.1f} % by more than 0.5 px")
    if "pck_float" in v and "pck_int8" in v:
        line += (f"; PCK@0.2 of its float source {v['pck_float']:.3f} vs int8 {v['pck_int8']:.3f} "
                 f"(drop {100 * (v['pck_float'] - v['pck_int8']):.2f} points)")
    return line


# -------------------------------------------------------------------------------------------------------- info
@main.command()
@_model_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole description as JSON, metadata included.")
@_debug_option
@_guarded
def info(model, variant, as_json, debug):
    """What a model says about itself: network, input, keypoints, box padding, training stages, accuracy."""
    from .model_card import format_card, model_card

    pred = _load_predictor(model, variant, threads=1, debug=debug)
    card = model_card(pred.model_path, pred.metadata)
    if as_json:
        card["metadata"] = json.loads(pred.metadata.to_json())
        click.echo(json.dumps(card, indent=2))
        return
    verification = (pred.metadata.extra.get("quantization") or {}).get("verification")
    click.echo(format_card(card, _verification_line(verification) if verification else ""))


# -------------------------------------------------------------------------------------------------------- eval

@main.command(name="eval")
@click.option("--coco", "coco_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="COCO keypoint annotation file; its person boxes are the inputs.")
@click.option("--images", "images_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the annotation file's photos (file_name is relative to it).")
@_model_options
@_backend_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads [default: physical cores].")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most person crops per model call (the persons of several photos share a call).")
@click.option("--flip", is_flag=True, help="Flip test.")
@click.option("--box-padding", type=click.FloatRange(min=0, min_open=True), default=None,
              help=_BOX_PADDING_HELP[:-1] + " --baseline keeps its own.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Another ONNX model to score on the same persons: its PCK and the paired 95 % interval of the "
                   "difference (is the model really better?).")
@click.option("--detections", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="COCO detection results (a JSON list of {image_id, category_id, bbox, score}: a person "
                   "detector's boxes on the file's photos): run the model on these boxes instead of the file's own, "
                   "as COCO's top-down protocol does (each pose scored box score x mean joint score above 0.2, "
                   "duplicates dropped by OKS; README, 'Evaluating with a detector's boxes').")
@click.option("--det-score", type=click.FloatRange(min=0), default=DET_SCORE, show_default=True,
              help="With --detections: leave out boxes scoring below this.")
@click.option("--oks-nms", type=click.FloatRange(min=0, max=1), default=OKS_NMS, show_default=True,
              help="With --detections: of two poses of a photo overlapping by more OKS than this, the "
                   "lower-scored is dropped (1: keep all).")
@click.option("--refine", "refine_passes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Most extra passes per person on the box around the joints it found (as predict --refine): "
                   "turns a detector's loose box into the tight box the model is calibrated for.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_debug_option
@_guarded
def eval_cmd(coco_file, images_dir, model, variant, backend, threads, batch_size, flip, box_padding, baseline, detections,
             det_score, oks_nms, refine_passes, out, quiet, debug):
    """COCO keypoint AP/AR (pycocotools) and PCK@0.2 with the annotation file's person boxes, or a person
    detector's (--detections)."""
    from .detections import DetectionsError, load_detections
    from .evaluate import (EvalError, MissingExtra, coco_ap, load_annotations, match_keypoints, matched_persons,
                           pck_report, predict_annotations, predict_detections)

    try:
        data = load_annotations(coco_file)
        pred = _load_predictor(model, variant, threads, batch_size, flip, debug, box_padding, backend)
        match = match_keypoints(data, pred.keypoint_names, str(coco_file), pred.flip_pairs)
        data, cat, columns = match.restrict(data), match.category, match.model_columns if match.partial else None
        other = _load_predictor(baseline, None, threads, batch_size, flip, debug, backend=backend) if baseline \
            else None
        if other is not None and other.keypoint_names != pred.keypoint_names:
            raise EvalError(f"--baseline {baseline} predicts other keypoints ({len(other.keypoint_names)}) "
                            f"than the model ({len(pred.keypoint_names)}); they cannot be compared")
        found = None
        if detections is not None:
            ids = [im["id"] for im in data["images"] if isinstance(im, dict) and isinstance(im.get("id"), int)]
            found, det_counts = load_detections(detections, ids, cat.get("id"))
            found = {i: (b[sc >= det_score], sc[sc >= det_score]) for i, (b, sc) in found.items()}
    except (EvalError, DetectionsError) as e:
        _trace(debug)
        raise UsageProblem(str(e)) from None
    for w in match.warnings:
        _say(f"warning: {w}")
    if found is not None:
        for key, what in (("other_images", "name photos the annotation file does not list"),
                          ("other_category", "are of another category"), ("empty_boxes", "have empty boxes")):
            if det_counts[key]:
                _say(f"warning: {detections}: {det_counts[key]} of {det_counts['entries']} detections {what}; "
                     "left out")
    failed = []

    def on_fail(path, reason):
        failed.append(str(path))
        _say(f"error: {path}: {reason}")

    def wrap(ids):
        return tqdm(ids, desc="eval", unit="photo", disable=quiet, file=sys.stderr)

    scores = np.full((len(data["annotations"]), len(match.names)), np.nan)

    def run(predictor, report_fail, keep_scores=None):
        if found is None:
            return predict_annotations(predictor, data, images_dir, cat["id"], str(coco_file), report_fail, wrap,
                                       scores=keep_scores, columns=columns, refine_passes=refine_passes)
        return predict_detections(predictor, data, images_dir, cat["id"], str(coco_file), found, match.sigmas,
                                  report_fail, wrap, scores=keep_scores, columns=columns,
                                  refine_passes=refine_passes, nms_threshold=oks_nms)

    try:
        results, done, kp = run(pred, on_fail, scores)
    except EvalError as e:
        raise UsageProblem(str(e)) from None
    other_kp = None
    if other is not None:  # same photos, same boxes; a photo that failed above is already reported
        _, _, other_kp = run(other, lambda path, reason: None)
    report = {"model": pred.model_path, "backend": pred.backend, "box_padding": pred.box_padding,
              "annotations": str(coco_file),
              "photos": len(done), "persons": len(results), "failed": failed, "refine": refine_passes,
              "keypoints": match.names if match.partial else None, "detections": None, "coco": None,
              "coco_note": None}
    if found is not None:
        matched, labelled = matched_persons(kp)
        report["detections"] = {"file": str(detections), "det_score": det_score, "oks_nms": oks_nms,
                                "boxes": int(sum(len(found[i][1]) for i in done)), **det_counts,
                                "persons_labelled": labelled, "persons_matched": matched}
    try:
        report["coco"] = coco_ap(data, results, done, cat["id"], match.sigmas)
    except MissingExtra as e:
        report["coco_note"] = str(e)
        _say(f"note: {e}")
    confidences = None if pred.calibration is None else pred.calibration(scores)  # NaN stays NaN
    report.update({"pck@0.2": pck_report(data, kp, match.names, done, 0.2, match.flip_pairs, other_kp, scores,
                                         confidences)})
    if pred.calibration is not None and "by_confidence" in report["pck@0.2"]:
        report["pck@0.2"]["by_confidence"]["table_source"] = pred.calibration.source
        report["pck@0.2"]["by_confidence"]["in_sample"] = pred.calibration.source == Path(coco_file).name
    if other is not None and "vs_baseline" in report["pck@0.2"]:
        report["pck@0.2"]["vs_baseline"]["model"] = other.model_path
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    _print_eval(report)
    if failed:
        sys.exit(EXIT_FAILED)


def _print_eval(report: dict) -> None:
    det = report.get("detections")
    refined = f", refined up to {report['refine']} times" if report.get("refine") else ""
    refined += f", backend {report['backend']}" if report.get("backend", "onnxruntime") != "onnxruntime" else ""
    click.echo(f"model {report['model']} (box padding {report['box_padding']:g}{refined}): "
               f"{_count(report['photos'], 'photo')}, {_count(report['persons'], 'person' if det is None else 'pose')}")
    if det is not None:
        click.echo(f"boxes: {_count(det['boxes'], 'detection')} of {det['file']} scoring >= {det['det_score']:g}; "
                   f"poses kept after OKS-NMS {det['oks_nms']:g}: {report['persons']}; labelled persons a pose "
                   f"matched: {det['persons_matched']} of {det['persons_labelled']} (PCK counts the others' joints "
                   "as misses)")
    if report.get("keypoints"):
        click.echo(f"on the {len(report['keypoints'])} keypoints the model and the file share: "
                   f"{', '.join(report['keypoints'])}")
    if report["coco"] is not None:
        c = report["coco"]
        click.echo("COCO keypoints  " + "  ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in c.items()))
    else:
        click.echo(f"COCO keypoints  not computed: {report['coco_note']}")
    p = report["pck@0.2"]
    if p["pck"] is None:
        click.echo(f"PCK@0.2         not computed: {p['reason']}")
    else:
        low, high = p["ci95"]
        click.echo(f"PCK@0.2 (torso) {p['pck']:.3f} over {p['joints']} joints "
                   f"(95 % interval {low:.3f}-{high:.3f}, persons resampled)")
        click.echo("  " + "  ".join(f"{n} {'n/a' if v is None else f'{v:.2f}'}" for n, v in p["per_keypoint"].items()))
        if p.get("by_threshold"):
            click.echo("  by threshold: " + "  ".join(f"PCK@{t} {v:.3f}" for t, v in p["by_threshold"].items()))
        bins = [b for b in p.get("by_orientation") or [] if b["pck"] is not None]
        if bins:
            click.echo("  by body orientation: " + "  ".join(
                f"{b['orientation']}{'' if b['degrees'] is None else ' %g-%g°' % tuple(b['degrees'])} "
                f"{b['pck']:.2f} ({_count(b['persons'], 'person')})" for b in bins))
        for key, what in (("by_score", "joint score"), ("by_confidence", "confidence")):
            r = p.get(key)
            if r and r["bins"]:
                note = " (measured on this file's persons: in-sample)" if r.get("in_sample") else ""
                click.echo(f"  right (PCK) by {what}: " + "  ".join(
                    f"{b['low']:.1f}-{b['high']:.1f} {b['pck']:.2f} ({b['joints']})" for b in r["bins"])
                    + f"; calibration error {100 * r['ece']:.1f} points{note}")
        lr = p.get("left_right")
        if lr and lr["misses"]:
            click.echo(f"  left/right: {lr['mirror_hits']} of {lr['misses']} misses land on the mirror joint's label; "
                       f"better mirrored: {_count(lr['persons_mirrored'], 'person')} "
                       f"(PCK {lr['pck_mirror_forgiven']:.3f} if forgiven)")
        vs = p.get("vs_baseline")
        if vs:
            low, high = vs["ci95"]
            click.echo(f"  vs baseline {vs['model']}: PCK {vs['pck']:.3f}, difference {vs['difference']:+.3f} "
                       f"(95 % interval {low:+.3f} to {high:+.3f}, paired, persons resampled)")


if __name__ == "__main__":  # python -m fasterpose_rt.cli
    main()
