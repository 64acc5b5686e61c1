"""Small GPT-2 checkpoints made by `transformers` and `tokenizers`, as the hub's are saved."""

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

TEXT = "The cat sat on the mat. The dog sat on the log. A cat and a dog met on the mat.\n"


def hf_model(**config):
    """A randomly initialised `GPT2LMHeadModel` in eval mode.

    The initial weights are wider than GPT-2's (0.02) so that the logits are
    far apart and greedy decoding does not hinge on rounding.
    """
    torch.manual_seed(0)
    defaults = dict(
        vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
        activation_function="gelu_new", bos_token_id=None, eos_token_id=None,
    )
    return GPT2LMHeadModel(GPT2Config(**{**defaults, **config})).eval()


def hf_logits(model, token_ids):
    with torch.no_grad():
        return model(torch.as_tensor(token_ids)).logits.numpy()


def tiny_tokenizer(directory, vocab_size=300):
    """Trains a byte-level BPE on `TEXT` and saves it as GPT-2 does: vocab.json + merges.txt."""
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator([TEXT] * 20, vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer.save_model(str(directory))
    return tokenizer


def tiny_checkpoint(directory):
    """A checkpoint folder with a small random model and a tokenizer of matching vocabulary."""
    tokenizer = tiny_tokenizer(directory)
    hf_model(vocab_size=tokenizer.get_vocab_size(), n_positions=64).save_pretrained(directory)
    return directory
