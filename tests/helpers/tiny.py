"""Tiny random transformers (seconds to build, nothing downloaded) and the config of a run of seconds on them."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tests.helpers.constants import DATA


def _tiny_vocab() -> dict[str, int]:
    """WordPiece vocabulary of the demo data's words, plus single characters so nothing is unknown."""
    words = sorted({w for line in (DATA / "train.jsonl").read_text().splitlines()
                    for w in json.loads(line)["text"].lower().split() if w.isalpha()})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


def make_tiny_encoder_dir(path: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT with a WordPiece tokenizer, saved as a sentence-transformers dir."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from bot.model.encoder import SentenceEncoder

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab=_tiny_vocab(), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    SentenceEncoder(BertModel(config), tokenizer).save(path)
    return path


def slice_per_intent(source: Path, target: Path, per_intent: int) -> Path:
    """The first `per_intent` examples of each intent of a JSONL file."""
    kept, lines = defaultdict(int), []
    for line in source.read_text().splitlines():
        intent = json.loads(line)["intent"]
        if kept[intent] < per_intent:
            kept[intent] += 1
            lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    return target


def tiny_overrides(teacher_dir, student_dir) -> list[str]:
    """Config for a run of seconds on the tiny models (the int8 parity check needs a trained model)."""
    return [f"teacher={teacher_dir}", f"student={student_dir}", "student_layers=null", "epochs=2",
            "latency_messages=10", "teacher_head_c=[1.0]", "onnx=fp32"]
