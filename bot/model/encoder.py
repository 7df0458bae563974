"""Text → sentence vector, the one way every model here (teacher, student, served bot) embeds a message.

A thin layer over a Hugging Face transformer: tokenise, run, pool (mean or CLS), L2-normalise. It reads
and writes standard sentence-transformers directories, so an artifact's encoder loads in that library
too, and it exposes the raw forward pass so the distillation can train through it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from bot.model.tokens import length_sorted_batches, saved_max_length


def _sentence_transformers_layout(path: Path) -> tuple[Path, str, bool]:
    """Where the transformer lives in a sentence-transformers directory, its pooling mode, and
    whether it normalises. Plain Hugging Face directories get mean pooling and normalisation."""
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return path, "mean", True
    transformer_dir, pooling, normalize = path, "mean", False
    for module in json.loads(modules_file.read_text()):
        kind = module.get("type", "")
        module_dir = path / module.get("path", "")
        if kind.endswith("Transformer"):
            transformer_dir = module_dir
        elif kind.endswith("Pooling"):
            pooling_config = json.loads((module_dir / "config.json").read_text())
            pooling = "cls" if pooling_config.get("pooling_mode_cls_token") else "mean"
        elif kind.endswith("Normalize"):
            normalize = True
    return transformer_dir, pooling, normalize


class SentenceEncoder(nn.Module):
    """A transformer with pooling and normalisation: `forward` takes token ids, returns sentence vectors."""

    def __init__(self, transformer, tokenizer, pooling: str = "mean", normalize: bool = True,
                 max_length: int = 64):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', not {pooling!r}")
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length

    @classmethod
    def load(cls, path: str | Path, max_length: int | None = None) -> SentenceEncoder:
        """Load a local sentence-transformers (or plain Hugging Face) directory; `max_length` defaults to
        the one it was saved with."""
        path = Path(path)
        max_length = max_length or saved_max_length(path)
        transformer_dir, pooling, normalize = _sentence_transformers_layout(path)
        transformer = AutoModel.from_pretrained(transformer_dir)
        tokenizer = AutoTokenizer.from_pretrained(transformer_dir)
        return cls(transformer, tokenizer, pooling, normalize, max_length).eval()

    @property
    def dim(self) -> int:
        return self.transformer.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded token ids and attention mask, cut at `max_length` tokens."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.forward_with_layers(input_ids, attention_mask)[0]

    def forward_with_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                            layers: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The sentence vector, and the mean-pooled output of each transformer layer in `layers`
        (0-based), stacked as [batch, len(layers), hidden]: what hidden-state distillation compares."""
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                  output_hidden_states=bool(layers))
        mask = attention_mask.unsqueeze(-1).to(output.last_hidden_state.dtype)

        def mean_pool(hidden: torch.Tensor) -> torch.Tensor:
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        hidden = output.last_hidden_state
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden)
        embedding = nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled
        per_layer = torch.stack([mean_pool(output.hidden_states[i + 1]) for i in layers], 1) if layers else None
        return embedding, per_layer

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: str | None = None,
               layers: tuple[int, ...] = ()) -> torch.Tensor:
        """Embed many texts (batched by length, so little padding); returns a CPU float tensor. With
        `layers`, returns those layers' mean-pooled states instead, flattened: [texts, len(layers) * hidden]."""
        from tqdm.auto import tqdm

        out = torch.empty(len(texts), self.dim * (len(layers) or 1))
        for idx in tqdm(length_sorted_batches(texts, batch_size), desc=progress, disable=progress is None,
                        unit="batch"):
            batch = {k: v.to(self.device) for k, v in self.tokenize([texts[i] for i in idx]).items()}
            embedding, per_layer = self.forward_with_layers(**batch, layers=layers)
            out[idx] = (embedding if per_layer is None else per_layer.flatten(1)).float().cpu()  # None iff no layers
        return out

    def save(self, path: str | Path) -> None:
        """Write a standard sentence-transformers directory (safetensors weights)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.transformer.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
            (path / "2_Normalize").mkdir(exist_ok=True)
        (path / "modules.json").write_text(json.dumps(modules, indent=2))
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": self.dim,
            "pooling_mode_cls_token": self.pooling == "cls",
            "pooling_mode_mean_tokens": self.pooling == "mean",
        }, indent=2))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": self.max_length}))
