"""`python -m bench [matching] [chat]`: run the benchmarks, print one table, save results."""

import sys

from bench import matching
from bench.common import Report


def main(argv: list[str]) -> None:
    chosen = set(argv) or {"matching", "chat"}
    report = Report()
    if "matching" in chosen:
        print("matching sweep …", flush=True)
        matching.run(report)
    if "chat" in chosen:
        try:
            from bench import chat
        except ImportError:
            print("chat benchmark not available", flush=True)
        else:
            print("chat round trip …", flush=True)
            chat.run(report)
    print()
    print(report.table())
    print(f"\nsaved to {report.save()}")


if __name__ == "__main__":
    main(sys.argv[1:])
