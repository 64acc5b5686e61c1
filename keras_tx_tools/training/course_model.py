"""The course's own GPT in `keras-tx train`, `generate` and `evaluate`.

`keras-tx train TASK --model exercises` trains the GPT of `exercises/model.py`
with the data, recipe, progress bar, plots and checkpoints that train the
library's; `--model solutions` trains the reference answers. A student who
has finished exercise 4 runs, from the course folder (the repository or the
student release):

    keras-tx train reverse --model exercises
    keras-tx generate runs/reverse/model.keras --prompt "31415926|" --num-tokens 8 --temperature 0

The folder is `exercises/` (or `solutions/`) in the working directory, else
the one beside `keras_tx_tools`. Nothing here needs `keras_tx`: the student
release trains the student's GPT without the library.

`CourseGPT` wraps the course's `GPT` with what the tools need of a language
model and the exercise does not ask for: its settings (so that `model.keras`
loads back: the wrapper is registered with Keras and imports the course's
module again), `generate` and `attention_maps`.

Code that is unfinished or broken is reported in one line that names the
exercise's file, not with a traceback: the commands run the course's code
inside `course_errors`, which turns an exception raised in that folder into
an `ExerciseError` such as

    exercises/model.py: GPT is not written yet (NotImplementedError in TransformerBlock.call)

The student's own parts, once written, replace the tools' (`own_part`).
`OWN_PARTS` lists where each is looked for; a part that is missing, or
still the stub that raises `NotImplementedError`, leaves the tools' own:

- `sampler`: `sample_next_token(logits, temperature, top_k, top_p, seed)`,
  `(B, V)` logits to `(B,)` token ids, samples in `CourseGPT.generate`;
- `loss`: `next_token_loss(token_ids, logits)`, the loss of `(B, T)` ids
  and `(B, T, V)` logits that shifts the targets by one itself, trains in
  place of `SparseCrossEntropy` (through `loss_of_targets`, as the tasks'
  windows come shifted already);
- `schedule`: `WarmupCosine(peak_learning_rate, warmup_steps, total_steps,
  min_learning_rate)`, a `keras.optimizers.schedules.LearningRateSchedule`,
  in place of `recipe.keras_cosine_schedule`, with its floor at a tenth of the peak.

>>> SOURCES
('exercises', 'solutions')
>>> describe_failure(NotImplementedError(), "exercises/model.py", "TransformerBlock.call", 60, "GPT")
'exercises/model.py: GPT is not written yet (NotImplementedError in TransformerBlock.call)'
"""

import contextlib
import importlib
import importlib.util
import inspect
import pathlib
import sys
import warnings

import keras
import numpy as np

SOURCES = ("exercises", "solutions")
"""The course's folders whose `model.py` `--model` can train."""

OWN_PARTS = {
    "sampler": ("sampling", "sample_next_token"),
    "loss": ("training", "next_token_loss"),
    "schedule": ("training", "WarmupCosine"),
}
"""`{part: (module, name)}`: where the student's own parts are looked for in the course's folder."""

KERAS_EMPHASIS = ("\x1b[1m", "\x1b[0m")
"""The bold that Keras puts around an exception's message when it adds the layer and arguments around it."""

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
"""The folder that holds `keras_tx_tools`: the repository, or the student release."""


class ExerciseError(ValueError):
    """The course's code is unfinished or fails; the message is one line that names the file."""


def course_folder(source):
    """The folder of `source` (`"exercises"` or `"solutions"`): in the working directory, else the project's."""
    if source not in SOURCES:
        raise ValueError(f"--model must be one of: library, {', '.join(SOURCES)}; received {source!r}.")
    for root in (pathlib.Path.cwd(), PROJECT_ROOT):
        if (root / source / "model.py").is_file():
            return root / source
    raise FileNotFoundError(
        f"--model {source} reads {source}/model.py, and there is none in {pathlib.Path.cwd()} or {PROJECT_ROOT}: "
        "run the command from the course folder."
    )


def course_module(source, name):
    """The module `name` of the course's folder `source` (e.g. `exercises/model.py`), imported as `source.name`.

    Raises:
        ExerciseError: the file fails to import (a syntax error, a bad import).
    """
    folder = course_folder(source)
    package = sys.modules.get(source)
    if package is None or pathlib.Path(package.__path__[0]) != folder:
        for loaded in [key for key in sys.modules if key == source or key.startswith(source + ".")]:
            del sys.modules[loaded]
        spec = importlib.util.spec_from_file_location(
            source, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[source] = package
        spec.loader.exec_module(package)
    with course_errors(source):
        return importlib.import_module(f"{source}.{name}")


def own_part(source, part):
    """The student's own `part` (a key of `OWN_PARTS`) from the folder `source`, or None where there is none yet.

    None when the file or the name is missing, or when its code still raises
    `NotImplementedError` (the stub): the tools then use their own.
    """
    module_name, name = OWN_PARTS[part]
    if not (course_folder(source) / f"{module_name}.py").is_file():
        return None
    found = getattr(course_module(source, module_name), name, None)
    if found is None or "raise NotImplementedError" in inspect.getsource(found):
        return None
    return found


def loss_of_targets(next_token_loss):
    """The exercise's `next_token_loss(token_ids, logits)`, which shifts by one itself, as a Keras loss of
    `(targets, logits)` whose targets are shifted already (a task's windows).

    The ids it is given are a first column and the targets, and its logits one row more at the end
    (a row without a target), so that it scores exactly `logits` against `targets`.
    """
    def loss(targets, logits):
        ids = keras.ops.concatenate([targets[:, :1], targets], axis=1)
        return next_token_loss(ids, keras.ops.concatenate([logits, logits[:, -1:]], axis=1))

    return loss


def schedule_of_recipe(warmup_cosine):
    """The exercise's `WarmupCosine` class as the recipe's `schedule(learning_rate, total_steps, warmup_steps)`:
    nanoGPT's floor, a tenth of the peak, and a warm-up of at most half the steps."""
    def schedule(learning_rate, total_steps, warmup_steps):
        return warmup_cosine(learning_rate, min(warmup_steps, total_steps // 2), total_steps, learning_rate / 10)

    return schedule


@contextlib.contextmanager
def course_errors(source):
    """Turns an exception raised inside the course's folder `source` into one `ExerciseError` line.

    The line names the file and function where it was raised, and what of
    the course's code was running (the outermost function called in the
    folder: `GPT` for its `__init__` or `call`). Exceptions that did not pass
    through the folder's files go on as they are.
    """
    try:
        yield
    except ExerciseError:
        raise
    except Exception as raised:
        folder = course_folder(source)
        for error in _chain(raised):  # Keras re-raises some errors as the cause of its own
            frames = [
                (frame, line) for frame, line in _traceback_frames(error.__traceback__)
                if pathlib.Path(frame.f_code.co_filename).resolve().is_relative_to(folder)
            ]
            if frames:
                break
        else:
            raise
        (outer, _), (inner, line) = frames[0], frames[-1]
        path = pathlib.Path(inner.f_code.co_filename).resolve().relative_to(folder.parent).as_posix()
        what = outer.f_code.co_qualname.split(".")[0]
        raise ExerciseError(describe_failure(error, path, inner.f_code.co_qualname, line, what)) from None


def errors_of(model):
    """`course_errors` for the course's own GPT, nothing for the library's models."""
    return course_errors(model.source) if isinstance(model, CourseGPT) else contextlib.nullcontext()


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _traceback_frames(traceback):
    while traceback is not None:
        yield traceback.tb_frame, traceback.tb_lineno
        traceback = traceback.tb_next


def describe_failure(error, path, function, line, what):
    """One line: `what` is not written yet in the file `path`, or fails there with `error` in `function` at `line`."""
    if isinstance(error, NotImplementedError):
        return f"{path}: {what} is not written yet (NotImplementedError in {function})"
    failure = f"line {line}: {type(error).__name__}: {_first_line(error)}"
    if function == "<module>":
        return f"{path} fails to import, {failure}"
    return f"{path}: {what} fails in {function}, {failure}"


def _first_line(error):
    """The error's own message, first line: without what Keras adds around an error raised in a layer's `call`."""
    message = str(error)
    if KERAS_EMPHASIS[0] in message:  # "Exception encountered when calling ...: <bold>message</bold> ..."
        message = message.split(KERAS_EMPHASIS[0], 1)[1].split(KERAS_EMPHASIS[1], 1)[0]
    lines = message.strip().splitlines()
    return lines[0] if lines else ""


@keras.saving.register_keras_serializable(package="keras_tx_tools")
class CourseGPT(keras.Model):
    """The course's `GPT` (from `exercises/model.py` or `solutions/model.py`), as the tools use a language model.

    Args:
        source: the course's folder, `"exercises"` or `"solutions"`.
        vocab_size, max_length, embed_dim, num_heads, num_layers, ff_dim: the
            arguments of the course's `GPT`.

    Example (the course's model must be written; the solutions are):

    >>> model = CourseGPT("solutions", vocab_size=5, max_length=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)
    >>> model.generate(np.array([[1, 2]]), max_new_tokens=3, temperature=0).shape
    (1, 5)
    >>> [weights.shape for weights in model.attention_maps(np.array([[1, 2, 3]]))]
    [(1, 2, 3, 3)]
    """

    def __init__(self, source, vocab_size, max_length, embed_dim, num_heads, num_layers, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.source = source
        self.vocab_size, self.max_length = vocab_size, max_length
        self.embed_dim, self.num_heads, self.num_layers, self.ff_dim = embed_dim, num_heads, num_layers, ff_dim
        self.gpt = course_module(source, "model").GPT(vocab_size, max_length, embed_dim, num_heads, num_layers, ff_dim)

    def call(self, token_ids):
        return self.gpt(token_ids)

    def initialise_like_gpt2(self):
        """Builds the model and gives it the library's initialisation, GPT-2's, for a fair race with the library's GPT.

        Keras' defaults (Glorot for `Dense`, uniform for `Embedding`) start
        wider than GPT-2's normal(0.02), so the same network learns at another
        pace. Like nanoGPT's `_init_weights`, this draws every matrix named in
        the lesson again: normal(0.02), and the two projections that end a
        residual branch (`attention.output_dense`, `ffn_out`) narrower by
        `sqrt(2 * num_layers)`, as there are that many of them in the sum.
        Biases and the LayerNorms keep Keras' zeros and ones. A model whose
        layers have other names keeps Keras' initialisation, and a warning
        says which name is missing.

        >>> keras.utils.set_random_seed(0)
        >>> model = CourseGPT("solutions", vocab_size=64, max_length=8, embed_dim=64, num_heads=2, num_layers=2,
        ...                   ff_dim=64)
        >>> model.initialise_like_gpt2()
        >>> gpt = model.gpt
        >>> [round(float(np.std(keras.ops.convert_to_numpy(kernel))), 2)
        ...  for kernel in (gpt.lm_head.kernel, gpt.blocks[0].ffn_out.kernel)]
        [0.02, 0.01]
        """
        self(np.zeros((1, min(2, self.max_length)), dtype="int32"))  # two tokens: a softmax over one warns
        normal = keras.initializers.RandomNormal(stddev=0.02)
        residual = keras.initializers.RandomNormal(stddev=0.02 / np.sqrt(2 * self.num_layers))
        names = ["embedding.token_embedding.embeddings", "embedding.position_embedding.embeddings", "lm_head.kernel"]
        for index in range(self.num_layers):
            block = f"blocks.{index}."
            names += [f"{block}attention.{dense}_dense.kernel" for dense in ("query", "key", "value", "output")]
            names += [f"{block}ffn_in.kernel", f"{block}ffn_out.kernel"]
        try:
            variables = [(name, _attribute(self.gpt, name)) for name in names]
        except (AttributeError, IndexError, TypeError) as missing:
            warnings.warn(f"{self.source}/model.py keeps Keras' initialisation: {missing}", stacklevel=2)
            return
        for name, variable in variables:
            initializer = residual if name.endswith(("output_dense.kernel", "ffn_out.kernel")) else normal
            variable.assign(initializer(variable.shape, dtype=variable.dtype))

    def generate(self, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None):
        """Extends each prompt of `prompt_ids` `(B, T)` by `max_new_tokens` tokens; a NumPy `(B, T + max_new_tokens)`.

        Every step runs the whole window through the model, always padded to
        `max_length` (one shape, compiled once), and reads the logits where the
        next token goes. The student's `sample_next_token` draws the token once
        written (see `OWN_PARTS`); until then temperature 0 takes the most
        likely token, and other temperatures draw from the softmax of the
        logits divided by the temperature, with NumPy.
        """
        tokens = np.asarray(prompt_ids, dtype="int32")
        length = tokens.shape[1]
        if not 1 <= length <= self.max_length - max_new_tokens:
            raise ValueError(
                f"A prompt of {length} tokens and {max_new_tokens} new ones do not fit in max_length={self.max_length}."
            )
        window = np.zeros((tokens.shape[0], self.max_length), dtype="int32")
        window[:, :length] = tokens
        draw = _sampler(self.source, temperature, top_k, top_p, seed)
        for position in range(length, length + max_new_tokens):
            logits = keras.ops.convert_to_numpy(self.predict_on_batch(window))
            window[:, position] = draw(logits[:, position - 1], position)
        return window[:, : length + max_new_tokens]

    def attention_maps(self, token_ids):
        """The attention weights of every block, `(B, num_heads, T, T)` NumPy arrays, for the picture.

        Read from what the course's `scaled_dot_product_attention` returns
        while the model runs once; empty when its attention does not call it.
        """
        attention = course_module(self.source, "attention")
        original, maps = attention.scaled_dot_product_attention, []

        def recording(*args, **kwargs):
            output, weights = original(*args, **kwargs)
            maps.append(keras.ops.convert_to_numpy(weights))
            return output, weights

        attention.scaled_dot_product_attention = recording
        try:
            self(np.asarray(token_ids, dtype="int32"))
        finally:
            attention.scaled_dot_product_attention = original
        return maps

    def get_config(self):
        return {
            **super().get_config(), "source": self.source, "vocab_size": self.vocab_size,
            "max_length": self.max_length, "embed_dim": self.embed_dim, "num_heads": self.num_heads,
            "num_layers": self.num_layers, "ff_dim": self.ff_dim,
        }


def _attribute(gpt, name):
    """`gpt`'s attribute at the dotted `name`, where a number indexes a list: `"blocks.0.ffn_in.kernel"`."""
    found = gpt
    for part in name.split("."):
        if part.isdigit():
            found = found[int(part)]
        elif hasattr(found, part):
            found = getattr(found, part)
        else:
            raise AttributeError(f"the GPT has no `{name}` (no `{part}`)")
    return found


def _sampler(source, temperature, top_k, top_p, seed):
    """`draw(logits, position) -> (B,) ids`: the student's sampler, or the tools' greedy and temperature draws."""
    own = own_part(source, "sampler")
    if own is not None:
        def draw(logits, position):
            step_seed = None if seed is None else seed + position
            return keras.ops.convert_to_numpy(own(logits, temperature, top_k, top_p, step_seed))

        return draw
    if top_k is not None or top_p is not None:
        module, name = OWN_PARTS["sampler"]
        raise ValueError(
            f"--top-k and --top-p need your own {name} in {source}/{module}.py, which is not written yet; "
            "sample without them (or with --model library)."
        )
    generator = np.random.default_rng(seed)

    def draw(logits, position):
        if temperature == 0:
            return np.argmax(logits, axis=-1)
        scaled = logits.astype("float64") / temperature
        probabilities = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        return np.array([generator.choice(len(row), p=row) for row in probabilities])

    return draw
