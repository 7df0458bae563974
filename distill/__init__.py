"""The distillation: pinned weights, data loaders, the teacher, the student, losses, the trainer, evaluation,
calibration, ONNX export, publishing into the registry, and redistillation from the agents' corrections.

May import: `bot.model` (the artifact format it writes and the encoder it trains), and `bot.infra.store` (the
database it harvests corrections from); nothing else of `bot` (contracts in pyproject.toml). Nothing in `bot`
imports this package: a serving install has no PyTorch.
"""
