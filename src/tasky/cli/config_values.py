"""Build a task config from `--config FILE|-` and `-c key=value` options.

Each value is parsed against the type that the worker's JSON Schema gives
its field: integers, numbers, booleans, strings, null, lists (JSON, or
comma-separated scalars) and objects (JSON). A value that does not parse
raises `UsageError` naming the field. Range checks and required fields stay
with the server, which responds 422 with field-level reasons.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, cast

import orjson

from tasky.cli.invocation import UsageError

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NULL_WORDS = frozenset({"null", "none"})


class InvalidValue(ValueError):
    """A raw text does not parse as the schema type. The message names the expected type."""


def build_config(worker: str, schema: dict[str, Any], pairs: list[str], base: dict[str, Any]) -> dict[str, Any]:
    """Merge `-c key=value` pairs, parsed against `schema`, over the `base` config."""
    config = dict(base)
    given: set[str] = set()
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise UsageError(f"-c expects key=value, got {pair!r}; for example: -c seconds=3")
        if key in given:
            raise UsageError(f"-c {key} is given twice; give each field once")
        given.add(key)
        field_schema = field_of(worker, schema, key)
        try:
            config[key] = parse_value(schema, field_schema, raw)
        except InvalidValue as exc:
            raise UsageError(f"invalid value for field '{key}' of worker {worker}: {exc}") from None
    return config


def read_config_file(source: str) -> dict[str, Any]:
    """Read a JSON object from a file, or from stdin when `source` is '-'."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {source}: {exc.strerror or exc}") from None
    try:
        config = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        where = "stdin" if source == "-" else source
        raise UsageError(f"config in {where} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"config in {source} must be a JSON object, got {type(config).__name__}")
    return cast(dict[str, Any], config)


def field_of(worker: str, schema: dict[str, Any], key: str) -> dict[str, Any]:
    """Return the schema of field `key`; raise `UsageError` for a field the worker does not take."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    if key in properties:
        return properties[key]
    if schema.get("additionalProperties") is False:
        known = ", ".join(properties) or "none"
        raise UsageError(f"worker {worker} has no field '{key}'; its fields are: {known} (see: tasky info {worker})")
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def parse_value(root: dict[str, Any], schema: dict[str, Any], raw: str) -> Any:
    """Parse `raw` as the JSON Schema `schema` describes; `root` resolves `$ref`s."""
    schema = _resolve(root, schema)
    if "const" in schema or "enum" in schema:
        return _parse_choice(root, schema, raw)
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        return _parse_first(root, variants, raw)
    types = schema.get("type")
    if isinstance(types, list):
        return _parse_first(root, [{**schema, "type": name} for name in types], raw)
    if types is None:
        return _parse_any(raw)
    return _parse_typed(root, schema, types, raw)


def _parse_typed(root: dict[str, Any], schema: dict[str, Any], type_name: str, raw: str) -> Any:
    text = raw.strip()
    if type_name == "string":
        return raw
    if type_name == "integer":
        try:
            return int(text)
        except ValueError:
            raise InvalidValue(f"expected an integer, got {raw!r}") from None
    if type_name == "number":
        return _parse_number(raw)
    if type_name == "boolean":
        return _parse_boolean(raw)
    if type_name == "null":
        if text.lower() in NULL_WORDS:
            return None
        raise InvalidValue(f"expected null, got {raw!r}")
    if type_name == "array":
        return _parse_array(root, schema, raw)
    if type_name == "object":
        return _parse_json(raw, dict, "a JSON object such as {\"key\": \"value\"}")
    return _parse_any(raw)


def _parse_number(raw: str) -> int | float:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise InvalidValue(f"expected a number, got {raw!r}") from None
    if not math.isfinite(number):
        raise InvalidValue(f"expected a finite number, got {raw!r}")
    return number


def _parse_boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidValue(f"expected true or false, got {raw!r}")


def _parse_array(root: dict[str, Any], schema: dict[str, Any], raw: str) -> list[Any]:
    text = raw.strip()
    if text.startswith("["):
        return cast(list[Any], _parse_json(raw, list, "a JSON list such as [1, 2]"))
    if not text:
        return []
    items = schema.get("items", {})
    if _resolve(root, items).get("type") in ("object", "array"):
        raise InvalidValue(f"expected a JSON list of objects such as [{{...}}], got {raw!r}")
    return [parse_value(root, items, part) for part in text.split(",")]


def _parse_choice(root: dict[str, Any], schema: dict[str, Any], raw: str) -> Any:
    choices = [schema["const"]] if "const" in schema else list(schema["enum"])
    for choice in choices:
        if raw.strip() == (choice if isinstance(choice, str) else orjson.dumps(choice).decode()):
            return choice
    listed = ", ".join(str(choice) for choice in choices)
    raise InvalidValue(f"expected one of {listed}, got {raw!r}")


def _parse_first(root: dict[str, Any], variants: list[dict[str, Any]], raw: str) -> Any:
    # A string accepts any text, so it is tried last: "5" for `str | int` means 5.
    ordered = sorted(variants, key=lambda variant: _resolve(root, variant).get("type") == "string")
    reasons = []
    for variant in ordered:
        try:
            return parse_value(root, variant, raw)
        except InvalidValue as exc:
            reasons.append(str(exc).partition(", got")[0].removeprefix("expected "))
    raise InvalidValue(f"expected {' or '.join(reasons)}, got {raw!r}")


def _parse_json(raw: str, kind: type, example: str) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidValue(f"expected {example}, got {raw!r}") from None
    if not isinstance(value, kind):
        raise InvalidValue(f"expected {example}, got {raw!r}")
    return value


def _parse_any(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def _resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return {**target, **{key: value for key, value in schema.items() if key != "$ref"}}
