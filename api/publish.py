"""Management writes are event-sourced: the API publishes the contract event to its topic (acks=all,
keyed by customer id) and answers 202; the stream worker stores it in the warehouse, where reads
see it once written."""

from __future__ import annotations

import orjson

from api.context import ApiContext
from api.problems import Problem
from api.schemas import WriteAccepted
from billing.core.contracts import Contract, to_bytes


async def publish(ctx: ApiContext, topic: str, customer_id: str, event: Contract) -> WriteAccepted:
    """Publish ``event`` to the logical ``topic`` and wait for the broker's confirmation; 503 otherwise."""
    name = ctx.settings.topics()[topic]
    payload = to_bytes(event)
    [error] = await ctx.producer.send(name, [(customer_id.encode(), payload)])
    if error:
        raise Problem(503, f"Kafka did not confirm the {topic} event: {error}; retry the request",
                      kind="delivery-failed", headers={"Retry-After": "1"})
    return WriteAccepted(topic=name, event=orjson.loads(payload))
