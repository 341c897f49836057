# Image for the pipeline's own processes (workers, API, CLI jobs) in the production shape.
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
ENTRYPOINT ["billing"]
