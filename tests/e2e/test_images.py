"""The container images, as far as this machine can check them: Docker does not run here, so the serving
image's Dockerfile is followed step by step into a folder (its COPY and RUN steps, with the image's paths
moved under that folder), and the result serves the real student with no PyTorch in it. (The pinned
requirement files: tests/unit/test_requirements.py.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.constants import ROOT
from tests.helpers.servers import free_port

DOCKER = ROOT / "deploy" / "docker"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in dockerfile.read_text().splitlines()
                                               if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip()]


class ImageFolder:
    """The image's file system paths (/opt, /app, /build) moved under `root`."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, text: str) -> str:
        return re.sub(r"(?<![\w./])/(opt|app|build)\b", lambda m: f"{self.root}/{m[1]}", text)


@pytest.fixture(scope="module")
def serve_image(tmp_path_factory) -> tuple[ImageFolder, dict[str, str], dict[str, str]]:
    """The serving image built by following its Dockerfile: its folder, its environment, and its
    instructions that cannot be followed here (USER, HEALTHCHECK, CMD, useradd) by name."""
    image = ImageFolder(tmp_path_factory.mktemp("serve-image"))
    env = {**os.environ, "PATH": f"{Path(sys._base_executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    rest = {}
    for instruction, args in instructions(DOCKER / "serve.Dockerfile"):
        if instruction == "ENV":
            for name, value in (item.split("=", 1) for item in shlex.split(args)):
                env[name] = image.path(value).replace("$PATH", env["PATH"])
        elif instruction == "COPY" and not args.startswith("--from"):  # --from=build: the same folder here
            source, target = shlex.split(args)
            target = Path(image.path(target))
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-r", str(ROOT / source), str(target)], check=True)
        elif instruction == "RUN" and not args.startswith("useradd"):  # creating a user needs root
            env.pop("PIP_NO_CACHE_DIR", None)  # the only change: keep pip's cache, to spare the download
            done = subprocess.run(["bash", "-c", image.path(args)], env=env, capture_output=True, text=True,
                                  timeout=900)
            assert done.returncode == 0, f"RUN {args}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        elif instruction not in ("FROM", "ARG", "COPY", "RUN", "EXPOSE"):
            rest[instruction] = args
        elif instruction == "RUN":
            rest["useradd"] = args
    return image, env, rest


def test_the_serving_image_runs_as_a_user_with_a_healthcheck_and_serves_by_default(serve_image):
    _, env, rest = serve_image
    assert rest["USER"] == "10001" and "--uid 10001" in rest["useradd"]
    assert "/health" in rest["HEALTHCHECK"] and rest["WORKDIR"] == "/app"
    assert rest["CMD"] == '["python", "-m", "bot", "serve"]'
    assert env["DISTILBOT_BACKEND"] == "auto"  # int8 ONNX, else fp32 ONNX; an artifact with neither is refused


def test_the_serving_image_has_no_training_dependencies(serve_image):
    image, env, _ = serve_image
    python = f"{image.root}/opt/venv/bin/python"
    check = subprocess.run([python, "-m", "pip", "check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    for module in ("torch", "sentence_transformers", "accelerate", "sklearn", "distill"):
        found = subprocess.run([python, "-c", f"import {module}"], cwd=image.path("/app"), env=env,
                               capture_output=True, text=True)
        assert found.returncode != 0 and "ModuleNotFoundError" in found.stderr, module


def test_the_serving_image_serves_the_int8_student(serve_image, demo_registry, tmp_path):
    """What the container runs: its CMD with its environment, the registry mounted at DISTILBOT_REGISTRY;
    its HEALTHCHECK passes; a chat message is answered."""
    image, env, rest = serve_image
    port = free_port()
    env = {**env, "DISTILBOT_REGISTRY": str(demo_registry), "DISTILBOT_PORT": str(port),
           "DISTILBOT_DB_URL": f"sqlite:///{tmp_path / 'bot.db'}", "DISTILBOT_RATE_LIMIT": "off"}
    healthcheck = rest["HEALTHCHECK"].split(" CMD ", 1)[1]
    server = subprocess.Popen(["python", "-m", "bot", "serve"], cwd=image.path("/app"), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(["bash", "-c", healthcheck], env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, server.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the healthcheck did not pass in 120 s"
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{url}/health").json()
        assert health["backend"] == "onnx-int8" and health["model_version"].startswith("v")
        reply = httpx.post(f"{url}/api/chat", json={"message": "how much does shipping cost?"}).json()
        assert reply["intent"]["name"] == "shipping_cost", reply
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The PyTorch backend cannot run here, and says so rather than failing on an import.
    torch_backend = subprocess.run(["python", "-m", "bot", "serve"], cwd=image.path("/app"), capture_output=True,
                                   text=True, timeout=120, env={**env, "DISTILBOT_BACKEND": "torch"})
    assert torch_backend.returncode != 0
    assert "serving it in PyTorch needs PyTorch" in torch_backend.stdout + torch_backend.stderr
