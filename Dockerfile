# The project's image: one install, run as `deposits worker`, `deposits webhook` or
# `deposits api` (see docker-compose.yml). Settings come only from DEPOSITS_* variables.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY deposits ./deposits
COPY deposits_api ./deposits_api
COPY xprizo ./xprizo
COPY simulator ./simulator
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY webhook ./webhook
COPY ledger ./ledger
COPY devstack ./devstack
RUN pip install . && useradd --system --uid 10001 --home-dir /app deposits

USER deposits
# A process stops on SIGTERM: the worker drains within its grace, uvicorn finishes
# the requests in flight.
STOPSIGNAL SIGTERM
ENTRYPOINT ["deposits"]
CMD ["worker"]
