"""The student: a small encoder (optionally cut to fewer layers), an intent head, and a projection
into the teacher's embedding space used only by the feature-distillation loss."""

from __future__ import annotations

import math

import torch
from torch import nn

from bot.model.encoder import SentenceEncoder


def layers_to_keep(total: int, keep: int | list[int]) -> list[int]:
    """Explicit indices as given; a count keeps every (total/keep)-th layer, ending at the top one."""
    if isinstance(keep, list):
        indices = sorted(set(keep))
        if not indices or indices[0] < 0 or indices[-1] >= total:
            raise ValueError(f"layer indices {keep} out of range 0..{total - 1}")
        return indices
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers")
    return sorted({round(total - 1 - i * total / keep) for i in range(keep)})


def cut_layers(encoder: SentenceEncoder, keep: int | list[int] | None) -> list[int]:
    """Drop transformer layers in place; returns the indices kept."""
    layers = encoder.transformer.encoder.layer
    indices = list(range(len(layers))) if keep is None else layers_to_keep(len(layers), keep)
    encoder.transformer.encoder.layer = nn.ModuleList(layers[i] for i in indices)
    encoder.transformer.config.num_hidden_layers = len(indices)
    return indices


def default_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """Each student layer to the teacher layer at the same relative depth (the last to the last)."""
    return {k: math.ceil((k + 1) * teacher_layers / student_layers) - 1 for k in range(student_layers)}


class Student(nn.Module):
    def __init__(self, encoder: SentenceEncoder, n_labels: int, teacher_dim: int,
                 layer_map: dict[int, int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.dim, n_labels)
        self.projection = nn.Linear(encoder.dim, teacher_dim)
        self.layer_map = dict(sorted((layer_map or {}).items()))
        """Student layer → teacher layer, for the hidden-state loss; one projection per pair."""
        self.hidden_projections = nn.ModuleList(nn.Linear(encoder.dim, teacher_dim) for _ in self.layer_map)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(input_ids, attention_mask)
        return embedding, self.head(embedding)
