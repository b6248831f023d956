# castkeep images. Two targets:
#   cpu  python slim + the CPU build of torch (setup job, cpu worker; the `classical` engine)
#   gpu  an NVIDIA CUDA runtime image + a CUDA build of torch (gpu worker; the diffusers engines)
#
#   docker build --target cpu -t castkeep:cpu .
#   docker build --target gpu -t castkeep:gpu .
#
# Both run as the unprivileged user `castkeep` (uid 10001) with CASTKEEP_HOME=/var/lib/castkeep and
# PREFECT_HOME inside it (the Prefect worker writes nothing under ~/.prefect).
# torch is installed from the PyTorch index first, so the pin in pyproject.toml is already met and
# pip does not pull another build. No weights are baked in: mount them and point the
# CASTKEEP_ENGINES__* / CASTKEEP_FACES__* settings at them.

ARG PYTHON_IMAGE=python:3.12-slim
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04
ARG TORCH_VERSION=2.13.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu130

# --- cpu --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
ARG TORCH_VERSION
ARG TORCH_CPU_INDEX
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CASTKEEP_HOME=/var/lib/castkeep \
    PREFECT_HOME=/var/lib/castkeep/prefect
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --index-url ${TORCH_CPU_INDEX} "torch==${TORCH_VERSION}"
WORKDIR /app
COPY . /app
RUN pip install -e /app \
    && useradd --create-home --uid 10001 castkeep \
    && mkdir -p /var/lib/castkeep && chown castkeep /var/lib/castkeep
USER castkeep
CMD ["castkeep", "status"]

# --- gpu --------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ARG TORCH_VERSION
ARG TORCH_CUDA_INDEX
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CASTKEEP_HOME=/var/lib/castkeep \
    PREFECT_HOME=/var/lib/castkeep/prefect \
    VIRTUAL_ENV=/opt/castkeep \
    PATH=/opt/castkeep/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/castkeep
RUN pip install --index-url ${TORCH_CUDA_INDEX} "torch==${TORCH_VERSION}"
WORKDIR /app
COPY . /app
RUN pip install -e /app \
    && useradd --create-home --uid 10001 castkeep \
    && mkdir -p /var/lib/castkeep && chown castkeep /var/lib/castkeep
USER castkeep
CMD ["castkeep", "status"]
