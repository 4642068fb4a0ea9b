# syntax=docker/dockerfile:1
# Build: dependencies in their own layer, then the project; run as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
# Install the pinned dependencies first so that a code change does not rebuild this layer.
RUN mkdir -p forecasting pipelines service && touch forecasting/__init__.py \
    pipelines/__init__.py service/__init__.py \
    && pip install --no-cache-dir . && pip uninstall -y border-encounters
COPY forecasting ./forecasting
COPY pipelines ./pipelines
COPY service ./service
RUN pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 encounters
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    ENCOUNTERS_HOME=/var/lib/encounters \
    PYTHONUNBUFFERED=1
RUN mkdir -p /var/lib/encounters && chown encounters /var/lib/encounters
USER encounters
WORKDIR /home/encounters
VOLUME ["/var/lib/encounters"]
CMD ["encounters", "up"]
