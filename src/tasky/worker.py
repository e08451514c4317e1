"""The worker contract, the function-form decorator and the worker registry.

A worker is a registered kind of job: a name, a description, a pydantic
config model, limits and `perform(config, ctx)`. Developers subclass `Worker`
or decorate a function with `@worker`; both end up as `Worker` instances in a
`WorkerRegistry`, which rejects duplicate and invalid names at start-up.
Running tasks is the executor's job, not this module's.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from tasky.context import TaskContext
from tasky.errors import ConfigurationError, InvalidConfig
from tasky.retry import RetryPolicy

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class EmptyConfig(BaseModel):
    """Config of a worker that takes no settings."""

    model_config = ConfigDict(extra="forbid")


class Worker:
    """Base class of a worker; subclass it and implement `perform`.

    Class attributes are defaults that an instance may override in
    `__init__`, so one class can be registered twice under two names with
    different limits.
    """

    name: str = ""
    description: str = ""
    config: type[BaseModel] = EmptyConfig
    max_tasks: int = 1
    restartable: bool = False
    timeout_s: float | None = None  # default run-time limit of a task; paused time does not count
    retry: RetryPolicy | None = None
    isolation: Literal["thread", "process"] = "thread"
    kill_grace_s: float = 5.0  # between SIGTERM and SIGKILL for process work and ctx.run children
    max_queued: int | None = None
    queue_policy: Literal["queue", "reject"] = "queue"
    examples: ClassVar[list[dict[str, Any]]] = []

    def perform(self, config: Any, ctx: TaskContext) -> Any:
        raise NotImplementedError(f"worker {self.name!r} does not implement perform()")

    def disabled_reason(self) -> str | None:
        """Return why the worker accepts no new tasks right now, or None when it does."""
        return None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.perform)

    def validate_config(self, raw: Any) -> BaseModel:
        """Validate a task body against the config model; raise `InvalidConfig` with field reasons."""
        try:
            return self.config.model_validate(raw)
        except ValidationError as exc:
            fields = [
                {"field": ".".join(str(part) for part in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            names = ", ".join(field["field"] for field in fields)
            raise InvalidConfig(
                f"invalid config for worker {self.name!r}: check {names}; the schema is at /tasky/v1/workers/{self.name}/info",
                detail=fields,
            ) from None

    def validate_request(self, raw: Any) -> BaseModel:
        """Validate the config of a task being created or edited: the model first, then `check_config`."""
        config = self.validate_config(raw)
        self.check_config(config)
        return config

    def check_config(self, config: BaseModel) -> None:
        """Check a validated config against the server's own settings when a task is created or edited.

        Override it to reject, with `InvalidConfig` and a 422, what the model
        alone cannot know is wrong, such as a path outside the allowed
        folders. It is not called again when the task runs, so `perform`
        must still check whatever can change in between.
        """

    def info(self) -> dict[str, Any]:
        """Describe the worker for `/workers/` and `/workers/{name}/info`."""
        reason = self.disabled_reason()
        return {
            "name": self.name,
            "description": inspect.cleandoc(self.description or ""),
            "status": "disabled" if reason else "enabled",
            "status_reason": reason,
            "config_schema": self.config.model_json_schema(),
            "examples": list(self.examples),
            "limits": {
                "max_tasks": self.max_tasks,
                "restartable": self.restartable,
                "timeout_s": self.timeout_s,
                "retry": self.retry.describe() if self.retry else None,
                "isolation": self.isolation,
                "kill_grace_s": self.kill_grace_s,
                "max_queued": self.max_queued,
                "queue_policy": self.queue_policy,
            },
        }


class FunctionWorker(Worker):
    """A worker built by `@worker` from a plain or async function."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        description: str,
        max_tasks: int,
        restartable: bool,
        timeout_s: float | None,
        **limits: Any,
    ) -> None:
        self._func = func
        self._ctx_param = _context_parameter(func)
        self.name = name
        self.description = description
        self.config = _model_from_signature(func, self._ctx_param, name)
        self.max_tasks = max_tasks
        self.restartable = restartable
        self.timeout_s = timeout_s
        for key, value in limits.items():
            setattr(self, key, value)
        if inspect.iscoroutinefunction(func):
            self.perform = self._perform_async  # type: ignore[method-assign]

    def __reduce__(self) -> tuple[Any, ...]:
        # The decorator replaces the function in its module by this object,
        # so a child process finds the worker again by module and name.
        return (_load_attribute, (self._func.__module__, self._func.__qualname__))

    def perform(self, config: Any, ctx: TaskContext) -> Any:
        return self._func(**self._arguments(config, ctx))

    async def _perform_async(self, config: Any, ctx: TaskContext) -> Any:
        return await self._func(**self._arguments(config, ctx))

    def _arguments(self, config: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        arguments = {field: getattr(config, field) for field in type(config).model_fields}
        if self._ctx_param:
            arguments[self._ctx_param] = ctx
        return arguments


def worker(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    max_tasks: int = 1,
    restartable: bool = False,
    timeout_s: float | None = None,
    retry: RetryPolicy | None = None,
    isolation: Literal["thread", "process"] = "thread",
    kill_grace_s: float = 5.0,
    max_queued: int | None = None,
    queue_policy: Literal["queue", "reject"] = "queue",
) -> Any:
    """Turn a function into a worker; its parameters become the config fields.

    A parameter named `ctx` (or annotated `TaskContext`) receives the context
    and is left out of the config. Use as `@worker` or `@worker(name=...)`.
    """

    def build(target: Callable[..., Any]) -> FunctionWorker:
        return FunctionWorker(
            target,
            name=name or target.__name__.replace("_", "-"),
            description=description if description is not None else inspect.getdoc(target) or "",
            max_tasks=max_tasks,
            restartable=restartable,
            timeout_s=timeout_s,
            retry=retry,
            isolation=isolation,
            kill_grace_s=kill_grace_s,
            max_queued=max_queued,
            queue_policy=queue_policy,
        )

    return build(func) if func is not None else build


class WorkerRegistry:
    """The workers that one tasky app serves, by name."""

    def __init__(self, workers: Iterable[Worker] = ()) -> None:
        self._workers: dict[str, Worker] = {}
        for item in workers:
            self.register(item)

    def register(self, item: Worker) -> Worker:
        """Add a worker instance; raise `ConfigurationError` on a bad or duplicate name or limit."""
        if isinstance(item, type):
            raise ConfigurationError(f"register a worker instance, not the class {item.__name__}: use {item.__name__}()")
        if not isinstance(item, Worker):
            raise ConfigurationError(f"{item!r} is not a tasky Worker; subclass tasky.Worker or use @tasky.worker")
        _check_definition(item)
        if item.name in self._workers:
            raise ConfigurationError(
                f"two workers are named {item.name!r} ({type(self._workers[item.name]).__name__} and "
                f"{type(item).__name__}); give one of them another name"
            )
        self._workers[item.name] = item
        return item

    def get(self, name: str) -> Worker | None:
        return self._workers.get(name)

    def names(self) -> list[str]:
        return sorted(self._workers)

    def __iter__(self) -> Iterator[Worker]:
        return iter(self._workers[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._workers)

    def __contains__(self, name: object) -> bool:
        return name in self._workers


def load_workers_module(module_name: str) -> list[Worker]:
    """Import a module and collect its worker instances (or its `WORKERS` list)."""
    if not module_name or module_name.startswith(".") or "/" in module_name:
        raise ConfigurationError(
            f"invalid workers module name {module_name!r}: give a dotted Python module name such as mypkg.jobs"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing user code ends start-up with its message
        raise ConfigurationError(
            f"cannot import workers module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    declared = getattr(module, "WORKERS", None)
    if declared is not None:
        return list(declared)
    found = [value for value in vars(module).values() if isinstance(value, Worker)]
    if not found:
        raise ConfigurationError(
            f"module {module_name!r} defines no worker instances; create them at module level or list them in WORKERS"
        )
    return found


def _check_definition(item: Worker) -> None:
    label = type(item).__name__
    if not isinstance(item.name, str) or not NAME_PATTERN.match(item.name):
        raise ConfigurationError(
            f"invalid worker name {item.name!r} in {label}: use 1 to 63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if not (isinstance(item.config, type) and issubclass(item.config, BaseModel)):
        raise ConfigurationError(f"worker {item.name!r}: config must be a pydantic model class, got {item.config!r}")
    if not isinstance(item.max_tasks, int) or item.max_tasks < 1:
        raise ConfigurationError(f"worker {item.name!r}: max_tasks must be an integer of at least 1, got {item.max_tasks!r}")
    if item.timeout_s is not None and item.timeout_s <= 0:
        raise ConfigurationError(f"worker {item.name!r}: timeout_s must be positive or None, got {item.timeout_s!r}")
    if item.isolation not in ("thread", "process"):
        raise ConfigurationError(f"worker {item.name!r}: isolation must be 'thread' or 'process', got {item.isolation!r}")
    if item.queue_policy not in ("queue", "reject"):
        raise ConfigurationError(f"worker {item.name!r}: queue_policy must be 'queue' or 'reject', got {item.queue_policy!r}")
    if item.queue_policy == "reject" and (item.max_queued is None or item.max_queued < 0):
        raise ConfigurationError(f"worker {item.name!r}: queue_policy 'reject' needs max_queued of 0 or more")
    if item.retry is not None and not isinstance(item.retry, RetryPolicy):
        raise ConfigurationError(f"worker {item.name!r}: retry must be a tasky.RetryPolicy, got {item.retry!r}")
    if type(item).perform is Worker.perform and not isinstance(item, FunctionWorker):
        raise ConfigurationError(f"worker {item.name!r} ({label}) does not implement perform(config, ctx)")


def _load_attribute(module_name: str, qualname: str) -> Any:
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _context_parameter(func: Callable[..., Any]) -> str | None:
    hints = get_type_hints(func)
    for param in inspect.signature(func).parameters.values():
        if param.name == "ctx" or hints.get(param.name) is TaskContext:
            return param.name
    return None


def _model_from_signature(func: Callable[..., Any], ctx_param: str | None, name: str) -> type[BaseModel]:
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.name == ctx_param:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigurationError(f"worker {name!r}: parameter {param.name!r} must be a plain keyword parameter")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Config"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
