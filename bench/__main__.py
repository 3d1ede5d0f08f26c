"""Run the benchmarks and print their tables: ``python -m bench``.

Every figure is a median of several runs; every comparison is a ratio of
figures measured in the same run, since absolute seconds on a shared
machine mean little.
"""

from __future__ import annotations

import argparse

from . import batch, gradio_stream, replicate_stream


def replicate_table(tokens: int, runs: int) -> None:
    print(f"Replicate stream, {tokens:,} events, client process CPU (s), median of {runs} runs")
    print(f"{'framing':<27} {'floor':>8} {'complete()':>11} {'ratio':>6} {'iterate':>8} {'ratio':>6}")
    for label, batch_bytes in (("one HTTP chunk per event", 1), ("events coalesced (16 KiB)", 16384)):
        m = replicate_stream.run(tokens, runs, batch_bytes)
        floor = m["floor"]
        print(
            f"{label:<27} {floor:>8.3f} {m['sdk complete()']:>11.3f} {m['sdk complete()'] / floor:>6.2f}"
            f" {m['sdk iterate']:>8.3f} {m['sdk iterate'] / floor:>6.2f}"
        )


def gradio_table(sizes, runs: int) -> None:
    print(f"Gradio 6 stream (real app), client process CPU (s), median of {runs} runs")
    try:
        results = gradio_stream.run(sizes, runs)
    except (ImportError, RuntimeError) as exc:
        print(f"  skipped: {exc} (pip install -e '.[bench]')")
        return
    print(f"{'updates':>8} {'floor':>8} {'sdk':>8} {'gradio_client':>14} {'sdk/floor':>10} {'sdk/gradio_client':>18}")
    for size in sizes:
        m = results[size]
        peer = m["gradio_client"]
        peer_text = f"{peer:>14.3f}" if peer is not None else f"{'not installed':>14}"
        ratio = f"{m['sdk'] / peer:>18.2f}" if peer is not None else f"{'-':>18}"
        print(f"{size:>8} {m['floor']:>8.3f} {m['sdk']:>8.3f} {peer_text} {m['sdk'] / m['floor']:>10.2f} {ratio}")
    first, last = sizes[0], sizes[-1]
    print(
        f"growth {first} -> {last} updates: sdk x{results[last]['sdk'] / results[first]['sdk']:.2f}"
        + (
            f", gradio_client x{results[last]['gradio_client'] / results[first]['gradio_client']:.2f}"
            if results[first]["gradio_client"]
            else ""
        )
    )


def batch_table(jobs: int, tokens: int, delay: float) -> None:
    print(f"{jobs} paced streams ({tokens} tokens, {delay * 1000:g} ms apart) through Client.batch")
    print(f"{'workers':>8} {'one stream s':>13} {'batch wall s':>13} {'wall/one':>9} {'peak RSS MiB':>13}")
    for workers in (50, jobs):
        m = batch.run(jobs=jobs, workers=workers, tokens=tokens, delay=delay)
        print(f"{workers:>8} {m['single']:>13.2f} {m['wall']:>13.2f} {m['ratio']:>9.2f} {m['peak_rss_mib']:>13.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=("replicate", "gradio", "batch"), help="run one table")
    parser.add_argument("--tokens", type=int, default=100_000, help="events in the Replicate stream")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; medians are reported")
    parser.add_argument("--updates", type=int, nargs="+", default=[3000, 6000], help="Gradio answer sizes")
    args = parser.parse_args()
    if args.only in (None, "replicate"):
        replicate_table(args.tokens, args.runs)
        print()
    if args.only in (None, "batch"):
        batch_table(200, 50, 0.02)
        print()
    if args.only in (None, "gradio"):
        gradio_table(tuple(args.updates), max(1, args.runs // 2))


if __name__ == "__main__":
    main()
