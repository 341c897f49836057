"""Currencies, minor units and the one rounding rule of the project.

Amounts are :class:`~decimal.Decimal` everywhere. Prices in plans may carry more decimals than
the currency has (``0.0004`` USD per API call); an amount is rounded to the currency's minor unit
once, when it becomes an invoice line, a discount, a tax or a true-up. Rounding is **half-up**
(commercial rounding, ``ROUND_HALF_UP``): ``0.005 USD -> 0.01``, ``-0.005 -> -0.01``. It is what
tax authorities and customers expect on an invoice; banker's rounding would surprise an auditor
who recomputes a line by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.core import get_global
from babel.numbers import get_currency_precision

from billing.core.errors import ConfigError

ROUNDING = ROUND_HALF_UP


def _in_use() -> dict[str, int]:
    """ISO 4217 code -> minor-unit digits of every currency that is legal tender somewhere today,
    from the Unicode CLDR data Babel maintains (historical, test and precious-metal codes left out)."""
    codes = {code for currencies in get_global("territory_currencies").values()
             for code, _since, until, tender in currencies if until is None and tender}
    return {code: get_currency_precision(code) for code in sorted(codes)}


MINOR_UNITS: dict[str, int] = _in_use()
"""ISO 4217 code -> number of minor-unit digits (CLDR, through Babel)."""


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency and the size of its minor unit."""

    code: str
    minor_units: int

    @property
    def quantum(self) -> Decimal:
        """The smallest amount: ``0.01`` for USD, ``1`` for JPY, ``0.001`` for KWD."""
        return _quantum(self.minor_units)

    def round(self, amount: Decimal) -> Decimal:
        """Round ``amount`` half-up to this currency's minor unit."""
        return amount.quantize(self.quantum, rounding=ROUNDING)

    def format(self, amount: Decimal) -> str:
        """``1234.5 -> '1,234.50 USD'`` (rounded for display)."""
        return f"{self.round(amount):,.{self.minor_units}f} {self.code}"


@cache
def _quantum(minor_units: int) -> Decimal:
    return Decimal(1).scaleb(-minor_units)


_CURRENCIES = {code: Currency(code, digits) for code, digits in MINOR_UNITS.items()}


def currency(code: str) -> Currency:
    """Look up a currency by ISO code; unknown codes raise :class:`ConfigError`."""
    found = _CURRENCIES.get(code.upper()) if isinstance(code, str) else None
    if found is None:
        raise ConfigError(f"unknown currency {code!r}; use an ISO 4217 code in use, such as USD, EUR or JPY")
    return found
