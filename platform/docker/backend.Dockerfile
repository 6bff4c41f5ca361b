# Backend image (hftk8s/backend:0.1.0): one uvicorn worker per container, scale with replicas.
# Build from the repository root:
#   docker build -f platform/docker/backend.Dockerfile -t hftk8s/backend:0.1.0 .
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
    && useradd --system --uid 10001 --no-create-home hft
USER 10001
ENV PYTHONUNBUFFERED=1 \
    HFT_BIND_HOST=0.0.0.0 \
    HFT_HTTP_PORT=8000
EXPOSE 8000
ENTRYPOINT ["python", "-m", "hft_platform.backend"]
