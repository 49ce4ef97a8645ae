"""The operations every storefront service has (health, readiness, metrics, its own OpenAPI
document), for the OpenAPI document each service builds from its own and these."""

from __future__ import annotations

from typing import Any

from shared.http.openapi import Answer, Operation, ProblemDetails

_CHECKS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {
            "status": {"enum": ["up", "down"]},
            "latency_ms": {"type": "number"},
            "error": {"type": "string"},
        },
        "required": ["status", "latency_ms"],
    },
}
_HEALTH = {
    "type": "object",
    "properties": {"status": {"const": "ok"}, "service": {"type": "string"}},
    "required": ["status", "service"],
}
_READY = {
    "type": "object",
    "properties": {"status": {"const": "ready"}, "service": {"type": "string"}, "checks": _CHECKS},
    "required": ["status", "service", "checks"],
}

OPERATIONS = (
    Operation(
        "GET",
        "/health",
        "Liveness: the process answers",
        (Answer(200, "Alive.", _HEALTH),),
        tag="operations",
        database=False,
    ),
    Operation(
        "GET",
        "/ready",
        "Readiness: every dependency answers in time",
        (
            Answer(200, "Every dependency is up.", _READY),
            Answer(503, "A dependency is down; `checks` says which.", ProblemDetails),
        ),
        tag="operations",
        database=False,
    ),
    Operation(
        "GET",
        "/metrics",
        "Metrics in the Prometheus text format",
        (Answer(200, "The exposition.", {"type": "string"}, media="text/plain"),),
        tag="operations",
        access="metrics",
        database=False,
    ),
    Operation(
        "GET",
        "/openapi.json",
        "This document",
        (Answer(200, "The OpenAPI 3.1 document of the service.", {"type": "object"}),),
        tag="operations",
        database=False,
    ),
)
