"""API roles and their order: `read` < `operate` < `admin`.

A token has one role, and a role includes every right of the roles below
it. Which role each route needs is decided in `tasky.auth.policy`.
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    READ = "read"          # GET routes: workers, tasks, results
    OPERATE = "operate"    # create tasks and act on them (cancel, pause, resume, replace)
    ADMIN = "admin"        # enable and disable workers, tokens, the audit log

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Return whether a caller with this role may use a route that needs `needed`."""
        return self.rank >= needed.rank


_RANKS = {Role.READ: 1, Role.OPERATE: 2, Role.ADMIN: 3}
