# syntax=docker/dockerfile:1.7
# TextNLP validation worker (ECS service textnlp-validation, CPU):
# `textnlp worker --queues validation` with the validation extras (CPU torch).
# Build from the repository root: docker build -f docker/validation.Dockerfile -t textnlp-validation .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# versions come with the pinned base image; apt pins break on mirror updates
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# CPU-only torch keeps the image gigabytes smaller than the default CUDA wheels.
# installs this project; pyproject.toml states its dependency ranges
# hadolint ignore=DL3013
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[validation,api,aws]"

# --- runtime ---
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TEXTNLP_PROFILE=aws \
    TEXTNLP_HOME=/tmp/textnlp \
    XDG_CACHE_HOME=/tmp/cache \
    HF_HOME=/tmp/hf \
    MPLCONFIGDIR=/tmp/matplotlib
# versions come with the pinned base image; apt pins break on mirror updates
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 textnlp \
    && useradd --system --uid 10001 --gid textnlp --home-dir /home/textnlp --create-home textnlp \
    && chmod 1777 /tmp \
    && install -d -m 0755 -o 10001 -g 10001 /tmp/textnlp /tmp/cache /tmp/hf /tmp/matplotlib
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/textnlp
# The root is read-only on ECS; /tmp is the task's scratch volume. A fresh ECS volume is root's
# 0755 unless the image declares it, in which case it starts as a copy of the image's /tmp:
# world-writable (sticky), with the app's directories owned by its user.
VOLUME ["/tmp"]
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import pathlib, sys; sys.exit(0 if any(b'worker' in p.read_bytes() for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')) else 1)"]
CMD ["textnlp", "worker", "--queues", "validation"]
