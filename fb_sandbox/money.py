"""Amounts in minor units, formatted for error_user_msg the way Ads Manager shows them."""

from __future__ import annotations

CURRENCIES = {  # code -> (symbol, minor digits)
    "USD": ("$", 2),
    "EUR": ("€", 2),
    "GBP": ("£", 2),
    "CAD": ("CA$", 2),
    "AUD": ("A$", 2),
    "JPY": ("¥", 0),
    "KRW": ("₩", 0),
    "TWD": ("NT$", 0),
    "CLP": ("CLP", 0),
    "VND": ("₫", 0),
    "HUF": ("HUF", 0),
    "ISK": ("ISK", 0),
    "IDR": ("Rp", 0),
    "COP": ("COP", 0),
    "CRC": ("CRC", 0),
    "PYG": ("PYG", 0),
}


def fmt(amount: int, currency: str) -> str:
    symbol, digits = CURRENCIES.get(currency, (currency + " ", 2))
    if digits == 0:
        return f"{symbol}{amount:,}"
    return f"{symbol}{amount / 10**digits:,.{digits}f}"
