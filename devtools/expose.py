"""make expose: the function's HTTP triggers on a dedicated API Gateway instance, created or updated idempotently.

Development only (never deployed): it drives FunctionGraph's own API through the official client,
huaweicloudsdkfunctiongraph (requirements-dev.txt). The fgs component cannot do this: its APIG trigger is
the shared gateway's, which takes no new customers. One trigger of type DEDICATEDGATEWAY per method the
function serves (GET, POST, DELETE: an API has one ``req_method``), all on the path ``/{function}``, IAM
authentication, HTTPS, backend timeout at most 60 s and at least 2 s (``payload_margin_ms``) above the function's
``KPS_HTTP_BUDGET_SECONDS`` (read
from the deployed function's configuration, ShowFunctionConfig's ``user_data``; the default when it is not set,
or when the caller may not read the configuration). ``--endpoint`` is HTTPS, or plain HTTP to loopback only
(the calls are signed and may carry a security token), as the function's own endpoints.

The event-data fields are those of CreateFunctionTrigger's TriggerEventDataRequestBody (FunctionGraph API
reference; huaweicloudsdkfunctiongraph 3.1.205 ``v2/model/trigger_event_data_request_body.py``; Terraform's
``huaweicloud_fgs_function_trigger`` passes the same JSON as ``event_data``). UpdateTrigger changes only a
trigger's status and a few polling fields (``UpdateriggerEventData``), so a trigger whose API settings differ
is replaced (deleted, then created); an identical one is left alone, or re-activated if it was disabled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from function.errors import Rejected
from function.payload import HTTP_METHODS
from function.settings import PROJECT_ID, REGION, default_of, parse_endpoint

# The fixed event data, shared with Terraform's deploy/terraform/triggers.tf (which reads the same file).
HTTP_TRIGGER = json.loads((Path(__file__).resolve().parent.parent / "deploy/terraform/http-trigger.json").read_text())
TRIGGER_TYPE = "DEDICATEDGATEWAY"
# What identifies our trigger for a method, and what must match for it to be left alone.
IDENTITY = ("instance_id", "group_id", "path", "req_method")
COMPARED = (*IDENTITY, "env_id", "env_name", "name", "type", "protocol", "match_mode", "auth")
MAX_BACKEND_TIMEOUT_MS: int = HTTP_TRIGGER["max_backend_timeout_ms"]
# What the payload needs, after the function's HTTP budget, to reach the gateway before its own 504.
PAYLOAD_MARGIN_MS: int = HTTP_TRIGGER["payload_margin_ms"]


def min_backend_timeout_ms(budget_seconds: float) -> float:
    """The shortest backend timeout that lets the function's payload (within its HTTP budget) reach the caller."""
    return budget_seconds * 1000 + PAYLOAD_MARGIN_MS


class Config(NamedTuple):
    region: str
    project_id: str
    function_name: str
    instance_id: str
    group_id: str
    env_name: str
    env_id: str
    timeout_ms: int
    endpoint: str | None = None

    @property
    def function_urn(self) -> str:
        """As the fgs component builds it (``handlerUrn``): the function of the default app, its latest code."""
        return f"urn:fss:{self.region}:{self.project_id}:function:default:{self.function_name}"

    def event_data(self, method: str) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "group_id": self.group_id,
            "env_id": self.env_id,
            "env_name": self.env_name,
            "name": f"{self.function_name.replace('-', '_')}_{method.lower()}",
            "type": HTTP_TRIGGER["type"],  # 1: a public API
            "path": f"/{self.function_name}",
            "protocol": HTTP_TRIGGER["protocol"],
            "req_method": method,
            "match_mode": HTTP_TRIGGER["match_mode"],  # NORMAL: the exact path, nothing below it
            "auth": HTTP_TRIGGER["auth"],
            "func_info": {"timeout": self.timeout_ms, "invocation_type": HTTP_TRIGGER["invocation_type"]},
        }


class Action(NamedTuple):
    kind: str  # create | replace | activate | unchanged | delete (a duplicate)
    method: str
    trigger_id: str | None = None


def _endpoint_problem(endpoint: str | None) -> str | None:
    try:
        parse_endpoint(endpoint, "--endpoint") if endpoint else None
    except Rejected as refused:
        return refused.message
    return None


def validate(config: Config) -> None:
    """Refuses what would make a broken or unsafe trigger, before anything is sent."""
    checks = (
        (REGION.fullmatch(config.region), f"REGION {config.region!r} is not a region name"),
        (PROJECT_ID.fullmatch(config.project_id), "PROJECT_ID must be 32 lower-case hex characters"),
        (config.instance_id, "APIG_INSTANCE_ID is required"),
        (config.group_id, "APIG_GROUP_ID is required"),
        (config.env_name and config.env_id, "APIG_ENV_NAME and APIG_ENV_ID are required"),
        (0 < config.timeout_ms <= MAX_BACKEND_TIMEOUT_MS, f"APIG_TIMEOUT_MS must be 1 to {MAX_BACKEND_TIMEOUT_MS}"),
        (_endpoint_problem(config.endpoint) is None, _endpoint_problem(config.endpoint)),
    )
    problems = [message for passed, message in checks if not passed]
    if problems:
        raise SystemExit("make expose: " + "; ".join(problems))


def check_timeout(config: Config, budget_seconds: float, where: str) -> None:
    """The gateway must wait for the function's HTTP budget and the payload's way back, or its own 504 comes first."""
    if config.timeout_ms < min_backend_timeout_ms(budget_seconds):
        raise SystemExit(
            f"make expose: APIG_TIMEOUT_MS ({config.timeout_ms}) must be at least the function's HTTP budget "
            f"({budget_seconds * 1000:g} ms, {where}) plus {PAYLOAD_MARGIN_MS} ms for the payload"
        )


def http_budget(client: Any, config: Config) -> tuple[float, str]:
    """The deployed function's HTTP budget in seconds (the smaller of KPS_HTTP_BUDGET_SECONDS and its
    timeout) and where it comes from; the setting's default if the configuration cannot be read."""
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkfunctiongraph.v2 import ShowFunctionConfigRequest

    default = float(default_of("KPS_HTTP_BUDGET_SECONDS"))
    try:
        found = client.show_function_config(ShowFunctionConfigRequest(function_urn=config.function_urn))
    except ClientRequestException as exc:
        if exc.status_code not in (403, 404):
            raise
        print(f"make expose: the function's configuration is unreadable ({exc.status_code}); "
              f"assuming the default HTTP budget {default:g} s", file=sys.stderr)  # fmt: skip
        return default, "the default: the function's configuration could not be read"
    try:
        user_data = json.loads(found.user_data or "{}")
        budget = float(user_data.get("KPS_HTTP_BUDGET_SECONDS", default))
    except (ValueError, TypeError, AttributeError):
        budget = default
    where = "the deployed function's KPS_HTTP_BUDGET_SECONDS"
    if isinstance(found.timeout, int) and found.timeout < budget:
        return float(found.timeout), "the deployed function's timeout"
    return budget, where


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    timeout = (current.get("func_info") or {}).get("timeout")
    return all(str(current.get(k)) == str(wanted[k]) for k in COMPARED) and timeout == wanted["func_info"]["timeout"]


def plan(existing: list[dict[str, Any]], config: Config) -> list[Action]:
    """What to do, from the function's current triggers: one trigger per method, exactly as configured."""
    actions: list[Action] = []
    for method in HTTP_METHODS:
        wanted = config.event_data(method)
        ours = [
            t
            for t in existing
            if t.get("trigger_type_code") == TRIGGER_TYPE
            and all(str((t.get("event_data") or {}).get(k)) == str(wanted[k]) for k in IDENTITY)
        ]
        if not ours:
            actions.append(Action("create", method))
            continue
        first, *duplicates = ours
        if not _same(first.get("event_data") or {}, wanted):
            actions.append(Action("replace", method, first["trigger_id"]))
        elif first.get("trigger_status") != "ACTIVE":
            actions.append(Action("activate", method, first["trigger_id"]))
        else:
            actions.append(Action("unchanged", method, first["trigger_id"]))
        actions += [Action("delete", method, t["trigger_id"]) for t in duplicates]
    return actions


def _client(config: Config) -> Any:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient
    from huaweicloudsdkfunctiongraph.v2.region.functiongraph_region import FunctionGraphRegion

    ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK", ""), os.environ.get("HUAWEICLOUD_SDK_SK", "")
    if not (ak and sk):
        raise SystemExit("make expose: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK (an IAM user's access key)")
    # With the project given, the client never asks IAM for it; X-Project-Id is signed on every call.
    credentials = BasicCredentials(ak, sk, config.project_id)
    if os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN"):
        credentials = credentials.with_security_token(os.environ["HUAWEICLOUD_SDK_SECURITY_TOKEN"])
    builder = FunctionGraphClient.new_builder().with_credentials(credentials)
    if config.endpoint:
        builder = builder.with_endpoints([config.endpoint])
    else:
        builder = builder.with_region(FunctionGraphRegion.value_of(config.region))
    return builder.build()


def _create(client: Any, config: Config, method: str) -> str:
    from huaweicloudsdkfunctiongraph.v2 import (
        ApigTriggerFuncInfo,
        CreateFunctionTriggerRequest,
        CreateFunctionTriggerRequestBody,
        TriggerEventDataRequestBody,
    )

    data = config.event_data(method)
    event_data = TriggerEventDataRequestBody(**{**data, "func_info": ApigTriggerFuncInfo(**data["func_info"])})
    body = CreateFunctionTriggerRequestBody(
        trigger_type_code=TRIGGER_TYPE, trigger_status="ACTIVE", event_data=event_data
    )
    response = client.create_function_trigger(CreateFunctionTriggerRequest(function_urn=config.function_urn, body=body))
    return response.trigger_id


def _delete(client: Any, config: Config, trigger_id: str) -> None:
    from huaweicloudsdkfunctiongraph.v2 import DeleteFunctionTriggerRequest

    client.delete_function_trigger(
        DeleteFunctionTriggerRequest(
            function_urn=config.function_urn, trigger_type_code=TRIGGER_TYPE, trigger_id=trigger_id
        )
    )


def _activate(client: Any, config: Config, trigger_id: str) -> None:
    from huaweicloudsdkfunctiongraph.v2 import UpdateTriggerRequest, UpdateTriggerRequestBody

    client.update_trigger(
        UpdateTriggerRequest(
            function_urn=config.function_urn,
            trigger_type_code=TRIGGER_TYPE,
            trigger_id=trigger_id,
            body=UpdateTriggerRequestBody(trigger_status="ACTIVE"),
        )
    )


def expose(config: Config) -> list[Action]:
    """Lists the function's triggers, then creates, replaces or re-activates ours; returns what it did."""
    from huaweicloudsdkfunctiongraph.v2 import ListFunctionTriggersRequest

    validate(config)
    client = _client(config)
    check_timeout(config, *http_budget(client, config))
    listed = client.list_function_triggers(ListFunctionTriggersRequest(function_urn=config.function_urn)).body or []
    actions = plan([t.to_dict() for t in listed], config)
    done = []
    for action in actions:
        if action.kind in ("replace", "delete"):
            _delete(client, config, action.trigger_id)  # type: ignore[arg-type]
        if action.kind in ("create", "replace"):
            action = action._replace(trigger_id=_create(client, config, action.method))  # noqa: PLW2901
        if action.kind == "activate":
            _activate(client, config, action.trigger_id)  # type: ignore[arg-type]
        done.append(action)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--project-id", required=True, help="the project the function lives in")
    parser.add_argument("--function", default="kps-failed-task-cleaner")
    parser.add_argument("--instance-id", default="", help="the dedicated API Gateway instance")
    parser.add_argument("--group-id", default="", help="an API group of that instance")
    parser.add_argument("--env-name", default="RELEASE")
    parser.add_argument("--env-id", default="DEFAULT_ENVIRONMENT_RELEASE_ID", help="RELEASE's id on every instance")
    parser.add_argument("--timeout-ms", type=int, default=MAX_BACKEND_TIMEOUT_MS)
    parser.add_argument("--endpoint", default=None, help="FunctionGraph endpoint (default: the region's)")
    args = parser.parse_args(argv)
    config = Config(
        args.region,
        args.project_id,
        args.function,
        args.instance_id,
        args.group_id,
        args.env_name,
        args.env_id,
        args.timeout_ms,
        args.endpoint,
    )
    for action in expose(config):
        print(f"{action.method:6} {TRIGGER_TYPE} trigger {action.trigger_id}: {action.kind}")
    print(f"https://<group domain>/{config.function_name}  (GET: dry run; POST, DELETE: clean; IAM auth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
