# syntax=docker/dockerfile:1
# The API server: CPU only, slim, non-root. It serves the int8 ONNX student through onnxruntime and has no
# PyTorch and no training code: only what requirements-serve.txt pins (hash-checked) and the bot package.
# Build from the repository root:
#   docker build -f deploy/docker/serve.Dockerfile -t distilbot-serve:0.1.0 .
# The model registry is a volume at /registry (compose and Kubernetes mount the shared one, read-only).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/docker/requirements-serve.txt /build/requirements-serve.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /build/requirements-serve.txt
COPY bot /app/bot
RUN /opt/venv/bin/python -m compileall -q /app/bot

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin distilbot
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 \
    DISTILBOT_REGISTRY=/registry DISTILBOT_BACKEND=auto DISTILBOT_HOST=0.0.0.0 DISTILBOT_PORT=8000
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('DISTILBOT_PORT', '8000'), timeout=2)"
CMD ["python", "-m", "bot", "serve"]
