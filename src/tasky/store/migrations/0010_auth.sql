-- API tokens, the keys that sign stream tickets, and the audit log.
-- Times are Unix seconds (REAL, UTC). A token is kept only as the SHA-256 of its secret.

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);

-- A name can be reused once the token that had it is revoked.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE auth_keys (
    purpose TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    token TEXT,
    client TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    action TEXT NOT NULL,
    task_id TEXT,
    worker TEXT,
    detail TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_code TEXT
);

CREATE INDEX audit_log_token_id ON audit_log (token, id);
CREATE INDEX audit_log_task_id ON audit_log (task_id, id);
