"""The distillation run, stage by stage: data → teacher → teacher outputs (cached) → student → distil →
export (ONNX, int8, parity gate) → calibrate → evaluate → publish.

`run` is the entry point; `DistillRun` holds what the stages hand each other, one method per stage.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

from bot.model.artifact import FORMAT_VERSION, Registry, RegistryBusy, try_lock, write_json
from bot.model.encoder import SentenceEncoder
from bot.model.language import trained_languages
from bot.model.nlu import ONNX_FP32, ONNX_INT8, IntentClassifier
from bot.model.reports import (
    Calibration,
    EvalSet,
    HeadFit,
    Metrics,
    OnnxReport,
    Training,
    UnlabelledRulesUsed,
    UnlabelledUse,
)
from bot.model.retriever import TemplateRetriever
from bot.model.torch_student import save_head
from distill import weights
from distill.cache import EmbeddingCache
from distill.calibration import choose_oos_threshold, fit_temperature, intent_thresholds
from distill.card import write_model_card
from distill.config import DistillConfig
from distill.data import Example, check_known_intents, load_examples, load_messages, load_templates
from distill.distributed import Ranks, barrier, launched_ranks, same_on_all_ranks
from distill.evaluate import confused, disk_mb
from distill.export import Int8Settings, ParityGate, export_checked, onnx_classifier
from distill.linear_probe import fit_logistic_head, fit_projection
from distill.losses import (
    UNLABELLED,
    EmbeddingCosineLoss,
    EmbeddingMSELoss,
    SoftTargetKDLoss,
    SupervisedContrastiveLoss,
    linear_schedule,
)
from distill.run_inputs import RunInputs, run_fingerprint, training_key, up_to_date, why_up_to_date
from distill.side_by_side import ScoringInputs, score_side_by_side
from distill.student import Student, cut_layers, default_layer_map
from distill.teacher import Teacher, finetune, fit_head
from distill.trainer import (
    TokenizedTexts,
    TrainOptions,
    predict_logits,
    resolve_device,
    seed_everything,
    to_device,
    train,
)
from distill.training_set import select_unlabelled

SERVED_FILE = {"onnx-int8": ONNX_INT8, "onnx": ONNX_FP32}
log = logging.getLogger(__name__)


@dataclass
class RunResult:
    artifact: Path | None
    """None on the ranks other than 0 of a multi-process run: rank 0 publishes."""
    metrics: Metrics | None
    """None on the other ranks, and for an up-to-date version published without metrics.json."""
    up_to_date: bool = False
    staged: bool = False
    """The artifact is staged, not published (run with publish=False)."""
    rank: int = 0


@dataclass
class _Stages:
    """Wall time (and, where it means something, samples per second) of each stage, printed as it goes; once
    CUDA is in use, also each stage's peak of GPU memory allocated by tensors (MiB, this process's device)."""

    times: dict = field(default_factory=dict)
    samples_per_s: dict = field(default_factory=dict)
    gpu_peak_mib: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def done(self, name: str, samples: int | None = None) -> None:
        seconds = time.perf_counter() - self.started
        self.times[name] = round(seconds, 2)
        rate = ""
        if samples:
            self.samples_per_s[name] = round(samples / max(seconds, 1e-9), 1)
            rate = f", {self.samples_per_s[name]:.0f} samples/s"
        if torch.cuda.is_initialized():
            self.gpu_peak_mib[name] = round(torch.cuda.max_memory_allocated() / 2**20)
            torch.cuda.reset_peak_memory_stats()
            rate += f", GPU peak {self.gpu_peak_mib[name]} MiB"
        log.info("%s: %.1fs%s", name, seconds, rate)
        self.started = time.perf_counter()


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    labels = [e.intent for e in examples]
    counts = {label: labels.count(label) for label in set(labels)}
    n_valid = max(1, round(fraction * len(examples)))
    stratify = labels if min(counts.values()) >= 2 and n_valid >= len(counts) else None
    return train_test_split(examples, test_size=n_valid, random_state=seed, stratify=stratify)


def _load_checked(paths: list[Path], label_column: str | None, known: set[str]) -> list[Example]:
    examples = []
    for path in paths:
        loaded = load_examples(path, label_column)
        check_known_intents(path, loaded, known)
        examples += loaded
    return examples


def student_epochs(config: DistillConfig, train_messages: int) -> int:
    """The configured epochs, or (None) enough of them for `min_steps` steps on this much data, at least 8."""
    if config.epochs is not None:
        return config.epochs
    return max(8, math.ceil(config.min_steps / math.ceil(train_messages / config.batch_size)))


def _teacher_outputs(teacher: Teacher, texts: list[str], device, max_length: int):
    tokens = TokenizedTexts(teacher.encoder.tokenizer, texts, max_length)
    both = predict_logits(lambda inputs: torch.cat(teacher(**inputs), dim=-1), tokens, device)
    return both[:, :teacher.encoder.dim], both[:, teacher.encoder.dim:]


def run(config: DistillConfig, inputs: RunInputs, registry_dir: Path, cache_dir: Path | None = None,
        force: bool = False, resume: bool = False, publish: bool = True) -> RunResult:
    """Distil, evaluate and publish. `resume` carries on from the checkpoints of an interrupted run of the
    same data and training config (else they are discarded): after a failure past training, it exports,
    calibrates and evaluates the saved student, whatever those stages' settings, without training again.
    Under `accelerate launch`/`torchrun` every rank trains and rank 0 publishes, under the registry's lock
    (waiting while another writer holds it). `publish=False` leaves the finished artifact staged in the
    registry (its path in the result) for the caller, which holds the lock, to publish or discard. A second
    run of the same config and data at once is RegistryBusy."""
    fingerprint = run_fingerprint(config, inputs)
    current = up_to_date(registry_dir, fingerprint)
    if current is not None and not force:
        log.info("%s", why_up_to_date(current, fingerprint))
        return RunResult(current.path, current.metrics(), up_to_date=True)
    job = DistillRun(config, inputs, Path(registry_dir), cache_dir or weights.default_cache_dir(), fingerprint,
                     resume, launched_ranks(config.device))
    try:
        job.load_data()
        job.prepare_teacher()
        job.add_unlabelled()
        job.build_student()
        job.distil()
        if not job.ranks.is_main:
            return RunResult(None, None, rank=job.ranks.rank)
        try:
            return job.publish(final=publish)
        except Exception:
            if publish:  # (a redistillation never resumes: its caller reports the failure)
                log.info("the trained student is kept in %s: `distill run --resume` with the same data publishes "
                         "it without training again (export and evaluation settings may change)", job.run_dir)
            raise
    finally:
        job.close()


class DistillRun:
    """One run's state; each method is a stage and leaves its results on `self` for the next."""

    def __init__(self, config: DistillConfig, inputs: RunInputs, registry_dir: Path, cache_dir: Path,
                 fingerprint: str, resume: bool, ranks: Ranks):
        self.config, self.inputs, self.ranks = config, inputs, ranks
        self.registry_dir, self.cache_dir, self.fingerprint = registry_dir, cache_dir, fingerprint
        seed_everything(config.seed)
        device = resolve_device(config.device)  # fails when a GPU was asked for and there is none
        launched = ranks.device if ranks.distributed else None  # the device a launcher gave this rank, if any
        self.device = launched if launched is not None and launched.type == device.type else device
        self.stages = _Stages()
        # checkpoints and run log until published, keyed by what changes training only: a run that failed in
        # export, calibration or evaluation is resumed with other settings for those without training again
        self.run_dir = registry_dir / ".runs" / training_key(config, inputs)
        self.run_lock = None
        if ranks.is_main:  # the folder is this run's: a second run of the same data and config must not clear it
            self.run_dir.parent.mkdir(parents=True, exist_ok=True)
            self.run_lock = try_lock(self.run_dir.with_name(f"{self.run_dir.name}.lock"))
            if self.run_lock is None:
                raise RegistryBusy(f"{self.run_dir}: another run of the same data and config is under way")
            if not resume:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        barrier(ranks, "clearing the run folder")  # no rank may resume from the checkpoints rank 0 clears
        self.run_log = self.run_dir / "run_log.jsonl"
        self.unlabelled: UnlabelledUse | None = None

    def close(self) -> None:
        """Let go of the run folder (another run of the same data and config may start)."""
        if self.run_lock is not None:
            self.run_lock.close()
            self.run_lock = None

    def _options(self, **kwargs) -> TrainOptions:
        c = self.config
        return TrainOptions(batch_size=c.batch_size, warmup_ratio=c.warmup_ratio, weight_decay=c.weight_decay,
                            patience=c.patience, seed=c.seed, log_path=self.run_log, **kwargs)

    def load_data(self) -> None:
        """Examples of every split, the intents (out of scope is none: label -1), the templates."""
        config, inputs = self.config, self.inputs
        train_set = [e for path in inputs.train for e in load_examples(path, inputs.label_column)]
        self.labels = sorted({e.intent for e in train_set} - {config.oos_label})
        known = set(self.labels) | {config.oos_label}
        if inputs.valid:
            valid_set = _load_checked(inputs.valid, inputs.label_column, known)
        else:
            train_set, valid_set = _split(train_set, config.valid_fraction, config.seed)
        self.test_set = _load_checked(inputs.test, inputs.label_column, known) if inputs.test else None
        self.book = load_templates(inputs.templates, set(self.labels)) if inputs.templates else None
        self.train_set, self.valid_set = train_set, valid_set
        label_index = {name: i for i, name in enumerate(self.labels)}
        self.y_train = torch.tensor([label_index.get(e.intent, -1) for e in train_set])
        self.y_valid = torch.tensor([label_index.get(e.intent, -1) for e in valid_set])
        self.train_texts, self.valid_texts = [e.text for e in train_set], [e.text for e in valid_set]
        self.stages.done("load data")
        self.teacher_dir = weights.resolve_model(config.teacher, self.cache_dir)
        self.student_dir = weights.resolve_model(config.student, self.cache_dir)
        self.teacher = Teacher(SentenceEncoder.load(self.teacher_dir, config.max_length), len(self.labels))
        self.stages.done("resolve and verify weights")

    def _teacher_cache(self, suffix: str = "") -> EmbeddingCache:
        key = f"{weights.fingerprint(self.config.teacher, self.teacher_dir)}-{self.config.max_length}{suffix}"
        return EmbeddingCache(self.cache_dir / "teacher", key)

    def prepare_teacher(self) -> None:
        """Fine-tune the teacher end to end (GPU), or fit its head on cached frozen embeddings (CPU); then its
        soft labels and embeddings for the training texts."""
        config, teacher, device = self.config, self.teacher, self.device
        self.teacher_finetuned = config.teacher_finetune == "always" or (
            config.teacher_finetune == "auto" and device.type == "cuda")
        if self.teacher_finetuned:
            teacher.to(device)
            options = self._options(epochs=config.teacher_epochs, desc="teacher",
                                    checkpoint=self.run_dir / "teacher.ckpt")
            self.teacher_training = finetune(teacher, self.train_texts, self.y_train, self.valid_texts, self.y_valid,
                                             options, config.teacher_lr, config.head_lr, config.max_length, device,
                                             self.ranks)
            self.t_train_emb, self.t_train_logits = _teacher_outputs(teacher, self.train_texts, device,
                                                                     config.max_length)
        else:
            cache = self._teacher_cache()
            train_emb, computed = cache.get(self.train_texts, self._embed_with_teacher)
            valid_emb, computed_valid = cache.get(self.valid_texts, self._embed_with_teacher)
            total = len(self.train_texts) + len(self.valid_texts)
            log.info("teacher embeddings: %d computed, %d from cache", computed + computed_valid,
                     total - computed - computed_valid)
            self.teacher_training = fit_head(teacher, train_emb, self.y_train, valid_emb, self.y_valid,
                                             config.teacher_head_c, self.ranks)
            with torch.no_grad():
                self.t_train_emb, self.t_train_logits = train_emb, teacher.head(train_emb)
        self.stages.done("teacher", len(self.train_texts) * (config.teacher_epochs if self.teacher_finetuned else 1))

    def _embed_with_teacher(self, texts: list[str]) -> torch.Tensor:
        return self.teacher.encoder.to(self.device).encode(texts, progress="teacher embeddings")

    def teacher_outputs_for(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's embeddings and logits for any texts (from the embedding cache when frozen)."""
        if self.teacher_finetuned:
            self.teacher.to(self.device)
            return _teacher_outputs(self.teacher, texts, self.device, self.config.max_length)
        embeddings = self._teacher_cache().get(texts, self._embed_with_teacher)[0]
        with torch.no_grad():
            return embeddings, self.teacher.head.cpu()(embeddings)

    def add_unlabelled(self) -> None:
        """Messages without labels join the training data with the teacher's soft labels (above a confidence)."""
        if not self.inputs.unlabelled:
            return
        held_out = set(self.train_texts) | set(self.valid_texts) | {e.text for e in self.test_set or []}
        messages = [m for m in dict.fromkeys(m for path in self.inputs.unlabelled for m in load_messages(path))
                    if m not in held_out]
        if not messages:
            raise ValueError("the unlabelled files hold no message that is not already in the labelled data")
        emb, logits = self.teacher_outputs_for(messages)
        confidence, best = F.softmax(logits, dim=-1).max(-1)
        keep = confidence >= self.config.unlabelled_min_confidence
        self.unlabelled = UnlabelledUse(messages=len(messages), min_confidence=self.config.unlabelled_min_confidence)
        if self.inputs.unlabelled_rules is not None:
            student = self.inputs.unlabelled_student
            rules = self.inputs.unlabelled_rules  # never below the config's own minimum
            rules = replace(rules, min_teacher_confidence=max(rules.min_teacher_confidence,
                                                              self.config.unlabelled_min_confidence))
            kept, dropped = select_unlabelled(
                [self.labels[i] for i in best.tolist()], confidence.tolist(),
                [student.get(m, "") for m in messages] if student else None,
                Counter(self.labels[i] for i in self.y_train.tolist() if i >= 0), rules)
            keep = torch.zeros(len(messages), dtype=torch.bool)
            keep[kept] = True
            self.unlabelled.dropped, self.unlabelled.rules = dropped, UnlabelledRulesUsed(**asdict(rules))
        keep = same_on_all_ranks(keep, self.ranks, "the unlabelled messages kept")  # the same batches everywhere
        self.train_texts = self.train_texts + [m for m, k in zip(messages, keep.tolist()) if k]
        self.y_train = torch.cat([self.y_train, torch.full((int(keep.sum()),), UNLABELLED)])
        self.t_train_emb = torch.cat([self.t_train_emb, emb[keep]])
        self.t_train_logits = torch.cat([self.t_train_logits, logits[keep]])
        self.unlabelled.used = int(keep.sum())
        self.stages.done(f"label {len(messages)} unlabelled messages with the teacher", len(messages))

    def build_student(self) -> None:
        """MiniLM cut to the chosen layers, a head, projections for the feature losses, warm-started."""
        config = self.config
        encoder = SentenceEncoder.load(self.student_dir, config.max_length)
        self.kept_layers = cut_layers(encoder, config.student_layers)
        self.layer_map, t_layers = None, None
        if config.hidden_weight:
            teacher_depth = self.teacher.encoder.transformer.config.num_hidden_layers
            self.layer_map = config.layer_map or default_layer_map(len(self.kept_layers), teacher_depth)
            if any(not 0 <= s < len(self.kept_layers) or not 0 <= t < teacher_depth
                   for s, t in self.layer_map.items()):
                raise ValueError(f"layer_map {self.layer_map} is out of range: the student has "
                                 f"{len(self.kept_layers)} layers, the teacher {teacher_depth}")
            t_layers = self._teacher_layer_states(tuple(self.layer_map.values()))
        self.student = Student(encoder, len(self.labels), self.teacher.encoder.dim, self.layer_map)
        encoder.transformer.get_input_embeddings().weight.requires_grad_(not config.freeze_embeddings)
        self.student_checkpoint = self.run_dir / "student.ckpt"
        self.warm_start = {} if self.student_checkpoint.exists() else self._warm_start()
        self.student.to(self.device)
        self.targets = {"y": self.y_train.to(self.device), "logits": self.t_train_logits.to(self.device),
                        "emb": self.t_train_emb.to(self.device)}
        if self.layer_map:
            assert t_layers is not None, "a layer map is made only with hidden_weight, which computes t_layers"
            self.targets["layers"] = t_layers.view(len(self.train_texts), len(self.layer_map), -1).to(self.device)
        self.stages.done("build student")

    def _teacher_layer_states(self, layers: tuple[int, ...]) -> torch.Tensor:
        """Mean-pooled states of the teacher's mapped layers, flattened per text (cached for a frozen teacher)."""
        encoder = self.teacher.encoder.to(self.device)

        def compute(batch: list[str]) -> torch.Tensor:
            return encoder.encode(batch, progress="teacher hidden states", layers=layers)

        if self.teacher_finetuned:
            return compute(self.train_texts)
        return self._teacher_cache(f"-layers-{'_'.join(map(str, layers))}").get(self.train_texts, compute)[0]

    def _warm_start(self) -> dict:
        """Start the head as a logistic regression on the student's own frozen embeddings and the projection
        as their least-squares map to the teacher's, so distillation starts from a working model."""
        if not self.config.warm_start:
            return {}
        encoder = self.student.encoder.to(self.device)
        train_emb = encoder.encode(self.train_texts, progress="student embeddings (warm start)")
        valid_emb = encoder.encode(self.valid_texts)
        fit_projection(self.student.projection, train_emb, self.t_train_emb)
        return fit_logistic_head(self.student.head, train_emb, self.y_train, valid_emb, self.y_valid,
                                 self.config.teacher_head_c)

    def distil(self) -> None:
        """Train the student (and, in mutual mode, the teacher's trainable part) on the combined loss."""
        config, student, teacher, device, targets = self.config, self.student, self.teacher, self.device, self.targets
        student_layers = tuple(student.layer_map)
        kd = SoftTargetKDLoss(config.temperature, config.alpha)
        teacher_kd = SoftTargetKDLoss(config.temperature, config.teacher_alpha)
        feature = EmbeddingCosineLoss() if config.feature_loss == "cosine" else EmbeddingMSELoss()
        contrastive = SupervisedContrastiveLoss(config.retrieval_temperature)
        train_tokens = TokenizedTexts(student.encoder.tokenizer, self.train_texts, config.max_length)
        self.valid_tokens = TokenizedTexts(student.encoder.tokenizer, self.valid_texts, config.max_length)

        trained = nn.ModuleDict({"student": student})
        groups = [{"params": [p for p in student.encoder.parameters() if p.requires_grad], "lr": config.lr},
                  {"params": [*student.head.parameters(), *student.projection.parameters(),
                              *student.hidden_projections.parameters()], "lr": config.head_lr}]
        if config.mutual:  # the teacher's trainable part joins the same optimiser and checkpoint
            trained["teacher"] = teacher.to(device) if self.teacher_finetuned else teacher.head.to(device)
            groups.append({"params": list(teacher.head.parameters()), "lr": config.head_lr})
            if self.teacher_finetuned:
                groups.append({"params": list(teacher.encoder.parameters()), "lr": config.teacher_lr})
                teacher_tokens = TokenizedTexts(teacher.encoder.tokenizer, self.train_texts, config.max_length)

        def live_teacher_logits(index, indices) -> torch.Tensor:
            if not config.mutual:
                return targets["logits"][index]
            if self.teacher_finetuned:
                return teacher(**to_device(teacher_tokens.batch(indices), device))[1]
            return teacher.head(targets["emb"][index])

        def step_loss(inputs, index, progress, indices):
            embedding, per_layer = student.encoder.forward_with_layers(**inputs, layers=student_layers)
            logits = student.head(embedding)
            temperature = linear_schedule(config.temperature, config.temperature_end, progress)
            teacher_logits = live_teacher_logits(index, indices)
            loss = kd(logits, teacher_logits.detach(), targets["y"][index], temperature,
                      linear_schedule(config.alpha, config.alpha_end, progress))
            if config.mutual:
                loss = loss + teacher_kd(teacher_logits, logits.detach(), targets["y"][index], temperature)
            if config.feature_weight:
                loss = loss + config.feature_weight * feature(student.projection(embedding), targets["emb"][index])
            if config.retrieval_weight:
                loss = loss + config.retrieval_weight * contrastive(embedding, targets["y"][index])
            if student_layers:
                assert per_layer is not None, "forward_with_layers returns them whenever layers are asked for"
                teacher_layers = targets["layers"][index]
                hidden = sum(feature(projection(per_layer[:, i]), teacher_layers[:, i])
                             for i, projection in enumerate(student.hidden_projections))
                loss = loss + config.hidden_weight * hidden / len(student_layers)
            return loss

        def valid_accuracy() -> float:
            in_scope = self.y_valid >= 0
            return float((self.student_valid_logits().argmax(-1) == self.y_valid)[in_scope].float().mean())

        options = self._options(epochs=student_epochs(config, len(self.train_texts)), desc="student",
                                checkpoint=self.student_checkpoint)
        self.student_training = train(trained, groups, train_tokens, step_loss, valid_accuracy, options, device,
                                      self.ranks)
        epochs = self.student_training["epochs_run"]
        self.stages.done("distil student", len(self.train_texts) * epochs)

    def student_valid_logits(self) -> torch.Tensor:
        return predict_logits(lambda inputs: self.student(**inputs)[1], self.valid_tokens, self.device)

    @property
    def eval_set(self) -> list[Example]:
        return self.test_set or self.valid_set

    def _scoring_inputs(self, onnx: OnnxReport | None) -> ScoringInputs:
        """What side-by-side scoring needs, the teacher's outputs computed here (cached when it is frozen)."""
        teacher_emb, teacher_logits = self.teacher_outputs_for([e.text for e in self.eval_set])
        int8 = onnx.int8 if onnx is not None and onnx.served == "onnx-int8" else None
        settings = int8.settings if int8 is not None else None
        return ScoringInputs(
            config=self.config, labels=self.labels, teacher=self.teacher, eval_set=self.eval_set,
            teacher_embeddings=teacher_emb, teacher_logits=teacher_logits,
            teacher_valid_logits=self.teacher_outputs_for(self.valid_texts)[1], y_valid=self.y_valid,
            scratch_dir=self.registry_dir,
            int8_settings=Int8Settings(**settings.model_dump()) if settings is not None else None)

    def publish(self, final: bool = True) -> RunResult:
        """Write the artifact (PyTorch student, ONNX exports that pass the parity check, calibration
        fitted on the model the bot will serve, templates index, metrics, card) and make it current."""
        config, labels = self.config, self.labels
        registry = Registry(self.registry_dir)
        staged = registry.stage()
        try:
            self.student.cpu()
            self.teacher.cpu()
            self.student.encoder.save(staged / "encoder")
            save_head(self.student.head, staged / "head.safetensors")
            write_json(staged / "labels.json", labels)
            write_json(staged / "config.json", config.model_dump())
            pytorch = IntentClassifier.from_torch(SentenceEncoder.load(staged / "encoder"), self.student.head, labels,
                                                  oos_score=config.oos_score)
            served, onnx = pytorch, None
            if config.onnx != "none":  # checked on validation messages: the test set only reports
                onnx = OnnxReport.model_validate(export_checked(
                    pytorch, staged, self.valid_texts, config.onnx == "int8",
                    ParityGate(config.onnx_min_agreement, config.onnx_max_logit_diff)))
                if onnx.served is not None and onnx.served != "torch":
                    served = onnx_classifier(pytorch, staged / SERVED_FILE[onnx.served], onnx.served)
                if onnx.fallback:
                    log.info("%s", onnx.fallback)
            self.stages.done("export artifact" + (f" and ONNX ({config.onnx})" if onnx is not None else ""))

            valid_logits = torch.from_numpy(served.logits(self.valid_texts))
            served.temperature = pytorch.temperature = fit_temperature(valid_logits[self.y_valid >= 0],
                                                                       self.y_valid[self.y_valid >= 0])
            threshold = choose_oos_threshold(valid_logits, self.y_valid, served.temperature, config)
            in_scope = self.y_valid >= 0
            confidences, predicted = torch.softmax(valid_logits[in_scope] / served.temperature, -1).max(-1)
            confusions = confused(self.y_valid[in_scope].tolist(), predicted.tolist(), labels)
            per_intent = intent_thresholds(confidences, predicted, predicted == self.y_valid[in_scope], labels,
                                           config.intent_min_precision, config.intent_min_support,
                                           config.intent_threshold_max) | config.intent_thresholds
            calibration = Calibration(temperature=served.temperature, oos_threshold=threshold,
                                      oos_score=config.oos_score, clarify_margin=config.clarify_margin,
                                      intent_thresholds=per_intent)
            write_json(staged / "calibration.json", calibration.dump())
            retriever = None
            if self.book is not None:
                TemplateRetriever.build(self.book, served).save(staged)
                retriever = TemplateRetriever.load(staged)
            self.stages.done("calibrate and index templates")

            scored = score_side_by_side(self._scoring_inputs(onnx), served, pytorch, retriever, threshold)
            teacher, student = scored.teacher, scored.student
            teacher.disk_mb = disk_mb(self.teacher_dir / "model.safetensors")
            student.disk_mb_pytorch = disk_mb(staged / "encoder" / "model.safetensors", staged / "head.safetensors")
            student.disk_mb = (disk_mb(staged / SERVED_FILE[served.backend]) if served is not pytorch
                               else student.disk_mb_pytorch)
            if onnx is not None:
                student.onnx = onnx
            teacher.model, teacher.training = config.teacher, Training.model_validate(self.teacher_training)
            teacher.finetuned, teacher.trained_with_student = self.teacher_finetuned, config.mutual
            student.model, student.layers_kept = config.student, self.kept_layers
            student.warm_start, student.layer_map = HeadFit.model_validate(self.warm_start), self.layer_map
            student.training = Training.model_validate(self.student_training)
            student.temperature, student.oos_threshold = served.temperature, threshold
            self.stages.done("evaluate")
            eval_files = self.inputs.test or self.inputs.valid
            metrics = Metrics(**dict(scored),
                              test_set=EvalSet(file=", ".join(map(str, eval_files)) or "validation split",
                                               messages=len(self.eval_set)),
                              train_messages=len(self.train_set), valid_messages=len(self.valid_set),
                              device=str(self.device), ranks=self.ranks.world, stages_s=self.stages.times,
                              stages_samples_per_s=self.stages.samples_per_s,
                              languages=trained_languages(e.text for e in self.train_set), confusions=confusions)
            if self.unlabelled is not None:
                metrics.unlabelled = self.unlabelled
            if self.stages.gpu_peak_mib:
                metrics.stages_gpu_peak_mib = self.stages.gpu_peak_mib
            write_json(staged / "metrics.json", metrics.dump())
            if self.run_log.exists():
                shutil.copyfile(self.run_log, staged / "run_log.jsonl")
            write_model_card(staged / "MODEL_CARD.md", metrics, labels)
            if not final:
                write_json(staged / "manifest.json", {"format": FORMAT_VERSION, "version": "candidate",
                                                      "fingerprint": self.fingerprint})
                shutil.rmtree(self.run_dir, ignore_errors=True)
                return RunResult(staged, metrics, staged=True)
            with registry.lock(wait=True):  # one writer at a time: redistill, `bot model use`, other runs
                registry.clean_staging()  # what killed runs left; live runs' staging folders stay
                artifact = registry.publish(staged, self.fingerprint)
        except BaseException:
            registry.discard(staged)
            raise
        shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("published %s at %s", artifact.version, artifact.path)
        return RunResult(artifact.path, metrics)
