"""FunctionGraph entry point, configured as ``handler.handler``. All logic lives in ``function/``."""

from __future__ import annotations

from typing import Any

from function.cleaner import handle


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, context)
