"""The benchmark tasks for Huey, on SQLite or on Redis (chosen by BENCH_HUEY_BACKEND)."""

import os

from huey import RedisHuey, SqliteHuey

from peerlib import notify_done

if os.environ.get("BENCH_HUEY_BACKEND", "sqlite") == "redis":
    huey = RedisHuey("bench", host="127.0.0.1", port=6379, db=int(os.environ["BENCH_REDIS_DB"]))
else:
    # Huey's defaults: WAL journal and SQLite's default synchronous setting.
    huey = SqliteHuey("bench", filename=os.environ["BENCH_HUEY_SQLITE"])


@huey.task()
def noop():
    notify_done()


@huey.task()
def echo(value):
    return value
