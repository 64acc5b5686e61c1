"""Less waiting for JAX's compiler while grading.

JAX runs every operation as a compiled XLA program, and compiles one per new combination of
operation, shape and dtype: grading a solved course in one process lowers about 900 of them,
the reference's and the student's, which took two thirds of a JAX grading run on a CPU. These
settings cut that without changing what is checked:

* XLA's CPU code generation at optimisation level 0 (``--xla_backend_optimization_level=0``
  in ``XLA_FLAGS``). The grader's models are tiny: LLVM's optimisations take longer than the
  programs they speed up. It has to be set before JAX starts, so `prefer_fast_compilation`
  runs before Keras is imported.
* JAX's persistent compilation cache, in ``$XDG_CACHE_HOME/keras-tx/jax`` (``~/.cache`` by
  default; ``KERAS_TX_JAX_CACHE`` names another folder, or ``none`` to switch it off). A later
  run loads what an earlier one compiled: the model checks' shapes and every check's fixed
  draw are the same in every run. The sandbox's children read the same cache and never write
  it (`read_compilation_cache`): the student's operations on the grader's inputs are mostly
  programs the grader compiled already, and no hand-in can leave a program for another.
* No Python tracebacks in the programs' source locations (`lean_locations`): JAX walks the
  stack to attach one to every operation it lowers, for error messages and profiles that grading
  never shows. Both the grader and the sandbox's children lower without them, so their programs,
  and the cache's keys, stay the same.
* One MLIR context for every program a sandbox's child lowers (`reuse_ir_context`). JAX
  makes a fresh context for each program and loads a dozen dialects into it, which took over a
  quarter of a child's busy time on the solved course. A context keeps every type and constant
  it has seen until it goes, so only the child, which lives for one hand-in, keeps one; the
  grader, which lives for a whole class, does not.

None of these changes which operations run or in which precision; the grader's tolerance is far
above the rounding differences another code generation can bring.

Example::

    prefer_fast_compilation()        # before `import keras`
    import keras
    use_compilation_cache()          # after; no effect on other backends (a sandbox's child:
                                     # lean_locations, reuse_ir_context and read_compilation_cache)
"""

import os
import pathlib
import sys

FAST_COMPILATION_FLAG = "--xla_backend_optimization_level=0"
CACHE_LIMIT_BYTES = 256 * 2**20
"""The persistent cache's size limit; the least recently used programs go first."""


def prefer_fast_compilation():
    """Ask XLA for cheap code generation, if JAX is not imported yet (a no-op otherwise).

    An optimisation level already in ``XLA_FLAGS`` is left as it is.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" not in sys.modules and FAST_COMPILATION_FLAG.partition("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILATION_FLAG}".strip()


def cache_folder():
    """Where compiled programs are kept, or None when ``KERAS_TX_JAX_CACHE=none``."""
    chosen = os.environ.get("KERAS_TX_JAX_CACHE")
    if chosen:
        return None if chosen.lower() == "none" else pathlib.Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "keras-tx" / "jax"


def use_compilation_cache():
    """Keep every program JAX compiles in `cache_folder`, when the backend is JAX and it is writable
    (and lower them with `lean_locations`, cache or not)."""
    import keras

    if keras.backend.backend() != "jax":
        return
    lean_locations()
    folder = cache_folder()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: grading works, it only compiles everything afresh
    if not os.access(folder, os.W_OK):
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", CACHE_LIMIT_BYTES)
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")  # keys that name no folder: see below


def read_compilation_cache(folder):
    """Load compiled programs from the persistent cache in `folder` and never write there (JAX only).

    The cache keys are those `use_compilation_cache` writes wherever `folder` is mounted: XLA's own
    caches, whose folder would enter every key, are off in both.
    """
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))  # no program is ever written
    jax.config.update("jax_compilation_cache_max_size", -1)  # no eviction: no lock or access-time files either


def lean_locations():
    """Lower JAX programs without the Python traceback of each operation (JAX only)."""
    import jax

    jax.config.update("jax_include_full_tracebacks_in_locations", False)
    jax.config.update("jax_traceback_in_locations_limit", 0)


def reuse_ir_context():
    """Lower every later JAX program in one MLIR context (JAX only; for a short-lived process).

    The context is made when the first program is lowered: a sandbox's warm process calls this
    before it forks, and each child makes its own.

    JAX offers no setting for this, so it replaces JAX's context factory; a JAX without one
    (`jax._src.interpreters.mlir.make_ir_context`) is left as it is, and lowers as before.
    """
    try:
        from jax._src.interpreters import mlir
    except ImportError:
        return
    if not callable(getattr(mlir, "make_ir_context", None)):
        return
    make_context, contexts = mlir.make_ir_context, []

    def the_one_context():
        if not contexts:
            contexts.append(make_context())
        return contexts[0]

    mlir.make_ir_context = the_one_context
