"""red16b: the 3.1 -> 3.0 rewrite passes 2020-12 keywords 3.0 lacks through unchanged (numeric exclusiveMinimum,
patternProperties, prefixItems, minContains): the output is then not 3.0, or means something else. Strict beats
clever: each is converted or refused, never copied."""

from __future__ import annotations

import pytest

from devtools import openapi30

openapi_schema_validator = pytest.importorskip("openapi_schema_validator")


def test_a_numeric_exclusive_minimum_is_rewritten_as_3_0_reads_it():
    """2020-12 `exclusiveMinimum: 0` is 3.0's `minimum: 0, exclusiveMinimum: true`; copied, 3.0 reads a number
    where it wants a boolean, and 0 itself passes."""
    out = openapi30.schema({"type": "number", "exclusiveMinimum": 0})
    assert out == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert not openapi_schema_validator.OAS30Validator(out).is_valid(0)


@pytest.mark.parametrize(
    "node",
    [
        {"type": "object", "patternProperties": {"^a": {"type": "string"}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "array", "contains": {"const": 1}, "minContains": 2},
        {"type": "object", "unevaluatedProperties": False},
    ],
)
def test_a_keyword_3_0_lacks_is_refused_not_copied(node):
    with pytest.raises(ValueError):
        openapi30.schema(node)
