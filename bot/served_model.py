"""The model the bot serves: one artifact's classifier, retriever and policy settings, loaded together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.artifact import Artifact, ArtifactError, resolve
from bot.nlu import Backend, IntentClassifier
from bot.policy import PolicyConfig
from bot.retriever import TemplateRetriever


@dataclass(frozen=True)
class ServedModel:
    version: str
    classifier: IntentClassifier
    retriever: TemplateRetriever
    policy: PolicyConfig
    metrics: dict

    @classmethod
    def load(cls, path: str | Path, backend: Backend = "auto", threads: int = 0) -> ServedModel:
        """`path` is an artifact or a registry (its current version); `backend` as in IntentClassifier;
        `threads` for the ONNX model (0: one per core)."""
        artifact: Artifact = resolve(path)
        if not artifact.has_templates:
            raise ArtifactError(f"{artifact.path}: no answer templates; distill with --templates to serve it")
        calibration = artifact.calibration()
        return cls(
            version=artifact.version,
            classifier=IntentClassifier.from_artifact(artifact, backend, spin=False, threads=threads),
            retriever=TemplateRetriever.load(artifact.path),
            policy=PolicyConfig(threshold=calibration.oos_threshold, clarify_margin=calibration.clarify_margin,
                                intent_thresholds=calibration.intent_thresholds),
            metrics=artifact.metrics(),
        )
