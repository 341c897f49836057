# Image for the pipeline's own processes (workers, API, CLI jobs) in the production shape.
# checkov:skip=CKV_DOCKER_2: one image runs the worker, the API and one-shot jobs; each service's health check is set where it runs (compose, ECS)
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY billing billing
COPY producers producers
COPY streams streams
COPY api api
COPY clickhouse clickhouse
COPY dbt dbt
COPY superset superset
COPY scripts scripts
RUN pip install --no-cache-dir -c constraints.txt .
ENV BILLING_STATE_DIR=/var/lib/billing
RUN useradd --system --uid 10001 --home-dir /var/lib/billing --create-home billing
USER billing
ENTRYPOINT ["billing"]
