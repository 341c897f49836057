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

from billing.core.errors import ConfigError

ROUNDING = ROUND_HALF_UP

# ISO 4217 code -> number of minor-unit digits. Extend here to accept more currencies.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0,
    "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2,
    "SAR": 2, "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2, "TWD": 2, "UGX": 0, "USD": 2, "VND": 0,
    "XOF": 0, "ZAR": 2,
}


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency and the size of its minor unit."""

    code: str
    minor_units: int

    @property
    def quantum(self) -> Decimal:
        """The smallest amount: ``0.01`` for USD, ``1`` for JPY, ``0.001`` for KWD."""
        return Decimal(1).scaleb(-self.minor_units)

    def round(self, amount: Decimal) -> Decimal:
        """Round ``amount`` half-up to this currency's minor unit."""
        return amount.quantize(self.quantum, rounding=ROUNDING)

    def format(self, amount: Decimal) -> str:
        """``1234.5 -> '1,234.50 USD'`` (rounded for display)."""
        return f"{self.round(amount):,.{self.minor_units}f} {self.code}"


_CURRENCIES = {code: Currency(code, digits) for code, digits in MINOR_UNITS.items()}


def currency(code: str) -> Currency:
    """Look up a currency by ISO code; unknown codes raise :class:`ConfigError`."""
    found = _CURRENCIES.get(code.upper()) if isinstance(code, str) else None
    if found is None:
        raise ConfigError(f"unknown currency {code!r}; known: {', '.join(sorted(_CURRENCIES))}")
    return found
