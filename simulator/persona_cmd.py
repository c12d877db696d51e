"""`tecmon sim persona NAME --nights N`: ordinary nights of one persona, back to back.

Ordinary nights must raise no alert with the persona's own home, so the
ground truth written beside `--out` is empty; `--check` shows that the
persona's spreads cannot cross that home's thresholds.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import timedelta
from typing import Any

from simulator.night import Timeline, checkins, normal_night, render
from simulator.personas import builtin_personas, check_against_home, get_persona
from simulator.scenario_cmd import add_night_args, add_output_args, deliver
from simulator.scenarios import DEFAULT_DAY


def persona_lines(name: str, nights: int, seed: int = 0, day: Any = None,
                  prefix: str = "zigbee2mqtt") -> list[str]:
    """`nights` consecutive ordinary nights as replay JSONL; deterministic per seed.

    Between one night's end and the next evening the person is out of sight of
    the simulator, but the sensors are not: they go on with their hourly
    battery reports, as real ones do, so a day is not mistaken for sensors that
    stopped (their profiles expect a report every two hours).
    """
    persona = get_persona(name)
    home = persona.home()
    first = day or DEFAULT_DAY
    timeline = Timeline(home)
    day_ended = None
    for n in range(nights):
        night = first + timedelta(days=n)
        times = normal_night(timeline, persona, night, random.Random(f"persona:{name}:{seed}:{night}"))
        if day_ended is not None:
            daytime = random.Random(f"persona-day:{name}:{seed}:{night}")
            checkins(timeline, persona, daytime, (day_ended, times.start))
        day_ended = times.end
    return render(timeline, prefix)


def run(args: argparse.Namespace) -> int:
    personas = builtin_personas()
    if args.list or not args.name:
        for name, persona in sorted(personas.items()):
            print(f"{name:<8} {persona.home().home:<22} {persona.description}")
        return 0 if args.list else 2
    persona = get_persona(args.name)
    if args.check:
        problems = check_against_home(persona, persona.home())
        for problem in problems:
            print(f"{args.name}: {problem}")
        print(f"{args.name}: {'NOT OK' if problems else 'OK'} against {persona.home_file}")
        return 1 if problems else 0
    started = time.monotonic()
    lines = persona_lines(args.name, args.nights, args.seed, args.date, args.prefix)
    what = f"persona {args.name} ({args.nights} night(s), seed {args.seed})"
    return deliver(lines, args, what, 1, expected=[], started=started)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "persona", help="ordinary nights of a persona (no alert expected)")
    parser.add_argument("name", nargs="?", help="the persona (see --list)")
    parser.add_argument("--list", action="store_true", help="list the built-in personas")
    parser.add_argument("--check", action="store_true",
                        help="check the persona's habits against its home's thresholds")
    parser.add_argument("--nights", type=int, default=1, help="how many nights (default 1)")
    add_night_args(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)
