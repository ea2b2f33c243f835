# syntax=docker/dockerfile:1.7
# TextNLP generation worker on GPU hosts (ECS service textnlp-generation, g4dn):
# `textnlp worker --queues generation,batch` with the Hugging Face extras and llama.cpp built for CUDA.
# vLLM is not installed here: it pins its own torch, and the platform reaches vLLM servers through
# the OpenAI-compatible backend instead.
# Build from the repository root: docker build -f docker/generation.Dockerfile -t textnlp-generation .

ARG CUDA_VERSION=12.1.1
ARG UBUNTU_VERSION=22.04

# --- build: CUDA toolkit + compiler, wheels into a venv ---
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# versions come with the pinned base image; apt pins break on mirror updates
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       python3.11 python3.11-venv python3.11-dev build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# llama.cpp with CUDA kernels and the portable AVX2 CPU kernels (the Makefile's
# LLAMA_KERNELS=avx2; a native build may pick AMX, which stops with "Illegal instruction" on
# hosts that advertise it); torch from the CUDA 12.1 wheel index. validation: a recipe job's
# filters (near-duplicates, language) run here.
ENV CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF" FORCE_CMAKE=1
# installs this project; pyproject.toml states its dependency ranges
# hadolint ignore=DL3013
RUN pip install --extra-index-url https://download.pytorch.org/whl/cu121 ".[embedded,hf,validation,api,aws]"

# --- runtime: CUDA runtime libraries only, unprivileged ---
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION} AS runtime
ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TEXTNLP_PROFILE=aws \
    TEXTNLP_HOME=/tmp/textnlp \
    XDG_CACHE_HOME=/tmp/cache \
    HF_HOME=/tmp/hf \
    MPLCONFIGDIR=/tmp/matplotlib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# versions come with the pinned base image; apt pins break on mirror updates
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 libgomp1 \
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
# A worker serves no HTTP: healthy while its `textnlp worker` process runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import pathlib, sys; sys.exit(0 if any(b'worker' in p.read_bytes() for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')) else 1)"]
CMD ["textnlp", "worker", "--queues", "generation,batch"]
