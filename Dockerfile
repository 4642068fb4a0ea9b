# syntax=docker/dockerfile:1
# The service image: `encounters serve` by default; the same image runs the MLflow server and the
# retraining scheduler in docker-compose.yml. Every dependency comes from uv.lock, as in `make`
# and CI.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1
RUN pip install uv==0.13.8
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable --extra server
COPY forecasting ./forecasting
COPY pipelines ./pipelines
COPY service ./service
# Only the experiment definitions (package data); .dockerignore leaves the benchmarks out.
COPY experiments ./experiments
RUN uv sync --locked --no-editable --extra server

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 encounters \
    && mkdir -p /var/lib/encounters /mlartifacts \
    && chown encounters /var/lib/encounters /mlartifacts
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    ENCOUNTERS_HOME=/var/lib/encounters \
    PYTHONUNBUFFERED=1
USER encounters
WORKDIR /var/lib/encounters
VOLUME ["/var/lib/encounters"]
EXPOSE 8000
# For the default command; docker-compose.yml gives the MLflow server its own and turns it off
# for the scheduler, which serves nothing.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["encounters", "serve", "--host", "0.0.0.0", "--port", "8000"]
