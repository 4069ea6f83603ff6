"""The ``fasterpose`` command's launcher and the package's names loaded on first use."""
import subprocess
import sys
from pathlib import Path

import pytest

import fasterpose_rt

ROOT = Path(__file__).resolve().parents[1]


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _launched_and_stopped_while_loading(stop: str) -> str:
    """A program running the launcher that runs ``stop`` (one line) as the command line's package starts loading."""
    return ("import sys\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'fasterpose_rt.cli':\n"
            f"            {stop}\n"
            "sys.meta_path.insert(0, Stop())\n"
            "from fasterpose_rt.launcher import main\n"
            "sys.argv = ['fasterpose', '--help']\n"
            "main()\n")


def test_importing_the_package_loads_nothing_heavy():
    r = _run("import sys, fasterpose_rt, fasterpose_rt.launcher\n"
             "print(sorted(m for m in ('numpy', 'cv2', 'onnxruntime', 'click') if m in sys.modules))")
    assert r.returncode == 0 and r.stdout == "[]\n", r.stderr


def test_every_public_name_resolves_and_is_listed():
    names = set(fasterpose_rt.__all__) - {"__version__"}
    assert names == set(fasterpose_rt._PUBLIC_FROM)
    for name in names:
        value = getattr(fasterpose_rt, name)
        assert getattr(sys.modules[f"fasterpose_rt.{fasterpose_rt._PUBLIC_FROM[name]}"], name) is value
    assert names <= set(dir(fasterpose_rt))
    r = _run("import fasterpose_rt\nprint(fasterpose_rt.predictor.__name__)")  # as eager imports made submodules
    assert r.returncode == 0 and r.stdout == "fasterpose_rt.predictor\n", r.stderr
    try:
        fasterpose_rt.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_a_ctrl_c_while_the_command_loads_is_one_line_and_exit_130():
    """The interruption is raised from inside the command line's import, as a Ctrl-C half a second after start
    would be (it printed the import's traceback)."""
    r = _run(_launched_and_stopped_while_loading("raise KeyboardInterrupt"))
    assert r.returncode == 130
    assert r.stderr == "interrupted while starting\n" and r.stdout == ""


def test_the_launcher_runs_the_command_line():
    r = _run("import sys\nfrom fasterpose_rt.launcher import main\nsys.argv = ['fasterpose', '--version']\nmain()")
    assert r.returncode == 0 and r.stdout.startswith("fasterpose, version"), r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM from os.kill ends a Windows process at once")
def test_sigterm_while_the_command_loads_is_one_line_and_exit_143():
    # held while the modules load (onnxruntime turns an exception in its initialisation into "ImportError:
    # initialization failed", a traceback and exit 1: review s59), the signal is taken once they are loaded
    r = _run(_launched_and_stopped_while_loading(
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM); print('loading went on', flush=True)"))
    assert r.returncode == 143
    assert r.stderr == "stopped by SIGTERM while starting\n" and r.stdout == "loading went on\n"


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="no SIGHUP here")
def test_an_ignored_sighup_stays_ignored():
    """nohup: a run meant to outlive its terminal is not stopped by SIGHUP."""
    code = ("import signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
            "from fasterpose_rt.launcher import stop_on_termination\nstop_on_termination()\n"
            "print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM).__name__)")
    r = _run(code)
    assert r.returncode == 0 and r.stdout == "True _raise_stopped\n", r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM from os.kill ends a Windows process at once")
def test_sigterm_while_click_parses_is_still_143():
    """click turns an interruption it catches (before a command's own handling) into "Aborted!" and exit 1, which
    says inputs failed (self-review s59)."""
    code = ("import os, signal, sys, cv2\n"
            "cv2.utils.logging.setLogLevel = lambda level: os.kill(os.getpid(), signal.SIGTERM)\n"
            "from fasterpose_rt.launcher import main\n"
            "sys.argv = ['fasterpose', 'info']\n"
            "main()\n")
    r = _run(code)
    assert r.returncode == 143, r.stderr


def test_python_dash_m_fasterpose_rt_is_the_command():
    r = subprocess.run([sys.executable, "-m", "fasterpose_rt", "--version"], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("fasterpose, version"), r.stderr


def test_info_on_a_latin_1_terminal_escapes_what_it_cannot_show(tmp_path):
    """`fasterpose info` ended in UnicodeEncodeError on a Latin-1 terminal (its "…", or a model's own names), exit 1
    and nothing printed (review s68): stdout now escapes such text, as Python's stderr does."""
    import os
    from dataclasses import replace

    from standin import standin_metadata, write_standin
    meta = standin_metadata()
    model = write_standin(tmp_path / "m.onnx", replace(meta, keypoints=["红", *meta.keypoints[1:]]))
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    for args in (["info"], ["info", "--model", str(model)]):
        r = subprocess.run([sys.executable, "-m", "fasterpose_rt", *args], capture_output=True, text=True,
                           encoding="latin-1", timeout=120, cwd=ROOT, env=env)
        assert r.returncode == 0 and "sha256" in r.stdout, r.stderr
    assert "\\u7ea2" in r.stdout  # the model's first keypoint name, escaped
