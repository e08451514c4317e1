"""Stream tickets: short-lived signed permissions to open one event stream.

A browser's EventSource cannot send an `Authorization` header, so a client
that has a token asks `POST /tasky/v1/auth/tickets` for a ticket bound
to one stream path and passes it as `?ticket=...`. A ticket carries the
token's name, the path and an expiry time, signed with HMAC-SHA256 under a
key kept in the store (so every node that shares the store accepts it). It
contains no secret, and it stops working when it expires, when its token
is revoked, or on any other path. The server checks it only when a stream
opens; a stream that is already open is not cut when its ticket expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass

import orjson

TICKET_KEY_PURPOSE = "stream-tickets"


class TicketInvalid(ValueError):
    """A ticket that is malformed, forged, expired or for another path; the message names the reason."""


@dataclass(frozen=True)
class Ticket:
    token: str | None  # name of the token it was issued for; None when issued without tokens
    path: str
    expires_at: float  # Unix seconds


def sign_ticket(ticket: Ticket, key: bytes) -> str:
    """Encode and sign `ticket` as `PAYLOAD.SIGNATURE`, both base64url without padding."""
    payload = orjson.dumps({"n": ticket.token, "p": ticket.path, "x": round(ticket.expires_at, 3)})
    encoded = _b64encode(payload)
    return f"{encoded}.{_b64encode(_signature(encoded, key))}"


def verify_ticket(text: str, key: bytes, path: str, now: float | None = None) -> Ticket:
    """Return the ticket in `text` if its signature, expiry and path check out; raise `TicketInvalid`."""
    encoded, dot, signature = text.partition(".")
    if not dot:
        raise TicketInvalid("the ticket is malformed")
    try:
        presented = _b64decode(signature)
        payload = orjson.loads(_b64decode(encoded))
        ticket = Ticket(token=payload["n"], path=payload["p"], expires_at=float(payload["x"]))
    except (ValueError, KeyError, TypeError):
        raise TicketInvalid("the ticket is malformed") from None
    if not hmac.compare_digest(presented, _signature(encoded, key)):
        raise TicketInvalid("the ticket signature is invalid")
    if ticket.expires_at <= (time.time() if now is None else now):
        raise TicketInvalid("the ticket has expired; request a new one")
    if ticket.path != path:
        raise TicketInvalid(f"the ticket is for {ticket.path}, not for {path}")
    return ticket


def _signature(encoded_payload: str, key: bytes) -> bytes:
    return hmac.new(key, encoded_payload.encode("ascii"), hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


class TicketRedactor(logging.Filter):
    """Replace `ticket=` values in log records (uvicorn's access log prints query strings)."""

    PATTERN = re.compile(r"(ticket=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1REDACTED", arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str) and "ticket=" in record.msg:
            record.msg = self.PATTERN.sub(r"\1REDACTED", record.msg)
        return True
