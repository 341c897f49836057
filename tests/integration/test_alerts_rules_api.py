"""Alert rules per customer over real HTTP (a uvicorn server of the API, the real warehouse) and the CLI:
create, list, get, update and delete with tenant scoping; the scan evaluates stored rules with the files'
rules; every hostile input of the table gets one clear RFC 7807 problem, nothing is stored, and the API is
healthy afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from api.keys import KeyStore, store_path
from billing.cli.app import console
from billing.core.contracts import Customer, Segment, parse_topic
from billing.settings import Settings, get_settings
from billing.warehouse import facts
from billing.warehouse.client import client
from tests.integration.api_fixtures import TopicTail, bearer, insert, insert_rollups, scratch_settings, serve
from tests.integration.cli_runner import billing_in_process

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)
A, B = "cust-a", "cust-b"


def _customer(customer_id: str) -> Customer:
    return Customer(id=customer_id, company_name=customer_id, email=f"ap@{customer_id}.example", country="US", region="NA",
                    currency="USD", segment=Segment.SMB, signup_time=T0, updated_at=T0)


@dataclass
class World:
    settings: Settings
    http: httpx.Client
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str = "admin", body: object = None, raw: bytes | None = None) -> httpx.Response:
        content = raw if raw is not None else None if body is None else orjson.dumps(body)
        return self.http.request(method, path, content=content,
                                 headers={**bearer(self.tokens[who]), "Content-Type": "application/json"})

    def rows(self) -> int:
        return client(self.settings).query(f"SELECT count() FROM {self.settings.clickhouse_database}.alert_rules").result_rows[0][0]


@pytest.fixture(scope="module")
def world(settings, kafka, warehouse, tmp_path_factory) -> Iterator[World]:
    """Two tenants' customers in a scratch database, the API served over HTTP on it, and the `billing` CLI
    (in-process) pointed at it."""
    with scratch_settings(settings, tmp_path_factory) as scoped, serve(scoped) as (url, served), \
            httpx.Client(base_url=url, timeout=30) as http, pytest.MonkeyPatch.context() as patch:
        insert(scoped, _customer(A), _customer(B))
        keys = KeyStore(store_path(served))
        tokens = {"admin": keys.create([], admin=True)[1], "a": keys.create([A])[1], "b": keys.create([B])[1]}
        patch.setenv("BILLING_CLICKHOUSE_DATABASE", scoped.clickhouse_database)
        patch.setenv("BILLING_TOPIC_ALERTS", scoped.topic_alerts)
        patch.setattr(console, "_width", 300)
        get_settings.cache_clear()
        yield World(scoped, http, tokens)
    get_settings.cache_clear()


def rule(customer: str = A, **fields) -> dict:
    return {"customer_id": customer, "kind": "usage_threshold", "meter": "api_calls", "thresholds": [1000, 5000], **fields}


def test_rules_are_created_listed_read_replaced_and_deleted_per_tenant(world):
    created = world.call("POST", "/v1/alert-rules", "a", rule(id="a-calls"))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/alert-rules/a-calls"
    body = created.json()
    assert (body["id"], body["customer_id"], body["thresholds"], body["unit"]) == ("a-calls", A, ["1000", "5000"], "units")
    generated = world.call("POST", "/v1/alert-rules", "admin", {"customer_id": A, "kind": "credit_balance", "below": [20]})
    assert generated.status_code == 201 and generated.json()["id"].startswith("rule-")
    assert world.call("POST", "/v1/alert-rules", "b", rule(B, id="b-calls")).status_code == 201

    def ids(who: str, query: str = "") -> list[str]:
        page = world.call("GET", f"/v1/alert-rules{query}", who)
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert ids("a") == ["a-calls", generated.json()["id"]] and ids("b") == ["b-calls"]
    assert ids("admin") == ["a-calls", "b-calls", generated.json()["id"]]
    assert ids("admin", f"?customer_id={B}") == ["b-calls"]
    first = world.call("GET", "/v1/alert-rules?limit=1", "admin").json()
    assert [item["id"] for item in first["items"]] == ["a-calls"] and first["next_after"] == "a-calls"
    assert ids("admin", "?limit=2&after=a-calls") == ["b-calls", generated.json()["id"]]

    assert world.call("GET", "/v1/alert-rules/a-calls", "a").json()["thresholds"] == ["1000", "5000"]
    replaced = world.call("PUT", "/v1/alert-rules/a-calls", "a", rule(thresholds=[10000], unit="units", name="ten thousand calls"))
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["thresholds"], replaced.json()["name"]) == (["10000"], "ten thousand calls")
    assert world.call("GET", "/v1/alert-rules/a-calls", "admin").json()["name"] == "ten thousand calls"
    assert world.call("DELETE", f"/v1/alert-rules/{generated.json()['id']}", "a").status_code == 204
    assert world.call("GET", f"/v1/alert-rules/{generated.json()['id']}", "a").status_code == 404
    assert ids("a") == ["a-calls"]


def test_the_scan_evaluates_stored_rules_with_the_files_rules(world, tmp_path, capsys):
    created = world.call("POST", "/v1/alert-rules", "a", rule(id="a-scan", thresholds=[10]))
    assert created.status_code == 201, created.text
    insert_rollups(world.settings, [(A, "api_calls", 3600, datetime(2026, 11, 3, 10, tzinfo=UTC), {}, "SUM", "12", 3, 1)])
    files = tmp_path / "rules.yaml"
    files.write_text("rules:\n  - {id: file-calls, kind: usage_threshold, meter: api_calls, thresholds: [11]}\n")
    tail = TopicTail(world.settings, world.settings.topic_alerts)
    window = ("--since", "2026-11-03T00:00:00Z", "--until", "2026-11-04T00:00:00Z")
    code, out, err = billing_in_process("alerts", "scan", "--rules", str(files), *window, capsys=capsys)
    assert code == 0, err
    fired = {(a.data.rule, a.subject, a.data.threshold) for a in (parse_topic("alerts", m.value()) for m in tail.drain())}
    assert fired == {("a-scan", A, 10), ("file-calls", A, 11)}

    files.write_text("rules:\n  - {id: a-scan, kind: usage_threshold, meter: api_calls, thresholds: [1]}\n")
    code, _, err = billing_in_process("alerts", "scan", "--rules", str(files), *window, capsys=capsys)
    assert code != 0 and "'a-scan' is defined twice" in err and "Traceback" not in err
    assert tail.drain() == []
    tail.close()


def test_the_cli_manages_stored_rules(world, tmp_path, capsys):
    document = tmp_path / "rule.yaml"
    document.write_text(f"customer_id: {B}\nid: b-spend\nkind: spend_threshold\nthresholds: [100]\n")
    code, out, err = billing_in_process("alerts", "rules", "create", str(document), capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["updated_by"] == "cli"
    code, out, _ = billing_in_process("alerts", "rules", "list", "--customer", B, capsys=capsys)
    assert code == 0 and "b-spend" in out and "b-calls" in out and "a-calls" not in out
    document.write_text(f"customer_id: {A}\nkind: spend_threshold\nthresholds: [100]\n")
    code, _, err = billing_in_process("alerts", "rules", "update", "b-spend", str(document), capsys=capsys)
    assert code != 0 and "its customer cannot change" in err
    document.write_text(f"customer_id: {B}\nkind: spend_threshold\nthresholds: [100, 100]\n")
    code, _, err = billing_in_process("alerts", "rules", "update", "b-spend", str(document), capsys=capsys)
    assert code != 0 and "list each threshold once" in " ".join(err.split())
    code, out, _ = billing_in_process("alerts", "rules", "get", "b-spend", capsys=capsys)
    assert code == 0 and json.loads(out)["thresholds"] == ["100"]
    code, out, _ = billing_in_process("alerts", "rules", "delete", "b-spend", capsys=capsys)
    assert code == 0 and "deleted alert rule b-spend" in out
    code, _, err = billing_in_process("alerts", "rules", "get", "b-spend", capsys=capsys)
    assert code != 0 and "no alert rule 'b-spend'" in err



def test_a_rule_the_configuration_no_longer_accepts_is_named_and_can_be_deleted(world):
    now = datetime.now(UTC)
    client(world.settings).insert(
        f"{world.settings.clickhouse_database}.alert_rules",
        [["a-stale", A, "usage_threshold", '{"kind": "usage_threshold", "meter": "retired_meter", "thresholds": ["5"]}',
          now, now, "cli", 0, 1]], column_names=facts.COLUMNS["alert_rules"])
    read = world.call("GET", "/v1/alert-rules/a-stale", "a")
    assert read.status_code == 422 and "stored rule 'a-stale' (update or delete it)" in read.json()["detail"]
    assert "unknown meter 'retired_meter'" in read.json()["detail"]
    assert world.call("DELETE", "/v1/alert-rules/a-stale", "a").status_code == 204
    assert world.call("GET", "/v1/alert-rules/a-stale", "a").status_code == 404

MEGABYTE = b'{"customer_id": "cust-a", "kind": "usage_threshold", "meter": "api_calls", "thresholds": [1], "name": "' + \
    b"x" * 1_000_000 + b'"}'
MANY_FIELDS = rule(**{f"field{i}": i for i in range(3000)})

# (case, method, path, key, body (dict, or raw bytes), status, problem type, a piece of the detail)
HOSTILE: list[tuple[str, str, str, str, object, int, str, str]] = [
    ("unknown customer", "POST", "/v1/alert-rules", "admin", rule("cust-nobody"), 404, "unknown-customer",
     "no customer 'cust-nobody'"),
    ("another tenant's customer", "POST", "/v1/alert-rules", "a", rule(B), 403, "forbidden", "no access to customer 'cust-b'"),
    ("another tenant's rule: get", "GET", "/v1/alert-rules/b-calls", "a", None, 404, "unknown-alert-rule", "no alert rule"),
    ("another tenant's rule: update", "PUT", "/v1/alert-rules/b-calls", "a", rule(B), 404, "unknown-alert-rule", "no alert rule"),
    ("another tenant's rule: delete", "DELETE", "/v1/alert-rules/b-calls", "a", None, 404, "unknown-alert-rule", "no alert rule"),
    ("another tenant's customer: list", "GET", f"/v1/alert-rules?customer_id={B}", "a", None, 403, "forbidden", "no access"),
    ("malformed JSON", "POST", "/v1/alert-rules", "admin", b'{"customer_id": "cust-a", ', 400, "malformed-json", "malformed JSON"),
    ("not an object", "POST", "/v1/alert-rules", "admin", [rule()], 422, "invalid-alert-rule", "expected a JSON object"),
    ("unknown field", "POST", "/v1/alert-rules", "admin", rule(thresholdz=[5]), 422, "invalid-alert-rule",
     "thresholdz: unknown field"),
    ("3,000 unknown fields", "POST", "/v1/alert-rules", "admin", MANY_FIELDS, 422, "invalid-alert-rule", "more problem(s)"),
    ("customers list", "POST", "/v1/alert-rules", "admin", rule(customers=[A]), 422, "invalid-alert-rule",
     "customers lists belong in rules files"),
    ("no customer_id", "POST", "/v1/alert-rules", "admin", {"kind": "payment_due", "days_before": [3]}, 422,
     "invalid-alert-rule", "customer_id: Field required"),
    ("unknown kind", "POST", "/v1/alert-rules", "admin", rule(kind="usage_limit"), 422, "invalid-alert-rule",
     "unknown rule kind"),
    ("unknown meter", "POST", "/v1/alert-rules", "admin", rule(meter="gpu_hours"), 422, "invalid-alert-rule",
     "unknown meter 'gpu_hours'"),
    ("unreachable: no thresholds", "POST", "/v1/alert-rules", "admin", rule(thresholds=[]), 422, "invalid-alert-rule",
     "the rule never fires"),
    ("unreachable: min_history > weeks", "POST", "/v1/alert-rules", "admin",
     {"customer_id": A, "kind": "usage_anomaly", "meter": "api_calls", "weeks": 2, "min_history": 3}, 422,
     "invalid-alert-rule", "never has enough history"),
    ("unreachable: no reminder days", "POST", "/v1/alert-rules", "admin", {"customer_id": A, "kind": "payment_due"}, 422,
     "invalid-alert-rule", "never fires"),
    ("duplicate thresholds", "POST", "/v1/alert-rules", "admin", rule(thresholds=[80, 80.0]), 422, "invalid-alert-rule",
     "list each threshold once"),
    ("threshold not a number", "POST", "/v1/alert-rules", "admin", rule(thresholds=[80, "eighty"]), 422,
     "invalid-alert-rule", "'eighty' is not a number"),
    ("threshold negative", "POST", "/v1/alert-rules", "admin", rule(thresholds=[-5]), 422, "invalid-alert-rule",
     "not positive"),
    ("thresholds not a list", "POST", "/v1/alert-rules", "admin", rule(thresholds=80), 422, "invalid-alert-rule",
     "thresholds: Input should be a valid tuple"),
    ("weeks not a number", "POST", "/v1/alert-rules", "admin",
     {"customer_id": A, "kind": "usage_anomaly", "meter": "api_calls", "weeks": "four"}, 422, "invalid-alert-rule",
     "weeks: Input should be a valid integer"),
    ("customer_id not a string", "POST", "/v1/alert-rules", "admin", rule(5), 422, "invalid-alert-rule",
     "customer_id: Input should be a valid string"),
    ("webhook not http(s)", "POST", "/v1/alert-rules", "admin", rule(webhook="ftp://x.example/hook"), 422,
     "invalid-alert-rule", "not an absolute http(s) URL"),
    ("rule id malformed", "POST", "/v1/alert-rules", "admin", rule(id="Bad Id!"), 422, "invalid-alert-rule",
     "id: String should match pattern"),
    ("rule id of a rules file", "POST", "/v1/alert-rules", "admin", rule(id="api-allowance"), 409, "alert-rule-exists",
     "is taken"),
    ("rule id of a stored rule", "POST", "/v1/alert-rules", "b", rule(B, id="a-calls"), 409, "alert-rule-exists", "is taken"),
    ("huge body (1 MB)", "POST", "/v1/alert-rules", "admin", MEGABYTE, 413, "body-too-large", "exceeds 65536 bytes"),
    ("unknown rule id: get", "GET", "/v1/alert-rules/no-such-rule", "admin", None, 404, "unknown-alert-rule",
     "no alert rule 'no-such-rule'"),
    ("unknown rule id: update", "PUT", "/v1/alert-rules/no-such-rule", "admin", rule(), 404, "unknown-alert-rule",
     "no alert rule"),
    ("unknown rule id: delete", "DELETE", "/v1/alert-rules/no-such-rule", "admin", None, 404, "unknown-alert-rule",
     "no alert rule"),
    ("update changes the customer", "PUT", "/v1/alert-rules/a-calls", "admin", rule(B), 409, "alert-rule-customer-fixed",
     "its customer cannot change"),
    ("update with another id", "PUT", "/v1/alert-rules/a-calls", "admin", rule(id="other"), 422, "invalid-alert-rule",
     "differs from the rule id 'a-calls'"),
    ("no API key", "POST", "/v1/alert-rules", "none", rule(), 401, "unauthenticated", "missing API key"),
]


@pytest.fixture(scope="module")
def hostile_world(world) -> World:
    """The world with rule a-calls of A and b-calls of B stored (the table's cases name them)."""
    for who, body in (("a", rule(id="a-calls")), ("b", rule(B, id="b-calls"))):
        if world.call("GET", f"/v1/alert-rules/{body['id']}", who).status_code == 404:
            assert world.call("POST", "/v1/alert-rules", who, body).status_code == 201
    world.tokens["none"] = "x"
    return world


def _send(w: World, method: str, path: str, who: str, body: object) -> httpx.Response:
    if who == "none":
        return w.http.request(method, path, content=orjson.dumps(body))
    return w.call(method, path, who, raw=body if isinstance(body, bytes) else None, body=None if isinstance(body, bytes) else body)


@pytest.mark.parametrize(("method", "path", "who", "body", "status", "kind", "detail"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_each_hostile_input_gets_one_clear_problem(hostile_world, method, path, who, body, status, kind, detail):
    before = hostile_world.rows()
    response = _send(hostile_world, method, path, who, body)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"https://billing.example/problems/{kind}"
    assert detail in problem["detail"], problem["detail"]
    assert len(response.content) < 4_000, "echoed values are clipped"
    assert hostile_world.rows() == before, "nothing stored"


def test_after_the_hostile_inputs_the_api_is_healthy_and_the_rules_unchanged(hostile_world):
    rules = {rule_id: hostile_world.call("GET", f"/v1/alert-rules/{rule_id}").json() for rule_id in ("a-calls", "b-calls")}
    for _case, method, path, who, body, *_ in HOSTILE:
        _send(hostile_world, method, path, who, body)
    assert hostile_world.http.get("/healthz").status_code == 200
    assert {rule_id: hostile_world.call("GET", f"/v1/alert-rules/{rule_id}").json() for rule_id in rules} == rules
    reminder = {"customer_id": A, "kind": "payment_due", "days_before": [3]}
    assert hostile_world.call("POST", "/v1/alert-rules", "a", reminder).status_code == 201
