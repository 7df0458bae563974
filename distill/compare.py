"""Two runs' metrics side by side (`python -m distill compare RUN_A RUN_B`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from bot.model.reports import Evaluation, Metrics

SKIPPED = {"per_intent", "history", "training", "warm_start", "stages_s", "test_set"}
_REPORT: TypeAdapter[Metrics | Evaluation] = TypeAdapter(Metrics | Evaluation)


def load_metrics(path: Path) -> Metrics | Evaluation:
    """A metrics.json file (or what `distill evaluate --out` wrote), an artifact folder, or a registry (its
    current version)."""
    path = Path(path)
    if path.is_file():
        return _REPORT.validate_json(path.read_text())
    from bot.model.artifact import ArtifactError, resolve

    artifact = resolve(path)
    metrics = artifact.metrics()
    if metrics is None:
        raise ArtifactError(f"{artifact.path}: no metrics.json")
    return metrics


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Numeric figures as dotted keys (`student.latency_ms.p50`), leaving out reports and histories."""
    flat = {}
    for key, value in metrics.items():
        if key in SKIPPED:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def comparison_table(a: Metrics | Evaluation, b: Metrics | Evaluation, name_a: str, name_b: str) -> str:
    flat_a, flat_b = flatten(a.dump()), flatten(b.dump())
    keys = sorted(set(flat_a) | set(flat_b))
    width = max([len(k) for k in keys] + [6])
    lines = [f"{'metric':{width}}  {name_a[-18:]:>18}  {name_b[-18:]:>18}  {'B - A':>12}"]
    for key in keys:
        va, vb = flat_a.get(key), flat_b.get(key)
        delta = _number(vb - va, 12, signed=True) if va is not None and vb is not None else " " * 12
        lines.append(f"{key:{width}}  {_number(va, 18)}  {_number(vb, 18)}  {delta}")
    return "\n".join(lines)


def _number(value: float | None, width: int, signed: bool = False) -> str:
    if value is None:
        return f"{'-':>{width}}"
    sign = "+" if signed else ""
    if value.is_integer() and abs(value) >= 1000:
        return f"{value:{sign}{width},.0f}"
    return f"{value:{sign}{width}.4f}"
