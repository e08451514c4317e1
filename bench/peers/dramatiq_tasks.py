"""The benchmark actors for Dramatiq on Redis, with the Results middleware for the round trip."""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from peerlib import notify_done

REDIS_DB = int(os.environ["BENCH_REDIS_DB"])

broker = RedisBroker(host="127.0.0.1", port=6379, db=REDIS_DB)
broker.add_middleware(Results(backend=RedisBackend(host="127.0.0.1", port=6379, db=REDIS_DB)))
dramatiq.set_broker(broker)


@dramatiq.actor
def noop():
    notify_done()


@dramatiq.actor(store_results=True)
def echo(value):
    return value
