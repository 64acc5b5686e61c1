"""Reading back what `keras-tx train` saved, with errors that name the real problem.

A run folder holds `model.keras` (a zip archive with the model's
`config.json` and weights), `tokenizer.json` for the models that read text,
and `metrics.json`. `keras.saving.load_model` accepts any Keras model, and
its errors speak of files and classes rather than of the mistake. Each check
below stops on the first thing that is wrong, in the order a person would
look: is it a file, is it a `.keras` archive, is it a keras-tx model, is the
tokenizer there, and does it fit the model.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "notes.keras")
>>> _ = open(path, "w").write("not a model")
>>> load_model(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: MODEL ...notes.keras is not a Keras archive (a .keras file is a zip of config.json and the weights); pass the model.keras written by `keras-tx train`.
"""

import json
import pathlib
import zipfile

MODELS = ("keras_tx>GPT", "keras_tx>TransformerClassifier", "keras_tx_tools>CourseGPT")
"""The registered names of the models `keras-tx train` saves: the library's two, and the course's own GPT."""

_HINT = "pass the model.keras written by `keras-tx train`"


def load_model(path):
    """The model saved in `path` by `keras-tx train`, after checking that it is one.

    It comes back uncompiled: compile it for the backend running now (see
    `Task.compile`); what it was compiled with in training may not suit it.
    The library's models need `keras_tx`; the course's own GPT
    (`course_model.CourseGPT`) needs the `exercises/` or `solutions/` folder
    it was trained from, not the library.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: `path` is not a `.keras` archive, or holds a model that
            keras-tx did not write.
    """
    import keras

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MODEL {str(path)!r} is not a file; {_HINT}.")
    if path.suffix != ".keras":
        raise ValueError(f"MODEL {path} does not end in .keras; {_HINT}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"MODEL {path} is not a Keras archive (a .keras file is a zip of config.json and the weights); {_HINT}."
        )
    with zipfile.ZipFile(path) as archive:
        try:
            config = json.loads(archive.read("config.json"))
        except (KeyError, ValueError):
            raise ValueError(f"MODEL {path} is a zip archive without a Keras config.json; {_HINT}.") from None
    name = config.get("registered_name") or config.get("class_name")
    if name not in MODELS:
        raise ValueError(
            f"MODEL {path} holds a {config.get('class_name')!r} saved by another program, "
            f"not a keras-tx GPT, TransformerClassifier or the course's own GPT; {_HINT}."
        )
    if name.startswith("keras_tx>"):
        import keras_tx  # noqa: F401  (registers GPT and TransformerClassifier with Keras)
        return keras.saving.load_model(path, compile=False)
    from keras_tx_tools.training.course_model import course_errors  # registers CourseGPT with Keras

    with course_errors(config["config"]["source"]):
        return keras.saving.load_model(path, compile=False)


def load_tokenizer(model, model_path):
    """The tokenizer saved beside `model_path`, checked against `model`'s vocabulary.

    Raises:
        FileNotFoundError: there is no `tokenizer.json` beside the model.
        ValueError: the file is not a tokenizer, or its vocabulary is not the
            size of the model's.
    """
    from keras_tx_tools.data import tokenizers

    path = pathlib.Path(model_path).parent / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"No tokenizer.json beside {model_path}: `keras-tx train` writes one beside the models that read text; "
            "keep the two files together."
        )
    try:
        tokenizer = tokenizers.load(path)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{path} is not a tokenizer written by `keras-tx train` ({error}).") from None
    if not isinstance(tokenizer, tokenizers.Tokenizer):
        raise ValueError(f"{path} holds a {type(tokenizer).__name__}: it is not a tokenizer written by `keras-tx train`.")
    if tokenizer.vocab_size != model.vocab_size:
        raise ValueError(
            f"{path} has {tokenizer.vocab_size} tokens but the model in {model_path} has a vocabulary of "
            f"{model.vocab_size}: they come from different runs; keep each model with its own tokenizer.json."
        )
    return tokenizer
