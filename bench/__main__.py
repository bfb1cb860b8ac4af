"""`python -m bench [matching] [cards] [chat]`: run benchmarks, print one table, save results."""

import sys

from bench import matching
from bench.common import Report


def main(argv: list[str]) -> None:
    chosen = set(argv) or {"matching", "cards", "chat"}
    report = Report()
    if "matching" in chosen:
        print("matching sweep …", flush=True)
        matching.run(report)
    if "cards" in chosen:
        from bench import cards

        print("cards after an unrelated decline …", flush=True)
        cards.run(report)
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
