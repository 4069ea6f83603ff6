"""``fasterpose predict``: its options, the checks between them, and the loop over the inputs (photos in groups
that share the model's batches, videos one by one). What happens to each input: ``predict_run.py``."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import List, Optional, Set

import click
from tqdm import tqdm

from ..boxes import BoxLookup, HogPeopleDetector, load_boxes_file
from ..evaluate import MIN_SHARED
from ..inputs import REDUCED_LONG_SIDE, InputItem, expand_inputs, is_pattern, stream_source
from ..metadata import BOX_PADDING_RANGE
from ..predictor import PHOTO_GROUP_BYTES
from ..prefetch import READ_AHEAD, prefetch
from ..results import FORMATS, ResultsWriter, written_in_place
from ..session import MAX_THREADS
from ..show import ShowUnavailable, Window
from ..skeletons import COCO17, LSP14
from ..tracking import REFINE_PASSES
from .common import (BOX_PADDING_HELP, EXIT_FAILED, MAX_BATCH, Count, exit_code, how,
                     FiniteFloat, NamedPath, UsageProblem, backend_option, debug_option, given, guarded,
                     load_predictor, model_options, out_is_one_of, out_problem, say)
from .predict_run import Photo, PredictRun, marked_drawings, own_drawings


def layout_warning(lookup: BoxLookup, model_names) -> Optional[str]:
    """A warning when a COCO --boxes file's person keypoints are not the model's: results keep the model's, which
    pycocotools scores against that file by position only (or not at all, for another count); None when alike."""
    names, model_names = lookup.keypoint_names, list(model_names)
    if names is None or names == model_names:
        return None
    known = {tuple(COCO17["keypoints"]): " (COCO's)", tuple(LSP14["keypoints"]): " (LSP's)"}
    shared = sum(n in names for n in model_names)
    text = (f"warning: {lookup.source} lists {len(names)} keypoints{known.get(tuple(names), '')}, the model "
            f"{len(model_names)}{known.get(tuple(model_names), '')}: results keep the model's {len(model_names)}, ")
    text += ("which COCOeval cannot score against that file" if len(names) != len(model_names) else
             "which COCOeval compares with that file's by position")
    return text + (f"; `fasterpose eval` scores the {shared} both name" if shared >= MIN_SHARED else "")


class _InputArgument(click.ParamType):
    """A path, a camera (camera:N) or stream URL, or a file name pattern ("shoot/*.jpg"), the last two kept as
    written (a Path would fold a URL's //). A path that does not exist is no usage error: the run names it and
    skips it, as it does a missing line of a list (an empty one still is: pathlib reads it as the current folder)."""

    name = "input"
    _path = click.Path(exists=True, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and (stream_source(value) is not None or is_pattern(value)):
            return value
        if isinstance(value, str) and value and not os.path.exists(value):
            return Path(value)
        return self._path.convert(value, param, ctx)




def results_file(ctx, param, value) -> Optional[Path]:
    """--out as a Path; one written as a folder (``results/``) is refused, not written as a file of that name."""
    if value is not None and value.endswith(("/", os.sep)):
        raise click.BadParameter(f"{value} names a folder; --out takes a file (for a results file per input, "
                                 "--out-dir)", ctx=ctx, param=param)
    return None if value is None else Path(value)

@click.command()
@click.argument("inputs", nargs=-1, required=True, type=_InputArgument())
@model_options
@backend_option
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=None,
              help="CPU threads [default: physical cores].")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=16, show_default=True,
              help="Most person crops per model call; photos are read in groups of up to this many, whose persons "
                   "share the calls.")
@click.option("--flip", is_flag=True, help="Flip test: also run mirrored crops and average (slower, more accurate).")
@click.option("--box-padding", type=FiniteFloat(*BOX_PADDING_RANGE), default=None, help=BOX_PADDING_HELP)
@click.option("--boxes", "boxes_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Person boxes: a COCO annotation file (results keep its image ids and person category id), a "
                   "JSON object mapping file name -> list of [x, y, w, h], or a JSON list of {file_name, bbox, "
                   "score} (a detector's output, or predict's own results). A file name is a photo's path or its "
                   "end (val/a.jpg names data/val/a.jpg); the longest naming a photo is its entry, and one that "
                   "names several inputs is refused. A video's entry starts the tracking (--no-track: applies to "
                   "every frame). Inputs the file does not list fail.")
@click.option("--box-score", type=FiniteFloat(min=0), default=0.0, show_default=True,
              help="With --boxes as a list with scores: leave out boxes scoring below this.")
@click.option("--detector", type=click.Choice(["none", "hog"]), default="none", show_default=True,
              help="Find persons with OpenCV's HOG people detector; photos where it finds nobody are "
                   "processed as without boxes (--search).")
@click.option("--search/--no-search", default=True, show_default=True,
              help="Photos and video frames without boxes: look for one person in the whole photo and a grid of "
                   "windows half its long side wide, refine the 3 that score best and keep the best (about 3x the "
                   "time of --no-search, more accurate where the person is small); --no-search: one box over the "
                   "whole photo.")
@click.option("--fast-search", is_flag=True,
              help="With --search: run the search's windows with the bundled fast model, and only the persons they "
                   "find with the model itself (about 0.8x the search's time, as accurate within 0.01 PCK; "
                   "docs/usage.md, 'Photos without person boxes').")
@click.option("--max-persons", type=Count(1), default=1, show_default=True,
              help="With --search: report up to this many persons, each further one scoring at least 0.3 (a model "
                   "with a presence head: 0.2 and a presence of 0.9) and not made of a reported person's joints (3 "
                   "windows refined per person asked for; for photos of a few persons without --boxes or "
                   "--detector). Videos: the tracking starts with up to this many, and searches again every 30 "
                   "frames while fewer are followed.")
@click.option("--min-presence", type=FiniteFloat(0.0, 1.0), default=None,
              help="Photos and frames without boxes (searched, or the whole photo): report a person only when the "
                   "model's presence head gives at least this chance that somebody is there (a model without a head: "
                   "when its better half of joints average this confidence, which also drops many persons seen from "
                   "the waist up); 0: always the best guess (docs/usage.md, 'Photos of nobody'). [default: the "
                   "threshold a model's presence head records (0.3 for both bundled models), else 0]")
@click.option("--refine", "refine_passes", type=Count(0), default=None,
              help=f"Most extra passes per person, each on the box around the joints the pass before found (the "
                   f"tight box the model is calibrated for); a person stops once that box settles. Each pass is one "
                   f"more model call [default: {REFINE_PASSES} for guessed boxes (--search, the whole photo, "
                   f"--detector), 0 for --boxes (a tracked video's are its first frame's: a person lost later is "
                   f"searched for with {REFINE_PASSES})].")
@click.option("--track/--no-track", default=True, show_default=True,
              help="Videos: a frame's boxes are the boxes around the joints found in the frame before (a search "
                   "of the frame, --detector or --boxes start it, and again when nobody is followed; a frame where "
                   "nobody is found has no entry); --no-track: every frame on its own, like a photo.")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Videos with --track: steady each followed person's joints over time (One-Euro filter: strong "
                   "on still joints, little lag on moving ones); --no-smooth: the model's keypoints of each frame.")
@click.option("--every", type=Count(1), default=1, show_default=True,
              help="Videos: process every N-th frame.")
@click.option("--max-frames", type=Count(1), default=None,
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
@click.option("--read-ahead", type=Count(0), default=READ_AHEAD, show_default=True,
              help="Photos and video frames decoded by a thread ahead of the model (0: decode between model calls).")
@click.option("--out", "out", type=NamedPath(dir_okay=False, readable=False), default=None,
              callback=results_file,
              help="Write the results here: COCO keypoint results (a JSON list), JSON Lines (one result per line, "
                   "written as each frame is done) for a .jsonl file, or a CSV table (one row per person) for a "
                   ".csv file [default: print to stdout].")
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True,
              help="Results format; auto: csv or jsonl for an --out file ending in .csv or .jsonl, else json. "
                   "jsonl to stdout streams each frame's persons as they come (for a camera, into a pipe).")
@click.option("--out-dir", type=NamedPath(file_okay=False, path_type=Path), default=None,
              help="Also write each input's results to a file of its own in this folder, named as --vis names its "
                   "pictures: a photo's as a JSON list (shoot/a.jpg -> DIR/shoot/a.json; [] where nobody was found), "
                   "written whole; a video's or camera's as JSON Lines (.jsonl), written as its frames are done. An "
                   "input whose file there holds another input's results (or is no results file) fails, the file "
                   "kept: DIR/.fasterpose_sources.jsonl records each file's input, its path and a fingerprint.")
@click.option("--skip-existing", is_flag=True,
              help="With --out-dir: leave out the photos and videos whose results file (and --vis output, if "
                   "given) is there already, so a run stopped part-way goes on where it stopped (an input changed "
                   "since its file was written runs again; a video's file is named .jsonl.part until its end; "
                   "--out still holds every input's results: the skipped ones' read from their --out-dir files).")
@click.option("--vis", "vis_dir", type=NamedPath(file_okay=False, path_type=Path), default=None,
              help="Write photos with skeletons drawn to this folder (videos: an annotated .mp4); into an input's "
                   "own folder (or a folder input itself: each beside its input) as <name>_pose. Input folders leave "
                   "out the files under --vis and --out-dir, and the run's own drawings (each marked inside: a photo "
                   "or video so named is read, and never drawn over).")
@click.option("--vis-threshold", type=FiniteFloat(0.0, 1.0), default=0.3, show_default=True,
              help="Hide joints scoring below this in the skeletons --vis and --show draw.")
@click.option("--show", is_flag=True,
              help="Show the drawn photos and frames in a window as they are processed: each photo until a key "
                   "is pressed (q or Esc: no more photos shown, the run goes on); a video's, camera's or stream's "
                   "frames as they come, q or Esc (or closing the window) ending that input. Needs OpenCV with a GUI "
                   "(pip install opencv-python in place of opencv-python-headless) and a display.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary (errors are still shown).")
@debug_option
@guarded
def predict(inputs, model, variant, backend, threads, batch_size, flip, box_padding, boxes_file, box_score, detector,
            search, fast_search, max_persons, min_presence, refine_passes, track, smooth, every, max_frames, live,
            full_resolution, read_ahead, out, fmt, out_dir, skip_existing, vis_dir, vis_threshold, show, quiet,
            debug):
    """Predict poses on photos, videos and folders of them (searched recursively), on cameras (camera:0) and
    video streams (rtsp://..., http://...), on the inputs a .txt file lists, one per line (relative paths from the
    list's folder; blank lines and lines starting with # skipped), and on the photos and videos a quoted pattern
    matches ("shoot/*.jpg", "shoot/**/*.png"). A path that is missing, given or listed, is named and skipped.

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
    if skip_existing and out_dir is None:
        raise click.UsageError("--skip-existing looks for the results files of --out-dir: give --out-dir")
    if given("box_score") and boxes_file is None:
        raise click.UsageError("--box-score leaves out the low-scoring boxes of a --boxes file: give --boxes")
    if given("vis_threshold") and vis_dir is None and not show:
        raise click.UsageError("--vis-threshold hides the low-scoring joints of the skeletons --vis and --show "
                               "draw: give --vis or --show")
    if given("max_persons") and boxes_file is not None:
        raise click.UsageError("--max-persons counts the persons a search reports, and --boxes gives every "
                               "person's box (no search): drop --max-persons")
    if out is None and sys.stdout is None:  # e.g. started with >&-: the results have nowhere to go
        raise UsageProblem("stdout is closed: give --out FILE for the results")
    if fast_search and variant == "fast":
        raise click.UsageError("--fast searches with the fast model already; drop --fast-search")
    left_out: Set[str] = set()  # files in input folders under --vis or --out-dir: this tool's outputs, not inputs
    marked: Set[str] = set()  # an earlier run's drawings, found by a folder or pattern: left out, with or without --vis

    def drawings(found: List[InputItem]) -> Set[str]:
        ours = set() if vis_dir is None else own_drawings(found, vis_dir)
        marked.update(marked_drawings(found) - ours)
        return ours | marked

    items, problems = expand_inputs(inputs, videos=True, lists=True, patterns=True, skip_missing=True,
                                    leave_out=[f for f in (vis_dir, out_dir) if f is not None], left_out=left_out,
                                    outputs=drawings)
    lookup = load_boxes_file(boxes_file, box_score) if boxes_file is not None else None
    if lookup is not None and lookup.degenerate:  # said, not silent: their photos may end up with nobody
        n = lookup.degenerate
        say(f"warning: {boxes_file}: {n} person{'s' if n > 1 else ''} without a box, or with w or h <= 0, left out "
            "(nobody to crop there; fasterpose eval runs such a labelled person on the box around its keypoints)")
    problem = lookup.conflict(items) if lookup is not None else None  # an entry two inputs match, a COCO id shared
    if problem is not None:
        raise UsageProblem(problem)
    # a list giving several photos one id (two runs' results, each numbered from 1): they take running ids
    renumbered = lookup.renumber_shared_ids(items) if lookup is not None else None
    if renumbered is not None:
        say(renumbered)
    detect = HogPeopleDetector() if detector == "hog" else None
    for option, folder in (("--vis", vis_dir), ("--out-dir", out_dir)):  # made first: --out may lie in one
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageProblem(f"cannot create {option} folder {folder}: {e.strerror or e}") from None
    if out is not None:
        problem = out_problem(out)
        if problem is not None:
            raise UsageProblem(f"cannot write results to {out}: {problem}")
        read = [(f"the input {i.path}", i.path) for i in items if i.kind != "stream"]
        read += [(f"the input {i}", i) for i in inputs if isinstance(i, Path)]  # list files too: read, not written
        read += [("the --boxes file", boxes_file), ("the --model file", model)]
        same = out_is_one_of(out, read)
        if same is not None:
            raise UsageProblem(f"cannot write results to {out}: it is {same}; give --out another file")
    try:
        window = Window() if show else None
    except ShowUnavailable as e:
        raise UsageProblem(str(e)) from None
    scout = load_predictor(None, "fast", threads, batch_size, debug=debug, backend=backend) if fast_search else None
    pred = load_predictor(model, variant, threads, batch_size, flip, debug, box_padding, backend, search_with=scout)
    warning = layout_warning(lookup, pred.keypoint_names) if lookup is not None else None
    if warning is not None:
        say(warning)

    if fmt == "auto":
        fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(out.suffix.lower() if out is not None else "", "json")
    writer = ResultsWriter(out, fmt=fmt, keypoint_names=pred.keypoint_names,
                           confidences=pred.calibration is not None, presence=pred.has_presence)
    passes = refine_passes if refine_passes is not None else (0 if lookup is not None else REFINE_PASSES)
    run = PredictRun(pred, writer, lookup, detect, vis_dir=vis_dir, vis_threshold=vis_threshold, every=every,
                     debug=debug, passes=passes, track=track, smooth=smooth, search=search, max_persons=max_persons,
                     max_frames=max_frames, live=live, long_side=None if full_resolution else REDUCED_LONG_SIDE,
                     read_ahead=read_ahead, window=window, min_presence=min_presence, out_dir=out_dir,
                     skip_existing=skip_existing, left_out=len(left_out - marked), video_passes=refine_passes,
                     drawings_left_out=len(left_out & marked))
    run.name_own_files(items, out)  # before any input is named as failed: --out naming one of them is refused
    for path, reason in problems:
        run.fail(path, reason)
    items = run.plan_own_files(items)
    problem = run.unwritable(items)  # before any work: not input by input
    if problem is not None:
        raise UsageProblem(problem)
    run.carry_skipped()  # the skipped inputs' results first: --out holds the whole run's
    bar_shown = not quiet and (len(items) > 1 or any(i.kind != "image" for i in items))
    # None: drawn on a terminal only, so a log of stderr holds the errors and the summary, not bar frames
    bar = tqdm(total=len(items), desc="fasterpose", unit="file", disable=None if bar_shown else True, file=sys.stderr)
    # photos are decoded by a thread, --read-ahead photos ahead of the model
    decoded = prefetch(run.decode, [i for i in items if i.kind == "image"], read_ahead)
    try:
        group: List[Photo] = []  # photos read, waiting to share the model's batches
        for item in items:
            if item.kind != "image":  # a video, camera or stream
                run.photos(group, bar)
                group = []
                run.video(item, bar_shown)
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
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM / SIGHUP (launcher.Stopped)
        bar.close()
        run.finish_vis()  # the few pictures already queued
        kept = _keep_or_close(writer, run, out, interrupted=True)
        say(f"{how(e)}: {run.summary(out, kept)}")
        sys.exit(exit_code(e))
    except Exception:  # an error that ends the run (e.g. --out's disk full): what was finished is still written
        with contextlib.suppress(Exception):
            run.flush_carried()
            writer.close()
        raise
    finally:
        decoded.close()
        if window is not None:
            window.close()
    kept = _keep_or_close(writer, run, out)
    if not quiet:
        say(run.summary(out, kept))
    elif kept:
        say(f"{out} left as it was: nothing processed")
    if run.failed:
        sys.exit(EXIT_FAILED)


def _keep_or_close(writer: ResultsWriter, run: PredictRun, out: Optional[Path], interrupted: bool = False) -> bool:
    """Write the results (``writer.close()``), unless the run processed nothing and failed or was stopped while an
    --out file from before is there: a mistyped input would have replaced earlier results with []. Returns whether
    that file was kept as it was."""
    if out is not None and not run.processed and (run.failed or interrupted) and os.path.isfile(out) \
            and not written_in_place(out):
        writer.abandon()
        return True
    run.flush_carried()  # --skip-existing: the skipped inputs' results, when no result of the run's came first
    writer.close()
    return False

