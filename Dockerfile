# syntax=docker/dockerfile:1
# The Entrepot image: docs/deploy.md. Build it from the repository's root:
#   docker build -t entrepot:0.1.0 .
# It needs ENTREPOT_DATABASE_URL (no embedded PostgreSQL in a container) and runs
# with a read-only root filesystem; only /tmp must be writable (an emptyDir or tmpfs).
# Lines marked "# image-test:" are run, as written, by tests/deploy/test_image.py.

ARG PYTHON_IMAGE=python:3.11-slim

# Stage 1: the wheel, built from the sources the .dockerignore lets in.
FROM ${PYTHON_IMAGE} AS build
ARG WHEELS=/wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
# image-test: build
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir "$WHEELS" .

# Stage 2: the wheel and its dependencies in a virtualenv; no compiler, no sources.
FROM ${PYTHON_IMAGE}
ARG WHEELS=/wheels
ENV VIRTUAL_ENV=/opt/entrepot
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENTREPOT_HOST=0.0.0.0 \
    ENTREPOT_PORT=8000 \
    ENTREPOT_WORKERS=1 \
    ENTREPOT_LOG_FORMAT=json \
    ENTREPOT_DATA_DIR=/set-ENTREPOT_DATABASE_URL
# image-test: install
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=cache,target=/root/.cache/pip \
    python -m venv "$VIRTUAL_ENV" && "$VIRTUAL_ENV/bin/pip" install "$WHEELS"/entrepot-*.whl
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin entrepot
USER 10001:10001
WORKDIR /opt/entrepot
EXPOSE 8000
# Liveness (/healthz) with the image's own Python: slim has no curl. Any answer but a 2xx,
# or none within the timeout, exits non-zero.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ENTREPOT_PORT', '8000'), timeout=4)"]
# `serve` migrates, then serves on ENTREPOT_HOST:ENTREPOT_PORT with ENTREPOT_WORKERS;
# `migrate` alone is the one-shot migration (a Kubernetes Job, a compose service).
ENTRYPOINT ["entrepot"]
CMD ["serve"]
