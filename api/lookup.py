"""Access checks and lookups shared by the customer-scoped endpoints (403 before 404, so a key
cannot probe which customers of other tenants exist)."""

from __future__ import annotations

from api import reads
from api.auth import require_access
from api.context import ApiContext
from api.keys import ApiKey
from api.problems import Problem


def unknown_customer(customer_id: str) -> Problem:
    """404 for a customer the warehouse does not have."""
    return Problem(404, f"no customer {customer_id!r} in the warehouse (a customer created with POST /v1/customers "
                        "appears once the stream worker has stored it)", kind="unknown-customer")


async def readable_customer(ctx: ApiContext, key: ApiKey, customer_id: str) -> None:
    """403 unless ``key`` may read ``customer_id``; 404 when the warehouse does not have it."""
    require_access(key, customer_id)
    if not await ctx.warehouse.read(reads.customer_exists, customer_id):
        raise unknown_customer(customer_id)
