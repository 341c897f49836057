import json
import os

import psutil

from billing.platform import stack
from billing.platform.process import since_boot
from billing.platform.worker_service import worker_services
from billing.settings import Settings


def test_the_stack_runs_the_configured_number_of_workers_on_consecutive_ports(tmp_path):
    settings = Settings(state_dir=tmp_path, worker_processes=3, worker_web_port=7000)
    workers = worker_services(settings)
    assert [w.name for w in workers] == ["worker", "worker-2", "worker-3"]
    assert [w.port for w in workers] == [7000, 7001, 7002]
    argv = [w.managed().argv for w in workers]
    assert [a[a.index("--name") + 1] for a in argv] == ["worker-1", "worker-2", "worker-3"]
    assert [a[a.index("--web-port") + 1] for a in argv] == ["7000", "7001", "7002"]


def test_a_worker_beyond_the_configured_number_is_listed_while_it_runs(tmp_path):
    """Lowering BILLING_WORKER_PROCESSES must not hide (and leave running) a worker started before."""
    settings = Settings(state_dir=tmp_path, worker_processes=1)
    assert [w.name for w in worker_services(settings)] == ["worker"]
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    me = psutil.Process(os.getpid())
    (settings.run_dir / "worker-2.pid").write_text(json.dumps({"pid": me.pid, "since_boot": since_boot(me)}))
    assert [w.name for w in worker_services(settings)] == ["worker", "worker-2"]


def test_up_starts_one_report_worker_after_the_stream_workers_and_before_the_api(tmp_path):
    names = [s.name for s in stack.select(Settings(state_dir=tmp_path), None, with_optional=False)]
    assert names.index("worker") < names.index("reports") < names.index("api")
    argv = stack.service(Settings(state_dir=tmp_path), "reports").managed().argv
    assert argv[-5:] == ["billing", "reports", "worker", "--name", "reports-1"]
    assert not stack.service(Settings(state_dir=tmp_path), "reports").managed().is_healthy(), "not running: not healthy"


def test_up_delivers_webhooks_only_when_endpoints_are_configured(tmp_path):
    assert "webhooks" not in [s.name for s in stack.services(Settings(state_dir=tmp_path))]
    settings = Settings(state_dir=tmp_path, webhook_endpoints_file=tmp_path / "endpoints.yaml")
    names = [s.name for s in stack.select(settings, None, with_optional=False)]
    assert names.index("reports") < names.index("webhooks") < names.index("api")
    service = stack.service(settings, "webhooks")
    assert service.managed().argv[-5:] == ["billing", "webhooks", "deliver", "--name", "webhooks-1"]
    assert service.endpoint == "group billing-webhooks"
    assert not service.managed().is_healthy(), "not running: not healthy"
