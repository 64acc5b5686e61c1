"""GPT-2 in keras_tx: open a Hugging Face GPT-2 checkpoint and its tokenizer.

- `checkpoint`: `load_gpt2` / `save_gpt2` between a checkpoint folder and a `GPT`;
- `tokenizer`: `GPT2Tokenizer`, GPT-2's byte-level BPE.

Both need the `gpt2` extra (`safetensors`, `tokenizers`), imported when used.
"""
