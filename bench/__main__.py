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
    print(f"{'framing':<28} {'floor s':>9} {'sdk s':>9} {'sdk/floor':>10}")
    for label, batch in (("one HTTP chunk per event", 1), ("events coalesced (16 KiB)", 16384)):
        medians = replicate_stream.run(args.tokens, args.runs, batch)
        print(f"{label:<28} {medians['floor']:>9.3f} {medians['sdk']:>9.3f} {medians['ratio']:>10.2f}")


if __name__ == "__main__":
    main()
