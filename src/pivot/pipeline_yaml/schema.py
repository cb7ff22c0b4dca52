"""The JSON schema of `pivot.yaml` (`pivot schema`), for editors and CI checks.

The loader (`pivot.pipeline_yaml.stages`) checks the same rules with file:line errors; this is
the shape written down once for tools. Imports nothing of Pivot's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pivot_yaml_schema"]

_PATH = {"type": "string", "minLength": 1}
_PATHS = {"oneOf": [_PATH, {"type": "array", "items": _PATH, "minItems": 1}]}
_OUT_OVERRIDE = {
    "oneOf": [
        *_PATHS["oneOf"],
        {
            "type": "object",
            "properties": {"path": _PATHS, "cache": {"type": "boolean"}},
            "additionalProperties": False,
        },
    ]
}
_COMMAND_OUT = {
    "oneOf": [
        _PATH,
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {"cache": {"type": "boolean"}},
                        "additionalProperties": False,
                    },
                ]
            },
        },
    ]
}
_PARAM_KEYS = {
    "type": "array",
    "description": "cmd stages: keys read from params.yaml (or {file.yaml: [keys]}).",
    "items": {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        ]
    },
}
_CONDITION = {
    "type": "object",
    "minProperties": 1,
    "description": "dimension -> value name",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}


def _stage() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One stage, or the base of a matrix of stages named base@v1_v2.",
        "oneOf": [{"required": ["python"]}, {"required": ["cmd"]}],
        "properties": {
            "python": {
                "type": "string",
                "pattern": r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$",
                "description": "A module-level stage function, as module.path.function.",
            },
            "cmd": {
                "description": "A shell command run from the project root (or a list, joined by &&).",
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            },
            "params": {
                "description": "python stages: StageParams field values; cmd stages: keys to read.",
                "oneOf": [{"type": "object"}, _PARAM_KEYS],
            },
            "deps": {
                "description": "python: parameter -> path(s) (dep_path_overrides); cmd: paths.",
                "oneOf": [
                    {"type": "object", "additionalProperties": _PATHS},
                    {"type": "array", "items": _PATH},
                ],
            },
            "outs": {
                "description": "python: output -> path(s) (out_path_overrides); cmd: paths.",
                "oneOf": [
                    {"type": "object", "additionalProperties": _OUT_OVERRIDE},
                    {"type": "array", "items": _COMMAND_OUT},
                ],
            },
            "metrics": {"type": "array", "items": _COMMAND_OUT, "description": "cmd stages"},
            "plots": {"type": "array", "items": _COMMAND_OUT, "description": "cmd stages"},
            "matrix": {
                "type": "object",
                "minProperties": 1,
                "description": "dimension -> values (a list, or a mapping of name -> value).",
                "additionalProperties": {
                    "oneOf": [
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": ["string", "number", "boolean"]},
                        },
                        {"type": "object", "minProperties": 1},
                    ]
                },
            },
            "exclude": {"type": "array", "items": _CONDITION},
            "overrides": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["when"],
                    "properties": {
                        "when": _CONDITION,
                        "params": {},
                        "deps": {},
                        "outs": {},
                        "metrics": {},
                        "plots": {},
                        "cmd": {},
                    },
                    "additionalProperties": False,
                },
            },
            "desc": {"type": "string"},
        },
        "additionalProperties": False,
    }


def pivot_yaml_schema() -> dict[str, Any]:
    """The JSON schema (draft-07) of a pivot.yaml document."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "pivot.yaml",
        "description": "Pivot stages in YAML: python functions by module path, or shell commands.",
        "type": "object",
        "required": ["stages"],
        "properties": {
            "vars": {
                "description": "Values for ${...}: mappings, or YAML/JSON files in the project.",
                "oneOf": [
                    {"type": "object"},
                    {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
                ],
            },
            "stages": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$"},
                "additionalProperties": _stage(),
            },
        },
        "additionalProperties": False,
    }
