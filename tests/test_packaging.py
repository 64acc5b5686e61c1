"""The package as a user installs it: one version everywhere, and a wheel that works on its own.

The wheel test builds an sdist and, from it, the wheel, without network (`python -m build
--no-isolation`), from a copy of the checkout without its build leftovers (a stale
`*.egg-info` would hand setuptools an old file list). It installs
it with `--no-deps` into a fresh virtual environment that sees this environment's packages
(Keras, the backends) through a `.pth` line but not this checkout, and runs the installed
`keras-tx` and `import keras_tx` from a folder outside the repository.
"""

import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from keras_tx_tools import cli

pytestmark = pytest.mark.course

ROOT = pathlib.Path(__file__).resolve().parents[1]


VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)[1]
"""The one source of the version: pyproject.toml's."""


def test_the_changelog_opens_with_the_current_version():
    releases = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert releases[0] == VERSION


def test_keras_tx_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-tx {VERSION}", "reinstall after a version bump: pip install -e ."


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `python -m build` makes of this checkout (through the sdist, as it does)."""
    source, out = tmp_path_factory.mktemp("source") / "keras-tx", tmp_path_factory.mktemp("dist")
    leftovers = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "runs", "site")
    shutil.copytree(ROOT, source, ignore=leftovers)
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    assert len(list(out.glob("*.tar.gz"))) == 1
    (path,) = out.glob("*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_carries_the_package_data_and_the_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"keras_tx-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "keras_tx_tools/course/student_readme.md" in names
    assert {"grader/README.md", "grader/conftest.py", "grader/reference/model.npz"} <= names
    assert not any(name.startswith(("solutions/", "exercises/", "tests/")) for name in names)


@pytest.mark.slow
def test_the_installed_wheel_runs_keras_tx_and_imports(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies come from this environment: its site-packages is appended to the new one's path.
    pathlib.Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                   check=True, timeout=300)
    help_text = subprocess.run([str(venv / "bin" / "keras-tx"), "--help"], cwd=tmp_path,
                               check=True, capture_output=True, text=True, timeout=300).stdout
    assert "grade-all" in help_text
    version = subprocess.run([str(venv / "bin" / "keras-tx"), "--version"], cwd=tmp_path,
                             check=True, capture_output=True, text=True, timeout=300).stdout
    imported = subprocess.run(
        [str(python), "-c", "import keras_tx; print(keras_tx.__version__, keras_tx.__file__)"],
        cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300,
        env={"KERAS_BACKEND": "torch", "PATH": ""},
    ).stdout.split()
    assert version.strip() == f"keras-tx {imported[0]}" == f"keras-tx {VERSION}"
    assert pathlib.Path(imported[1]).is_relative_to(venv), "keras_tx was imported from the checkout, not the wheel"
