"""When a failed delivery is tried again: exponential backoff with jitter, capped.

The pause after failed attempt ``n`` (1-based) is ``min(max_s, base_s * 2**(n-1))`` shortened by a
random share of at most ``jitter`` (so retries of many deliveries that failed together spread out
instead of arriving together). After ``max_attempts`` failed attempts a delivery is dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry policy (its values come from the settings)."""

    base_s: float
    max_s: float
    jitter: float
    max_attempts: int

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.max_s >= self.base_s and 0 <= self.jitter < 1 and self.max_attempts >= 1):
            raise ValueError("backoff needs base_s > 0, max_s >= base_s, 0 <= jitter < 1 and max_attempts >= 1")

    def nominal(self, attempt: int) -> float:
        """The pause after failed attempt ``attempt`` before jitter."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        return self.max_s if attempt > 64 else min(self.max_s, self.base_s * 2 ** (attempt - 1))

    def delay(self, attempt: int, draw: float) -> float:
        """The pause after failed attempt ``attempt``; ``draw`` in [0, 1) picks the jitter."""
        if not 0 <= draw < 1:
            raise ValueError(f"draw must be in [0, 1), got {draw}")
        return self.nominal(attempt) * (1 - self.jitter * draw)

    def exhausted(self, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` was the last one (the delivery is dead-lettered)."""
        return attempt >= self.max_attempts
