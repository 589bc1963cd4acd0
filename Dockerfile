# syntax=docker/dockerfile:1
# hitl-chatops bot image: `docker build -t hitl-chatops:0.2.0 .` from the repository root.
# The image installs the wheel, not the source tree: the first stage builds it from the sources (as a
# release does), the second installs it with its runtime dependencies into a venv, and the runtime
# stage copies only that venv onto a clean slim base (no compiler, no pip cache, no sources).

FROM python:3.12-slim AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE MANIFEST.in ./
COPY src/ src/
COPY bot/ bot/
COPY adapters/ adapters/
COPY plugin/ plugin/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.12-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY --from=wheel /dist/ /dist/
# Dependencies come from the index within pyproject.toml's bounds. `flyte` lets the bot signal
# native Flyte conditions once HITL_CHATOPS_FLYTE_ENDPOINT (or a key or config) is set.
RUN wheel="$(echo /dist/hitl_chatops-*.whl)" \
    && /opt/venv/bin/pip install --no-cache-dir "${wheel}[slack,teams,s3,flyte]"

FROM python:3.12-slim
LABEL org.opencontainers.image.title="hitl-chatops" \
      org.opencontainers.image.description="Slack and Microsoft Teams bot for human-in-the-loop steps in Flyte 2 workflows" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without a runAsUser override.
RUN groupadd --system --gid 10001 hitl \
    && useradd --system --uid 10001 --gid hitl --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hitl \
    && mkdir -p /var/lib/hitl-chatops \
    && chown hitl:hitl /var/lib/hitl-chatops
COPY --from=builder /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HITL_CHATOPS_LOG_FORMAT=json \
    HITL_CHATOPS_STORE=file:///var/lib/hitl-chatops
USER 10001:10001
WORKDIR /var/lib/hitl-chatops
EXPOSE 8080
# 200 when the store is reachable; urlopen raises on 503 or no answer, so the exit code is non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["hitl-chatops"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
