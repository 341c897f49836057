"""The one settings object of the project.

Every component reads its configuration from :func:`get_settings`. Values come from
environment variables with the ``BILLING_`` prefix (``BILLING_KAFKA_BOOTSTRAP=...``), then an
optional ``.env`` file, then the defaults below, which describe the local stack started by
``billing up``. Pointing the project at real servers means setting the same names.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from billing.core.contracts import (
    FUTURE_TOLERANCE_S,
    PAST_HORIZON_DAYS,
    set_future_tolerance_source,
    set_past_horizon_source,
)
from billing.core.meters import MeterSet, load_meters, set_meter_source
from billing.core.pricing.catalog import PlanCatalog, builtin_catalog, load_catalog

KAFKA_PORT_STEP = 2
"""Port distance between the nodes of a local cluster (each uses a broker and a controller port)."""


def default_state_dir() -> Path:
    """``.state/`` of the checkout the code runs from; the user data folder for an installed wheel."""
    source = Path(__file__).resolve().parent.parent
    if (source / "pyproject.toml").is_file() and (source / ".git").exists():
        return source / ".state"
    return Path(user_data_dir("billing-pipeline", appauthor=False))


class Settings(BaseSettings):
    """Configuration for broker, warehouse, workers, API and dashboards."""

    model_config = SettingsConfigDict(env_prefix="BILLING_", env_file=".env", extra="ignore")

    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Folder for local data, logs, pid files and downloaded jars (default: .state/ in a checkout, "
                    "the user data folder for an installed package).",
    )

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Relative state folders are taken from the current directory, once, so child processes agree."""
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _local_cluster(self) -> Settings:
        """A local cluster of several brokers: every client gets all of their addresses, and new topics
        are replicated (unless the replication factor was set)."""
        if self.kafka_brokers > 1 and "," not in self.kafka_bootstrap:
            self.kafka_bootstrap = ",".join(f"{host}:{port}" for host, port, _ in self.kafka_local_nodes())
        if "kafka_replication" not in self.model_fields_set:
            self.kafka_replication = min(3, self.kafka_brokers)
        return self

    # HTTP API
    api_host: str = Field(default="127.0.0.1", description="Address `billing api` listens on.")
    api_port: int = Field(default=8000, description="Port of the HTTP API.")
    api_workers: int = Field(default=1, ge=1, description="Uvicorn worker processes of the HTTP API.")
    api_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    api_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Largest accepted request line plus headers (431 beyond).")
    api_max_batch_events: int = Field(default=5000, ge=1, description="Most usage events in one batch request.")
    api_rate_per_s: float = Field(default=500.0, gt=0, description="Default sustained requests/s per API key.")
    api_rate_burst: int = Field(default=1000, ge=1, description="Default burst (token bucket size) per API key.")
    api_recent_ids: int = Field(default=100_000, ge=0, description="Recently accepted event ids remembered per worker (0 = off).")
    api_requests_per_connection: int = Field(
        default=20, ge=0,
        description="Requests on one keep-alive connection before an API of several workers asks the client to "
                    "reconnect (spreads clients over the workers; 0 = never).")
    api_linger_ms: float = Field(default=2.0, ge=0, description="Kafka producer linger of the API (batching vs latency).")
    api_delivery_timeout_s: float = Field(default=10.0, gt=0, description="How long a request waits for Kafka to confirm delivery.")

    # Kafka
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers. With BILLING_KAFKA_BROKERS > 1 and one loopback address, it names the "
                    "first local broker and is expanded to all of them (every client gets the whole list).")
    kafka_controller_port: int = Field(default=9093, description="Local KRaft controller port (of the first node).")
    kafka_brokers: int = Field(
        default=1, ge=1, le=9,
        description="Nodes of the local KRaft cluster `billing up` runs (each a broker and a controller voter); "
                    "node i listens on the bootstrap and controller ports + 2(i-1).")
    kafka_heap: str = Field(default="768m", description="Java heap (-Xmx) of the local broker.")
    kafka_retention_hours: int = Field(default=168, description="Local broker log retention.")
    kafka_partitions: int = Field(default=4, description="Partitions of the event topics.")
    kafka_replication: int = Field(
        default=1, ge=1, description="Replication factor of new topics (default: 3 on a local cluster of 3+ brokers, "
                                     "the number of brokers on a smaller one).")
    topic_usage: str = "billing.usage"
    topic_customers: str = "billing.customers"
    topic_subscriptions: str = "billing.subscriptions"
    topic_invoices: str = "billing.invoices"
    topic_credit_notes: str = "billing.credit-notes"
    topic_payments: str = "billing.payments"
    topic_dead_letters: str = "billing.dead-letters"
    topic_alerts: str = "billing.alerts"
    topic_report_jobs: str = "billing.report-jobs"

    # ClickHouse
    clickhouse_url: str = Field(
        default="http://127.0.0.1:8123",
        description="ClickHouse HTTP endpoint (the local chdb server or a real server).",
    )
    clickhouse_user: str = "default"
    clickhouse_password: str | None = Field(
        default=None,
        description="Admin password (default: generated once into <state>/secrets/clickhouse_password, mode 0600; "
                    "`billing warehouse password` prints it). Set it, even empty, to use a real server's.",
    )
    clickhouse_database: str = Field(default="billing", description="Database of raw facts and rollups.")
    clickhouse_marts_database: str = Field(default="billing_marts", description="Database dbt builds marts in.")
    clickhouse_cluster: str | None = Field(
        default=None,
        description="ClickHouse cluster name: migrations run ON CLUSTER with Replicated engines (tables <name>_local) "
                    "and Distributed tables under the original names, sharded by customer (billing/warehouse/cluster.py).")
    clickhouse_readonly_user: str = Field(default="dashboards", description="Read-only user.")
    clickhouse_readonly_password: str | None = Field(
        default=None,
        description="Read-only user's password, the one Superset uses (default: generated once into "
                    "<state>/secrets/clickhouse_readonly_password, mode 0600; `billing warehouse password --readonly` "
                    "prints it).",
    )

    # Superset (dashboards)
    superset_host: str = Field(default="127.0.0.1", description="Address Superset listens on.")
    superset_port: int = Field(default=8088, description="Port of the Superset web server.")
    superset_admin_user: str = Field(default="admin", description="Superset admin login (local default).")
    superset_admin_password: str = Field(default="admin", description="Superset admin password (local default).")
    superset_secret_key: str | None = Field(
        default=None, description="Superset's SECRET_KEY (default: generated once into <state>/superset/secret_key)."
    )
    superset_venv: Path = Field(
        default_factory=lambda: default_state_dir() / "superset-venv",
        description="Superset's own virtualenv (its pins conflict with the pipeline's); shared by all state dirs.",
    )
    superset_workers: int = Field(default=1, ge=1, description="Gunicorn worker processes of Superset.")
    superset_threads: int = Field(default=8, ge=1, description="Threads per Superset worker (requests wait on the warehouse).")
    superset_start_timeout_s: float = Field(default=180.0, gt=0, description="How long Superset may take to start.")

    # Usage contracts
    meters_file: Path | None = Field(
        default=None, description="YAML file defining the meters (default: the five built-in meters)."
    )
    usage_future_tolerance_s: float = Field(
        default=FUTURE_TOLERANCE_S, ge=0, description="How far in the future a usage event's time may be before it is rejected."
    )
    usage_past_horizon_days: float = Field(
        default=PAST_HORIZON_DAYS, gt=0,
        description="How many days old a usage event's time may be before it is rejected (never before 1970).",
    )

    # Stream worker (`billing worker`)
    worker_app_id: str = Field(default="billing-streams", description="Faust app id: consumer group and changelog topic prefix.")
    worker_web_port: int = Field(default=6066, description="HTTP port of the worker's health/metrics endpoint (one per worker).")
    worker_processes: int = Field(default=1, ge=1, description="Stream workers `billing up` starts (one consumer group; web ports "
                                                               "from BILLING_WORKER_WEB_PORT on).")
    worker_windows_s: tuple[int, ...] = Field(default=(60, 3600), description="Tumbling window lengths of the usage rollups.")
    worker_grace_s: float = Field(default=60.0, ge=0, description="Lateness after a window's end that is still admitted into it.")
    worker_idle_close_s: float = Field(default=30.0, gt=0, description="Idle partitions close their windows by the wall clock "
                                                                       "after this long.")
    worker_dedup_retention_days: float = Field(default=32.0, gt=0, description="How long idempotency keys are remembered.")
    worker_window_retention_days: float = Field(default=3.0, gt=0, description="How long window state is kept for corrections "
                                                                               "(older windows are recomputed from the warehouse).")
    worker_purge_interval_s: float = Field(default=3600.0, gt=0, description="How often expired dedup keys and windows are purged.")
    worker_batch_size: int = Field(default=20_000, ge=1, description="Most records the worker processes and writes to the warehouse "
                                                                     "at once (under load; a quiet stream is cut by the interval).")
    worker_batch_interval_s: float = Field(default=0.5, gt=0, description="Longest wait before a partial batch is processed.")
    worker_sink_max_backoff_s: float = Field(default=10.0, gt=0, description="Longest pause between warehouse write retries.")
    worker_metrics_interval_s: float = Field(default=10.0, gt=0, description="How often counters are written to pipeline_metrics.")
    worker_stall_after_s: float = Field(default=60.0, gt=0,
        description="A worker that owns partitions with records waiting and whose committed offsets have not moved for "
                    "this long reports itself unhealthy (/healthz 503, `billing status` exit code 3).")
    worker_session_timeout_s: float = Field(default=6.0, ge=6, le=90,
        description="A worker that stops heartbeating (killed, hung) loses its partitions to the others after this long "
                    "(Kafka consumer session timeout; 6 s is the smallest a broker accepts by default, "
                    "group.min.session.timeout.ms; heartbeats go every 1/20 of it from the consumer's own thread).")

    # Alerts (`billing alerts scan`, the alert rules API)
    alert_rules_file: Path | None = Field(
        default=None, description="File or folder of alert rules (YAML/JSON; format in billing/core/alerts/rules.py) that "
                                  "`billing alerts scan` evaluates besides the stored rules, and whose ids stored rules may "
                                  "not take (default: the example rules in billing/core/alerts/rules.yaml).")

    # Webhooks (`billing webhooks deliver`)
    webhook_endpoints_file: Path | None = Field(
        default=None, description="File or folder of webhook endpoints (YAML/JSON; format in billing/core/webhooks/endpoints.py) "
                                  "that `billing webhooks deliver` and `replay` use.")
    webhook_group_id: str = Field(default="billing-webhooks", description="Consumer group of the webhook delivery service "
                                                                         "(its own: never the stream worker's).")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="How long one POST may take before it counts as failed.")
    webhook_max_attempts: int = Field(default=8, ge=1, description="Failed attempts after which a delivery is dead-lettered "
                                                                   "(`billing webhooks replay` sends it again).")
    webhook_backoff_base_s: float = Field(default=2.0, gt=0, description="Pause after the first failed attempt; doubles "
                                                                         "after each further one.")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0, description="Longest pause between two attempts.")
    webhook_backoff_jitter: float = Field(default=0.25, ge=0, lt=1, description="Share of a pause randomly cut off, so "
                                                                                 "retries that failed together spread out.")
    webhook_concurrency: int = Field(default=8, ge=1, description="POSTs in flight at once (over all endpoints).")
    webhook_per_endpoint: int = Field(default=2, ge=1, description="POSTs in flight at once to one endpoint, so a slow "
                                                                   "endpoint never takes every sender.")
    webhook_max_pending: int = Field(default=10_000, ge=1, description="Records read and not yet fully delivered before "
                                                                       "the service stops reading (resumes below it).")

    # Pricing and invoices
    plans_dir: Path | None = Field(
        default=None, description="Folder (or file) of plan catalog YAML/JSON (default: the example plans in billing/core/plans)."
    )
    invoice_company_name: str = Field(default="Acme Metering Inc.", description="Seller name printed on invoices.")
    invoice_company_address: str = Field(
        default="1 Market Street\nSan Francisco, CA 94105\nUnited States",
        description="Seller address printed on invoices (newlines separate lines).",
    )
    invoice_company_email: str = Field(default="billing@acme.example", description="Billing contact on invoices.")
    invoice_due_days: int = Field(default=14, ge=0, description="Days between issue date and due date.")
    invoice_series: str = Field(
        default="INV", pattern=r"^[A-Z0-9]{1,16}$",
        description="The issuer's number series: invoices are numbered <series>-000001, <series>-000002, ... when "
                    "finalized, credit notes <series>-CN-000001, ... (one series per issuer; never reused).",
    )
    invoice_processes: int = Field(
        default=0, ge=0, description="Processes that price the customers of `billing invoice run` in parallel (0 = one "
                                     "per CPU core; 1 = in the command's own process)."
    )
    invoice_correction_months: int = Field(
        default=3, ge=0, description="How many earlier months `billing invoice run` re-checks for late usage (0 = off)."
    )

    # Report jobs (`billing reports worker`)
    reports_dir: Path | None = Field(
        default=None, description="Folder of rendered report files (default: <state>/reports).")
    report_retention_days: float = Field(
        default=7.0, gt=0, description="Days a report file is kept after its job completed; then it is deleted and "
                                       "the job marked expired.")
    report_worker_group: str = Field(default="billing-reports", description="Consumer group of the report workers.")
    report_worker_concurrency: int = Field(default=2, ge=1, le=32, description="Report jobs one worker process runs at once.")
    report_max_attempts: int = Field(
        default=3, ge=1, le=1000, description="Attempts of a job whose worker crashed or failed for a passing reason before it "
                                     "is marked failed.")
    report_schedules_file: Path | None = Field(
        default=None, description="File or folder of report schedules (YAML/JSON; format in billing/core/reports/schedules.py) "
                                  "that the report workers run.")
    report_schedule_check_s: float = Field(
        default=60.0, gt=0, description="How often a report worker queues the due runs of the schedules.")

    # Timeouts
    start_timeout_s: float = Field(default=60.0, description="How long `billing up` waits per service.")

    @model_validator(mode="after")
    def _generated_password(self) -> Settings:
        if self.clickhouse_password is None:
            self.clickhouse_password = stored_secret(self.state_dir / "secrets" / "clickhouse_password")
        if self.clickhouse_readonly_password is None:
            self.clickhouse_readonly_password = stored_secret(self.state_dir / "secrets" / "clickhouse_readonly_password")
        return self

    @property
    def log_dir(self) -> Path:
        """Folder for service log files."""
        return self.state_dir / "logs"

    @property
    def report_dir(self) -> Path:
        """Folder of rendered report files."""
        return self.reports_dir or self.state_dir / "reports"

    @property
    def run_dir(self) -> Path:
        """Folder for pid files."""
        return self.state_dir / "run"

    def kafka_local_nodes(self) -> list[tuple[str, int, int]]:
        """(host, broker port, controller port) of each node of the local cluster: node i on the ports of
        the first bootstrap address and of ``kafka_controller_port``, each + 2(i-1), so the default
        ports pair up (9092/9093, 9094/9095, 9096/9097)."""
        host, _, port = self.kafka_bootstrap.split(",")[0].strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"BILLING_KAFKA_BOOTSTRAP={self.kafka_bootstrap!r} is not host:port[,host:port…].")
        return [(host.strip("[]"), int(port) + KAFKA_PORT_STEP * i, self.kafka_controller_port + KAFKA_PORT_STEP * i)
                for i in range(self.kafka_brokers)]

    def topics(self) -> dict[str, str]:
        """Logical topic name -> configured Kafka topic name."""
        return {
            "usage": self.topic_usage,
            "customers": self.topic_customers,
            "subscriptions": self.topic_subscriptions,
            "invoices": self.topic_invoices,
            "credit_notes": self.topic_credit_notes,
            "payments": self.topic_payments,
            "dead_letters": self.topic_dead_letters,
            "alerts": self.topic_alerts,
            "report_jobs": self.topic_report_jobs,
        }


def stored_secret(path: Path) -> str:
    """The secret kept in ``path``; the first process to ask writes a random one (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
        try:
            os.link(draft, path)  # atomic: a process that lost the race reads the winner's secret
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()


# ------------------------------------------------------------------ the core's inputs, as configured


@lru_cache(maxsize=8)
def _meters_at(path: Path | None) -> MeterSet:
    return load_meters(path)


def configured_catalog() -> PlanCatalog:
    """The catalog at ``BILLING_PLANS_DIR``, or the shipped example plans when it is unset."""
    path = get_settings().plans_dir
    return load_catalog([path]) if path is not None else builtin_catalog()


set_meter_source(lambda: _meters_at(get_settings().meters_file))
set_future_tolerance_source(lambda: get_settings().usage_future_tolerance_s)
set_past_horizon_source(lambda: get_settings().usage_past_horizon_days)
