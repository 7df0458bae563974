"""One source of defaults: `python -m distill run` without --config trains what `make demo` trains."""

from __future__ import annotations

from pathlib import Path

import yaml

from distill.config import NOT_TRAINING, DistillConfig, load_config

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "distill.yaml"


def test_the_code_defaults_train_the_demo_student():
    training = set(DistillConfig.model_fields) - NOT_TRAINING
    assert DistillConfig().model_dump(include=training) == load_config(DEMO_CONFIG, []).model_dump(include=training)


def test_the_demo_config_holds_only_what_differs_from_the_defaults():
    values = yaml.safe_load(DEMO_CONFIG.read_text()) or {}
    defaults = DistillConfig()
    same = [key for key in values if getattr(load_config(DEMO_CONFIG, []), key) == getattr(defaults, key)]
    assert not same, f"{DEMO_CONFIG.name} repeats the defaults of {same}: leave them to distill/config.py"
