# syntax=docker/dockerfile:1
# The service image: `encounters serve` by default; the same image runs the MLflow server and the
# retraining scheduler in docker-compose.yml.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p forecasting pipelines service \
    && touch forecasting/__init__.py pipelines/__init__.py service/__init__.py \
    && pip install ".[server]" \
    && pip uninstall -y border-encounters
COPY forecasting ./forecasting
COPY pipelines ./pipelines
COPY service ./service
COPY experiments ./experiments
RUN pip install --no-deps ".[server]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 encounters \
    && mkdir -p /var/lib/encounters /mlartifacts \
    && chown encounters /var/lib/encounters /mlartifacts
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/experiments /opt/encounters/experiments
ENV PATH=/opt/venv/bin:$PATH \
    ENCOUNTERS_HOME=/var/lib/encounters \
    PYTHONUNBUFFERED=1
USER encounters
WORKDIR /opt/encounters
VOLUME ["/var/lib/encounters"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["encounters", "serve", "--host", "0.0.0.0", "--port", "8000"]
