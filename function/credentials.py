"""Chooses the credentials and applies them to a request.

Order, the first present wins: ``HUAWEICLOUD_SDK_AK``/``SK`` (+ ``SECURITY_TOKEN``), ``KPS_AUTH_TOKEN``,
the agency's temporary keys from the context, the agency's token. AK/SK requests are signed by
huaweicloudsdkcore's own signer (imported only on that path: it costs start-up time); a KPS call also signs
``X-Project-Id``, its target's project.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from .context import context_value
from .errors import Rejected
from .settings import Settings


class Credentials(NamedTuple):
    source: str
    ak: str = ""
    sk: str = ""
    security_token: str = ""
    token: str = ""
    project_id: str = ""  # the project a regional call acts on: signed as X-Project-Id

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, kind={self.kind!r})"

    def for_project(self, project_id: str) -> Credentials:
        """Scoped to one project of a regional service, as the SDK's ``BasicCredentials(ak, sk, project_id)``."""
        return self._replace(project_id=project_id)

    @property
    def kind(self) -> str:
        return "aksk" if self.ak else "token"

    def authorize(self, method: str, endpoint: str, path: str, query: list[tuple[str, str]]) -> tuple[str, dict]:
        """Returns the URL to call and the headers that authenticate it."""
        if self.kind == "token":
            url = endpoint + path + (f"?{urlencode(query)}" if query else "")
            return url, {"X-Auth-Token": self.token}
        return self._sign(method, endpoint, path, query)

    def _sign(self, method: str, endpoint: str, path: str, query: list[tuple[str, str]]) -> tuple[str, dict]:
        from huaweicloudsdkcore.sdk_request import SdkRequest
        from huaweicloudsdkcore.signer.signer import Signer

        parts = urlsplit(endpoint)
        # The signer would call datetime.utcnow() (deprecated since 3.12) when the date is missing.
        headers = {"X-Sdk-Date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")}
        if self.security_token:
            headers["X-Security-Token"] = self.security_token
        # huaweicloudsdkcore 3.1.219 auth/credentials.py: BasicCredentials.sign_request sets X-Project-Id before
        # signing (GlobalCredentials, for IAM, sets X-Domain-Id instead); the signing guide requires it for
        # resources in sub-projects. IAM calls are not scoped to a project and go without it.
        if self.project_id:
            headers["X-Project-Id"] = self.project_id
        request = SdkRequest(
            method=method,
            schema=parts.scheme,
            host=parts.netloc,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body="",
        )
        Signer(self).sign(request)
        return request.url, dict(request.header_params)


def resolve_credentials(settings: Settings, context: Any) -> Credentials:
    if settings.ak or settings.sk:
        if not (settings.ak and settings.sk):
            raise Rejected("InvalidSetting", "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK must be set together")
        return Credentials("HUAWEICLOUD_SDK_AK", ak=settings.ak, sk=settings.sk, security_token=settings.security_token)
    if settings.auth_token:
        return Credentials("KPS_AUTH_TOKEN", token=settings.auth_token)
    ak, sk = context_value(context, "getSecurityAccessKey"), context_value(context, "getSecuritySecretKey")
    if ak and sk:
        return Credentials("agency keys", ak=ak, sk=sk, security_token=context_value(context, "getSecurityToken"))
    token = context_value(context, "getToken")
    if token:
        return Credentials("agency token", token=token)
    raise Rejected("NoCredentials", "no HUAWEICLOUD_SDK_AK/SK, no KPS_AUTH_TOKEN and no agency on the function")
