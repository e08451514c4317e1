"""The bind policy: no token means loopback only; checked without binding any other address."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from auth_helpers import create_token, tasky_command
from tasky.auth.bind import check_bind_policy, store_has_tokens
from tasky.errors import ConfigurationError
from tasky.server import parse_addr
from tasky.store import open_store


@pytest.mark.parametrize("addr", ["0.0.0.0:8888", ":8888", "[::]:8888"])
def test_serve_refuses_network_without_token(tmp_path: Path, addr: str) -> None:
    store = tmp_path / "tasky.db"
    # The refusal comes before the socket is bound, so no non-loopback address is ever opened.
    done = tasky_command("serve", "--addr", addr, "--store", str(store), cwd=tmp_path)
    assert done.returncode == 2
    assert "refusing to listen on" in done.stderr
    assert f"tasky token create --store {store}" in done.stderr
    assert "--insecure" in done.stderr
    assert "listening" not in done.stderr


@pytest.mark.parametrize(
    ("addr", "has_tokens", "insecure", "allowed"),
    [
        ("127.0.0.1:8888", False, False, True),
        ("localhost:8888", False, False, True),
        ("[::1]:8888", False, False, True),
        ("0.0.0.0:8888", False, False, False),
        ("192.0.2.10:8888", False, False, False),
        ("0.0.0.0:8888", True, False, True),
        ("0.0.0.0:8888", False, True, True),
    ],
)
def test_bind_policy_table(addr: str, has_tokens: bool, insecure: bool, allowed: bool) -> None:
    address = parse_addr(addr)
    check = lambda: check_bind_policy(  # noqa: E731
        address, is_loopback=address.is_loopback, has_tokens=has_tokens, insecure=insecure, store="tasky.db"
    )
    if allowed:
        check()
    else:
        with pytest.raises(ConfigurationError, match="tasky token create --store tasky.db"):
            check()


def test_insecure_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    address = parse_addr("0.0.0.0:8888")
    with caplog.at_level(logging.WARNING, logger="tasky.auth.bind"):
        check_bind_policy(address, is_loopback=False, has_tokens=False, insecure=True, store="tasky.db")
    assert "WITHOUT authentication (--insecure)" in caplog.text


def test_store_has_tokens_follows_cli(tmp_path: Path) -> None:
    store = tmp_path / "tasky.db"
    assert store_has_tokens(open_store(str(store))) is False
    create_token(store, "ops", "admin")
    assert store_has_tokens(open_store(str(store))) is True
    assert tasky_command("token", "revoke", "ops", "--store", str(store)).returncode == 0
    assert store_has_tokens(open_store(str(store))) is False
