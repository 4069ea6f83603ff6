"""The ``fasterpose`` command's entry point: takes SIGTERM and SIGHUP as Ctrl-C, loads the command line, runs it.

Loading numpy, OpenCV, onnxruntime and click takes about half a second; a Ctrl-C in that time is an interruption
like any other (one line, exit 130), not a traceback of the import it stopped. This module imports nothing heavy
itself, and ``fasterpose_rt/__init__.py`` loads its names on first use, so the launcher runs within milliseconds of
Python's own start (a signal before that, in Python's start-up, is Python's to report).
"""
import signal
import sys

EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as the shell reports it


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``kill``, a reboot, ``systemctl stop``, a closed terminal), raised where the run is, so it
    stops as Ctrl-C stops it: what was finished is written, half-written files are removed. Exit 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def exit_code(interruption: BaseException) -> int:
    """130 for Ctrl-C, 128 + the signal's number for a :class:`Stopped` run (143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + interruption.signum if isinstance(interruption, Stopped) else EXIT_INTERRUPTED


def how(interruption: BaseException) -> str:
    """The first word(s) of the line that says a run was cut short: "interrupted" or "stopped by SIGTERM"."""
    return f"stopped by {signal.Signals(interruption.signum).name}" if isinstance(interruption, Stopped) \
        else "interrupted"


_received: list = []  # the SIGINT / SIGTERM / SIGHUP numbers taken, in order
_STOPPING = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_stopped(signum, frame):
    _received.append(signum)
    raise Stopped(signum)


def _raise_interrupt(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt


def stop_on_termination() -> None:
    """Take SIGTERM and SIGHUP as Ctrl-C is taken, in this process (the main thread; a command, not a library:
    never called on import), and note Ctrl-C. A signal set to be ignored (``nohup``) stays ignored."""
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, _raise_stopped)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)


def _hold_signals(hold: bool) -> None:
    """Hold (or let through) Ctrl-C, SIGTERM and SIGHUP in this thread, and in the threads it starts meanwhile.
    onnxruntime turns an exception raised while its module initialises into "ImportError: initialization failed":
    held over the imports, a signal arrives once they are done, as a plain interruption."""
    if hasattr(signal, "pthread_sigmask"):  # (not on Windows)
        signal.pthread_sigmask(signal.SIG_BLOCK if hold else signal.SIG_UNBLOCK, _STOPPING)


def _escape_what_stdout_cannot_encode() -> None:
    """Text the terminal's encoding cannot show (a model's keypoint names in Chinese on a Latin-1 terminal) is
    escaped on stdout (``\\u65e5``), as Python escapes it on stderr, instead of ending a run with UnicodeEncodeError."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # (not on a stream a caller swapped in)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a closed stdout: nothing will be printed anyway
            pass


def main() -> None:
    stop_on_termination()
    _escape_what_stdout_cannot_encode()
    try:
        _hold_signals(True)
        try:
            from .cli import main as command_line
        finally:
            _hold_signals(False)  # a signal held meanwhile is raised here
    except KeyboardInterrupt as e:
        print(f"{how(e)} while starting", file=sys.stderr)
        sys.exit(exit_code(e))
    try:
        command_line()
    except SystemExit as e:
        # click ends a KeyboardInterrupt it catches itself (parsing the command line, before a command's own
        # handling) with "Aborted!" and exit 1, which says inputs failed: it is still 130, 143 or 129
        if e.code == 1 and _received:
            sys.exit(128 + _received[0])
        raise
    finally:  # the work is done and said: a signal now would only turn the exit code into the signal's
        _hold_signals(True)
