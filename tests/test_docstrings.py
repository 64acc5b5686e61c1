"""Every example in the docstrings runs and prints what it claims."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_tx.attention",
    "keras_tx.classifier",
    "keras_tx.distribution",
    "keras_tx.embedding",
    "keras_tx.gpt",
    "keras_tx.generation",
    "keras_tx.masking",
    "keras_tx.parameters",
    "keras_tx.sampling",
    "keras_tx.self_attention",
    "keras_tx.transformer",
    "keras_tx.transformer_block",
    "keras_tx.validation",
    *(f"keras_tx_tools.data.{name}" for name in ("tokenizers", "reversal", "windows", "complete_works", "shakespeare", "imdb")),
    *(f"keras_tx_tools.training.{name}" for name in ("tasks", "settings", "saved", "callbacks", "plots", "recipe", "loss", "text_generation", "distribute", "course_model")),
    "keras_tx_tools.commands",
    "keras_tx_tools.threads",
    "keras_tx_tools.gpt2.checkpoint",
    "keras_tx_tools.gpt2.tokenizer",
    *(f"benchmarks.{name}" for name in ("accelerator", "accuracy", "distribution", "generation", "harness", "native_torch_gpt", "training")),
    "grader.layout",
    "grader.reference",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
