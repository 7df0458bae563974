"""The model the bot serves: one artifact's classifier, retriever and policy settings, loaded together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.model.artifact import Artifact, ArtifactError, resolve
from bot.model.language import trained_languages
from bot.model.nlu import Backend, IntentClassifier
from bot.model.reports import Metrics
from bot.model.retriever import TemplateRetriever


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's settings that come with a model (its calibration); the policy itself is in
    bot.conversation.policy."""

    threshold: float
    """Below this out-of-scope score (calibrated confidence or energy, as the artifact says) a message
    counts as not understood."""
    clarify_margin: float
    """When the top two intents are closer than this, ask which one the visitor means."""
    handoff_intent: str = "contact_human"
    intent_thresholds: dict[str, float] = field(default_factory=dict)
    """Per intent, a confidence below which that intent is not trusted either (from the artifact)."""


@dataclass(frozen=True)
class ServedModel:
    version: str
    classifier: IntentClassifier
    retriever: TemplateRetriever
    policy: PolicyConfig
    metrics: Metrics | None
    """None for a version published without metrics.json."""
    languages: frozenset[str] = frozenset()
    """The languages it was trained on: a message confidently in another is handed to a person at once."""

    @classmethod
    def load(cls, path: str | Path, backend: Backend = "auto", threads: int = 0) -> ServedModel:
        """`path` is an artifact or a registry (its current version); `backend` as in IntentClassifier;
        `threads` for the ONNX model (0: one per core)."""
        artifact: Artifact = resolve(path)
        if not artifact.has_templates:
            raise ArtifactError(f"{artifact.path}: no answer templates; distill with --templates to serve it")
        calibration = artifact.calibration()
        metrics = artifact.metrics()
        retriever = TemplateRetriever.load(artifact.path)
        # Versions made before the training languages were recorded: the languages of their answers' examples.
        languages = (metrics.languages if metrics is not None and metrics.languages else
                     trained_languages(q for t in retriever.book.templates for q in t.examples))
        return cls(
            version=artifact.version,
            classifier=IntentClassifier.from_artifact(artifact, backend, spin=False, threads=threads),
            retriever=retriever,
            policy=PolicyConfig(threshold=calibration.oos_threshold, clarify_margin=calibration.clarify_margin,
                                intent_thresholds=calibration.intent_thresholds),
            metrics=metrics,
            languages=frozenset(languages),
        )
