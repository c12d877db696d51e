"""`make bench`: every figure against its target, a table, and the results as JSON.

`python -m tests.benchmarks.run [--quick] [--only NAME ...] [--out out/bench.json]`
Each figure is measured in this one run on this machine (real Mosquitto and
PostgreSQL); `--quick` shrinks every size to check the harness works. With
`--only`, the figures measured replace those of the same name in an existing
results file and the others are kept. `python -m tests.benchmarks.table`
then writes README's Performance table from the file (`make bench` does both).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.benchmarks import engine, scale

Figure = dict[str, Any]
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"


def figure(name: str, value: float, unit: str, target: str, passed: bool, **detail: Any) -> Figure:
    return {"name": name, "value": value, "unit": unit, "target": target, "pass": passed, "detail": detail}


def engine_figures(quick: bool) -> list[Figure]:
    homes, nights = (100, 5) if quick else (1000, 30)
    result = engine.measure(homes, nights, runs=1)
    rate = float(result["events_per_s_median"])  # type: ignore[arg-type]
    return [figure(f"engine replay, {homes} homes x {nights} nights", rate, "events/s", ">= 150,000",
                   rate >= 150_000, **result)]


def scale_figures(quick: bool) -> list[Figure]:
    homes = 2000 if quick else 100_000
    result = scale.measure(homes, per_home=30)
    rss, startup = result["loaded"]["rss_mb"], result["startup"]["startup_s"]
    snapshots = result["startup_from_snapshots"]["startup_s"]
    return [
        figure(f"RSS with {homes:,} homes loaded", rss, "MB", "< 1,024", rss < 1024, **result["loaded"]),
        figure(f"start-up with 24 h recovery, {homes:,} homes", startup, "s", "< 30", startup < 30,
               **result["startup"]),
        figure(f"start-up from snapshots, {homes:,} homes, 24 h of events", snapshots, "s", "<= 10",
               snapshots <= 10, full_replay_s=startup, **result["startup_from_snapshots"]),
    ]


def persistence_figures(quick: bool) -> list[Figure]:
    from gateway.store.bench import copy_throughput

    result = asyncio.run(copy_throughput(SHARED_PG, 20_000 if quick else 200_000))
    ratio = float(result["store_vs_raw_binary"])
    return [figure("persistence: store write_events vs raw COPY", ratio, "ratio", ">= 0.5", ratio >= 0.5,
                   **result)]


def live_figures(module: str, quick: bool) -> list[Figure]:
    loaded = __import__(f"tests.benchmarks.{module}", fromlist=["run"])
    figures: list[Figure] = asyncio.run(loaded.run(quick=quick))
    return figures


FIGURES: dict[str, Callable[[bool], list[Figure]]] = {
    "engine": engine_figures,
    "ingest": lambda quick: live_figures("ingest", quick),
    "latency": lambda quick: live_figures("latency", quick),
    "scale": scale_figures,
    "persistence": persistence_figures,
    "preview": lambda quick: live_figures("preview", quick),
    "notice_storm": lambda quick: live_figures("notice_storm", quick),
    "cluster": lambda quick: live_figures("cluster", quick),
}


def table(results: list[Figure]) -> str:
    width = max(len(r["name"]) for r in results)
    lines = [f"{'figure':<{width}}  {'value':>12}  {'unit':<9} {'target':<12} result"]
    for r in results:
        value = f"{r['value']:,.0f}" if abs(r["value"]) >= 100 else f"{r['value']:.2f}"
        verdict = "PASS" if r["pass"] else "MISS"
        lines.append(f"{r['name']:<{width}}  {value:>12}  {r['unit']:<9} {r['target']:<12} {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: check the harness, not the figures")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="some figures only")
    parser.add_argument("--out", default="out/bench.json")
    args = parser.parse_args()
    results: list[Figure] = []
    began = time.monotonic()
    for name in args.only or list(FIGURES):
        started = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        results += FIGURES[name](args.quick)
        print(f"[bench] {name} done in {time.monotonic() - started:.0f} s", flush=True)
    report = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
              "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                          "platform": platform.platform()},
              "seconds": round(time.monotonic() - began), "figures": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and out.exists():  # some figures measured again: the others stay as last measured
        measured = {r["name"] for r in results}
        earlier = [f for f in json.loads(out.read_text())["figures"] if f["name"] not in measured]
        report["figures"] = results + earlier
    out.write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table(results))
    print(f"\n{sum(r['pass'] for r in results)}/{len(results)} targets met in {report['seconds']} s; "
          f"results in {out}")


if __name__ == "__main__":
    main()
