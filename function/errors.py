"""Request-level rejections: the invocation stops before anything is sent to KPS."""

from __future__ import annotations

import re
from typing import Any, Callable

_PLAIN = re.compile(r"[A-Za-z0-9_.-]{1,24}")  # short enough to be no secret (a secret key has 40 characters)

# Code -> the status an API Gateway caller receives. Bad input is the caller's to fix (4xx);
# configuration is the operator's (500).
REJECTION_STATUS = {
    "InvalidEvent": 400,
    "InvalidProjectId": 400,
    "InvalidRegion": 400,
    "MissingProjectId": 400,
    "ProjectNotAllowed": 403,
    "MethodNotAllowed": 405,
    "MissingRegion": 500,
    "NoCredentials": 500,
    "InsecureEndpoint": 500,
    "InvalidSetting": 500,
}

# Request-level errors that are failures, not refusals: something was (or may have been) attempted.
FAILURE_STATUS = {
    "InternalError": 500,
    "ProjectListingFailed": 502,
    "DeadlineExceeded": 504,
}


class SweepFailed(Exception):
    """IAM could not list the projects for a sweep: nothing was cleaned. Lives here, not beside the
    sweep, so that handling it never imports the HTTP stack."""

    def __init__(self, reply: Any) -> None:
        error = reply.error or {}
        super().__init__(f"listing projects in IAM failed: {error.get('code')}: {error.get('message')}")
        self.reply = reply


class Rejected(Exception):
    """Raised while reading the event, settings or credentials; becomes a ``rejected`` payload."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        if code not in REJECTION_STATUS:
            raise ValueError(f"unknown rejection code {code!r}")
        self.code = code
        self.message = message


def named(text: Any, what: str = "a key") -> str:
    """A caller's key or name in a refusal (which is logged): quoted only when it is a short plain
    identifier, otherwise described, since a caller may paste a token anywhere. A key that is not a string
    (a Python caller's) is described by that alone: its ``str()`` may raise, or be as large as it likes."""
    if not isinstance(text, str):
        return f"{what} that is not a string"
    if _PLAIN.fullmatch(text):
        return repr(text)
    plain = "" if text.isascii() and text.isprintable() else ", not all printable ASCII"
    return f"{what} of {len(text)} characters{plain}"


_JSON_TYPES = {list: "an array", dict: "an object", str: "a string", bool: "a boolean", int: "a number"}
_JSON_TYPES[float] = "a number"


def json_type(value: Any) -> str:
    """A caller's value in a refusal by its JSON type alone (its text may be a pasted token)."""
    return _JSON_TYPES.get(type(value), "null" if value is None else "a value of no JSON type")


def unique_keys(refuse: Callable[[str], Exception]) -> Callable[[list[tuple[Any, Any]]], dict]:
    """A ``json`` ``object_pairs_hook`` that raises ``refuse(message)`` for a key given twice, which
    ``json`` would silently read as the last."""

    def hook(pairs: list[tuple[Any, Any]]) -> dict:
        built: dict = {}
        for key, value in pairs:
            if key in built:
                raise refuse(f"the key {named(key)} is given more than once")
            built[key] = value
        return built

    return hook
