"""Wait for a confluent-kafka producer's deliveries from asyncio code without leaving the event loop's thread.

``Producer.flush()`` serves the delivery and log callbacks on the calling thread. Run in an executor
thread (``asyncio.to_thread``), that is a different thread from the one that produced, and during a
broker restart confluent-kafka 2.16 returned from such a flush with a corrupt exception
(``SystemError: _PyErr_SetObject: exception <class 'str'> is not a BaseException subclass``),
which crashed a stream worker. :func:`drain` polls instead (``len(producer)`` counts the messages
not yet acknowledged and the delivery reports not yet served), on the loop's thread, and yields to the
loop between polls, so every callback runs where the messages were produced.
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import Producer

log = logging.getLogger("billing.kafka.drain")

POLL_INTERVAL_S = 0.002


async def drain(producer: Producer, what: str, warn_every_s: float = 30.0) -> None:
    """Return once the broker acknowledged (or refused) every message ``producer`` holds; warn every
    ``warn_every_s`` while it has not (``what`` names the messages). Never gives up: a caller whose
    messages never time out waits out a broker outage here."""
    warned = time.monotonic()
    while True:
        producer.poll(0)
        if not len(producer):
            return
        await asyncio.sleep(POLL_INTERVAL_S)
        if time.monotonic() - warned >= warn_every_s:
            log.warning("%s not acknowledged by Kafka yet (%d waiting); waiting", what, len(producer))
            warned = time.monotonic()
