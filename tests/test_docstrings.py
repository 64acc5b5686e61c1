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
    "keras_tx_tools.cli",
    "keras_tx_tools.commands",
    "keras_tx_tools.threads",
    "keras_tx_tools.gpt2.checkpoint",
    "keras_tx_tools.gpt2.tokenizer",
    "keras_tx_tools.gpt2.bpe_files",
    "grader.registry",
    *(f"benchmarks.{name}" for name in ("accelerator", "accuracy", "distribution", "generation", "harness", "native_torch_gpt", "training")),
    *(f"keras_tx_tools.site.{name}" for name in ("plain_math", "lessons", "doctest_blocks")),
    "grader.checks",
    "grader.families",
    "grader.feedback",
    "grader.instructor.algorithms",
    "grader.instructor.fingerprints",
    "grader.layout",
    "grader.reference",
    "keras_tx_tools.course.stubs",
    "grader.failures",
    "grader.screening",
    "grader.student_process",
    "grader.wire",
    "grader.instructor.sampling",
    "grader.test_sampling",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
