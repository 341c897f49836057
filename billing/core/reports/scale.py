"""The value axis of a report's bar charts: round tick values (1, 2 or 5 times a power of ten apart)."""

from __future__ import annotations

import math

STEPS = (1, 2, 5, 10)
SMALLEST_SPAN = 1e-9


def ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` evenly spaced round values from at or below ``min(low, 0)`` to at or above ``max(high, 0)``;
    always two or more, one of them 0 (values closer together than :data:`SMALLEST_SPAN` get an axis that wide)."""
    low, high = min(low, 0.0), max(high, 0.0)
    wanted = max(high - low, SMALLEST_SPAN) / count
    power = 10.0 ** math.floor(math.log10(wanted))
    step = next(m * power for m in STEPS if m * power >= wanted)
    first = math.floor(low / step)
    last = max(first + 1, math.ceil(high / step))
    return [i * step for i in range(first, last + 1)]
