# One image for the API, the workers and the migration job (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEIGHTSPACE_HOME=/var/lib/weightspace \
    WEIGHTSPACE_DATA_DIR=/data

RUN groupadd --system --gid 10001 weightspace \
    && useradd --system --uid 10001 --gid weightspace --home-dir /app --shell /usr/sbin/nologin weightspace \
    && mkdir -p /app /data /var/lib/weightspace \
    && chown weightspace:weightspace /data /var/lib/weightspace

WORKDIR /app

# The client first: it changes rarely, so its layer stays cached.
COPY client/ client/
RUN pip install ./client

# The server (torch from PyPI). Commands run from /app, so `python -m weightspace_service`, `python -m weightspace_worker`
# and the migrations resolve against this source tree whatever the wheel packages.
COPY . .
RUN pip install ./client . && chmod -R a+rX /app

USER weightspace
EXPOSE 8000
CMD ["python", "-m", "weightspace_service", "--host", "0.0.0.0", "--port", "8000"]
