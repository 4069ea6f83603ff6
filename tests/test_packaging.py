"""What `pip install .` installs: the torch-free runtime with its bundled models, nothing from models/ or export/."""
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MB = 25  # the bundled models' package budget (the default model's issue)


def _source_copy(tmp_path) -> Path:
    """A copy of what the build reads, so the checkout gets no build/ or egg-info."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("fasterpose_rt", "models", "export", "benchmarks", "tests", "examples", "docs"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "results"))
    return src


def _wheel(src: Path, dist: Path) -> Path:
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(dist)], capture_output=True, text=True)
    missing = re.search(r"No module named .*|invalid command 'bdist_wheel'", run.stderr)  # (old setuptools, no wheel)
    if run.returncode and missing:
        pytest.skip(f"this environment cannot build a wheel without build isolation: {missing.group(0)}")
    assert run.returncode == 0, run.stderr
    (wheel,) = dist.glob("fasterpose-*.whl")
    return wheel


def test_the_wheel_holds_the_runtime_and_its_models_only(tmp_path):
    src = _source_copy(tmp_path)
    wheel = _wheel(src, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as z:
        files = {i.filename: i.file_size for i in z.infolist()}
        info = next(n for n in files if n.endswith(".dist-info/top_level.txt")).rsplit("/", 1)[0]
        assert z.read(f"{info}/top_level.txt").decode().split() == ["fasterpose_rt"]
        assert "fasterpose = fasterpose_rt.launcher:main" in z.read(f"{info}/entry_points.txt").decode()
    assert any(n.startswith(info) and n.endswith("/LICENSE") for n in files)  # the MIT text travels with it
    assert all(n.startswith(("fasterpose_rt/", info + "/")) for n in files), sorted(files)  # no models/, export/
    assets = {n: size for n, size in files.items() if n.startswith("fasterpose_rt/assets/")}
    assert set(assets) >= {"fasterpose_rt/assets/fasterpose_default_int8.onnx",
                           "fasterpose_rt/assets/fasterpose_fast_int8.onnx"}
    assert sum(assets.values()) <= BUDGET_MB * 1e6, assets
    assert "fasterpose_rt/py.typed" in files  # type checkers read the runtime's annotations
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fasterpose_rt").rglob("*.py")}
    assert {n for n in files if n.endswith(".py")} == modules


def test_a_rebuild_ships_no_module_removed_since(tmp_path):
    """review s64: pip builds in the checkout's build/, and setuptools copied the package over what an earlier
    build left in build/lib: a module removed by a `git pull` was still installed by the next `pip install .`."""
    src = _source_copy(tmp_path)
    (src / "fasterpose_rt" / "zz_removed.py").write_text("x = 1\n")
    with zipfile.ZipFile(_wheel(src, tmp_path / "d1")) as z:
        assert "fasterpose_rt/zz_removed.py" in z.namelist()
    (src / "fasterpose_rt" / "zz_removed.py").unlink()
    with zipfile.ZipFile(_wheel(src, tmp_path / "d2")) as z:
        assert "fasterpose_rt/zz_removed.py" not in z.namelist()
        assert "fasterpose_rt/predictor.py" in z.namelist()


def test_the_source_archive_runs_the_readme_quick_start_and_leaves_the_checkout_only_tests_out(tmp_path):
    """review s64: the sdist held tests that need models/ and export/ (not in it), and not the README's demo
    photo, so `fasterpose predict examples/astronaut.jpg` failed in the unpacked archive."""
    import tarfile

    if importlib.util.find_spec("setuptools") is None:  # (a Python 3.12+ venv has none unless installed)
        pytest.skip("this environment has no setuptools to build a source archive with")
    src = _source_copy(tmp_path)
    build = subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                            f"print(build_meta.build_sdist({str(tmp_path / 'sdist')!r}))"], cwd=src,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (archive,) = (tmp_path / "sdist").glob("fasterpose-*.tar.gz")
    with tarfile.open(archive) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"examples/astronaut.jpg", "examples/README.md", "README.md", "LICENSE", "setup.py",
            "fasterpose_rt/assets/fasterpose_default_int8.onnx", "docs/usage.md", "docs/performance.md"} <= names, \
        sorted(names)
    # s65: the CLI's help points to docs/usage.md and docs/performance.md: an unpacked archive has them
    helped = set(re.findall(r"docs/\w+\.md", "".join(p.read_text() for p in (ROOT / "fasterpose_rt").rglob("*.py"))))
    assert helped and helped <= names, sorted(helped - names)
    assert not any(n.startswith(("tests/", "models/", "export/", "benchmarks/")) for n in names), sorted(names)


def test_the_runtime_type_checks(tmp_path):
    """The wheel ships py.typed, so users' type checkers read the runtime's annotations: they must hold."""
    api = pytest.importorskip("mypy.api", reason="mypy is a dev dependency: pip install -e '.[dev]'")
    out, err, status = api.run([str(ROOT / "fasterpose_rt"), "--ignore-missing-imports", "--check-untyped-defs",
                                "--cache-dir", str(tmp_path / "cache")])
    assert status == 0, out + err


def test_the_dataset_converter_needs_no_torch():
    """``import models`` is lazy, so ``python -m models.data.lsp_to_coco`` runs where torch is absent (and the
    runtime-only suite, .ci/runtime-tests, can make its LSPET files); build_model still resolves on first use."""
    code = "import sys\nimport models.data.lsp_to_coco\nsys.exit(1 if 'torch' in sys.modules else 0)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr or "importing the converter imported torch"
    pytest.importorskip("torch", reason="torch is absent: build_model cannot be resolved")
    import models

    assert callable(models.build_model) and "fasterpose_r34" in models.list_models()
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        models.nothing_here
