# syntax=docker/dockerfile:1
# The llm-policy-proxy image: a venv built from wheels in a builder stage, then a slim, non-root runtime
# that works with a read-only root filesystem (state goes to /var/lib/llm-policy-proxy, scratch to /tmp).
# Build from the repository root: docker build -t llm-policy-proxy:dev .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# Dependencies install from binary wheels only (regorus, orjson, uvloop, pydantic-core and tiktoken ship
# them for linux amd64/arm64): a platform without one fails here instead of needing a Rust toolchain.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install --only-binary=:all: /wheels/*.whl
# tiktoken cannot download at run time (no network, read-only FS): bake the sha256-verified vocab in.
# Run outside /src so the installed package is what gets exercised.
WORKDIR /
RUN python -m proxy.tokens export-vocab /opt/llm-policy-proxy/vocab \
    && llm-policy-proxy --help > /dev/null

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="llm-policy-proxy" \
      org.opencontainers.image.description="OpenAI-compatible reverse proxy enforcing Rego policies, PII rules and budgets on every LLM call" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/llm-policy-proxy/llm-policy-proxy" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"

# A numeric UID/GID so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 llmpp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin llmpp \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/llm-policy-proxy

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/llm-policy-proxy/vocab /opt/llm-policy-proxy/vocab
COPY policies /opt/llm-policy-proxy/policies
COPY deploy/proxy/image.yaml /etc/llm-policy-proxy/config.yaml

# No .pyc writes at run time (the venv is compiled at install); logs unbuffered to stdout.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    LLMPP_HOST=0.0.0.0 \
    LLMPP_PORT=8080 \
    LLMPP_STATE_DIR=/var/lib/llm-policy-proxy \
    LLMPP_POLICY_DIR=/opt/llm-policy-proxy/policies \
    LLMPP_VOCAB_DIR=/opt/llm-policy-proxy/vocab

USER 10001:10001
WORKDIR /var/lib/llm-policy-proxy
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LLMPP_PORT', '8080'), timeout=2)"]

ENTRYPOINT ["llm-policy-proxy"]
CMD ["serve", "--config", "/etc/llm-policy-proxy/config.yaml"]
