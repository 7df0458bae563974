"""The sentence encoder and the student built from it, on tiny random transformers (seconds): saving and
loading, choosing and cutting layers, mapping the student's layers onto the teacher's."""

from __future__ import annotations

import pytest
import torch

from bot.model.encoder import SentenceEncoder
from distill.student import cut_layers, default_layer_map, layers_to_keep


def test_saved_encoder_loads_back_identical(tiny_student_dir, tmp_path):
    encoder = SentenceEncoder.load(tiny_student_dir)
    encoder.save(tmp_path / "copy")
    again = SentenceEncoder.load(tmp_path / "copy")
    texts = ["where is my order", "hello"]
    vectors = encoder.encode(texts)
    assert torch.allclose(vectors, again.encode(texts), atol=1e-6)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert (tmp_path / "copy" / "model.safetensors").exists() and (tmp_path / "copy" / "modules.json").exists()


@pytest.mark.parametrize("total, keep, expected", [(6, 6, [0, 1, 2, 3, 4, 5]), (6, 3, [1, 3, 5]), (6, 2, [2, 5]),
                                                   (6, 1, [5]), (6, [0, 2, 4], [0, 2, 4])])
def test_layer_selection(total, keep, expected):
    assert layers_to_keep(total, keep) == expected


def test_layer_selection_refuses_impossible_requests():
    with pytest.raises(ValueError):
        layers_to_keep(6, 7)
    with pytest.raises(ValueError):
        layers_to_keep(6, [0, 6])


def test_cut_student_still_encodes(tiny_student_dir):
    encoder = SentenceEncoder.load(tiny_student_dir)
    assert cut_layers(encoder, 2) == [1, 3]
    assert len(encoder.transformer.encoder.layer) == 2
    assert encoder.encode(["hi"]).shape == (1, 32)


def test_default_layer_map_spreads_student_layers_over_the_teacher():
    assert default_layer_map(4, 12) == {0: 2, 1: 5, 2: 8, 3: 11}
    assert default_layer_map(6, 12) == {0: 1, 1: 3, 2: 5, 3: 7, 4: 9, 5: 11}
    assert default_layer_map(4, 2) == {0: 0, 1: 0, 2: 1, 3: 1}
