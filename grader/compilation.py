"""Less waiting for JAX's compiler, and TensorFlow's graph optimizer, while grading.

JAX runs every operation as a compiled XLA program, and compiles one per new combination of
operation, shape and dtype: grading a solved course in one process lowered about 1,200 of them,
the reference's and the student's, which took two thirds of a JAX grading run on a CPU. These
settings cut that without changing what is checked (625 programs now):

* XLA's CPU code generation at optimisation level 0 (``--xla_backend_optimization_level=0``
  in ``XLA_FLAGS``), with its older, simpler code emitters (``--xla_cpu_use_fusion_emitters=false``).
  The grader's models are tiny: LLVM's optimisations take longer than the programs they speed
  up, and the newer emitters took half of the compile time of a hand-in's own training step
  (0.55 s of it, against 0.26 s with the older ones, for 25% more run time). The flags have to
  be set before JAX starts, so `prefer_fast_compilation` runs before Keras is imported.
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
* Keras' random draws taken from a few long programs (`shared_random_programs`): JAX makes a
  program for every shape it draws random numbers for, and its random number generator
  (threefry) is the most costly program to lower that grading runs, about 15 ms each time,
  even when the cache has it. Every weight shape a hand-in initialises was one more. Drawn
  as one flat run of at least `RANDOM_RUN` numbers and cut to shape, the numbers are the same
  (JAX's partitionable threefry makes number ``i`` from the key and ``i`` alone), and a
  sandbox's child lowers one or two such programs instead of one per weight shape.
* Keras' softmax, log-softmax, GELU and layer normalisation as one program each
  (`compiled_keras_functions`). Keras runs them on JAX one operation at a time, a program for
  each of their five to ten operations at every new shape: they were over a quarter of the
  programs a solved course lowers. Compiled whole, the same operations give the same results
  to the last bit or two (XLA may fuse them), far below any tolerance of the grader's, and the
  grader and its sandboxed children compile them alike.
* Keras' zeros and ones initializers filled in NumPy (`initializers_in_numpy`): every bias and
  LayerNorm scale of a new shape took a program of its own to fill.

On TensorFlow, graphs run as traced, without Grappler's rewrites (`graphs_as_traced`). Grappler
rewrites every traced function on its first run (folding constants, simplifying arithmetic, fusing
operations): on the reversal check's training step, 0.2-0.3 CPU-s of the 1.3-1.5 that training
takes in a fresh process, which its 100 small steps never win back (they run no slower without
it). The grader and its sandboxed children run graphs alike.

None of these changes which operations run or in which precision; the grader's tolerance is far
above the rounding differences another code generation can bring.

Example::

    prefer_fast_compilation()        # before `import keras`
    import keras
    use_compilation_cache()          # after; no effect on other backends (a sandbox's child:
                                     # lean_locations, reuse_ir_context, shared_random_programs,
                                     # compiled_keras_functions, initializers_in_numpy and
                                     # read_compilation_cache)
    graphs_as_traced()               # no effect but on TensorFlow
"""

import functools
import math
import os
import pathlib
import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

FAST_COMPILATION_FLAGS = (("--xla_backend_optimization_level=0", "0"), ("--xla_cpu_use_fusion_emitters=false", "0.5.3"))
"""``(flag, the first jaxlib that knows it)``: the XLA flags `prefer_fast_compilation` sets. XLA stops the
process at a flag it does not know, so an older jaxlib goes without."""
RANDOM_RUN = 4096
"""The fewest numbers `shared_random_programs` draws at a time: every weight of the grader's models fits."""
COMPILED_KERAS_FUNCTIONS = {
    "keras.src.backend.jax.nn": {"softmax": ("axis",), "log_softmax": ("axis",), "gelu": ("approximate",)},
    "keras.src.ops.nn": {"_layer_normalization": ("axis", "epsilon", "rms_scaling")},
}
"""``{module: {function: its static arguments}}``: the functions `compiled_keras_functions` compiles whole."""
CACHE_LIMIT_BYTES = 256 * 2**20
"""The persistent cache's size limit; the least recently used programs go first."""


def prefer_fast_compilation():
    """Ask XLA for cheap code generation, if JAX is not imported yet (a no-op otherwise).

    A flag of `FAST_COMPILATION_FLAGS` already in ``XLA_FLAGS`` keeps the value given there.
    """
    if "jax" in sys.modules:
        return
    try:
        jaxlib = Version(version("jaxlib"))
    except PackageNotFoundError:
        return  # no JAX to compile for
    flags = os.environ.get("XLA_FLAGS", "")
    added = [flag for flag, since in FAST_COMPILATION_FLAGS
             if flag.partition("=")[0] not in flags and jaxlib >= Version(since)]
    os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()


def cache_folder():
    """Where compiled programs are kept, or None when ``KERAS_TX_JAX_CACHE=none``."""
    chosen = os.environ.get("KERAS_TX_JAX_CACHE")
    if chosen:
        return None if chosen.lower() == "none" else pathlib.Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "keras-tx" / "jax"


def use_compilation_cache():
    """Keep every program JAX compiles in `cache_folder`, when the backend is JAX and it is writable
    (and, cache or not, make them as a sandbox's child does: `lean_locations`, `shared_random_programs`,
    `compiled_keras_functions`, `initializers_in_numpy`)."""
    import keras

    if keras.backend.backend() != "jax":
        return
    lean_locations()
    shared_random_programs()
    compiled_keras_functions()
    initializers_in_numpy()
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


def shared_random_programs():
    """Make Keras' uniform, normal and truncated normal draws on JAX come from a few flat runs (JAX only).

    A draw of shape ``(a, b)`` becomes the first ``a * b`` numbers of a flat draw of
    ``max(RANDOM_RUN, the next power of two)`` numbers with the same key, reshaped: the same
    numbers as before, since JAX's partitionable threefry makes each from the key and its
    position alone; so programs are made per run length, not per shape. A JAX that draws
    otherwise (``jax_threefry_partitionable`` off) is left as it is. Inside a traced function
    the cut is traced too; outside, it is done in NumPy, so that it needs no program either. A
    second call changes nothing.
    """
    import jax
    from keras.src.backend.jax import random

    if not jax.config.jax_threefry_partitionable:
        return
    for name in ("uniform", "normal", "truncated_normal"):
        draw = getattr(random, name)
        if not hasattr(draw, "in_runs_of"):  # a second call changes nothing
            setattr(random, name, _drawn_in_runs(draw))


def _drawn_in_runs(draw):
    import jax
    import numpy as np

    @functools.wraps(draw)
    def drawn(shape, *args, **kwargs):
        shape = tuple(shape)
        size = math.prod(shape)
        numbers = draw((max(RANDOM_RUN, 1 << (size - 1).bit_length()),), *args, **kwargs)
        if isinstance(numbers, jax.core.Tracer):
            return numbers[:size].reshape(shape)
        cut = np.asarray(numbers)[:size].reshape(shape)
        return jax.numpy.asarray(cut, dtype=cut.dtype)  # a dtype named: no program (`grader.wire.as_tensor`)

    drawn.in_runs_of = draw
    return drawn


def compiled_keras_functions():
    """Run each of `COMPILED_KERAS_FUNCTIONS` as one compiled program per shape (JAX only).

    A Keras without one of them is left as it is, and so is a call whose static arguments cannot
    be hashed; a second call changes nothing.
    """
    import importlib

    for module_name, functions in COMPILED_KERAS_FUNCTIONS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, static in functions.items():
            function = getattr(module, name, None)
            if callable(function) and not hasattr(function, "compiled"):
                setattr(module, name, _compiled(function, static))


def graphs_as_traced():
    """Run TensorFlow's traced functions without Grappler's rewrites (TensorFlow only).

    Keras' training step is traced once and run a few hundred times at most while grading: its
    first run, which Grappler spends rewriting the graph, costs more than the rewrites save.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def initializers_in_numpy():
    """Fill the arrays of Keras' zeros and ones initializers in NumPy, which needs no program (JAX only).

    A dtype NumPy has no name for (bfloat16) is filled by Keras as before; a second call changes nothing.
    """
    from keras.src.initializers import constant_initializers

    for name, value in (("Zeros", 0), ("Ones", 1)):
        initializer = getattr(constant_initializers, name)
        if not hasattr(initializer.__call__, "filled_with"):
            initializer.__call__ = _filled_in_numpy(initializer.__call__, value)


def _filled_in_numpy(initialize, value):
    import jax
    import numpy as np
    from keras.src.backend import standardize_dtype

    @functools.wraps(initialize)
    def filled(self, shape, dtype=None):
        dtype = standardize_dtype(dtype)
        try:
            array = np.full(shape, value, dtype)
        except TypeError:  # bfloat16 and the like: NumPy has no such dtype
            return initialize(self, shape, dtype)
        return jax.numpy.asarray(array, dtype=array.dtype)  # a dtype named: no program (`grader.wire.as_tensor`)

    filled.filled_with = value
    return filled


def _compiled(function, static):
    import jax
    import keras

    compiled = jax.jit(function, static_argnames=static)

    def plain(key, value):  # a Keras variable's value (a JAX array), a list of axes as a tuple
        if isinstance(value, keras.Variable):
            return value.value
        return tuple(value) if key in static and isinstance(value, list) else value

    @functools.wraps(function)
    def call(*args, **kwargs):
        args = [plain(None, value) for value in args]
        kwargs = {key: plain(key, value) for key, value in kwargs.items()}
        try:
            hash(tuple(kwargs.get(key) for key in static))
        except TypeError:
            return function(*args, **kwargs)
        return compiled(*args, **kwargs)

    call.compiled = compiled
    return call
