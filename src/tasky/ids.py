"""Task ids: random version-4 UUIDs from a generator seeded once per process.

`uuid.uuid4()` reads the operating system's random source on every call,
which showed up in the submit profile. Ids only need to be unique, not
secret, so a Mersenne Twister seeded with 128 bits from `os.urandom` at
start gives the same collision odds without a system call per task.
"""

from __future__ import annotations

import os
import random
import threading
import uuid

_lock = threading.Lock()
_random = random.Random(int.from_bytes(os.urandom(16), "big"))
_pid = os.getpid()


def new_task_id() -> str:
    """Return a new random UUID (version 4) as a string."""
    global _random, _pid
    with _lock:
        if os.getpid() != _pid:  # a forked child must not repeat its parent's sequence
            _random = random.Random(int.from_bytes(os.urandom(16), "big"))
            _pid = os.getpid()
        bits = _random.getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))
