"""What every ``fasterpose`` command shares: exit codes, one-line errors, the model options, loading the model."""
from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Optional

import click
from tqdm import tqdm

from ..boxes import BoxesFileError, DetectorUnavailable
from ..decoder_messages import stderr_lock
from ..launcher import EXIT_INTERRUPTED, exit_code, how  # noqa: F401 (EXIT_INTERRUPTED: for the commands)
from ..metadata import MetadataError
from ..results import written_in_place
from ..session import BACKENDS, ModelError

EXIT_FAILED, EXIT_USAGE = 1, 2  # (EXIT_INTERRUPTED: 130, Ctrl-C; SIGTERM and SIGHUP 143 and 129)
MAX_INT = sys.maxsize  # the bound of a count without a natural one: a larger number is a usage error, not a crash
MAX_BATCH = 1024  # persons per model call: far past any speed-up, well short of the memory a batch would take


class UsageProblem(click.ClickException):
    """An expected error caused by what the user passed: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE


_stderr_lost = False  # set once a line could not be written: stderr is full, closed, or its reader is gone


# control characters (C0, DEL, C1) as escapes: a file name holding a newline or ESC would otherwise split a message
# into two, one looking like another error, or reach the terminal as a command
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``), for a line on the terminal."""
    return text.translate(_CONTROLS)


def say(msg: str) -> None:
    """A line on stderr that does not tear an active progress bar, flushed: an exit right after it must not lose
    it (where stderr is a buffered stream, e.g. captured by click 8.1's CliRunner). Where stderr cannot take it
    (``2>/dev/full``, a pipe nobody reads), the diagnostics are lost, not the run: it goes on, its exit code and
    results as they would be."""
    global _stderr_lost
    if _stderr_lost:
        return
    try:
        with stderr_lock:  # never into a photo decoder's stderr window (decoder_messages), which a reader holds
            tqdm.write(printable(msg), file=sys.stderr)
            sys.stderr.flush()
    except (OSError, ValueError):  # ValueError: a closed stream
        _stderr_lost = True


def guarded(func):
    """Turn expected exceptions into one-line errors with truthful exit codes; --debug adds the traceback."""

    @functools.wraps(func)
    def wrapper(*args, debug=False, **kwargs):
        try:
            return func(*args, debug=debug, **kwargs)
        except click.ClickException as e:  # click prints its message as it is
            e.message = printable(e.message)  # type: ignore[misc]
            raise
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM / SIGHUP (launcher.Stopped)
            say(how(e))
            sys.exit(exit_code(e))
        except BrokenPipeError:  # the reader of stdout is gone (| head): stop, without a traceback at exit
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit fails quietly
            say("stopped: the reader of stdout closed it")
            sys.exit(EXIT_FAILED)
        except (MetadataError, ModelError, BoxesFileError, DetectorUnavailable) as e:  # unusable input: exit 2
            trace(debug)
            raise UsageProblem(printable(str(e))) from None
        except OSError as e:
            trace(debug)
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(printable(f"{where}{e.strerror or e}")) from None
        except Exception as e:  # a bug: name it, keep the traceback for --debug
            if debug:
                raise
            text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())  # one line, as every error
            raise click.ClickException(printable(
                f"unexpected {type(e).__name__}: {text} (run again with --debug for the traceback)")) from None

    return wrapper


def reset_stderr() -> None:
    """A new command in this process: try stderr again."""
    global _stderr_lost
    _stderr_lost = False


def need_stdout(what: str) -> None:
    """Refuse a command that prints its ``what`` on stdout when stdout is closed (``>&-``): click's echo prints
    nothing there, and the command ran for nothing with exit 0."""
    if sys.stdout is None:
        raise UsageProblem(f"stdout is closed: nowhere to print the {what}")


def trace(debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class FiniteFloat(click.FloatRange):
    """click's FloatRange refusing nan (which passes every range check) and the infinities."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


class Count(click.IntRange):
    """A whole number from ``low`` up to MAX_INT (a larger one is a usage error, not a crash deep in the run); the
    help shows the lower bound only."""

    def __init__(self, low: int = 1):
        super().__init__(low, MAX_INT)

    def convert(self, value, param, ctx):
        number = click.INT.convert(value, param, ctx)
        if number > MAX_INT:  # said here: the range's own message would name the lower bound alone
            self.fail(f"{value} is too large (at most {MAX_INT}).", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        return f"x>={self.min}"


class NamedPath(click.Path):
    """click.Path refusing an empty name, which pathlib reads as the current folder."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value:
            self.fail(f"an empty name; give a {'folder' if not self.file_okay else 'file'}.", param, ctx)
        return super().convert(value, param, ctx)


def given(name: str) -> bool:
    """Whether the user gave the current command's option ``name`` (on the command line or by its environment
    variable), not left it at its default: an option that does nothing without another is refused only then."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def out_problem(out: Path) -> Optional[str]:
    """Why the results file ``out`` cannot be written, checked before any work; None when it can. A file written
    in place (a device such as /dev/null, a FIFO, /dev/stdout: ``written_in_place``) needs write permission on it;
    any other is made by a rename in its real folder (a symlink's target's), which must exist and be writable."""
    if out.is_dir():
        return "is a folder"
    if written_in_place(out):
        return None if os.access(out, os.W_OK) else "is not writable"
    folder = os.path.dirname(os.path.realpath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        return "its folder does not exist or is not writable"
    return None


def folder_problem(folder: Path) -> Optional[str]:
    """Why files cannot be made in the existing folder ``folder`` (a --vis or --out-dir folder), checked before any
    work, so a run is refused once instead of failing input by input; None when they can."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def out_is_one_of(out: Path, read) -> Optional[str]:
    """Which of the files a run reads ``out`` is, so writing it would replace that file: ``read`` holds (what, path
    or None) pairs, the bundled models are added; returns the matching ``what``, None when out is none of them."""
    from ..predictor import DEFAULT_MODELS  # here, not at import: the CLI starts without loading onnxruntime

    named = list(read) + [(f"the bundled {name} model", path) for name, path in DEFAULT_MODELS.items()]
    target = os.path.realpath(out)
    return next((what for what, p in named if p is not None and os.path.realpath(p) == target), None)


def debug_option(f):
    return click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")(f)


BOX_PADDING_HELP = ("Context around each person box, e.g. 1.1: the crop covers the box enlarged 1.1x "
                     "[default: the model's own, calibrated for tight boxes around the person].")


def model_options(f):
    f = click.option("--fast", "variant", flag_value="fast", default=None,
                     help="Use the bundled fast model (the default's network at 96x128: 0.5-0.7x the time, "
                          "less accurate; for CPUs without VNNI).")(f)
    f = click.option("--model", type=NamedPath(dir_okay=False, path_type=Path), default=None,
                     help="FasterPose ONNX model file [default: the bundled model].")(f)
    return f


def _backend(ctx, param, value: str) -> str:
    """--backend, or FASTERPOSE_BACKEND, in any case; a bad value names where it came from (a variable set in a shell
    profile long ago is easy to forget)."""
    from_env = ctx.get_parameter_source(param.name) == click.core.ParameterSource.ENVIRONMENT
    ctx.meta["backend_from_env"] = from_env
    if value.lower() in BACKENDS:
        return value.lower()
    where = f"FASTERPOSE_BACKEND={value}" if from_env else f"--backend {value}"
    raise click.BadParameter(f"{where}: expected {' or '.join(BACKENDS)}", ctx=ctx, param=param)


def backend_option(f):
    return click.option(
        "--backend", type=str, metavar="[" + "|".join(BACKENDS) + "]", callback=_backend, default="onnxruntime",
        show_default=True, envvar="FASTERPOSE_BACKEND",
        help="Inference engine: onnxruntime, or openvino (optional: pip install \"openvino>=2024.0\"; 0.37-0.74x "
             "the time on a CPU with AMX; bench --compare-backends measures yours; docs/performance.md, 'Backends'). "
             "Environment: FASTERPOSE_BACKEND; OpenVINO keeps compiled networks in ~/.cache/fasterpose/openvino, "
             "FASTERPOSE_OPENVINO_CACHE=DIR or off to change that.")(f)


def load_predictor(model, variant=None, threads=None, batch_size=16, flip=False, debug=False, box_padding=None,
                    backend="onnxruntime", search_with=None):
    """One PosePredictor for the whole run; an unusable model or a backend not installed is a usage error (exit 2).

    variant: None or a bundled model's name ("fast": --fast); with ``model`` it must be None.
    box_padding: None -> the model's own (its metadata)."""
    from ..openvino_session import BackendUnavailable
    from ..predictor import PosePredictor
    from ..session import ModelError

    if variant and model is not None:
        raise click.UsageError(f"--{variant} selects a bundled model; give either --{variant} or --model")
    try:
        with warnings.catch_warnings(record=True) as caught:  # e.g. OpenVINO's cache folder unusable: one line each
            warnings.simplefilter("always")
            pred = PosePredictor(model=model, threads=threads, flip_test=flip, batch_size=batch_size,
                                 variant=variant, box_padding=box_padding, backend=backend, search_with=search_with)
        for w in caught:
            say(f"warning: {w.message}")
        return pred
    except BackendUnavailable as e:
        ctx = click.get_current_context(silent=True)
        chosen = " (chosen by FASTERPOSE_BACKEND)" if ctx is not None and ctx.meta.get("backend_from_env") else ""
        raise UsageProblem(f"{e}{chosen}") from None
    except (ModelError, MetadataError, ValueError, OSError) as e:
        trace(debug)
        raise UsageProblem(f"cannot load the model: {e}") from None

