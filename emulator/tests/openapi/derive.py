#!/usr/bin/env python3
"""Derives the conformance oracle in this folder from Meta's OpenAPI description.

    python3 derive.py PATH/TO/business-messaging-api_v23.0.yaml

writes `operations.json` beside this script: for each operation the tests drive, its
request examples (verbatim), its query parameters, and each declared response with its
schema ($refs resolved, annotations such as `description` and `example` dropped) and its
examples. The tests read only that JSON; run this again when the description changes and
review the diff.

Needs PyYAML. The schemas kept may use only the keywords the tests' validator knows
(`SUPPORTED`); anything else stops the script, so the validator never silently skips a
rule.
"""

import json
import os
import sys

import yaml

OPERATIONS = [
    ("/{Version}/{Phone-Number-ID}/messages", "post"),
    ("/{Version}/{Phone-Number-ID}/calls", "post"),
    ("/{Version}/{Phone-Number-ID}/call_permissions", "get"),
    ("/{Version}/{Phone-Number-ID}/settings", "get"),
    ("/{Version}/{Phone-Number-ID}/settings", "post"),
    ("/{Version}/{WABA-ID}/message_templates", "get"),
    ("/{Version}/{WABA-ID}/message_templates", "post"),
    ("/{Version}/{WABA-ID}/message_templates", "delete"),
    ("/{Version}/{TEMPLATE_ID}", "get"),
]

# Schema keywords the validator in emulator/tests/emulator/openapi.rs implements.
SUPPORTED = {
    "type", "properties", "required", "items", "enum", "oneOf", "anyOf", "allOf",
    "nullable", "additionalProperties",
}
# Annotations: they say nothing a response can violate.
ANNOTATIONS = {
    "description", "example", "examples", "format", "title", "summary", "deprecated",
    "readOnly", "writeOnly", "externalDocs", "default", "discriminator",
}


def resolve(spec, node, seen=()):
    """`node` with every $ref replaced by its target (a cycle stops the script)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                sys.exit(f"cyclic $ref {ref}")
            target = spec
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            return resolve(spec, target, seen + (ref,))
        return {k: resolve(spec, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(spec, v, seen) for v in node]
    return node


def clean(schema, where):
    """A resolved schema without annotations; unknown keywords stop the script."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key not in SUPPORTED:
            sys.exit(f"{where}: schema keyword {key!r} is not supported by the validator")
        if key == "properties":
            out[key] = {name: clean(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = clean(value, f"{where}[]") if isinstance(value, dict) else value
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [clean(sub, f"{where}/{key}[{i}]") for i, sub in enumerate(value)]
        else:
            out[key] = value
    return out


def examples_of(media):
    return {name: ex["value"] for name, ex in (media.get("examples") or {}).items() if "value" in ex}


def derive(spec):
    operations = []
    for path, method in OPERATIONS:
        item = spec["paths"][path]
        op = resolve(spec, item[method])
        params = resolve(spec, item.get("parameters", [])) + op.get("parameters", [])
        query = [
            {
                "name": p["name"],
                "required": p.get("required", False),
                "example": p.get("schema", {}).get("example", p.get("example")),
            }
            for p in params
            if p.get("in") == "query"
        ]
        request = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
        responses = {}
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json")
            if media is None:
                continue
            responses[status] = {
                "description": response.get("description", ""),
                "schema": clean(media["schema"], f"{op['operationId']} {status}"),
                "examples": examples_of(media),
            }
        operations.append(
            {
                "operation_id": op["operationId"],
                "method": method.upper(),
                "path": path,
                "summary": op.get("summary", ""),
                "query": query,
                "request_examples": examples_of(request),
                "responses": responses,
            }
        )
    error = clean(resolve(spec, spec["components"]["schemas"]["ErrorResponse"]), "ErrorResponse")
    return {
        "source": {
            "file": "business-messaging-api_v23.0.yaml",
            "title": spec["info"]["title"],
            "openapi": spec["openapi"],
            "version": spec["info"]["version"],
            "license": "MIT, Copyright (c) Meta Platforms, Inc. and affiliates (see LICENSE)",
        },
        "graph_error": error,
        "operations": operations,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "operations.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(derive(spec), f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
