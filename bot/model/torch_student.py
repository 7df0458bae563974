"""The student in PyTorch: what training produces, what the ONNX export traces, and the `torch` serving
backend. Only this module (and training) needs PyTorch; the int8 ONNX model is served without it."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bot.model.encoder import SentenceEncoder


def save_head(head: nn.Linear, path) -> None:
    save_file({"weight": head.weight.detach().cpu().contiguous(),
               "bias": head.bias.detach().cpu().contiguous()}, str(path))


def load_head(path) -> nn.Linear:
    tensors = load_file(str(path))
    n_labels, dim = tensors["weight"].shape
    head = nn.Linear(dim, n_labels)
    head.load_state_dict(tensors)
    return head


class TorchStudent(nn.Module):
    """Encoder, then head: token ids and mask in, (sentence vectors, intent logits) out."""

    def __init__(self, encoder: SentenceEncoder, head: nn.Linear):
        super().__init__()
        self.encoder, self.head = encoder.eval(), head.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(input_ids, attention_mask)
        return embedding, self.head(embedding)


class NumpyRunner:
    """Runs a TorchStudent on numpy inputs and returns numpy outputs, as the ONNX session does, so the
    classifier is the same whichever backend runs the model."""

    def __init__(self, student: TorchStudent):
        self.student = student

    @torch.inference_mode()
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        device = self.student.encoder.device
        embedding, logits = self.student(torch.as_tensor(input_ids, device=device),
                                         torch.as_tensor(attention_mask, device=device))
        return embedding.float().cpu().numpy(), logits.float().cpu().numpy()
