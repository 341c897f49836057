"""Alert rules per customer: create, list, read, replace and delete the rules `billing alerts scan` evaluates
besides the rules files.

A rule's document is a rule of a rules file (`billing/core/alerts/rules.py`, the one definition) with
`customer_id` instead of `customers`. A tenant key creates and sees only its customers' rules: another
tenant's customer is a 403 (as on every customer endpoint), another tenant's rule the same 404 as an
unknown one. Writes go straight to the warehouse table `alert_rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticated, require_access
from api.body import read_limited
from api.context import ApiContext, context
from api.keys import ApiKey
from api.problems import Problem
from api.routes.responses import AUTH_ERRORS, problem
from billing.alerts.rule_store import AlertRules, RuleRow
from billing.core.alerts.errors import AlertRuleError, CustomerChange, DuplicateRule, UnknownCustomer, UnknownRule
from billing.core.alerts.rules import RULE_KINDS, AnyRule
from billing.core.alerts.stored import StoredRule, customer_rule
from billing.core.contracts import clip, loads_exact

router = APIRouter(tags=["alert rules"])
T = TypeVar("T")

MAX_RULE_BYTES = 64 * 1024
"""Largest rule document accepted (a rule with a thousand thresholds is below 32 KiB)."""
EXAMPLE = {"id": "api-80", "customer_id": "cust-globex", "kind": "usage_threshold", "meter": "api_calls", "unit": "percent",
           "thresholds": [50, 80, 100], "name": "API calls of the plan's allowance"}
RULE_BODY = {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["customer_id", "kind"], "additionalProperties": True,
               "properties": {"customer_id": {"type": "string"}, "id": {"type": "string"},
                              "kind": {"type": "string", "enum": list(RULE_KINDS)}},
               "description": "A rule as in a rules file (billing/core/alerts/rules.py: every kind's fields) with "
                              "`customer_id` instead of `customers`."},
    "example": EXAMPLE}}}


class AlertRuleView(BaseModel):
    """A stored rule: its fields as in a rules file (defaults filled in), its customer, and its bookkeeping."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        **EXAMPLE, "thresholds": ["50", "80", "100"], "webhook": None, "created_at": "2026-12-07T22:00:00+00:00",
        "updated_at": "2026-12-07T22:00:00+00:00", "updated_by": "3f2a9c1d0e4b"}]})

    id: str
    customer_id: str
    kind: str
    created_at: datetime
    updated_at: datetime
    updated_by: str = Field(description="API key id of the last change, or `cli`.")


class AlertRulePage(BaseModel):
    """One page of stored rules ordered by id; pass ``next_after`` as ``after`` for the next page."""

    items: list[AlertRuleView]
    next_after: str | None = Field(description="Rule id to pass as `after` for the next page; null on the last page.")


RULE_ERRORS = {**AUTH_ERRORS, 404: problem("Unknown rule (or another tenant's)."),
               503: problem("The warehouse is down or not migrated; retry later.")}
WRITE_RULE_ERRORS = {**RULE_ERRORS, 400: problem("The body is not JSON."), 413: problem("The body exceeds 64 KiB."),
                     422: problem("Not a valid rule: unknown kind, meter or field, a threshold that is not a positive "
                                  "number, duplicate thresholds, a rule that can never fire, a webhook that is not http(s).")}


def _refused(exc: AlertRuleError) -> Problem:
    """The problem of a refused rule write."""
    if isinstance(exc, DuplicateRule):
        return Problem(409, str(exc), kind="alert-rule-exists")
    if isinstance(exc, UnknownRule):
        return Problem(404, str(exc), kind="unknown-alert-rule")
    if isinstance(exc, CustomerChange):
        return Problem(409, str(exc), kind="alert-rule-customer-fixed")
    return Problem(422, str(exc), kind="invalid-alert-rule")


async def _document(request: Request) -> Any:
    raw = await read_limited(request.headers.get("content-length"), request.stream(), MAX_RULE_BYTES)
    try:
        return loads_exact(raw)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"malformed JSON: {clip(str(exc), 200)}", kind="malformed-json") from None


def _parsed(ctx: ApiContext, document: Any, rule_id: str | None = None) -> tuple[str, AnyRule]:
    try:
        return customer_rule(document, "rule", meters=ctx.meters, catalog=ctx.catalog, rule_id=rule_id)
    except AlertRuleError as exc:
        raise _refused(exc) from None


def _owned(rules: AlertRules, key: ApiKey, rule_id: str) -> RuleRow:
    """The stored rule's owner; the same 404 for an unknown id and another tenant's rule."""
    found = rules.store.row(rule_id)
    if found is None or not key.may_access(found.customer_id):
        raise Problem(404, f"no alert rule {rule_id!r}", kind="unknown-alert-rule")
    return found


def _visible(rules: AlertRules, key: ApiKey, rule_id: str) -> StoredRule:
    """The stored rule, if the key may see it (:func:`_owned`)."""
    _owned(rules, key, rule_id)
    return rules.get(rule_id)


async def _with_rules(ctx: ApiContext, work: Callable[[AlertRules], T]) -> T:
    def guarded(rules: AlertRules) -> T:
        try:
            return work(rules)
        except UnknownCustomer as exc:
            raise Problem(404, str(exc), kind="unknown-customer") from None
        except AlertRuleError as exc:
            raise _refused(exc) from None
    return await ctx.warehouse.run(ctx.alert_rules.call, guarded)


def _view(stored: StoredRule, status: int = 200) -> JSONResponse:
    return JSONResponse(stored.view(), status_code=status, headers={"Location": f"/v1/alert-rules/{stored.id}"})


@router.post(
    "/v1/alert-rules", status_code=201, response_model=AlertRuleView, summary="Create an alert rule of a customer",
    description="Stores a rule that `billing alerts scan` evaluates from then on. `id` is optional (default: `rule-` and "
                "16 hex digits) and unique among the stored rules and the configured rules files.",
    openapi_extra={"requestBody": RULE_BODY},
    responses={**WRITE_RULE_ERRORS, 403: problem("The key may not access this customer."),
               404: problem("Unknown customer."), 409: problem("The rule id is taken.")},
)
async def create_alert_rule(request: Request, key: ApiKey = Depends(authenticated)) -> JSONResponse:
    ctx = context(request)
    customer_id, rule = _parsed(ctx, await _document(request))
    require_access(key, customer_id)
    return _view(await _with_rules(ctx, lambda rules: rules.create(customer_id, rule, by=key.key_id, now=datetime.now(UTC))),
                 201)


@router.get(
    "/v1/alert-rules", response_model=AlertRulePage, summary="List alert rules",
    description="The stored rules the key may see (every customer's for an admin key, its customers' for a tenant key), "
                "ordered by id, one page at a time: pass the previous page's `next_after` as `after`.",
    responses={**RULE_ERRORS, 403: problem("`customer_id` names a customer the key may not access.")},
)
async def list_alert_rules(
    request: Request,
    customer_id: Annotated[str | None, Query(description="Only this customer's rules.", max_length=128)] = None,
    after: Annotated[str, Query(description="Return rules with ids after this one.", max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    key: ApiKey = Depends(authenticated),
) -> AlertRulePage:
    if customer_id is not None:
        require_access(key, customer_id)
    customers = {customer_id} if customer_id is not None else None if key.admin else key.tenants
    found = await _with_rules(context(request), lambda rules: rules.store.list(customers=customers, after=after, limit=limit + 1))
    page = found[:limit]
    return AlertRulePage(items=[AlertRuleView(**stored.view()) for stored in page],
                         next_after=page[-1].id if len(found) > limit else None)


@router.get("/v1/alert-rules/{rule_id}", response_model=AlertRuleView, summary="An alert rule", responses=RULE_ERRORS)
async def get_alert_rule(request: Request, rule_id: str, key: ApiKey = Depends(authenticated)) -> JSONResponse:
    return _view(await _with_rules(context(request), lambda rules: _visible(rules, key, rule_id)))


@router.put(
    "/v1/alert-rules/{rule_id}", response_model=AlertRuleView, summary="Replace an alert rule",
    description="Replaces every field of the rule (as create takes them; `id` may be left out). The customer cannot "
                "change: delete the rule and create one for the other customer. Thresholds already fired in the "
                "current period stay fired.",
    openapi_extra={"requestBody": RULE_BODY},
    responses={**WRITE_RULE_ERRORS, 409: problem("The body names another customer than the rule's.")},
)
async def put_alert_rule(request: Request, rule_id: str, key: ApiKey = Depends(authenticated)) -> JSONResponse:
    ctx = context(request)
    document = await _document(request)

    def replace(rules: AlertRules) -> StoredRule:
        row = _owned(rules, key, rule_id)
        customer_id, rule = _parsed(ctx, document, rule_id)
        return rules.update(row, customer_id, rule, by=key.key_id, now=datetime.now(UTC))

    return _view(await _with_rules(ctx, replace))


@router.delete("/v1/alert-rules/{rule_id}", status_code=204, summary="Delete an alert rule",
               description="The rule stops being evaluated; the alerts it fired stay.", responses=RULE_ERRORS)
async def delete_alert_rule(request: Request, rule_id: str, key: ApiKey = Depends(authenticated)) -> Response:
    await _with_rules(context(request), lambda rules: rules.delete(_owned(rules, key, rule_id), by=key.key_id,
                                                                   now=datetime.now(UTC)))
    return Response(status_code=204)
