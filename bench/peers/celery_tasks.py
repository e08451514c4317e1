"""The benchmark tasks for Celery with Redis as broker and result backend."""

import os

from celery import Celery

from peerlib import notify_done

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ['BENCH_REDIS_DB']}"

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)


@app.task(ignore_result=True)
def noop():
    notify_done()


@app.task
def echo(value):
    return value
