"""Settings of a tasky node: one pydantic model, filled from four layers.

Later layers win: the defaults in the model, then a TOML file (`--config`),
then `TASKY_*` environment variables (`TASKY_RETENTION__MAX_AGE_S` for a
key in a section), then command-line flags. `load_settings` merges the
layers itself, so a bad value is reported with its key and where it came
from. To add a setting, add a field (with a description) to `Settings` or
to one of its sections; the file, the variables and `--print-config` follow.
"""

from __future__ import annotations

import difflib
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from tasky.errors import ConfigurationError

ENV_PREFIX = "TASKY_"
CONFIG_FILE_ENV = "TASKY_CONFIG"  # read by `tasky serve --config`, not a setting itself
# Variables of the client commands (`tasky submit`, ...), which `tasky serve` leaves alone.
CLIENT_ENV = frozenset({"TASKY_URL", "TASKY_TOKEN"})
ENV_NESTED_DELIMITER = "__"
DAY_S = 86_400.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split_list(value: Any) -> Any:
    """Accept a list, a JSON list or a comma-separated string (the usual form of a variable)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return orjson.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


StringList = Annotated[list[str], NoDecode]
PathList = Annotated[list[Path], NoDecode]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class TaskLogSettings(Section):
    """Limits of the log that `ctx.log` writes for each task."""

    max_lines: int = Field(10_000, ge=1, description="Log lines kept per task; later lines are counted as dropped, not stored.")
    max_line_chars: int = Field(8192, ge=80, description="Longer log lines are cut to this many characters and marked.")


class RetentionSettings(Section):
    """Background deletion of finished tasks, their events and logs."""

    max_age_s: float = Field(30 * DAY_S, ge=0, description="Delete finished tasks this many seconds after they finished; 0 keeps them.")
    workers: dict[str, float] = Field(default_factory=dict, description="Per-worker max_age_s; 0 keeps that worker's tasks.")
    interval_s: float = Field(60.0, gt=0, description="Seconds between two retention rounds.")
    batch_size: int = Field(500, ge=1, le=10_000, description="Tasks deleted per transaction.")
    tombstone_max_age_s: float = Field(
        30 * DAY_S, ge=0, description="How long a read of a deleted task returns 410 Gone before it returns 404; 0 keeps the ids."
    )

    @field_validator("workers")
    @classmethod
    def _ages_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for worker, age in value.items():
            if age < 0:
                raise ValueError(f"max age of worker {worker!r} must be 0 (keep) or a positive number of seconds, got {age}")
        return value


class WebhookSettings(Section):
    """Delivery of a task's final status to the `callback_url` it named."""

    allowed_hosts: StringList = Field(
        default_factory=list, description="Hosts (or host:port) that callbacks may target; empty rejects every callback_url."
    )
    secret: SecretStr | None = Field(None, description="Key of the HMAC-SHA256 signature; required with allowed_hosts.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds one delivery attempt may take before it counts as failed.")
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts per delivery before it is given up.")
    backoff_s: float = Field(1.0, gt=0, description="Wait before the second attempt; it doubles after each failure.")
    max_backoff_s: float = Field(300.0, gt=0, description="Upper bound of the wait between attempts.")
    max_concurrent: int = Field(16, ge=1, le=1000, description="Deliveries in flight at once.")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().lower() for host in value if host.strip()]

    @model_validator(mode="after")
    def _secret_with_hosts(self) -> WebhookSettings:
        if self.allowed_hosts and (self.secret is None or not self.secret.get_secret_value()):
            raise ValueError("webhooks.secret is required when webhooks.allowed_hosts is set, to sign the deliveries")
        return self


class Settings(BaseSettings):
    """Every setting of `tasky serve`; see the module docstring for the layers."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    addr: str = Field("127.0.0.1:8888", description="Listen address HOST:PORT; ':PORT' means every interface.")
    store: str = Field("tasky.db", description="SQLite file that keeps tasks (created if missing).")
    node: str | None = Field(None, description="Name of this node in logs and task records; default HOSTNAME-PID.")
    workers: StringList = Field(default_factory=list, description="Python modules of workers to serve.")
    examples: bool = Field(False, description="Serve the example workers too when workers are given.")
    copy_roots: PathList = Field(default_factory=list, description="Folders that copyfile may read and write.")
    insecure: bool = Field(False, description="Allow a non-loopback address without authentication.")
    shutdown_grace_s: float = Field(10.0, ge=0, description="Seconds running tasks get to finish at shutdown.")
    cancel_wait_s: float = Field(2.0, ge=0, description="Seconds a cancel request waits for a running task to stop.")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest request body accepted, in bytes.")
    idempotency_ttl_s: float = Field(DAY_S, gt=0, description="Seconds an Idempotency-Key is remembered.")
    header_timeout_s: float = Field(10.0, gt=0, description="Seconds a client has to send a request's headers.")
    body_timeout_s: float = Field(30.0, gt=0, description="Seconds a client has to send a request's body.")
    max_connections: int = Field(1000, ge=1, description="Open connections at most; more get 503.")
    max_streams: int = Field(100, ge=1, description="Event streams open at once at most; more get 503.")
    max_json_depth: int = Field(32, ge=1, description="Deepest nesting of a JSON request body.")
    max_string_length: int = Field(65536, ge=1, description="Longest string or key in a JSON request body, in characters.")
    cors_origins: StringList = Field(default_factory=list, description="Origins browsers may call the API from; empty turns CORS off.")
    ticket_ttl_s: float = Field(60.0, gt=0, description="Lifetime of an event-stream ticket, in seconds.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", description="Level of the server log.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Server log format; auto writes JSON lines unless the log goes to a terminal."
    )
    task_logs: TaskLogSettings = Field(default_factory=TaskLogSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("workers", "copy_roots", "cors_origins", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("addr")
    @classmethod
    def _valid_addr(cls, value: str) -> str:
        from tasky.server import parse_addr

        try:
            parse_addr(value)
        except ConfigurationError as exc:
            raise ValueError(exc.message) from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() layers the file, the environment and the flags
        # itself, so that an error can name the layer a value came from.
        return (init_settings,)

    def node_name(self) -> str:
        """Return the configured node name, or HOSTNAME-PID."""
        return self.node or f"{socket.gethostname()}-{os.getpid()}"


def load_settings(
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from the defaults, a TOML file, `TASKY_*` variables and flags.

    `flags` maps setting names to values given on the command line, and
    `flag_names` the setting names to the flags' spelling for messages.
    Raises `ConfigurationError` naming the key and its origin (file,
    variable or flag) for an unknown key or an invalid value.
    """
    file_values = read_config_file(config_file) if config_file is not None else {}
    env_values = read_environment(environ if environ is not None else os.environ)
    flag_values = dict(flags or {})
    merged = _deep_merge(_deep_merge(file_values, env_values), flag_values)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        origins = _Origins(config_file, file_values, env_values, flag_values, dict(flag_names or {}))
        raise ConfigurationError(_describe(exc, origins)) from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML settings file; raise `ConfigurationError` naming the file and the line."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} not found; check the --config path") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect the `TASKY_*` variables that name a setting, as nested raw values."""
    source = EnvSettingsSource(Settings)
    source.env_vars = {key.lower(): value for key, value in environ.items()}  # read this mapping, not os.environ
    try:
        return source()
    except SettingsError as exc:
        raise ConfigurationError(f"invalid {ENV_PREFIX}* environment variable: {exc}") from None


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """Return the `TASKY_*` variables that name no setting of `tasky serve` nor of the client commands."""
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields} | {CONFIG_FILE_ENV} | CLIENT_ENV
    unknown = []
    for key in environ:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        if upper.split(ENV_NESTED_DELIMITER, 1)[0] not in known:
            unknown.append(key)
    return sorted(unknown)


def settings_toml(settings: Settings) -> str:
    """Render the effective settings as TOML, secrets masked and unset values left out."""
    values = settings.model_dump(mode="json")
    masked = _mask_secrets(settings, values)
    return tomli_w.dumps(_drop_none(masked))


def _mask_secrets(model: BaseModel, values: dict[str, Any]) -> dict[str, Any]:
    for name in type(model).model_fields:
        current = getattr(model, name)
        if isinstance(current, SecretStr):
            values[name] = "**********"
        elif isinstance(current, BaseModel):
            values[name] = _mask_secrets(current, values[name])
    return values


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _drop_none(value) if isinstance(value, dict) else value for key, value in values.items() if value is not None}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class _Origins:
    """The layers merged by `load_settings`, to tell where a key came from."""

    config_file: Path | None
    file_values: dict[str, Any]
    env_values: dict[str, Any]
    flag_values: dict[str, Any]
    flag_names: dict[str, str]

    def of(self, loc: list[str]) -> str:
        if _has(self.flag_values, loc):
            return f"the flag {self.flag_names.get(loc[0], '--' + loc[0].replace('_', '-'))}"
        if _has(self.env_values, loc):
            return f"the environment variable {ENV_PREFIX}{ENV_NESTED_DELIMITER.join(part.upper() for part in loc[:2])}"
        if self.config_file is not None and _has(self.file_values, loc):
            return f"config file {self.config_file}"
        return "the defaults"


def _describe(exc: ValidationError, origins: _Origins) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        origin = origins.of(loc)
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {key!r} in {origin}{_suggestion(loc)}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, dict) or "secret" in loc else f" (got {value!r})"
        problems.append(f"invalid setting {key!r} in {origin}: {message}{shown}")
    if len(problems) == 1:
        return problems[0]
    return "invalid settings:\n" + "\n".join(f"  - {problem}" for problem in problems)


def _has(values: Any, loc: list[str]) -> bool:
    for part in loc:
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def _suggestion(loc: list[str]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    known = ", ".join(model.model_fields)
    return f"; did you mean {close[0]!r}?" if close else f"; the known settings here are: {known}"
