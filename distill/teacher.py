"""The teacher: a large sentence encoder with an intent head.

On a CPU the encoder stays frozen and only the head is trained (logistic regression on cached
embeddings, seconds). On a GPU the whole teacher is fine-tuned end to end.
"""

from __future__ import annotations

import torch
from torch import nn

from bot.model.encoder import SentenceEncoder
from distill.distributed import Ranks, same_on_all_ranks
from distill.linear_probe import fit_logistic_head
from distill.losses import SoftTargetKDLoss
from distill.trainer import TokenizedTexts, TrainOptions, predict_logits, train


class Teacher(nn.Module):
    def __init__(self, encoder: SentenceEncoder, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.dim, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(input_ids, attention_mask)
        return embedding, self.head(embedding)


def fit_head(teacher: Teacher, train_emb: torch.Tensor, train_y: torch.Tensor, valid_emb: torch.Tensor,
             valid_y: torch.Tensor, strengths: list[float], ranks: Ranks = Ranks()) -> dict:
    """The CPU path: logistic regression on the frozen encoder's embeddings. Every rank takes rank 0's head:
    fits in separate processes can differ, and with them the teacher's labels and which unlabelled messages
    join the training set (the number of batches)."""
    found = fit_logistic_head(teacher.head, train_emb, train_y, valid_emb, valid_y, strengths)
    teacher.head.load_state_dict(same_on_all_ranks(teacher.head.state_dict(), ranks, "the teacher's head"))
    return {"mode": "frozen encoder + logistic-regression head", **found}


def finetune(teacher: Teacher, train_texts: list[str], train_y: torch.Tensor, valid_texts: list[str],
             valid_y: torch.Tensor, options: TrainOptions, lr: float, head_lr: float, max_length: int,
             device: torch.device, ranks: Ranks = Ranks()) -> dict:
    """End-to-end fine-tuning with cross entropy (the GPU path)."""
    tokenizer = teacher.encoder.tokenizer
    train_tokens = TokenizedTexts(tokenizer, train_texts, max_length)
    valid_tokens = TokenizedTexts(tokenizer, valid_texts, max_length)
    labels = train_y.to(device)

    hard_labels = SoftTargetKDLoss(alpha=0.0)  # cross entropy; uniform target for out-of-scope (-1)

    def step_loss(inputs, index, _progress, _indices):
        logits = teacher(**inputs)[1]
        return hard_labels(logits, logits.detach(), labels[index])

    def evaluate() -> float:
        logits = predict_logits(lambda inputs: teacher(**inputs)[1], valid_tokens, device)
        in_scope = valid_y >= 0
        return float((logits.argmax(-1) == valid_y)[in_scope].float().mean())

    groups = [{"params": list(teacher.encoder.parameters()), "lr": lr},
              {"params": list(teacher.head.parameters()), "lr": head_lr}]
    history = train(teacher, groups, train_tokens, step_loss, evaluate, options, device, ranks)
    return {"mode": "fine-tuned end to end", **history}
