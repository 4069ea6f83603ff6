"""The ``fasterpose`` command line: ``predict`` on photos, folders, videos and cameras, ``bench``, ``info``, ``eval``.

Exit codes: 0 every input processed; 1 some inputs failed (the rest is still written); 2 usage errors (missing
path, bad option, unusable model, malformed boxes or annotation file); 130 interrupted (Ctrl-C), after writing
what was finished; 143 and 129 the same for SIGTERM and SIGHUP (as the ``fasterpose`` command, not in-process).
Expected errors print one line; ``--debug`` adds the traceback.

One file per command: ``predict.py`` (each input's handling in ``predict_run.py``), ``bench.py``, ``info.py``,
``evaluate.py``; what they share in ``common.py``.
"""
from __future__ import annotations

import os
import sys

import click
import cv2

from .. import __version__
from . import bench, common, evaluate, info, predict
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["main", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True,
             subcommand_metavar="COMMAND [ARGS]...")
@click.version_option(__version__, prog_name="fasterpose")
@click.pass_context
def main(ctx: click.Context):
    """FasterPose: fast CPU human pose estimation (ONNX runtime)."""
    if ctx.invoked_subcommand is None:  # no command: the help, and a usage error's exit code (click 8.1 said 0)
        click.echo(ctx.get_help())
        ctx.exit(EXIT_USAGE)
    common.reset_stderr()  # (a run in this process before may have found stderr full: this one looks again)
    if sys.stderr is None:  # started with stderr closed (2>&-): its lines go nowhere, and fd 2 is not free for
        sys.stderr = open(os.devnull, "w")  # a results file, where OpenCV's or onnxruntime's own lines would land
    # FFmpeg's and OpenCV's own console lines (e.g. "moov atom not found", "can't open camera by index", and, at
    # OpenCV's error level, "Could not find decoder") would only repeat our one-line errors: silent.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    elif hasattr(cv2, "setLogLevel"):  # OpenCV before 4.7
        cv2.setLogLevel(0)  # silent


for _command in (predict.predict, bench.bench, info.info, evaluate.eval_cmd):
    main.add_command(_command)
