"""Every example in the library's docstrings runs and prints what it claims."""

import doctest
import importlib

import pytest

CORE_MODULES = [
    "keras_tx.attention",
    "keras_tx.classifier",
    "keras_tx.embedding",
    "keras_tx.gpt",
    "keras_tx.kv_cache",
    "keras_tx.masking",
    "keras_tx.sampling",
    "keras_tx.self_attention",
    "keras_tx.transformer_block",
]


@pytest.mark.parametrize("name", CORE_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
