# Backend image (hftk8s/backend): one uvicorn worker per container, scale with replicas.
# Build from the repository root:
#   docker build -f platform/docker/backend.Dockerfile -t hftk8s/backend:<version>-<hash12> .
# or let the plugin tag (version + content hash), build and load it for a cluster:
#   python -m pytest_hftk8s images --provider kind|k3d|minikube|orbstack|registry
# The project is one wheel (plugin, platform, compiled engine), so stage 1 compiles the engine here
# too; stage 2 is a slim runtime without compilers.
FROM python:3.11.7-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 cmake=3.25.1-1 ninja-build=1.11.1-2~deb12u1 make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pytest_hftk8s ./pytest_hftk8s
COPY platform/hft_platform ./platform/hft_platform
COPY engine_cpp ./engine_cpp
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.7-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 hft \
    && useradd --system --uid 10001 --gid 10001 --no-create-home hft
# Numeric user and group, so a securityContext's runAsNonRoot can verify them; pip compiled the
# bytecode at install, and nothing writes more, so the root filesystem can be mounted read-only.
USER 10001:10001
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HFT_BIND_HOST=0.0.0.0 \
    HFT_HTTP_PORT=8000
EXPOSE 8000
ENTRYPOINT ["python", "-m", "hft_platform.backend"]
