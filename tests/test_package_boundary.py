"""`keras_tx` is the layer library and nothing else: the tooling lives beside it, never inside.

Data, training, the command line, GPT-2 checkpoints and the course tooling
are in `keras_tx_tools`, the grader in `grader`. They import the library; the
library imports none of them.
"""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import keras_tx

LIBRARY = Path(keras_tx.__file__).parent
TOOLING_PACKAGES = ("keras_tx_tools", "grader", "solutions", "exercises", "benchmarks")
TOOLING_MODULES = ("course", "training", "commands", "data", "cli", "gpt2")


def test_the_library_has_no_tooling_modules_or_subpackages():
    modules = list(pkgutil.iter_modules([str(LIBRARY)]))
    assert modules, "no modules found in keras_tx"
    assert [module.name for module in modules if module.ispkg] == []
    assert [module.name for module in modules if module.name in TOOLING_MODULES] == []


def test_no_library_module_imports_the_tooling():
    for path in sorted(LIBRARY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            for name in imported:
                assert name.split(".")[0] not in TOOLING_PACKAGES, f"{path.name} imports {name}"


def test_importing_the_library_loads_none_of_the_tooling():
    probe = (
        "import json, sys, keras_tx\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {TOOLING_PACKAGES!r})))"
    )
    process = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(process.stdout.strip().splitlines()[-1]) == []
