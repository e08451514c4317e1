"""Settings of the guards that keep a tasky server safe to leave running.

`SecurityOptions` gathers the bind policy switch, the connection and
request limits, CORS and the stream ticket lifetime. `tasky serve` builds
it from its flags and `TASKY_*` variables, and `Tasky(security=...)`
carries it to the HTTP layer (`tasky.api.security`) and to the server
(`tasky.server`, `tasky.protocol`). The request body limit is
`Tasky.max_body_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasky.errors import ConfigurationError


@dataclass(frozen=True)
class SecurityOptions:
    # Serve requests without a token on any interface while no token exists.
    insecure: bool = False
    # Origins that browsers may call the API from; empty turns CORS off.
    cors_origins: tuple[str, ...] = ()
    # A client must send a request's headers within this time of its first byte.
    header_timeout_s: float = 10.0
    # A client must send a request's whole body within this time of its headers.
    body_timeout_s: float = 30.0
    # Open connections at most; further ones get 503 and are closed.
    max_connections: int = 1000
    # Event streams open at once at most; further ones get 503 with Retry-After.
    max_streams: int = 100
    # Bounds on a JSON request body: nesting depth, and characters in one string or key.
    max_json_depth: int = 32
    max_string_length: int = 65536
    # Lifetime of a stream ticket.
    ticket_ttl_s: float = 60.0
    # How long the server reuses the list of active tokens before reading the store again.
    token_cache_s: float = 1.0

    def __post_init__(self) -> None:
        positive = {
            "header_timeout_s": self.header_timeout_s,
            "body_timeout_s": self.body_timeout_s,
            "max_connections": self.max_connections,
            "max_streams": self.max_streams,
            "max_json_depth": self.max_json_depth,
            "max_string_length": self.max_string_length,
            "ticket_ttl_s": self.ticket_ttl_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"{name} must be positive, got {value!r}")
        if self.token_cache_s < 0:
            raise ConfigurationError(f"token_cache_s must be zero or positive, got {self.token_cache_s!r}")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"invalid CORS origin {origin!r}: give scheme, host and optional port, such as https://app.example.com"
                )
