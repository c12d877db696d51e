"""`python -m tests.soak` (`make soak`): the soak test with ground truth; see README "Soak test".

    python -m tests.soak --minutes 30          # 1,000 homes, faults at random
    python -m tests.soak --minutes 3 --homes 300 --faults broker,gateway,postgres,notifier
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from tests.soak.report import text
from tests.soak.run import SHORT, SoakPlan, run_soak

SETUP_S = 25.0  # of a run's minutes, before and after publishing (databases, homes, settling)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the night takes (default 30)")
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", help="comma-separated kinds in order (broker, gateway, postgres, "
                                         "notifier); default: at random, every kind at least once")
    parser.add_argument("--out", type=Path, default=Path("out"), help="the report goes to OUT/soak.json")
    parser.add_argument("--night", choices=("full", "short"),
                        help="full: 16:55-08:45 UTC, evening to morning; short: 23:00-05:00, the evening "
                             "sent as each device's latest reading (default: short under 10 minutes)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tecmon.soak").setLevel(logging.INFO)  # progress: phases and faults
    faults = tuple(k for k in args.faults.split(",") if k) if args.faults is not None else None
    seconds = max(30.0, args.minutes * 60 - SETUP_S)
    night = args.night or ("short" if args.minutes < 10 else "full")
    span = {"start": SHORT[0], "cut": SHORT[1]} if night == "short" else {}
    report = asyncio.run(run_soak(SoakPlan(args.homes, seconds, args.seed, faults, args.out, **span)))
    print(text(report))
    print(f"report: {args.out / 'soak.json'}")
    alerts, events = report["alerts"], report["events"]
    dup = report["deliveries"]["duplicates"]
    ok = alerts["missed"] == 0 and events["lost_outside_crash_window"] == 0 and dup["total"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
