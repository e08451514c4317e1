"""Settings layers (defaults, TOML file, TASKY_* variables, flags) and their error messages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Callable

import httpx
import pytest

from conftest import Server, create, free_port, server_pythonpath, wait_state
from tasky.errors import ConfigurationError
from tasky.settings import load_settings, unknown_environment


def run_serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PYTHONPATH": server_pythonpath(), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "tasky", "serve", *args],
        cwd=tmp_path, env={**base, **(env or {})}, capture_output=True, text=True, timeout=30,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasky.toml"
    path.write_text(text)
    return path


def test_layers_in_order(tmp_path: Path) -> None:
    config = write(tmp_path, 'store = "from-file.db"\nlog_level = "debug"\ncancel_wait_s = 4\n[retention]\nmax_age_s = 60\n')
    environ = {"TASKY_LOG_LEVEL": "warning", "TASKY_RETENTION__INTERVAL_S": "5", "TASKY_WORKERS": "jobs, more_jobs"}
    settings = load_settings(config, {"log_level": "error"}, environ)
    assert settings.store == "from-file.db"  # file over default
    assert settings.cancel_wait_s == 4
    assert settings.log_level == "ERROR"  # flag over variable over file
    assert settings.retention.max_age_s == 60  # a section merges key by key
    assert settings.retention.interval_s == 5
    assert settings.workers == ["jobs", "more_jobs"]
    assert settings.addr == "127.0.0.1:8888"


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    config = write(tmp_path, 'adress = "127.0.0.1:9000"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, {}, {})
    assert "unknown setting 'adress'" in caught.value.message
    assert str(config) in caught.value.message
    assert "did you mean 'addr'" in caught.value.message


def test_unknown_key_in_section(tmp_path: Path) -> None:
    config = write(tmp_path, "[retention]\nmax_age = 60\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, {}, {})
    assert "unknown setting 'retention.max_age'" in caught.value.message
    assert "did you mean 'max_age_s'" in caught.value.message


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("shutdown_grace_s = -1\n", "shutdown_grace_s", "greater than or equal to 0"),
        ('log_level = "loud"\n', "log_level", "'DEBUG', 'INFO'"),
        ('addr = "localhost"\n', "addr", "invalid address 'localhost'"),
        ('[task_logs]\nmax_lines = "many"\n', "task_logs.max_lines", "valid integer"),
        ('[webhooks]\nallowed_hosts = ["127.0.0.1"]\n', "webhooks", "webhooks.secret is required"),
        ("[retention.workers]\nadd = -5\n", "retention.workers", "must be 0 (keep) or a positive number"),
    ],
)
def test_bad_value_names_key_and_file(tmp_path: Path, text: str, key: str, reason: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, {}, {})
    assert f"invalid setting '{key}' in config file {config}" in caught.value.message
    assert reason in caught.value.message


def test_bad_variable_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(None, {}, {"TASKY_RETENTION__MAX_AGE_S": "soon"})
    assert "invalid setting 'retention.max_age_s' in the environment variable TASKY_RETENTION__MAX_AGE_S" in caught.value.message


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, 'addr = "127.0.0.1:1"\nstore = \n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, {}, {})
    assert f"config file {config} is not valid TOML" in caught.value.message
    assert "line 2" in caught.value.message


def test_serve_stops_on_bad_config(tmp_path: Path) -> None:
    config = write(tmp_path, "max_body_bytes = 0\nbogus = 1\n")
    result = run_serve(tmp_path, "--config", str(config), "--addr", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "invalid setting 'max_body_bytes'" in result.stderr
    assert "unknown setting 'bogus'" in result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_stops_on_missing_config(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "absent.toml not found" in result.stderr


def test_serve_stops_on_unknown_retention_worker(tmp_path: Path) -> None:
    config = write(tmp_path, "[retention.workers]\nnosuch = 60\n")
    result = run_serve(tmp_path, "--config", str(config), "--addr", f"127.0.0.1:{free_port()}", "--store", str(tmp_path / "t.db"))
    assert result.returncode == 2
    assert "retention.workers names unknown workers: nosuch" in result.stderr


def test_print_config_masks_secrets(tmp_path: Path) -> None:
    config = write(tmp_path, '[webhooks]\nallowed_hosts = ["127.0.0.1"]\nsecret = "hunter2"\n')
    result = run_serve(tmp_path, "--config", str(config), "--print-config", "--shutdown-grace", "3", env={"TASKY_STORE": "env.db"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    printed = tomllib.loads(result.stdout)
    assert printed["webhooks"]["secret"] == "**********"
    assert printed["webhooks"]["allowed_hosts"] == ["127.0.0.1"]
    assert printed["store"] == "env.db"
    assert printed["shutdown_grace_s"] == 3
    assert printed["retention"]["max_age_s"] == 30 * 86_400


def test_serve_reads_config_file(start_server: Callable[..., Server], tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    write(folder, 'node = "from-the-file"\nlog_format = "text"\n[task_logs]\nmax_lines = 3\n')
    server = start_server("--workers", "jobs", "--config", str(folder / "tasky.toml"), folder=folder)
    assert httpx.get(f"{server.url}/readyz").json()["node"] == "from-the-file"
    with server.client() as api:
        task = create(api, "chatty", {"lines": 5})
        wait_state(api, task["id"], "completed")
        logs = api.get(f"/tasks/{task['id']}/logs").json()
    assert logs["max_lines"] == 3
    assert logs["dropped_lines"] == 2
    assert f"task {task['id']} of worker chatty completed" in server.log()
    assert not any(line.startswith("{") for line in server.log().splitlines())


def test_unknown_variables_listed() -> None:
    environ = {"TASKY_ADRR": "x", "TASKY_URL": "http://127.0.0.1:1", "TASKY_RETENTION__MAX_AGE_S": "5", "TASKY_CONFIG": "t.toml", "HOME": "/"}
    assert unknown_environment(environ) == ["TASKY_ADRR"]
