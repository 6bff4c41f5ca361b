# Backend image (hftk8s/backend): one uvicorn worker per container, scale with replicas.
# Build from the repository root:
#   docker build -f platform/docker/backend.Dockerfile -t hftk8s/backend:<version>-<hash12> .
# or let the plugin tag (version + content hash), build and load it for a cluster:
#   python -m pytest_hftk8s images --provider kind|k3d|minikube|orbstack|registry
# Stage 1 builds the hftk8s-engine wheel (compiling the C++ matching engine) and the hftk8s-platform
# wheel; stage 2 installs them on a slim runtime without compilers.
FROM python:3.11.7-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 cmake=3.25.1-1 ninja-build=1.11.1-2~deb12u1 make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY constraints/ci.txt ./constraints/ci.txt
COPY engine_cpp ./engine_cpp
COPY platform/pyproject.toml platform/README.md ./platform/
COPY platform/hft_platform ./platform/hft_platform
# The slim image's pip predates --build-constraint; the engine and platform wheels build at the
# versions CI tests (the plugin is not in the image: it drives the cluster from outside).
RUN pip install --no-cache-dir pip==26.3 \
    && pip wheel --no-cache-dir --no-deps --build-constraint constraints/ci.txt --wheel-dir /wheels \
        ./engine_cpp ./platform

FROM python:3.11.7-slim-bookworm
COPY --from=build /wheels /wheels
COPY constraints/ci.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt /wheels/*.whl \
    && rm -rf /wheels /tmp/constraints.txt \
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
