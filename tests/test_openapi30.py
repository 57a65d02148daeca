"""api/openapi-apig.yaml: generated from api/openapi.yaml and the payload schema (never a hand-kept twin), valid
OpenAPI 3.0, self-contained, with a FunctionGraph backend on every operation, and meaning what the source means."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from conftest import PAYLOAD_SCHEMA, PAYLOAD_VALIDATOR, ROOT
from jsonschema import Draft202012Validator
from test_payload_schema import FAILED, PAYLOAD, RESULT, TASK

from devtools import expose, openapi30
from function.settings import default_of

spec_validator = pytest.importorskip("openapi_spec_validator")
schema_validator = pytest.importorskip("openapi_schema_validator")

# 3.1 / JSON Schema 2020-12 keywords OpenAPI 3.0's Schema Object does not have.
NOT_IN_30 = {
    "const",
    "examples",
    "$defs",
    "$schema",
    "$id",
    "$comment",
    "if",
    "then",
    "else",
    "contains",
    "prefixItems",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load(openapi30.OUTPUT.read_text())


def test_the_committed_file_is_the_generated_one():
    assert openapi30.OUTPUT.read_text() == openapi30.render(openapi30.generate()), "run make openapi"


def test_it_is_valid_openapi_30(document):
    assert document["openapi"].startswith("3.0.")
    spec_validator.validate(document, cls=spec_validator.OpenAPIV30SpecValidator)


def walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def resolve(document: dict, ref: str) -> Any:
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_it_is_self_contained_and_every_reference_resolves(document):
    refs = [value for _, key, value in walk(document) if key == "$ref"]
    assert refs and all(ref.startswith("#/") for ref in refs), "no external $ref: API Gateway imports one file"
    for ref in refs:
        resolve(document, ref)
    assert "Payload" in document["components"]["schemas"]


def test_no_31_construct_is_left_in_a_schema(document):
    schemas = [document["components"]["schemas"]]
    schemas += [value for _, key, value in walk(document["paths"]) if key == "schema"]
    schemas += [value["schema"] for value in document["components"]["headers"].values()]
    for tree in schemas:
        for path, key, value in walk(tree):
            if "/properties/" in path + "/" and path.endswith("/properties"):
                continue  # a property's name, not a keyword
            assert key not in NOT_IN_30, (path, key)
            assert not (key == "type" and (isinstance(value, list) or value == "null")), (path, value)


def test_every_operation_has_a_functiongraph_backend(document):
    operations = openapi30.operations(document)
    assert {method for path in document["paths"].values() for method in path} >= {"get", "post", "delete"}
    budget_ms = 1000 * float(default_of("KPS_HTTP_BUDGET_SECONDS"))
    for operation in operations:
        backend = operation["x-apigateway-backend"]
        assert backend["type"] == "FUNCTION"
        endpoints = backend["functionEndpoints"]
        assert {"function-urn", "version", "invocation-type", "timeout"} <= set(endpoints)
        assert endpoints["invocation-type"] == expose.HTTP_TRIGGER["invocation_type"]
        assert expose.min_backend_timeout_ms(budget_ms / 1000) <= endpoints["timeout"] <= expose.MAX_BACKEND_TIMEOUT_MS
        assert operation["x-apigateway-request-type"] == "public", "type 1 in http-trigger.json: Terraform's kind"
    assert expose.HTTP_TRIGGER["type"] == 1 and openapi30.REQUEST_TYPE == "public"


def test_a_deployments_own_urn_and_timeout(tmp_path):
    urn = "urn:fss:cn-north-4:0123456789abcdef0123456789abcdef:function:default:kps-failed-task-cleaner"
    assert openapi30.main(["--output", str(tmp_path / "api.yaml"), "--function-urn", urn, "--timeout-ms", "58000"]) == 0
    written = yaml.safe_load((tmp_path / "api.yaml").read_text())
    endpoints = [op["x-apigateway-backend"]["functionEndpoints"] for op in openapi30.operations(written)]
    assert {(e["function-urn"], e["timeout"]) for e in endpoints} == {(urn, 58000)}


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        (["--timeout-ms", "60001"], False),  # API Gateway's backend limit
        (["--timeout-ms", "30000"], False),  # under the default HTTP budget: the gateway's 504 answers first
        (["--timeout-ms", "55001"], False),  # above the budget, but the payload needs 2 s to reach the gateway
        (["--timeout-ms", "56999"], False),
        (["--timeout-ms", "57000"], True),
        (["--timeout-ms", "32000", "--http-budget-seconds", "30"], True),  # a deployment's own budget
        (["--timeout-ms", "31999", "--http-budget-seconds", "30"], False),
    ],
)
def test_the_backend_timeout_is_checked_as_terraform_and_make_expose_check_it(tmp_path, args, ok):
    output = tmp_path / "api.yaml"
    if ok:
        assert openapi30.main(["--output", str(output), *args]) == 0 and output.exists()
        return
    with pytest.raises(SystemExit):
        openapi30.main(["--output", str(output), *args])
    assert not output.exists()


def test_the_413_says_what_api_gateway_forwards(document):
    """API Gateway forwards up to 12 MB; FunctionGraph refuses 6 to 12 MB (docs/http-api.md)."""
    text = openapi30.OUTPUT.read_text()
    assert "over FunctionGraph's 6 MB)" not in text and "over the 12 MB it forwards" in text
    assert "12 MB" in document["components"]["responses"]["PayloadTooLarge"]["description"]


def payload_variants() -> list[Any]:
    """Payloads the source schema accepts, and near misses of each kind it refuses."""
    refused = {"code": "InvalidEvent", "message": "m"}
    good = [
        PAYLOAD,
        {**PAYLOAD, "ok": False, "status": "partial", "results": [RESULT, FAILED]},
        {**PAYLOAD, "dry_run": True, "results": [{**RESULT, "outcome": "would_delete", "sample": [TASK]}]},
        {**PAYLOAD, "ok": False, "status": "rejected", "results": [], "error": refused},
    ]
    variants: list[Any] = [*good, None, [], "payload", {}]
    for payload in good:
        for key in payload:
            for value in (None, "x", 1, -1, True, [], {}, ...):
                variant = copy.deepcopy(payload)
                if value is ...:
                    del variant[key]
                else:
                    variant[key] = value
                variants.append(variant)
        for key in payload["results"][0] if payload["results"] else ():
            for value in (None, "x", 42, True, {}, ...):
                variant = copy.deepcopy(payload)
                if value is ...:
                    del variant["results"][0][key]
                else:
                    variant["results"][0][key] = value
                variants.append(variant)
    return variants


def test_the_payload_schema_means_the_same_in_30(document):
    """Every variant: accepted by the 3.0 schema exactly when the 2020-12 source accepts it."""
    root = {**document["components"]["schemas"]["Payload"], "components": document["components"]}
    validator = schema_validator.OAS30Validator(root)
    variants = payload_variants()
    verdicts = [(PAYLOAD_VALIDATOR.is_valid(v), validator.is_valid(v)) for v in variants]
    disagreements = [(json.dumps(v)[:200], s, t) for v, (s, t) in zip(variants, verdicts) if s != t]
    assert disagreements == []
    assert sum(s for s, _ in verdicts) >= 4 and sum(not s for s, _ in verdicts) > 100, "both kinds were tried"
    assert PAYLOAD_SCHEMA["$schema"].endswith("2020-12/schema")


def test_the_generator_converts_each_31_construct():
    assert openapi30.schema({"type": ["string", "null"]}) == {"type": "string", "nullable": True}
    assert openapi30.schema({"const": "x"}) == {"enum": ["x"]}
    assert openapi30.schema({"type": "string", "examples": ["a", "b"]}) == {"type": "string", "example": "a"}
    assert openapi30.schema({"oneOf": [{"type": "null"}, {"$ref": "#/$defs/x"}]}) == {
        "oneOf": [{"nullable": True, "enum": [None]}, {"$ref": "#/components/schemas/PayloadX"}]
    }
    assert openapi30.schema({"$ref": "#/components/schemas/A", "description": "d"}) == {
        "allOf": [{"$ref": "#/components/schemas/A"}],
        "description": "d",
    }
    assert openapi30.schema({"type": ["string", "array"]}) == {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {}}]
    }
    with pytest.raises(ValueError, match="external"):
        openapi30.schema({"$ref": "https://example.com/other.json"})


@pytest.mark.parametrize(
    ("source", "wanted", "refused", "allowed"),
    [
        ({"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0, "exclusiveMinimum": True}, 0, 1),
        ({"exclusiveMaximum": 10}, {"maximum": 10, "exclusiveMaximum": True}, 10, 9),
        ({"minimum": 5, "exclusiveMinimum": 0}, {"minimum": 5}, 4, 5),  # the stricter bound alone
        ({"minimum": 0, "exclusiveMinimum": 0}, {"minimum": 0, "exclusiveMinimum": True}, 0, 1),
        ({"maximum": 5, "exclusiveMaximum": 9}, {"maximum": 5}, 6, 5),
    ],
)
def test_a_numeric_exclusive_bound_is_rewritten_as_3_0_reads_it(source, wanted, refused, allowed):
    """2020-12's number is 3.0's ``minimum`` with ``exclusiveMinimum: true``: copied, 3.0 wants a boolean there and
    the bound itself passes."""
    out = openapi30.schema(source)
    assert out == wanted
    validator = schema_validator.OAS30Validator(out)
    assert not validator.is_valid(refused) and validator.is_valid(allowed)
    source_reading = Draft202012Validator(source)  # what the 2020-12 source means
    assert source_reading.is_valid(allowed) and not source_reading.is_valid(refused)


@pytest.mark.parametrize(
    "node",
    [
        {"type": "object", "patternProperties": {"^a": {"type": "string"}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "array", "contains": {"const": 1}, "minContains": 2},
        {"type": "object", "unevaluatedProperties": False},
        {"type": "object", "properties": {"a": {"$defs": {"b": {}}}}},
        {"type": "object", "propertyNames": {"pattern": "^a"}},
        {"exclusiveMinimum": True},  # 3.0's form in the 2020-12 source: a mistake
    ],
)
def test_a_keyword_3_0_lacks_is_refused_not_copied(node):
    """Strict beats clever: a construct the generator does not convert fails the generation, never the import."""
    with pytest.raises((ValueError, TypeError)):
        openapi30.schema(node)


def test_the_make_target():
    makefile = (ROOT / "Makefile").read_text()
    assert "openapi: venv" in makefile and "-m devtools.openapi30" in makefile
