"""What keys a run (distill/run_inputs.py): the resume key changes with what changes training and with nothing
else; the run's fingerprint changes with everything. (Whole runs on tiny models: tests/e2e/test_pipeline.py.)"""

from __future__ import annotations

from distill.config import load_config
from distill.run_inputs import RunInputs, run_fingerprint, training_key


def test_the_resume_key_ignores_export_calibration_and_evaluation_settings_only(small_data):
    train, test = small_data
    inputs, base = RunInputs([train], test=[test]), load_config(None)
    key = training_key(base, inputs)
    for after_training in ("onnx=fp32", "onnx_min_agreement=0.9", "latency_messages=50", "oos_quantile=0.1",
                           "clarify_margin=0.2"):
        assert training_key(load_config(None, [after_training]), inputs) == key, after_training
        assert run_fingerprint(load_config(None, [after_training]), inputs) != run_fingerprint(base, inputs)
    for training in ("epochs=3", "student_layers=2", "lr=0.001", "temperature=4", "device=cpu"):
        assert training_key(load_config(None, [training]), inputs) != key, training
    assert training_key(base, RunInputs([test], test=[test])) != key
