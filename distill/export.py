"""The student for CPU serving: one ONNX graph (encoder + head → embedding, logits), its int8 copy, and
the parity check that serves the most compressed model agreeing with PyTorch (int8, fp32 ONNX, PyTorch)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bot.model.encoder import SentenceEncoder
from bot.model.nlu import ONNX_FP32, ONNX_INT8, IntentClassifier, OnnxStudent
from bot.model.torch_student import NumpyRunner, TorchStudent

OPSET = 17


def torch_student(pytorch: IntentClassifier) -> TorchStudent:
    """The PyTorch student inside a classifier built by IntentClassifier.from_torch."""
    assert isinstance(pytorch.model, NumpyRunner), "a classifier from IntentClassifier.from_torch"
    return pytorch.model.student


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


@dataclass(frozen=True)
class Int8Settings:
    """How the int8 model is quantised; the parity gate tries `INT8_LADDER` in order, strongest last."""

    block_size: int = 32
    """One weight scale per block of this many input channels of each output channel."""
    keep_ffn_output_fp32: bool = False
    """Leave each layer's feed-forward output matmul in fp32: its input (after GELU) carries the outlier
    channels that make int8 activations coarse."""
    int8_activations: bool = True
    """Quantise activations to int8 at run time (fastest); False: int8 weights, fp32 arithmetic."""

    def describe(self) -> str:
        return (f"block {self.block_size}" + (", feed-forward outputs fp32" if self.keep_ffn_output_fp32 else "")
                + ("" if self.int8_activations else ", fp32 activations"))


INT8_LADDER = (Int8Settings(), Int8Settings(block_size=16, keep_ffn_output_fp32=True),
               Int8Settings(int8_activations=False))


def _ffn_output_matmuls(model) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type == "MatMul"
            and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name]


def quantize_int8(source: Path, target: Path, settings: Int8Settings = Int8Settings()) -> Path:
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
        model = onnx.load(str(prepared))
        excluded = _ffn_output_matmuls(model) if settings.keep_ffn_output_fp32 else []
        common = dict(block_size=settings.block_size, is_symmetric=True, bits=8, op_types_to_quantize=("MatMul",),
                      accuracy_level=4 if settings.int8_activations else 1)
        quantizer = MatMulNBitsQuantizer(model, algo_config=DefaultWeightOnlyQuantConfig(**common),
                                         nodes_to_exclude=excluded, **common)
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


def percent_pair(value: float, bound: float) -> tuple[str, str]:
    """Both as percentages with enough digits to show which is larger (99.47% and 99.50%, never 99.50% twice)."""
    for digits in range(2, 7):
        a, b = f"{100 * value:.{digits}f}%", f"{100 * bound:.{digits}f}%"
        if a != b or value == bound:
            return a, b
    return a, b


def _check(pytorch: IntentClassifier, reference: np.ndarray, path: Path, name: str, texts: list[str]) -> dict:
    logits = onnx_classifier(pytorch, path, f"onnx-{name}").logits(texts)
    return {"agreement": agreement_with(reference, logits),
            "max_abs_logit_diff": float(np.abs(reference - logits).max()),
            "disk_mb": round(path.stat().st_size / 2**20, 2), "messages": len(texts)}


def _shortfall(name: str, result: dict, gate: ParityGate) -> str | None:
    """Why `result` fails the gate (None: it passes)."""
    reasons = []
    if result["agreement"] < gate.min_agreement:
        got, bound = percent_pair(result["agreement"], gate.min_agreement)
        differ = round((1 - result["agreement"]) * result["messages"])
        reasons.append(f"{name} agreement {got} < {bound} on {result['messages']} validation messages "
                       f"({differ} differ)")
    if gate.max_logit_diff is not None and result["max_abs_logit_diff"] > gate.max_logit_diff:
        reasons.append(f"{name} logits differ from PyTorch's by up to {result['max_abs_logit_diff']:.3g} > "
                       f"{gate.max_logit_diff:.3g}")
    return "; ".join(reasons) or None


@dataclass(frozen=True)
class ParityGate:
    min_agreement: float
    """Share of messages whose top intent must be PyTorch's."""
    max_logit_diff: float | None = None
    """Largest allowed difference of any logit from PyTorch's (None: not checked)."""


def export_checked(pytorch: IntentClassifier, directory: Path, texts: list[str], int8: bool, gate: ParityGate) -> dict:
    """Write model.onnx (and, with `int8`, model.int8.onnx) into `directory`, each checked against the PyTorch
    student on `texts` (validation messages: the test set is kept for reporting).

    An int8 model that fails the gate is quantised again with the stronger settings of INT8_LADDER; when
    none passes, the fp32 ONNX model is served; when that too fails, PyTorch is. A trained student is
    always published; the report's `served` and `fallback` say what is served and why."""
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)  # one line per node otherwise
    reference = pytorch.logits(texts)
    student = torch_student(pytorch)
    fp32_path = export_onnx(student.encoder, student.head, directory / ONNX_FP32)
    report = {"fp32": _check(pytorch, reference, fp32_path, "fp32", texts), "gate": asdict(gate)}
    if why := _shortfall("fp32 ONNX", report["fp32"], gate):
        fp32_path.unlink()
        return report | {"served": "torch", "fallback": f"{why}; serving the PyTorch student"}
    if not int8:
        return report | {"served": "onnx", "fallback": None}
    attempts = []
    for settings in INT8_LADDER:
        result = _check(pytorch, reference, quantize_int8(fp32_path, directory / ONNX_INT8, settings), "int8", texts)
        attempts.append({"settings": asdict(settings), "describe": settings.describe(), **result})
        if _shortfall("int8", result, gate) is None:
            return report | {"int8": attempts[-1], "int8_attempts": attempts, "served": "onnx-int8", "fallback": None}
    (directory / ONNX_INT8).unlink()
    best = max(attempts, key=lambda a: (a["agreement"], -a["max_abs_logit_diff"]))
    return report | {"int8_attempts": attempts, "served": "onnx",
                     "fallback": f"{_shortfall('int8', best, gate)} (best of {len(attempts)} quantisation "
                                 "settings); serving the fp32 ONNX model"}
