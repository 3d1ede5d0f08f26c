"""The benchmark suite: ``python -m bench`` prints one table.

Every figure is a median of several runs; every comparison is a ratio of
figures measured in the same run, side by side, since absolute seconds on a
shared 2-core machine mean little. Peers that are not installed
(``pip install -e '.[bench]'``) are reported as such, never estimated.
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Tuple

from . import batch, gradio_stream, http_overhead, imports, replicate_stream, server, ttft

Row = Tuple[str, str, str, str, str, str, str]


def _s(value: Optional[float], unit: str = "s") -> str:
    return "not installed" if value is None else f"{value:.3f} {unit}"


def _ratio(value: Optional[float], target: float, fmt: str = "{:.2f}x") -> Tuple[str, str]:
    if value is None:
        return "-", "-"
    return fmt.format(value), "yes" if value <= target else "NO"


def replicate_rows(tokens: int, runs: int) -> List[Row]:
    rows: List[Row] = []
    m = replicate_stream.run(tokens, runs, batch_bytes=1)
    floor, sdk, peer = m["floor"], m["sdk"], m["replicate-python"]
    label = f"Replicate stream, {tokens:,} events, CPU"
    measured, met = _ratio(sdk / floor, 1.25)
    rows.append((label, _s(sdk), _s(floor), "-", f"sdk/floor {measured}", "<= 1.25x", met))
    measured, met = _ratio(sdk / peer if peer else None, 0.30)
    rows.append((label, _s(sdk), "-", f"replicate-python {_s(peer)}", f"sdk/peer {measured}", "<= 0.30x", met))
    measured, met = _ratio(m["sdk iterate"] / floor, 1.25)
    rows.append(
        ("  same, iterating the stream", _s(m["sdk iterate"]), _s(floor), "-", f"sdk/floor {measured}", "<= 1.25x", met)
    )
    c = replicate_stream.run(tokens, runs, batch_bytes=16384)
    measured, met = _ratio(c["sdk"] / c["floor"], 1.25)
    rows.append(
        (
            "  same, events coalesced in 16 KiB chunks",
            _s(c["sdk"]),
            _s(c["floor"]),
            "-",
            f"sdk/floor {measured}",
            "<= 1.25x",
            met,
        )
    )
    r = replicate_stream.run(tokens, runs, batch_bytes=65536, newlines=True)
    measured, met = _ratio(r["sdk"] / r["floor"], 1.15)
    peer = r["replicate-python"]
    rows.append(
        (
            "  real shape: id on every event, 2 in 12 tokens end a line, 64 KiB reads",
            _s(r["sdk"]),
            _s(r["floor"]),
            f"replicate-python {_s(peer)}",
            f"sdk/floor {measured}",
            "<= 1.15x",
            met,
        )
    )
    return rows


def gradio_rows(sizes: Tuple[int, int], runs: int) -> List[Row]:
    try:
        results, growth = gradio_stream.run(sizes, runs)
    except (ImportError, RuntimeError) as exc:
        return [("Gradio stream", "-", "-", f"not run: {exc}", "-", "-", "-")]
    rows: List[Row] = []
    for size in sizes:
        m = results[size]
        label = f"Gradio 6 app, {size:,}-update answer, CPU"
        measured, met = _ratio(m["sdk"] / m["floor"], 1.5)
        rows.append((label, _s(m["sdk"]), _s(m["floor"]), "-", f"sdk/floor {measured}", "<= 1.50x", met))
        peer = m["gradio_client"]
        measured, met = _ratio(m["sdk"] / peer if peer else None, 0.35)
        rows.append((label, _s(m["sdk"]), "-", f"gradio_client {_s(peer)}", f"sdk/peer {measured}", "<= 0.35x", met))
    small, large = sizes
    target = 2.2 * large / small / 2
    measured, met = _ratio(growth["sdk"], target)
    peer_growth = growth["gradio_client"]
    rows.append(
        (
            f"Gradio answer {small:,} -> {large:,} updates, CPU growth (median of rounds)",
            measured,
            f"{growth['floor']:.2f}x",
            "-" if peer_growth is None else f"gradio_client {peer_growth:.2f}x",
            f"sdk {measured}",
            f"<= {target:.2f}x",
            met,
        )
    )
    return rows


def ttft_rows(runs: int) -> List[Row]:
    m = ttft.run(runs)
    measured = m["difference_ms"]
    return [
        (
            "Time to first chunk over loopback",
            f"{m['sdk_ms']:.1f} ms",
            f"{m['floor_ms']:.1f} ms",
            "-",
            f"sdk - floor {measured:+.1f} ms",
            "<= +5 ms",
            "yes" if measured <= 5 else "NO",
        )
    ]


def server_rows(runs: int) -> List[Row]:
    try:
        m = server.run(runs)
    except (ImportError, RuntimeError) as exc:
        return [("OpenAI-compatible server", "-", "-", f"not run: {exc}", "-", "-", "-")]
    measured = m["difference_ms"]
    return [
        (
            "Time to first chunk through the server (waitress), minus the direct call",
            f"{m['server_ms']:.1f} ms",
            f"direct {m['direct_ms']:.1f} ms",
            "-",
            f"server - direct {measured:+.1f} ms",
            "<= +5 ms",
            "yes" if measured <= 5 else "NO",
        ),
        (
            "100 concurrent streams (50 tokens, 20 ms) through the server",
            f"{m['wall']:.2f} s",
            "-",
            "-",
            f"wall / one stream ({m['single']:.2f} s) {m['ratio']:.2f}x",
            "(no target)",
            "-",
        ),
        (
            "  peak RSS of the server process",
            f"{m['peak_rss_mib']:.1f} MiB",
            "-",
            "-",
            "-",
            "(no target)",
            "-",
        ),
    ]


def batch_rows(runs: int) -> List[Row]:
    results = batch.run(jobs=200, workers=200, tokens=50, delay=0.02, runs=runs)
    m, floor, peer, sockets = results["sdk"], results["floor"], results["replicate-python"], results["sockets"]
    assert m is not None and floor is not None
    label = "200 paced streams (50 tokens, 20 ms) via Client.batch, 200 workers"
    measured, met = _ratio(m["ratio"], 1.3)
    rss_met = "yes" if m["peak_rss_mib"] <= 150 else "NO"
    rows = [
        (label, f"{m['wall']:.2f} s", "-", "-", f"wall / one stream ({m['single']:.2f} s) {measured}", "<= 1.30x", met),
        (
            "  the same batch on 200 threads, each client's wall / one stream",
            f"{m['ratio']:.2f}x",
            f"{floor['ratio']:.2f}x",
            "replicate-python " + ("not installed" if peer is None else f"{peer['ratio']:.2f}x"),
            f"sdk/floor {m['wall'] / floor['wall']:.2f}x"
            + ("" if peer is None else f", sdk/peer {m['wall'] / peer['wall']:.2f}x"),
            "(no target)",
            "-",
        ),
        (
            "  reference: the same batch over raw sockets, no HTTP library",
            "-",
            "-",
            "-" if sockets is None else f"sockets {sockets['ratio']:.2f}x",
            "-" if sockets is None else f"sdk/sockets wall {m['wall'] / sockets['wall']:.2f}x",
            "(no target)",
            "-",
        ),
        ("  peak RSS of that client process", f"{m['peak_rss_mib']:.1f} MiB", "-", "-", "-", "<= 150 MiB", rss_met),
    ]
    fifty = batch.run(jobs=200, workers=50, tokens=50, delay=0.02, runs=runs, kinds=("sdk",))["sdk"]
    assert fifty is not None
    rows.append(
        (
            "  same at 50 workers (4 waves: 4.0x is ideal)",
            f"{fifty['wall']:.2f} s",
            "-",
            "-",
            f"wall / one stream {fifty['ratio']:.2f}x, peak RSS {fifty['peak_rss_mib']:.1f} MiB",
            "(no target)",
            "-",
        )
    )
    return rows


def http_rows(runs: int) -> List[Row]:
    m = http_overhead.run(runs=max(5, runs * 2 - 1))
    sdk, plain = m["sdk"], m["requests"]
    measured = f"sdk/requests {sdk / plain:.2f}x; urllib3 {m['urllib3']:.0f} us, http.client {m['http.client']:.0f} us"
    return [
        (
            "CPU per small request (create), this SDK's transport",
            f"{sdk:.0f} us",
            "-",
            f"Session.request {plain:.0f} us",
            measured,
            "(no target)",
            "-",
        )
    ]


def import_rows(runs: int) -> List[Row]:
    m = imports.run(runs)
    base = m["requests"]
    rows: List[Row] = []
    measured, met = _ratio(m["sdk"] / base, 1.2)
    rows.append(
        (
            "import replicate_qwen_sdk (fresh interpreter)",
            _s(m["sdk"]),
            "-",
            f"requests {_s(base)}",
            f"sdk/requests {measured}",
            "<= 1.20x",
            met,
        )
    )
    measured, _ = _ratio(m["sdk, everything"] / base, 1.2)
    rows.append(
        (
            "  and Client, GradioSpace, BackgroundStream too",
            _s(m["sdk, everything"]),
            "-",
            f"requests {_s(base)}",
            f"sdk/requests {measured}",
            "(no target)",
            "-",
        )
    )
    return rows


def print_table(rows: List[Row]) -> None:
    header = ("figure", "this SDK", "floor", "peer", "measured", "target", "met")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % width for width in widths)
    print(line.format(*header))
    print(line.format(*("-" * width for width in widths)))
    for row in rows:
        print(line.format(*row))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        choices=("replicate", "gradio", "ttft", "batch", "http", "import", "server"),
        action="append",
        help="run only these figures (repeatable)",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per figure (default 5; the batch figure uses at most 3)"
    )
    parser.add_argument("--tokens", type=int, default=100_000, help="events in the Replicate stream")
    args = parser.parse_args()
    wanted = set(args.only or ("replicate", "gradio", "ttft", "batch", "http", "import", "server"))
    rows: List[Row] = []
    if "replicate" in wanted:
        rows += replicate_rows(args.tokens, args.runs)
    if "gradio" in wanted:
        rows += gradio_rows((3000, 6000), max(1, args.runs))
    if "ttft" in wanted:
        rows += ttft_rows(max(10, args.runs * 8))
    if "batch" in wanted:
        rows += batch_rows(max(1, min(args.runs, 3)))
    if "http" in wanted:
        rows += http_rows(args.runs)
    if "import" in wanted:
        rows += import_rows(max(5, args.runs * 2 - 1))
    if "server" in wanted:
        rows += server_rows(max(10, args.runs * 8))
    print_table(rows)


if __name__ == "__main__":
    main()
