# syntax=docker/dockerfile:1
# Two images from one file (docker-compose.yml picks the target):
#   api     the API and the one-shot migration job: slim, PyTorch's CPU build (no CUDA)
#   worker  the Celery workers: PyPI's PyTorch, which brings the CUDA runtime
# Both install the wheels built in the first stage (never the source tree) with the versions
# that CI tested (constraints.txt), and run as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY . .
RUN python -m build --wheel --outdir /wheels . \
    && python -m build --wheel --outdir /wheels ./client

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEIGHTSPACE_HOME=/var/lib/weightspace \
    WEIGHTSPACE_DATA_DIR=/data \
    WEIGHTSPACE_AUTH=tokens
RUN groupadd --system --gid 10001 weightspace \
    && useradd --system --uid 10001 --gid weightspace --home-dir /var/lib/weightspace \
       --shell /usr/sbin/nologin weightspace \
    && mkdir -p /data /var/lib/weightspace \
    && chown weightspace:weightspace /data /var/lib/weightspace
COPY constraints.txt /etc/weightspace/constraints.txt
WORKDIR /var/lib/weightspace

FROM base AS api
# The API computes analyses and reports on the CPU: PyTorch's CPU-only build keeps CUDA out.
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
    -c /etc/weightspace/constraints.txt torch
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install -c /etc/weightspace/constraints.txt --find-links /wheels \
    "weightspace[server]" weightspace-client
USER weightspace
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
# The migration job migrates; the API only checks (see docker-compose.yml).
CMD ["python", "-m", "weightspace_service", "--host", "0.0.0.0", "--port", "8000", "--no-migrate"]

FROM base AS worker
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install -c /etc/weightspace/constraints.txt --find-links /wheels \
    "weightspace[server]"
USER weightspace
# Fresh while the worker process runs and reaches the broker (weightspace_worker.health).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=4 \
    CMD ["python", "-m", "weightspace_worker.health"]
CMD ["python", "-m", "weightspace_worker", "--queues", "gpu", "--pool", "solo"]
