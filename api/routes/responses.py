"""OpenAPI pieces shared by the query and management routes: error responses and path ids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field

from api.problems import PROBLEM_JSON
from billing.core.contracts import Id


class ProblemDocument(BaseModel):
    """RFC 7807 problem details (`application/problem+json`)."""

    type: str = Field(examples=["https://billing.example/problems/unknown-customer"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no customer 'cust-42' in the warehouse"])
    instance: str | None = Field(default=None, examples=["/v1/customers/cust-42"])


_SCHEMA = ProblemDocument.model_json_schema()


def problem(description: str) -> dict[str, Any]:
    """An error response of ``description`` documented as a problem document."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _SCHEMA}}}


AUTH_ERRORS = {
    401: problem("Missing or unknown API key."),
    403: problem("The key may not access this customer (tenant keys see only their own customers)."),
    422: problem("Invalid path, query or body (per-field reasons in `errors`)."),
    429: problem("Rate limit exceeded (see Retry-After)."),
}
READ_ERRORS = {
    **AUTH_ERRORS,
    404: problem("Unknown customer (or invoice, subscription)."),
    503: problem("The warehouse is down or not migrated; retry later (see Retry-After)."),
}
WRITE_ERRORS = {
    **AUTH_ERRORS,
    400: problem("The body is not JSON."),
    403: problem("Writes need an admin key."),
    503: problem("Kafka did not confirm the event, or the warehouse (read to validate the write) is down; retry."),
}

CustomerId = Annotated[Id, Path(description="The customer id.")]
InvoiceId = Annotated[Id, Path(description="The invoice id (`inv-<customer id>-<YYYYMM>`).")]
SubscriptionId = Annotated[Id, Path(description="The subscription id.")]
