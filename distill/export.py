"""The student for CPU serving: one ONNX graph (encoder + head → embedding, logits), its dynamically
quantised int8 copy, and the parity check that refuses an export disagreeing with PyTorch."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from bot.encoder import SentenceEncoder
from bot.nlu import ONNX_FP32, ONNX_INT8, IntentClassifier, OnnxStudent
from bot.torch_student import TorchStudent

OPSET = 17


class ExportError(Exception):
    """The exported model disagrees with the PyTorch student too often to be served."""


def export_onnx(encoder: SentenceEncoder, head: torch.nn.Linear, path: Path) -> Path:
    """Trace the student (on the CPU) into an ONNX file with dynamic batch and sequence axes."""
    model = TorchStudent(encoder.cpu(), head.cpu()).eval()
    sample = encoder.tokenize(["how do I reset my password", "hi"])
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks in transformers
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"]), str(path),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding", "logits"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "embedding": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    return path


def quantize_int8(source: Path, target: Path, block_size: int = 32) -> Path:
    """Int8 with activations quantised on the fly: every weight matmul becomes onnxruntime's MatMulNBits
    (8-bit weights, one scale per block of `block_size`; accuracy level 4 quantises each activation block
    to int8 at run time and multiplies in int8), and the word-embedding table is stored as int8.

    Why not `quantize_dynamic` on the matmuls: it scales a whole activation tensor at once, and the outlier
    channels of a BERT layer's input make that scale coarse; on BANKING77 it changed the student's top
    intent on 0.5-0.6% of messages, over the parity gate. Block-wise scales stay within it."""
    import onnx
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    prepared = target.with_name(target.stem + ".pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    try:
        settings = dict(block_size=block_size, is_symmetric=True, accuracy_level=4, bits=8,
                        op_types_to_quantize=("MatMul",))
        quantizer = MatMulNBitsQuantizer(onnx.load(str(prepared)), algo_config=DefaultWeightOnlyQuantConfig(**settings),
                                         **settings)
        quantizer.process()
        quantizer.model.save_model_to_file(str(prepared), use_external_data_format=False)
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["Gather"])
    finally:
        prepared.unlink(missing_ok=True)
    return target


def agreement_with(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of messages whose top intent is the same under both logits."""
    return float(np.mean(np.asarray(reference).argmax(-1) == np.asarray(candidate).argmax(-1)))


def onnx_classifier(reference: IntentClassifier, path: Path, backend: str) -> IntentClassifier:
    """The exported model with everything else (tokenizer, labels, calibration) taken from `reference`."""
    return IntentClassifier(OnnxStudent(path, threads=torch.get_num_threads()), reference.tokenizer,
                            reference.labels, reference.temperature, reference.max_length, backend,
                            reference.oos_score)


def export_checked(pytorch: IntentClassifier, directory: Path, texts: list[str], formats: list[str],
                   min_agreement: float) -> dict:
    """Write the ONNX files of `formats` ("fp32", "int8") into `directory` and check each against the
    PyTorch student on `texts` (the test set); raises ExportError, removing the files, below `min_agreement`."""
    student: TorchStudent = pytorch.model.student
    reference = pytorch.logits(texts)
    paths = {"fp32": export_onnx(student.encoder, student.head, directory / ONNX_FP32)}
    if "int8" in formats:
        logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)  # one line per node otherwise
        paths["int8"] = quantize_int8(paths["fp32"], directory / ONNX_INT8)
    report = {}
    for name, path in paths.items():
        logits = onnx_classifier(pytorch, path, f"onnx-{name}").logits(texts)
        report[name] = {"agreement": agreement_with(reference, logits),
                        "max_abs_logit_diff": float(np.abs(reference - logits).max()),
                        "disk_mb": round(path.stat().st_size / 2**20, 2), "messages": len(texts)}
    failed = {name: r["agreement"] for name, r in report.items() if r["agreement"] < min_agreement}
    if failed:
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise ExportError(f"ONNX export disagrees with the PyTorch student on {len(texts)} messages: "
                          + ", ".join(f"{n} agreement {100 * a:.2f}%" for n, a in failed.items())
                          + f" < {100 * min_agreement:.2f}%; not publishing (set onnx=fp32 or onnx=none "
                            "to serve without the int8 model)")
    if "fp32" not in formats:
        paths["fp32"].unlink()
        report["fp32"]["kept"] = False
    return report
