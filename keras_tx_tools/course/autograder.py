"""A Gradescope autograder: the bundle to upload, and the grading it runs for each submission.

Gradescope runs every submission in its own container: it unpacks the bundle into
``/autograder/source``, runs ``setup.sh`` once to build the image, then for each submission
puts the student's files in ``/autograder/submission`` and runs ``run_autograder``, which
must leave ``/autograder/results/results.json``.

`build_bundle` writes that bundle: ``setup.sh`` (bubblewrap, the CPU builds of the pinned
dependencies, this package), ``run_autograder``, and beside them the grader with the
solutions (the autograder's files are never shown to students; with the solutions the
reference runs live on fresh inputs, so recorded outputs are worth nothing). `grade` is what
``run_autograder`` calls: the submission is graded like a hand-in to ``keras-tx grade-all``,
its code sandboxed, and written in Gradescope's format.

Example::

    build_bundle("autograder.zip", backend="torch")   # upload it as the assignment's autograder
    build_bundle("autograder.zip", hints="cause")     # its feedback names causes, not fixes
    grade("/autograder")                              # what run_autograder does in Gradescope
"""

import argparse
import importlib.metadata
import json
import pathlib
import stat
import sys
import time
import zipfile

from grader.feedback import HINT_LEVELS, check_hint_level
from grader.registry import load_course
from keras_tx_tools.course import batch, exports, release

BACKEND_PACKAGES = {"torch": {"torch": "torch"}, "jax": {"jax": "jax", "jaxlib": "jaxlib"},
                    "tensorflow": {"tensorflow-cpu": "tensorflow"}}
"""What each backend needs: ``{package to install: installed package whose version it pins}``."""

SOURCE_PARTS = ("keras_tx", "keras_tx_tools", "grader", "solutions", "exercises", "datasets", "pyproject.toml", "README.md")
"""What the bundle holds beside its two scripts, from the course repository."""

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder's image.
set -euo pipefail
apt-get update
apt-get install -y python3 python3-venv python3-pip bubblewrap || apt-get install -y python3 python3-venv python3-pip
command -v bwrap || echo "WARNING: no bubblewrap: students' code will run without the sandbox"
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install {backend_install}
/autograder/venv/bin/pip install {pinned}
/autograder/venv/bin/pip install /autograder/source
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission into results/results.json.
# AUTOGRADER_ROOT and AUTOGRADER_PYTHON stand in for /autograder and its Python, to try it elsewhere.
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$root/source"
chmod -R go-rwx solutions grader/reference  # out of reach of the student's process, sandbox or not
exec "${{AUTOGRADER_PYTHON:-$root/venv/bin/python}}" -m keras_tx_tools.course.autograder --root "$root" --backend {backend} --hints {hints}
"""

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
"""The visibility values Gradescope accepts for a test and for the whole result."""


def build_bundle(out_zip, backend="torch", root=None, exercises=None, hints="full"):
    """Write the Gradescope autograder bundle for `backend` to the zip file `out_zip`.

    Args:
        out_zip: the ``.zip`` file to write.
        backend: the Keras backend the autograder grades with.
        root: the course repository (default: `release.repository_root`).
        exercises: the exercises it grades (default: all), as ``keras-tx release --exercises``
            hands them out; its grader knows only those, and the exercises they import are given.
        hints: how much the feedback gives away (``"full"``, ``"cause"`` or ``"locate"``; grader/README.md).

    Returns:
        `out_zip` as a `pathlib.Path`.
    """
    if backend not in BACKEND_PACKAGES:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_PACKAGES)}, got {backend!r}")
    check_hint_level(hints)
    root = pathlib.Path(root) if root else release.repository_root()
    course = load_course(root).subset(exercises)
    out_zip = pathlib.Path(out_zip)
    if out_zip.suffix != ".zip":
        raise ValueError(f"out_zip must name a .zip file, got {str(out_zip)!r}")
    left_out = release.ungraded_files(root, course)
    registry = root / "grader" / "registry.py"
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as bundle:
        _add_script(bundle, "setup.sh", SETUP.format(**_installs(backend)))
        _add_script(bundle, "run_autograder", RUN.format(backend=backend, hints=hints))
        for part in SOURCE_PARTS:
            path = root / part
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                if file.is_file() and "__pycache__" not in file.parts and file not in left_out | {registry}:
                    bundle.write(file, str(file.relative_to(root)))
        bundle.writestr(str(registry.relative_to(root)), release.released_registry(registry.read_text(), course))
    return out_zip


def grade(root="/autograder", backend="torch", timeout=600, memory_limit=4 * 2**30, hints="full"):
    """Grade ``root/submission`` with the grader in ``root/source``; write ``root/results/results.json``.

    `hints` sets how much the feedback gives away (``"full"``, ``"cause"`` or ``"locate"``).

    Returns:
        The results, as written.
    """
    root = pathlib.Path(root)
    start = time.monotonic()
    student = batch.grade_submission(root / "submission", grading_root=root / "source", backend=backend,
                                     timeout=timeout, memory_limit=memory_limit, hints=hints)
    results = exports.gradescope_results(student)
    results["output"] = exports.feedback_text(student)
    results["execution_time"] = round(time.monotonic() - start, 1)
    path = root / "results" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def main(argv=None):
    """``python -m keras_tx_tools.course.autograder --root /autograder --backend torch``."""
    parser = argparse.ArgumentParser(prog="python -m keras_tx_tools.course.autograder", description=grade.__doc__)
    parser.add_argument("--root", default="/autograder", help="the autograder folder (default: /autograder)")
    parser.add_argument("--backend", choices=sorted(BACKEND_PACKAGES), default="torch")
    parser.add_argument("--hints", choices=HINT_LEVELS, default="full",
                        help="how much the feedback gives away (default: full)")
    args = parser.parse_args(argv)
    results = grade(args.root, args.backend, hints=args.hints)
    print(f"score {results['score']:g}; results in {pathlib.Path(args.root) / 'results' / 'results.json'}")
    return 0


GRADING_PACKAGES = ("keras", "numpy", "pytest", "matplotlib", "safetensors", "tokenizers")
"""What grading needs besides the backend, pinned in ``setup.sh`` at the versions installed here, the
``gpt2`` extra included: the capstone's hand-ins read ``model.safetensors`` with ``safetensors``, and
``tokenizers`` is there for the hand-ins that use it, as on the students' own install."""


def _installs(backend):
    """``setup.sh``'s pip arguments: the backend's CPU build, then the other pinned dependencies."""
    backend_install = " ".join(f"{package}=={_version(installed)}" if _version(installed) else package
                               for package, installed in BACKEND_PACKAGES[backend].items())
    if backend == "torch":
        backend_install = f"--index-url https://download.pytorch.org/whl/cpu {backend_install}"
    pinned = " ".join(f"{name}=={_version(name)}" if _version(name) else name for name in GRADING_PACKAGES)
    return {"backend_install": backend_install, "pinned": pinned}


def _version(name):
    """The installed version of `name` without a local tag (``2.5.1+cpu`` -> ``2.5.1``), or ``None``."""
    try:
        return importlib.metadata.version(name).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def _add_script(bundle, name, text):
    """Add an executable script to the zip `bundle`."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


if __name__ == "__main__":
    sys.exit(main())
