"""`python -m bench [--quick] [matching] [world] [cards] [chat] [sockets] [http]`: run the
benchmarks (all but `world` when none is named), print one table, save JSON, Markdown and a PNG
chart to bench/results/. Everything started on the way (servers, load generators, scratch
databases, the embedded PostgreSQL if this run started it) is stopped on every exit, Ctrl-C and
SIGTERM included."""

import importlib
import signal
import sys
import time
from types import FrameType

from bench import common
from bench.common import Report, progress

ALL = ["matching", "cards", "chat", "sockets", "http"]
KNOWN = [*ALL, "world"]


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(chosen: list[str], report: Report) -> None:
    for name in chosen:
        progress(f"{name} …")
        if name == "matching":
            from bench import matching

            matching.run(report, (10_000,) if common.QUICK else (10_000, 100_000))
        elif name == "world":
            from bench import matching

            matching.run_world(report)
        else:
            module = {"http": "http_api"}.get(name, name)
            importlib.import_module(f"bench.{module}").run(report)


def main(argv: list[str]) -> None:
    common.QUICK = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")]
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {KNOWN} (and --quick)")
    chosen = [n for n in KNOWN if n in names] or ALL
    signal.signal(signal.SIGTERM, _terminated)
    report = Report()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        run(chosen, report)
    except KeyboardInterrupt:
        progress("interrupted: stopping what was started")
        raise SystemExit(130) from None
    finally:
        common.stop_all()
        common.stop_postgres_if_ours()
    print()
    print(report.table())
    saved = report.save(stamp)
    print(f"\nsaved {saved}, {saved.with_suffix('.png').name} and latest.md")
    progress("done")


if __name__ == "__main__":
    main(sys.argv[1:])
