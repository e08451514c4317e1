"""The `sysctl` example worker: reads kernel parameters and compares them with expected values.

A key such as `net.ipv4.ip_forward` names the file
`/proc/sys/net/ipv4/ip_forward`, the same mapping that sysctl(8) uses. Keys
are validated in the config model, and files are read through a
`PathPolicy` confined to the proc root, so a task never reads outside it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasky.context import TaskContext
from tasky.errors import TaskyError
from tasky.files import PathPolicy, PathRejected
from tasky.worker import Worker

# Dot-separated names of letters, digits, '_' and '-'. '.' is the separator,
# so a name cannot be '..', and '/' is not allowed at all.
# NOTE: keys under an interface whose name contains a dot, such as the VLAN
# 'eth0.100', cannot be named. sysctl(8) uses '/' as separator for those.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
KEY_MAX_LENGTH = 255

# Cap on the bytes read from one key, so that a huge file cannot fill memory.
# A longer value is cut off at this size.
VALUE_MAX_BYTES = 64 * 1024

Operator = Literal["eq", "ne", "lt", "le", "gt", "ge"]

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


class SysctlMismatch(TaskyError):
    """Failure of a task whose config sets `fail_on_mismatch` and has checks that are not ok."""

    code = "sysctl_mismatch"


class SysctlCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        ...,
        max_length=KEY_MAX_LENGTH,
        description="Kernel parameter in sysctl notation, such as net.ipv4.ip_forward.",
    )
    expected: str | int | float | None = Field(
        None,
        description="Value to compare with; leave it out to read the value only.",
    )
    op: Operator = Field(
        "eq",
        description=(
            "Comparison of the value with expected: eq, ne, lt, le, gt or ge. Numbers compare as numbers; "
            "other values support only eq and ne."
        ),
    )

    @field_validator("key")
    @classmethod
    def _validate_key(cls, key: str) -> str:
        if not KEY_PATTERN.match(key):
            raise ValueError(
                "key must be dot-separated names of letters, digits, '_' and '-', such as net.ipv4.ip_forward; "
                "empty names, '..' and '/' are not allowed"
            )
        return key


class SysctlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[SysctlCheck] = Field(
        ...,
        min_length=1,
        max_length=1000,
        description="Keys to read, each with an optional expected value and comparison.",
    )
    fail_on_mismatch: bool = Field(
        False,
        description="Fail the task when a check is not ok, including an unknown or unreadable key.",
    )


class SysctlWorker(Worker):
    name = "sysctl"
    description = """
        Read kernel parameters (sysctl keys) and compare them with expected values.

        Each check names a key such as net.ipv4.ip_forward and may give an
        expected value and a comparison (eq, ne, lt, le, gt, ge). Numbers are
        compared as numbers. The result lists each key with its value and
        whether it is ok, and "ok" is true when every check is. An unknown or
        unreadable key is reported on its own check and counts as not ok. With
        "fail_on_mismatch": true the task fails when a check is not ok.
        Config: {"checks": [{"key": "net.ipv4.ip_forward", "expected": 0}]}.
        """
    config = SysctlConfig
    max_tasks = 10
    restartable = True
    examples = [
        {"checks": [{"key": "net.ipv4.ip_forward", "expected": 0}]},
        {"checks": [{"key": "fs.file-max", "expected": 100000, "op": "ge"}], "fail_on_mismatch": True},
    ]

    def __init__(self, proc_root: Path = Path("/proc/sys")) -> None:
        self.proc_root = Path(proc_root)

    def disabled_reason(self) -> str | None:
        if not self.proc_root.is_dir():
            return f"the sysctl folder {str(self.proc_root)!r} does not exist, so no key can be read; it exists on Linux"
        return None

    def perform(self, config: SysctlConfig, ctx: TaskContext) -> dict[str, Any]:
        policy = PathPolicy([self.proc_root])
        total = len(config.checks)
        results = []
        for index, check in enumerate(config.checks):
            ctx.checkpoint()
            results.append(run_check(policy, check))
            ctx.progress(index + 1, total, f"read {index + 1} of {total} keys")

        failed = [result for result in results if result["ok"] is False]
        if failed and config.fail_on_mismatch:
            listed = "; ".join(_describe_failure(result) for result in failed)
            raise SysctlMismatch(f"{len(failed)} of {total} sysctl checks are not ok: {listed}", detail={"checks": results})
        return {"checks": results, "ok": not failed}


class SysctlKeyError(Exception):
    """A key cannot be read; reported on its check, never raised out of the task."""


def run_check(policy: PathPolicy, check: SysctlCheck) -> dict[str, Any]:
    """Read one key and compare it; errors go into the entry's `error` and make `ok` false."""
    result: dict[str, Any] = {
        "key": check.key,
        "value": None,
        "expected": check.expected,
        "op": check.op,
        "ok": None,
        "error": None,
    }
    try:
        result["value"] = read_key(policy, check.key)
    except SysctlKeyError as exc:
        result["ok"] = False
        result["error"] = str(exc)
        return result

    if check.expected is None:
        return result
    try:
        result["ok"] = compare(result["value"], check.op, check.expected)
    except ValueError as exc:
        result["ok"] = False
        result["error"] = str(exc)
    return result


def read_key(policy: PathPolicy, key: str) -> str:
    """Read a key's value with runs of whitespace collapsed to one space; raise `SysctlKeyError`."""
    path = policy.roots[0].joinpath(*key.split("."))
    try:
        with policy.open_source(path) as value_file:
            raw = value_file.read(VALUE_MAX_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        raise SysctlKeyError(f"unknown key {key!r}: {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SysctlKeyError(f"{key!r} is a group of keys, not a key; name one of the keys under it") from None
    except PathRejected as exc:
        raise SysctlKeyError(f"key {key!r} cannot be read: {exc}") from None
    except OSError as exc:
        raise SysctlKeyError(f"key {key!r} is unreadable: {exc.strerror or exc}") from None
    return " ".join(raw.decode("utf-8", errors="replace").split())


def compare(value: str, op: str, expected: str | int | float) -> bool:
    """Compare a read value with the expected one; raise ValueError when `op` cannot order them."""
    value_number = parse_number(value)
    expected_number = expected if _is_number(expected) else parse_number(str(expected))
    if value_number is not None and expected_number is not None:
        return OPERATORS[op](value_number, expected_number)
    if op in ("eq", "ne"):
        return OPERATORS[op](value, " ".join(str(expected).split()))
    side = "value" if value_number is None else "expected value"
    not_number = value if value_number is None else expected
    raise ValueError(f"{side} {not_number!r} is not a number, so op {op!r} cannot compare it; use eq or ne")


def parse_number(text: str) -> int | float | None:
    """Return `text` as an int or a finite float, or None when it is not a single number."""
    text = text.strip()
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _describe_failure(result: dict[str, Any]) -> str:
    if result["error"]:
        return f"{result['key']}: {result['error']}"
    return f"{result['key']} is {result['value']!r}, expected {result['op']} {result['expected']!r}"

