"""Training-side commands where only the runtime is installed: one line saying what to install, no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["models.train", "export", "models.from_onnx"])
def test_a_training_command_without_torch_says_what_to_install(module):
    # torch, onnx and onnxsim hidden as if absent, as where only the runtime is installed (sys.modules[name] = None
    # makes importing it a ModuleNotFoundError); the one to install named is torch, whichever a module imports first
    code = ("import runpy, sys; sys.modules.update(torch=None, onnx=None, onnxsim=None); sys.argv = ['x', '--help']; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr == ('error: torch is not installed; the training and export side needs it: '
                                              'pip install -e ".[dev]" in the checkout (torch==2.13.0, onnx, onnxsim, '
                                              '...)\n'), r.stderr


def test_other_errors_keep_their_traceback():
    code = "import models; import nothing_of_ours"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr and "nothing_of_ours" in r.stderr
