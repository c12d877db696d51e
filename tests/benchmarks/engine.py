"""Engine replay: 1,000 homes x 30 simulated nights in one process.

`python -m tests.benchmarks.engine [--homes 1000] [--nights 30] [--runs 3]`
generates ordinary nights of the simulator's personas (ten different seeds,
shared out over the homes), decodes them once, then times what replay and the
live runtime do per event: the deadline heap across all homes and
`engine.step` for each event and each timer. Decoding JSON is not included;
`tests.benchmarks.replay` measures the whole `tecmon replay` path.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import time
from datetime import datetime

from alerts.engine import new_state, next_deadline, step
from alerts.events import SensorEvent, Tick
from alerts.homeconfig import HomeConfig
from alerts.plan import plan_from_config
from alerts.state import HomeState
from gateway.decoding import MessageDecoder
from gateway.replay import parse_line
from gateway.scheduler import DeadlineHeap
from simulator.persona_cmd import persona_lines
from simulator.personas import get_persona

TEMPLATES = 10
Timed = tuple[datetime, SensorEvent]


def template_nights(nights: int) -> tuple[HomeConfig, list[list[Timed]]]:
    home = get_persona("julie").home()
    decoder = MessageDecoder([home])
    streams = []
    for seed in range(TEMPLATES):
        events: list[Timed] = []
        for text in persona_lines("julie", nights, seed=seed):
            line = parse_line(text)
            assert line.topic is not None
            events += [(line.ts, e) for e in decoder.decode(line.topic, line.payload, line.ts)]
        streams.append(events)
    return home, streams


def all_homes(homes: int, nights: int) -> tuple[dict[str, HomeState], list[tuple[datetime, str, SensorEvent]]]:
    """Every home gets its own state; homes sharing a template share its (immutable) events.

    The engine keys nothing on the home id, so the template's events are applied
    as they are, which keeps setup to seconds for ten million events.
    """
    template, streams = template_nights(nights)
    plan = plan_from_config(template)
    states = {f"h{i}": new_state(plan) for i in range(homes)}
    homes_of = [[f"h{i}" for i in range(t, homes, TEMPLATES)] for t in range(TEMPLATES)]
    tagged = heapq.merge(*([(ts, t, e) for ts, e in stream] for t, stream in enumerate(streams)),
                         key=lambda item: item[0])
    merged = [(ts, name, event) for ts, t, event in tagged for name in homes_of[t]]
    return states, merged


def run_once(states: dict[str, HomeState], events: list[tuple[datetime, str, SensorEvent]]) -> tuple[float, int]:
    heap, decided, tick = DeadlineHeap(), 0, Tick()
    began = time.perf_counter()
    for now, home, event in events:
        if heap.maybe_due(now):
            for deadline, due_home in heap.pop_due(now):
                state, decisions = step(states[due_home], tick, deadline)
                decided += len(decisions)
                heap.schedule(due_home, next_deadline(state))
        state, decisions = step(states[home], event, now)
        decided += len(decisions)
        heap.schedule(home, next_deadline(state))
    return time.perf_counter() - began, decided


def measure(homes: int = 1000, nights: int = 30, runs: int = 3) -> dict[str, object]:
    rates, decided = [], 0
    states, events = all_homes(homes, nights)
    plan = next(iter(states.values())).plan
    for _ in range(runs):
        fresh = {home: new_state(plan) for home in states}  # every run starts from nothing
        seconds, decided = run_once(fresh, events)
        rates.append(len(events) / seconds)
    return {"homes": homes, "nights": nights, "events": len(events), "lifecycle_steps": decided,
            "events_per_s_median": round(statistics.median(rates)), "events_per_s_all": [round(r) for r in rates]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.homes, args.nights, args.runs), indent=2))


if __name__ == "__main__":
    main()
