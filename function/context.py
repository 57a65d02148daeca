"""Reading FunctionGraph's context object, whose methods vary between runtime builds."""

from __future__ import annotations

import os
from typing import Any


def context_value(context: Any, method: str, fallback_env: str = "") -> str:
    """The method's value; "" (or the fallback variable) when the runtime lacks the method, it fails,
    or it has nothing. Real contexts answer "" for absent values; some builds lack methods altogether."""
    getter = getattr(context, method, None)
    try:
        value = getter() if getter is not None else ""
    except Exception:  # noqa: BLE001 - absent is absent, whatever the runtime raised
        value = ""
    if isinstance(value, str) and value:
        return value
    return os.environ.get(fallback_env, "") if fallback_env else ""
