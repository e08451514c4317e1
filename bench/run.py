"""Run tasky's benchmark suite beside its peers and regenerate docs/benchmarks.md.

    python bench/run.py                    # the full suite (about 15 minutes on 2 cores)
    python bench/run.py --quick            # smaller counts, for iteration
    python bench/run.py --only submit endtoend
    python bench/run.py --report-only      # rewrite the page from the result files

Each part writes bench/results/PART.json; the report is rebuilt from all
result files present, so `--only` refreshes one part of the page. Run it
with the Python environment that has tasky's dependencies: it measures the
tasky in this checkout's src/ folder. The peers get their own virtual
environments under bench/.venvs/. Every server binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from servers import BENCH_DIR, REPO_DIR, SRC_DIR

sys.path.insert(0, str(SRC_DIR))  # measure this checkout's tasky, also in the in-process part

from suite import cancel, endtoend, machine, profiling, report, roundtrip, scale, sqlite_rates, submit  # noqa: E402
from suite.settings import Settings, make_settings  # noqa: E402

logger = logging.getLogger("bench")

RESULTS_DIR = BENCH_DIR / "results"
DOCS_PAGE = REPO_DIR / "docs" / "benchmarks.md"

PARTS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "store": sqlite_rates.run,
    "submit": submit.run,
    "endtoend": endtoend.run,
    "roundtrip": roundtrip.run,
    "scale": scale.run,
    "cancel": cancel.run,
    "profile": profiling.run,
}


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.report_only:
        DOCS_PAGE.write_text(report.render(load_results()))
        logger.info("wrote %s", DOCS_PAGE)
        return 0
    install_tools(args.no_install)
    workdir = Path(tempfile.mkdtemp(prefix="tasky-bench-"))
    settings = make_settings(args.quick, workdir)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS_DIR / "machine.json", machine.describe(workdir))
    failed = []
    for name in args.only or list(PARTS):
        if not run_part(name, settings):
            failed.append(name)
    if not args.no_docs:
        DOCS_PAGE.write_text(report.render(load_results()))
        logger.info("wrote %s", DOCS_PAGE)
    if args.keep:
        logger.info("kept the stores and logs in %s", workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        logger.error("parts that failed: %s", ", ".join(failed))
        return 1
    return 0


def run_part(name: str, settings: Settings) -> bool:
    """Run one part and write its result file; False if it raised."""
    logger.info("part %s: starting%s", name, " (quick)" if settings.quick else "")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        data = PARTS[name](settings)
    except Exception:
        logger.exception("part %s failed", name)
        return False
    seconds = time.monotonic() - started
    record = {
        "part": name,
        "quick": settings.quick,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        # Other work on the machine skews every figure; the load shows whether there was any.
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "data": data,
    }
    write_json(RESULTS_DIR / f"{name}.json", record)
    logger.info("part %s: done in %.0f s", name, seconds)
    print(report.render_part(name, record), flush=True)
    return True


def install_tools(skip: bool) -> None:
    """Install wrk (Debian) and py-spy (PyPI) when they are missing, unless `skip` (--no-install) is set."""
    if shutil.which("wrk") is None:
        if not skip and os.geteuid() == 0 and shutil.which("apt-get"):
            logger.info("installing wrk with apt-get")
            subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, timeout=600)
        if shutil.which("wrk") is None:
            logger.warning("wrk is not installed (apt-get install -y wrk); the submit part uses the asyncio load generator")
    if profiling.py_spy_path() is None and not skip:
        logger.info("installing py-spy with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=False, timeout=600)


def load_results() -> dict[str, Any]:
    results = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        results[path.stem] = json.loads(path.read_text())
    return results


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts and one run per figure")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), metavar="PART", help=f"run only these parts: {', '.join(PARTS)}")
    parser.add_argument("--report-only", action="store_true", help="only rewrite docs/benchmarks.md from bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--no-install", action="store_true", help="do not install wrk or py-spy when they are missing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and logs")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
