"""The distillation run, stage by stage: data → teacher → teacher outputs (cached) → student →
distil → calibrate → evaluate → artifact → publish."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

from bot.artifact import Registry, write_json
from bot.encoder import SentenceEncoder
from bot.nlu import IntentClassifier, save_head
from bot.retriever import TemplateRetriever
from distill import weights
from distill.cache import EmbeddingCache
from distill.calibration import choose_threshold, fit_temperature, tune_threshold
from distill.card import write_model_card
from distill.config import DistillConfig
from distill.data import Example, check_known_intents, load_examples, load_messages, load_templates
from distill.evaluate import (
    agreement,
    classification_metrics,
    count_params,
    disk_mb,
    expected_calibration_error,
    oos_metrics,
    paired_latency,
    retrieval_metrics,
    throughput,
)
from distill.linear_probe import fit_logistic_head, fit_projection
from distill.losses import (
    UNLABELLED,
    EmbeddingCosineLoss,
    EmbeddingMSELoss,
    SoftTargetKDLoss,
    SupervisedContrastiveLoss,
    linear_schedule,
)
from distill.run_inputs import RunInputs, run_fingerprint, up_to_date
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


@dataclass
class RunResult:
    artifact: Path
    metrics: dict
    up_to_date: bool = False


@dataclass
class _Stages:
    """Wall time of each stage, printed as it goes."""

    times: dict = field(default_factory=dict)

    def done(self, name: str, start: float) -> None:
        self.times[name] = round(time.perf_counter() - start, 2)
        print(f"[distill] {name}: {self.times[name]:.1f}s", flush=True)


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    labels = [e.intent for e in examples]
    counts = {label: labels.count(label) for label in set(labels)}
    n_valid = max(1, round(fraction * len(examples)))
    stratify = labels if min(counts.values()) >= 2 and n_valid >= len(counts) else None
    return train_test_split(examples, test_size=n_valid, random_state=seed, stratify=stratify)


def _load_data(inputs: RunInputs, config: DistillConfig):
    """Examples of every split, the intents (out-of-scope is none), and the templates."""
    train = [e for path in inputs.train for e in load_examples(path, inputs.label_column)]
    labels = sorted({e.intent for e in train} - {config.oos_label})
    known = set(labels) | {config.oos_label}
    if inputs.valid:
        valid = _load_checked(inputs.valid, inputs.label_column, known)
    else:
        train, valid = _split(train, config.valid_fraction, config.seed)
    test = _load_checked(inputs.test, inputs.label_column, known) if inputs.test else None
    book = load_templates(inputs.templates, set(labels)) if inputs.templates else None
    return train, valid, test, labels, book


def _load_checked(paths: list[Path], label_column: str | None, known: set[str]) -> list[Example]:
    examples = []
    for path in paths:
        loaded = load_examples(path, label_column)
        check_known_intents(path, loaded, known)
        examples += loaded
    return examples


def _warm_start(student: Student, train_texts, y_train, valid_texts, y_valid, teacher_emb, config, device) -> dict:
    """Start the head as a logistic regression on the student's own frozen embeddings and the projection
    as their least-squares map to the teacher's, so distillation starts from a working model."""
    if not config.warm_start:
        return {}
    encoder = student.encoder.to(device)
    train_emb = encoder.encode(train_texts, progress="student embeddings (warm start)")
    valid_emb = encoder.encode(valid_texts)
    fit_projection(student.projection, train_emb, teacher_emb)
    return fit_logistic_head(student.head, train_emb, y_train, valid_emb, y_valid, config.teacher_head_c)


def _threshold(logits: torch.Tensor, labels: torch.Tensor, temperature: float, config: DistillConfig) -> float:
    """The out-of-scope threshold: fixed, tuned on out-of-scope validation examples, or a quantile."""
    confidence, predicted = F.softmax(logits / temperature, dim=-1).max(-1)
    correct, is_oos = predicted == labels, labels < 0
    if config.oos_threshold is not None:
        return config.oos_threshold
    if is_oos.any():
        return tune_threshold(confidence, correct, is_oos, config.oos_max_accuracy_drop)
    return choose_threshold(confidence, correct, config.oos_quantile)


def _teacher_layer_states(encoder: SentenceEncoder, texts: list[str], layers: tuple[int, ...],
                          cache: EmbeddingCache | None) -> torch.Tensor:
    """Mean-pooled states of the teacher's mapped layers, flattened per text (cached for a frozen teacher)."""
    def compute(batch: list[str]) -> torch.Tensor:
        return encoder.encode(batch, progress="teacher hidden states", layers=layers)

    return cache.get(texts, compute)[0] if cache is not None else compute(texts)


def _teacher_outputs(teacher: Teacher, texts: list[str], device, max_length: int):
    tokens = TokenizedTexts(teacher.encoder.tokenizer, texts, max_length)
    both = predict_logits(lambda inputs: torch.cat(teacher(**inputs), dim=-1), tokens, device)
    return both[:, :teacher.encoder.dim], both[:, teacher.encoder.dim:]


def run(config: DistillConfig, inputs: RunInputs, registry_dir: Path, cache_dir: Path | None = None,
        force: bool = False, resume: bool = False) -> RunResult:
    """Distil, evaluate and publish. `resume` carries on from the checkpoints of an interrupted run of the
    same config and data (else they are discarded)."""
    cache_dir = cache_dir or weights.default_cache_dir()
    registry = Registry(registry_dir)
    fingerprint = run_fingerprint(config, inputs)
    current = up_to_date(registry_dir, fingerprint)
    if current is not None and not force:
        print(f"[distill] {current.version} was distilled from this exact data and config; nothing to do "
              "(--force to redo)", flush=True)
        return RunResult(current.path, current.metrics(), up_to_date=True)

    seed_everything(config.seed)
    device = resolve_device(config.device)
    stages = _Stages()
    start = time.perf_counter()
    train_set, valid_set, test_set, labels, book = _load_data(inputs, config)
    label_index = {name: i for i, name in enumerate(labels)}  # out of scope: -1
    y_train = torch.tensor([label_index.get(e.intent, -1) for e in train_set])
    y_valid = torch.tensor([label_index.get(e.intent, -1) for e in valid_set])
    train_texts, valid_texts = [e.text for e in train_set], [e.text for e in valid_set]
    stages.done("load data", start)

    start = time.perf_counter()
    teacher_dir = weights.resolve_model(config.teacher, cache_dir)
    student_dir = weights.resolve_model(config.student, cache_dir)
    teacher = Teacher(SentenceEncoder.load(teacher_dir, config.max_length), len(labels))
    stages.done("resolve and verify weights", start)

    start = time.perf_counter()
    teacher_finetuned = config.teacher_finetune == "always" or (
        config.teacher_finetune == "auto" and device.type == "cuda")
    run_dir = Path(registry_dir) / ".runs" / fingerprint  # checkpoints and run log until published
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_log = run_dir / "run_log.jsonl"
    options = dict(batch_size=config.batch_size, warmup_ratio=config.warmup_ratio,
                   weight_decay=config.weight_decay, patience=config.patience, seed=config.seed,
                   log_path=run_log)
    if teacher_finetuned:
        teacher.to(device)
        teacher_training = finetune(teacher, train_texts, y_train, valid_texts, y_valid,
                                    TrainOptions(epochs=config.teacher_epochs, desc="teacher",
                                                 checkpoint=run_dir / "teacher.ckpt", **options),
                                    config.teacher_lr, config.head_lr, config.max_length, device)
        t_train_emb, t_train_logits = _teacher_outputs(teacher, train_texts, device, config.max_length)

        def teacher_outputs_for(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            teacher.to(device)
            return _teacher_outputs(teacher, texts, device, config.max_length)
    else:
        embedding_cache = EmbeddingCache(cache_dir / "teacher",
                                         f"{weights.fingerprint(config.teacher, teacher_dir)}-{config.max_length}")
        embed = lambda texts: teacher.encoder.to(device).encode(texts, progress="teacher embeddings")  # noqa: E731
        t_train_emb, computed = embedding_cache.get(train_texts, embed)
        t_valid_emb, computed_valid = embedding_cache.get(valid_texts, embed)
        print(f"[distill] teacher embeddings: {computed + computed_valid} computed, "
              f"{len(train_texts) + len(valid_texts) - computed - computed_valid} from cache", flush=True)
        teacher_training = fit_head(teacher, t_train_emb, y_train, t_valid_emb, y_valid, config.teacher_head_c)
        with torch.no_grad():
            t_train_logits = teacher.head(t_train_emb)

        def teacher_outputs_for(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            embeddings = embedding_cache.get(texts, embed)[0]
            with torch.no_grad():
                return embeddings, teacher.head.cpu()(embeddings)
    stages.done("teacher", start)

    unlabelled = {}
    if inputs.unlabelled:
        start = time.perf_counter()
        held_out = set(train_texts) | set(valid_texts) | {e.text for e in test_set or []}
        messages = [m for m in dict.fromkeys(m for path in inputs.unlabelled for m in load_messages(path))
                    if m not in held_out]
        if not messages:
            raise ValueError("the unlabelled files hold no message that is not already in the labelled data")
        u_emb, u_logits = teacher_outputs_for(messages)
        keep = F.softmax(u_logits, dim=-1).max(-1).values >= config.unlabelled_min_confidence
        train_texts = train_texts + [m for m, k in zip(messages, keep.tolist()) if k]
        y_train = torch.cat([y_train, torch.full((int(keep.sum()),), UNLABELLED)])
        t_train_emb, t_train_logits = torch.cat([t_train_emb, u_emb[keep]]), torch.cat([t_train_logits, u_logits[keep]])
        unlabelled = {"messages": len(messages), "used": int(keep.sum()),
                      "min_confidence": config.unlabelled_min_confidence}
        stages.done(f"label {len(messages)} unlabelled messages with the teacher", start)

    start = time.perf_counter()
    student_encoder = SentenceEncoder.load(student_dir, config.max_length)
    kept_layers = cut_layers(student_encoder, config.student_layers)
    layer_map = t_train_layers = None
    if config.hidden_weight:
        teacher_depth = teacher.encoder.transformer.config.num_hidden_layers
        layer_map = config.layer_map or default_layer_map(len(kept_layers), teacher_depth)
        if any(not 0 <= s < len(kept_layers) or not 0 <= t < teacher_depth for s, t in layer_map.items()):
            raise ValueError(f"layer_map {layer_map} is out of range: the student has {len(kept_layers)} layers, "
                             f"the teacher {teacher_depth}")
        layer_cache = None if teacher_finetuned else EmbeddingCache(
            cache_dir / "teacher", f"{weights.fingerprint(config.teacher, teacher_dir)}-{config.max_length}-"
                                   f"layers-{'_'.join(map(str, layer_map.values()))}")
        t_train_layers = _teacher_layer_states(teacher.encoder.to(device), train_texts, tuple(layer_map.values()),
                                               layer_cache)
    student = Student(student_encoder, len(labels), teacher.encoder.dim, layer_map)
    student.encoder.transformer.get_input_embeddings().weight.requires_grad_(not config.freeze_embeddings)
    student_checkpoint = run_dir / "student.ckpt"
    warm_start = {} if student_checkpoint.exists() else _warm_start(student, train_texts, y_train, valid_texts,
                                                                     y_valid, t_train_emb, config, device)
    student.to(device)
    targets = {"y": y_train.to(device), "logits": t_train_logits.to(device), "emb": t_train_emb.to(device)}
    if layer_map:
        targets["layers"] = t_train_layers.view(len(train_texts), len(layer_map), -1).to(device)
    student_layers = tuple(student.layer_map)
    kd = SoftTargetKDLoss(config.temperature, config.alpha)
    feature = EmbeddingCosineLoss() if config.feature_loss == "cosine" else EmbeddingMSELoss()
    contrastive = SupervisedContrastiveLoss(config.retrieval_temperature)
    train_tokens = TokenizedTexts(student.encoder.tokenizer, train_texts, config.max_length)
    valid_tokens = TokenizedTexts(student.encoder.tokenizer, valid_texts, config.max_length)

    trained = nn.ModuleDict({"student": student})
    groups = [{"params": [p for p in student.encoder.parameters() if p.requires_grad], "lr": config.lr},
              {"params": [*student.head.parameters(), *student.projection.parameters(),
                          *student.hidden_projections.parameters()], "lr": config.head_lr}]
    if config.mutual:  # the teacher's trainable part joins the same optimiser and checkpoint
        trained["teacher"] = teacher.to(device) if teacher_finetuned else teacher.head.to(device)
        groups.append({"params": list(teacher.head.parameters()), "lr": config.head_lr})
        if teacher_finetuned:
            groups.append({"params": list(teacher.encoder.parameters()), "lr": config.teacher_lr})
            teacher_tokens = TokenizedTexts(teacher.encoder.tokenizer, train_texts, config.max_length)
    teacher_kd = SoftTargetKDLoss(config.temperature, config.teacher_alpha)

    def live_teacher_logits(index, indices) -> torch.Tensor:
        if not config.mutual:
            return targets["logits"][index]
        if teacher_finetuned:
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
            teacher_layers = targets["layers"][index]
            hidden = sum(feature(projection(per_layer[:, i]), teacher_layers[:, i])
                         for i, projection in enumerate(student.hidden_projections))
            loss = loss + config.hidden_weight * hidden / len(student_layers)
        return loss

    def student_valid_logits():
        return predict_logits(lambda inputs: student(**inputs)[1], valid_tokens, device)

    def valid_accuracy() -> float:
        in_scope = y_valid >= 0
        return float((student_valid_logits().argmax(-1) == y_valid)[in_scope].float().mean())

    student_training = train(trained, groups, train_tokens, step_loss, valid_accuracy,
                             TrainOptions(epochs=config.epochs, desc="student", checkpoint=student_checkpoint,
                                          **options), device)
    stages.done("distil student", start)

    start = time.perf_counter()
    valid_logits = student_valid_logits()
    temperature = fit_temperature(valid_logits[y_valid >= 0], y_valid[y_valid >= 0])
    threshold = _threshold(valid_logits, y_valid, temperature, config)
    stages.done("calibrate", start)

    start = time.perf_counter()
    staged = registry.stage()
    try:
        student.cpu()
        teacher.cpu()
        student.encoder.save(staged / "encoder")
        save_head(student.head, staged / "head.safetensors")
        write_json(staged / "labels.json", labels)
        write_json(staged / "calibration.json", {"temperature": temperature, "oos_threshold": threshold,
                                                 "clarify_margin": config.clarify_margin})
        write_json(staged / "config.json", config.model_dump())
        served = IntentClassifier(SentenceEncoder.load(staged / "encoder", config.max_length),
                                  student.head, labels, temperature)
        if book is not None:
            TemplateRetriever.build(book, served.encoder).save(staged)
        stages.done("export artifact", start)

        start = time.perf_counter()
        eval_set, eval_files = (test_set, inputs.test) if test_set else (valid_set, inputs.valid)
        retriever = TemplateRetriever.load(staged) if book is not None else None
        metrics = _evaluate(teacher, teacher_outputs_for, served, retriever, eval_set, (valid_texts, y_valid),
                            labels, config, threshold)
        metrics["teacher"]["disk_mb"] = disk_mb(teacher_dir / "model.safetensors")
        metrics["student"]["disk_mb"] = disk_mb(staged / "encoder" / "model.safetensors",
                                                staged / "head.safetensors")
        metrics["test_set"] = {"file": ", ".join(map(str, eval_files)) or "validation split",
                               "messages": len(eval_set)}
        metrics["teacher"].update(model=config.teacher, training=teacher_training,
                                  finetuned=teacher_finetuned, trained_with_student=config.mutual)
        metrics["student"].update(model=config.student, layers_kept=kept_layers, warm_start=warm_start,
                                  layer_map=layer_map,
                                  training=student_training,
                                  temperature=temperature, oos_threshold=threshold)
        metrics["train_messages"], metrics["valid_messages"] = len(train_set), len(valid_set)
        if unlabelled:
            metrics["unlabelled"] = unlabelled
        metrics["device"] = str(device)
        stages.done("evaluate", start)
        metrics["stages_s"] = stages.times
        write_json(staged / "metrics.json", metrics)
        if run_log.exists():
            shutil.copyfile(run_log, staged / "run_log.jsonl")
        write_model_card(staged / "MODEL_CARD.md", metrics, labels)
        artifact = registry.publish(staged, fingerprint)
    except BaseException:
        registry.discard(staged)
        raise
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"[distill] published {artifact.version} at {artifact.path}", flush=True)
    return RunResult(artifact.path, metrics)


def _evaluate(teacher: Teacher, teacher_outputs_for, served: IntentClassifier, retriever, examples: list[Example],
              valid: tuple[list[str], torch.Tensor], labels: list[str], config: DistillConfig,
              threshold: float) -> dict:
    """Teacher and student side by side on the same messages: quality, calibration, out-of-scope detection,
    retrieval, speed (latency one message at a time on the CPU, timed in turns; throughput batched)."""
    texts = [e.text for e in examples]
    y_gold = torch.tensor([labels.index(e.intent) if e.intent in labels else -1 for e in examples])
    in_scope = y_gold >= 0
    gold = [e.intent for e in examples if e.intent in labels]
    teacher_emb, teacher_logits = teacher_outputs_for(texts)
    valid_texts, y_valid = valid
    teacher_valid_logits = teacher_outputs_for(valid_texts)[1]
    teacher_temperature = fit_temperature(teacher_valid_logits[y_valid >= 0], y_valid[y_valid >= 0])
    teacher.cpu()
    student_emb = served.encoder.encode(texts)
    with torch.inference_mode():
        student_logits = served.head(student_emb)
    teacher_pred = [labels[i] for i in teacher_logits[in_scope].argmax(-1).tolist()]
    student_pred = [labels[i] for i in student_logits[in_scope].argmax(-1).tolist()]

    @torch.inference_mode()
    def teacher_predict(text: str) -> str:
        embedding = teacher.encoder(**teacher.encoder.tokenize([text]))
        return labels[int(teacher.head(embedding).argmax())]

    @torch.inference_mode()
    def teacher_batch(batch: list[str]) -> torch.Tensor:
        return teacher.head(teacher.encoder.encode(batch))

    latency = paired_latency({"teacher": teacher_predict, "student": served.predict_intent},
                             texts[:config.latency_messages])
    sample = texts[:512]
    teacher_metrics = {**classification_metrics(gold, teacher_pred), "params": count_params(teacher.encoder),
                       "latency_ms": latency["teacher"], "throughput_msgs_s": throughput(teacher_batch, sample),
                       "temperature": teacher_temperature,
                       "ece": expected_calibration_error(teacher_logits[in_scope], y_gold[in_scope],
                                                         teacher_temperature)}
    student_metrics = {**classification_metrics(gold, student_pred), "params": count_params(served.encoder),
                       "latency_ms": latency["student"], "throughput_msgs_s": throughput(served.logits, sample),
                       "agreement": agreement(student_pred, teacher_pred),
                       "ece": expected_calibration_error(student_logits[in_scope], y_gold[in_scope],
                                                         served.temperature)}
    if not in_scope.all():
        teacher_threshold = _threshold(teacher_valid_logits, y_valid, teacher_temperature, config)
        for metrics, logits, temperature, cut in ((teacher_metrics, teacher_logits, teacher_temperature,
                                                   teacher_threshold),
                                                  (student_metrics, student_logits, served.temperature, threshold)):
            confidence, predicted = F.softmax(logits / temperature, dim=-1).max(-1)
            metrics["oos"] = oos_metrics(confidence, predicted == y_gold, ~in_scope, cut)
    if retriever is not None:
        teacher_retriever = TemplateRetriever.build(retriever.book, teacher.encoder)
        teacher_metrics["retrieval"] = retrieval_metrics(teacher_retriever, teacher_emb[in_scope], gold)
        student_metrics["retrieval"] = retrieval_metrics(retriever, student_emb[in_scope], gold)
    return {
        "teacher": teacher_metrics,
        "student": student_metrics,
        "retention": student_metrics["accuracy"] / teacher_metrics["accuracy"],
        "speedup_p50": latency["teacher"]["p50"] / latency["student"]["p50"],
        "latency_threads": torch.get_num_threads(),
    }


def evaluate_artifact(model_dir: Path, test_file: Path, label_column: str | None = None,
                      latency_messages: int = 200) -> dict:
    """`distill evaluate`: the served student of an artifact (or a registry's current) on a labelled file.
    Examples labelled with the artifact's out-of-scope label are scored against its threshold."""
    from bot.artifact import read_json, resolve

    artifact = resolve(model_dir)
    served = IntentClassifier.from_artifact(artifact)
    oos_label = read_json(artifact.path / "config.json").get("oos_label", "oos")
    examples = load_examples(test_file, label_column)
    texts = [e.text for e in examples]
    is_oos = torch.tensor([e.intent == oos_label for e in examples])
    gold = [e.intent for e in examples if e.intent != oos_label]
    logits = served.logits(texts)
    predicted = [served.labels[i] for i in logits[~is_oos].argmax(-1).tolist()]
    latency = paired_latency({"student": served.predict_intent}, texts[:latency_messages])["student"]
    student = {**classification_metrics(gold, predicted), "params": count_params(served.encoder),
               "latency_ms": latency}
    if is_oos.any():
        confidence, index = F.softmax(logits / served.temperature, dim=-1).max(-1)
        correct = torch.tensor([not oos and served.labels[i] == e.intent
                                for i, e, oos in zip(index.tolist(), examples, is_oos.tolist())])
        student["oos"] = oos_metrics(confidence, correct, is_oos, artifact.calibration().oos_threshold)
    return {
        "model_version": artifact.version,
        "test_set": {"file": str(test_file), "messages": len(examples),
                     "intents_unknown_to_model": sorted({g for g in gold if g not in served.labels})},
        "student": student,
    }
