"""DIRAC's S_OK / S_ERROR result dictionaries, so plugin code reads the same as in DIRAC."""

from __future__ import annotations

from typing import Any


def S_OK(value: Any = None) -> dict[str, Any]:
    return {"OK": True, "Value": value}


def S_ERROR(message: str = "") -> dict[str, Any]:
    return {"OK": False, "Message": message}
