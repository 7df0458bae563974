"""The reports written beside a model's weights: `calibration.json` (what the bot serves with) and
`metrics.json` (teacher and student side by side), plus what `distill evaluate` writes.

Typed, so that the writer (`distill`) and the readers (the bot, the model card, `distill compare`) agree on
the keys. Lenient, because a registry keeps versions written by older code: a key added after the first
format has a default, and keys this code does not know are kept (extra="allow"). Files hold only the keys
their writer set (`dump`), so a file read and written again keeps its shape.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScopeScore = Literal["energy", "confidence"]


class Report(BaseModel):
    """Base of every report: unknown keys are kept, nothing is required that older files lack; a figure set
    after construction (the writer fills a report in stages) is checked like one given to it."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    def dump(self) -> dict:
        """What goes into the JSON file: the keys that were set (a None that was set stays a null)."""
        return self.model_dump(exclude_unset=True)


class Calibration(Report):
    """`calibration.json`: how the served model turns logits into decisions."""

    model_config = ConfigDict(frozen=True)

    temperature: float
    oos_threshold: float
    oos_score: ScopeScore = "confidence"
    """What oos_threshold applies to: "energy" or "confidence" (artifacts before energy: confidence)."""
    clarify_margin: float
    intent_thresholds: dict[str, float] = {}
    """Per intent, the calibrated confidence below which its predictions were unreliable on validation."""


class Latency(Report):
    """Milliseconds for one message."""

    p50: float
    p99: float
    mean: float | None = None
    n: int | None = None


class IntentReport(Report):
    """One intent's row of scikit-learn's classification report."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    precision: float
    recall: float
    f1_score: float = Field(alias="f1-score")
    support: float


class Retrieval(Report):
    """Answer-template retrieval; empty when no test message has an intent with a template."""

    recall_at_1: float | None = None
    recall_at_5: float | None = None
    mrr: float | None = None
    queries: int | None = None


class OutOfScope(Report):
    """Out-of-scope detection at the threshold (when the test data has out-of-scope messages)."""

    threshold: float
    in_scope_accuracy: float
    recall: float
    auroc: float
    oos_messages: int
    score: ScopeScore | None = None


class HeadFit(Report):
    """A logistic-regression head fitted on frozen embeddings (empty when there was none)."""

    C: float | None = None
    valid_accuracy: float | None = None


class Epoch(Report):
    epoch: int
    loss: float
    valid_score: float
    lr: float
    train_s: float | None = None
    samples_per_s: float | None = None


class RanksCheck(Report):
    """Several processes trained: their weights' digests, which must be equal."""

    world: int
    weights_digests: list[str]


class Training(Report):
    """How a model was trained: a head fit (mode, C, valid_accuracy) or epochs (best score, history)."""

    mode: str | None = None
    C: float | None = None
    valid_accuracy: float | None = None
    best_valid_score: float | None = None
    epochs_run: int | None = None
    history: list[Epoch] | None = None
    ranks: RanksCheck | None = None


class TeacherInt8(Report):
    """The teacher through the student's int8 export: its figures, or why the export failed."""

    accuracy: float | None = None
    latency_ms: Latency | None = None
    throughput_msgs_s: float | None = None
    quantisation: str | None = None
    error: str | None = None


class ParityCheck(Report):
    """An exported model against the PyTorch student on the validation messages."""

    agreement: float
    max_abs_logit_diff: float
    disk_mb: float
    messages: int


class Int8Quantisation(Report):
    block_size: int
    keep_ffn_output_fp32: bool
    int8_activations: bool


class Int8Attempt(ParityCheck):
    settings: Int8Quantisation | None = None
    """How it was quantised (artifacts before the fallback ladder: not recorded)."""
    describe: str | None = None


class ParityGateReport(Report):
    min_agreement: float
    max_logit_diff: float | None = None


class OnnxReport(Report):
    """The ONNX export and its parity check: what is served and, when not the int8 model, why."""

    fp32: ParityCheck
    gate: ParityGateReport | None = None
    int8: Int8Attempt | None = None
    int8_attempts: list[Int8Attempt] | None = None
    served: Literal["torch", "onnx", "onnx-int8"] | None = None
    """None in artifacts before the fallback ladder (they served the int8 model when there was one)."""
    fallback: str | None = None


class Figures(Report):
    """One model's figures on the test messages (teacher and student alike)."""

    accuracy: float
    macro_f1: float
    per_intent: dict[str, IntentReport]
    params: int | None = None
    latency_ms: Latency
    throughput_msgs_s: float | None = None
    temperature: float | None = None
    ece: float | None = None
    oos: OutOfScope | None = None
    retrieval: Retrieval | None = None
    disk_mb: float | None = None
    model: str | None = None
    training: Training | None = None


class TeacherFigures(Figures):
    int8: TeacherInt8 | None = None
    finetuned: bool | None = None
    trained_with_student: bool | None = None


class StudentFigures(Figures):
    backend: str = "torch"
    """How the bot serves it: "onnx-int8", "onnx" or "torch" (artifacts before ONNX: torch)."""
    agreement: float | None = None
    latency_ms_pytorch: Latency | None = None
    throughput_msgs_s_pytorch: float | None = None
    accuracy_pytorch: float | None = None
    disk_mb_pytorch: float | None = None
    onnx: OnnxReport | None = None
    layers_kept: list[int] | None = None
    warm_start: HeadFit | None = None
    layer_map: dict[int, int] | None = None
    oos_threshold: float | None = None


class SideBySide(Report):
    """Teacher and student scored on the same messages, and how much faster the student answers."""

    teacher: TeacherFigures
    student: StudentFigures
    retention: float
    speedup_p50: float
    speedup_same_runtime: float | None = None
    """Teacher int8 / student int8 p50: what distillation buys (None when the student is not served in int8)."""
    throughput_batch: int | None = None
    latency_threads: int | None = None


class EvalSet(Report):
    """The messages the figures were measured on."""

    file: str
    messages: int
    intents_unknown_to_model: list[str] | None = None


class UnlabelledRulesUsed(Report):
    min_teacher_confidence: float
    require_agreement: bool
    max_growth: float
    min_growth: int


class UnlabelledUse(Report):
    """Messages without labels, labelled by the teacher: how many, and how many were trained on."""

    messages: int
    min_confidence: float
    dropped: dict[str, int] | None = None
    """With rules (redistillation): how many were left out, and why."""
    rules: UnlabelledRulesUsed | None = None
    used: int | None = None


class Metrics(SideBySide):
    """`metrics.json`: the side-by-side figures and the run's facts."""

    test_set: EvalSet
    train_messages: int
    valid_messages: int
    unlabelled: UnlabelledUse | None = None
    device: str
    ranks: int | None = None
    stages_s: dict[str, float]
    stages_samples_per_s: dict[str, float] | None = None
    stages_gpu_peak_mib: dict[str, int] | None = None
    confusions: dict[str, dict[str, int]] = {}
    """Validation messages of an intent (the key) that the served student took for another (how many, by the
    intent it chose); empty in versions made before it was recorded."""
    languages: list[str] = []
    """The languages of the training messages (bot.model.language.trained_languages); empty in versions made
    before it was recorded."""


class Evaluation(Report):
    """What `distill evaluate` writes: a published student on a labelled file."""

    model_version: str
    test_set: EvalSet
    student: StudentFigures
