"""Tokenising for serving with the `tokenizers` library alone (what a fast Hugging Face tokenizer runs
underneath, read from the saved tokenizer.json): padded ids as numpy arrays, what onnxruntime takes. The
served bot needs neither PyTorch nor transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def length_sorted_batches(texts: list[str], batch_size: int) -> list[list[int]]:
    """Indices of `texts` in batches of similar length, so a batch carries little padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def saved_max_length(path: str | Path, default: int = 64) -> int:
    """The `max_seq_length` a sentence-transformers directory was written with."""
    config = Path(path) / "sentence_bert_config.json"
    return json.loads(config.read_text()).get("max_seq_length", default) if config.exists() else default


def batch_tokenizer(tokenizer: Tokenizer, pad_token: str, max_length: int) -> Tokenizer:
    """`tokenizer` set to cut at `max_length` tokens and pad a batch to its longest text on the right: what
    a Hugging Face call with padding=True, truncation=True does."""
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad_token), pad_token=pad_token)
    return tokenizer


def load_tokenizer(directory: Path, max_length: int) -> Tokenizer:
    """The tokenizer a model directory was saved with (tokenizer.json and its pad token)."""
    config_file = directory / "tokenizer_config.json"
    pad = json.loads(config_file.read_text()).get("pad_token", "[PAD]") if config_file.exists() else "[PAD]"
    pad = pad["content"] if isinstance(pad, dict) else pad
    return batch_tokenizer(Tokenizer.from_file(str(directory / "tokenizer.json")), pad, max_length)


def from_hugging_face(tokenizer, max_length: int) -> Tokenizer:
    """A copy of a fast Hugging Face tokenizer's own `tokenizers` object, set up like load_tokenizer's."""
    return batch_tokenizer(Tokenizer.from_str(tokenizer.backend_tokenizer.to_str()), tokenizer.pad_token,
                           max_length)


def encode(tokenizer: Tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    """Padded token ids and attention mask of a batch."""
    encodings = tokenizer.encode_batch(list(texts))
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
