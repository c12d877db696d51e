"""Replay throughput on real data: Ordóñez house A's 14 days, repeated.

`python -m tests.benchmarks.replay [--repeat N] [--runs 3]` converts house A,
repeats it N times back to back (each copy shifted by 14 days), and replays
it through the same code path as `tecmon replay` (JSON lines in, lifecycle
lines out), reporting the median events/s of the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.homeconfig import load_home_config
from gateway.replay import lifecycle_line, run_replay
from simulator.ordonez import convert_ordonez

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT.parent / "shared" / "datasets" / "ordonez-a" / "OrdonezA_Sensors.txt"
DATA = ROOT / "simulator" / "data"


def house_a_lines(repeat: int) -> list[str]:
    """Each copy follows the previous one seamlessly, at the same local wall-clock times."""
    zone = ZoneInfo("Europe/Madrid")
    base = list(convert_ordonez(DATASET, DATA / "ordonez-a.map.yaml"))
    local = [datetime.fromisoformat(str(row["ts"])).astimezone(zone).replace(tzinfo=None) for row in base]
    wrap = 1 if local[-1].time() >= local[0].time() else 0
    span = timedelta(days=(local[-1].date() - local[0].date()).days + wrap)
    lines: list[str] = []
    for copy in range(repeat):
        for row, wall in zip(base, local, strict=True):
            ts = (wall + span * copy).replace(tzinfo=zone).astimezone(UTC)
            payload = dict(row["payload"]) if isinstance(row["payload"], dict) else row["payload"]
            if isinstance(payload, dict) and "last_seen" in payload:
                payload["last_seen"] = ts.isoformat()
            lines.append(json.dumps({"ts": ts.isoformat(), "topic": row["topic"], "payload": payload}))
    return lines


def replay_rate(lines: list[str]) -> tuple[float, int]:
    home = load_home_config(DATA / "ordonez-a.home.yaml")
    out: list[str] = []
    start = time.perf_counter()
    report = run_replay([home], lines, lambda d: out.append(json.dumps(lifecycle_line(d))))
    elapsed = time.perf_counter() - start
    assert not report.problems, report.problems[:3]
    return report.events_applied / elapsed, len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=100, help="copies of the 14 days (default 100)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lines = house_a_lines(args.repeat)
    rates = [replay_rate(lines) for _ in range(args.runs)]
    print(json.dumps({
        "lines": len(lines), "days": 14 * args.repeat, "runs": args.runs,
        "events_per_s_median": round(statistics.median(r for r, _ in rates)),
        "events_per_s_all": [round(r) for r, _ in rates], "lifecycle_lines": rates[0][1],
    }, indent=2))


if __name__ == "__main__":
    main()
