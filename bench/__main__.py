"""Run the benchmarks and print one table: ``python -m bench``."""
from __future__ import annotations

import argparse

from . import replicate_stream


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tokens", type=int, default=100_000, help="events in the Replicate stream")
    parser.add_argument("--runs", type=int, default=5, help="runs per client; medians are reported")
    args = parser.parse_args()

    print(f"Replicate stream, {args.tokens:,} events, client process CPU, median of {args.runs} runs")
    print(f"{'framing':<27} {'floor s':>8} {'complete() s':>13} {'ratio':>6} {'iterate s':>10} {'ratio':>6}")
    for label, batch in (("one HTTP chunk per event", 1), ("events coalesced (16 KiB)", 16384)):
        m = replicate_stream.run(args.tokens, args.runs, batch)
        floor = m["floor"]
        print(f"{label:<27} {floor:>8.3f} {m['sdk complete()']:>13.3f} {m['sdk complete()'] / floor:>6.2f}"
              f" {m['sdk iterate']:>10.3f} {m['sdk iterate'] / floor:>6.2f}")


if __name__ == "__main__":
    main()
