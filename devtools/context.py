"""A FunctionGraph context double that is no smarter than the real one.

Real context methods return empty strings, not None, for absent values; ``getUserData`` holds the
function's environment variables, encrypted ones included; the remaining time counts down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping


class FakeContext:
    def __init__(
        self,
        *,
        user_data: Mapping[str, str] | None = None,
        timeout_seconds: float = 30.0,
        request_id: str | None = None,
        access_key: str = "",
        secret_key: str = "",
        security_token: str = "",
        token: str = "",
        function_name: str = "kps-failed-task-cleaner",
        version: str = "latest",
        memory_mb: int = 128,
    ) -> None:
        self._user_data = dict(user_data or {})
        self._deadline = time.monotonic() + timeout_seconds
        self._timeout = timeout_seconds
        self._request_id = request_id or str(uuid.uuid4())
        self._keys = (access_key, secret_key, security_token)
        self._token = token
        self._function_name = function_name
        self._version = version
        self._memory_mb = memory_mb

    def getRequestID(self) -> str:  # noqa: N802 - FunctionGraph's method names
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def getRunningTimeInSeconds(self) -> int:  # noqa: N802
        return int(self._timeout)

    def getSecurityAccessKey(self) -> str:  # noqa: N802
        return self._keys[0]

    def getSecuritySecretKey(self) -> str:  # noqa: N802
        return self._keys[1]

    def getSecurityToken(self) -> str:  # noqa: N802
        return self._keys[2]

    def getToken(self) -> str:  # noqa: N802
        return self._token

    def getAccessKey(self) -> str:  # noqa: N802 - deprecated on the platform: no usable key
        return ""

    def getSecretKey(self) -> str:  # noqa: N802
        return ""

    def getUserData(self, key: str, default: str = "") -> str:  # noqa: N802
        return self._user_data.get(key, default)

    def getFunctionName(self) -> str:  # noqa: N802
        return self._function_name

    def getVersion(self) -> str:  # noqa: N802
        return self._version

    def getAlias(self) -> str:  # noqa: N802
        return ""

    def getPackage(self) -> str:  # noqa: N802
        return "default"

    def getMemorySize(self) -> int:  # noqa: N802
        return self._memory_mb

    def getCPUNumber(self) -> int:  # noqa: N802
        return 300
