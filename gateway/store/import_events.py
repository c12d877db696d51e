"""`tecmon db import-events`: recorded replay lines stored as the homes' history.

A dataset or a night recorded elsewhere (`tecmon sim dataset`, a capture of
MQTT traffic) becomes history that the nights, summary and preview pages can
show, as if the gateway had received it: each message is decoded with the
home's device profiles, the event time is the payload's `last_seen` when it
has one (never later than the line), else the line's `ts`, and `ts` is the
time it was received. Acknowledgements and resolutions are not sensor
history and are passed over. Company mode is kept as the live service keeps
it, as `company` inputs (on/off, when and by whom): a `{"ts", "company",
"by"}` line for a home whose routine has company mode, and the routine's
company button action (by the person) whenever it starts or ends it, which
is then not stored as a button event. So the preview and the nights see an
imported night with someone there as the service saw it live. Bad lines are
reported with their number on stderr and skipped, with exit code 3, as
`tecmon replay` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from alerts import care
from alerts.engine import PRESS_DEBOUNCE, new_state
from alerts.events import SensorEvent, SetCompany
from alerts.homeconfig import ConfigError, HomeConfig, load_home_config
from alerts.plan import plan_from_config
from alerts.state import HomeState
from gateway.decoding import DeadLetter, MessageDecoder
from gateway.replay import BadLine, InputLine, parse_line
from gateway.store.base import EventRow, InputRow, Store
from gateway.store.cli import EXIT_OK, database_option, with_store

if TYPE_CHECKING:
    from gateway.store.cli import SubParsers

EXIT_BAD_LINES = 3
BATCH = 5_000
PROGRESS_EVERY = 100_000


@dataclass
class ImportReport:
    lines_read: int = 0
    events_stored: int = 0
    company_inputs: int = 0
    commands_passed_over: int = 0
    per_home: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"lines_read": self.lines_read, "events_stored": self.events_stored,
                "lines_skipped": len(self.problems), "company_inputs": self.company_inputs,
                "commands_passed_over": self.commands_passed_over,
                "homes": dict(sorted(self.per_home.items())),
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None}


class _Company:
    """Each home's company mode, followed as the live runtime does (`Runtime._company_action`)."""

    def __init__(self, homes: Sequence[HomeConfig]) -> None:
        self.states: dict[str, HomeState] = {
            h.home: new_state(plan_from_config(h)) for h in homes if h.routine.company is not None}

    def command(self, line: InputLine, inp: SetCompany) -> list[InputRow]:
        """A carer's input: kept for every home it names that has company mode (the API refuses others)."""
        homes = [line.home] if line.home else list(self.states)
        out = []
        for home in homes:
            if home in self.states:
                care.set_company(self.states[home], inp.on, line.ts)
                out.append(InputRow.from_input(home, inp, line.ts))
        return out

    def action(self, event: SensorEvent, received: datetime) -> tuple[bool, InputRow | None]:
        """(is it the company action, the input it makes if it started or ended company mode)."""
        state = self.states.get(event.home)
        if state is None or not care.is_company_action(state, event.action):
            return False, None
        before = (state.company_from, state.company_until)
        care.on_company_action(state, event.at, received, PRESS_DEBOUNCE)
        if (state.company_from, state.company_until) == before:
            return True, None
        on = SetCompany(care.company_on(state, received), state.plan.person)
        return True, InputRow.from_input(event.home, on, received)


class _Importer:
    """Decodes lines into event rows (and company inputs) and writes them in batches."""

    def __init__(self, store: Store, homes: Sequence[HomeConfig], prefix: str) -> None:
        self.store, self.decoder = store, MessageDecoder(homes, prefix)
        self.report, self.batch = ImportReport(), list[EventRow]()
        self.company, self.inputs = _Company(homes), list[InputRow]()

    async def line(self, number: int, text: str) -> None:
        self.report.lines_read += 1
        try:
            line = parse_line(text)
            if line.topic is None:
                self._command(line)
                return
            events = self.decoder.decode(line.topic, line.payload, line.ts)
        except (BadLine, DeadLetter) as exc:
            self.report.problems.append((number, str(exc)))
            return
        for event in events:
            if event.action is not None:
                is_company, made = self.company.action(event, line.ts)
                if is_company:
                    self.inputs += [made] if made else []
                    continue
            self.batch.append(EventRow.from_event(event, line.ts))
            self.report.per_home[event.home] += 1
        report = self.report
        report.first = line.ts if report.first is None else min(report.first, line.ts)
        report.last = line.ts if report.last is None else max(report.last, line.ts)
        if len(self.batch) >= BATCH:
            await self.flush()

    def _command(self, line: InputLine) -> None:
        kept = self.company.command(line, line.command) if isinstance(line.command, SetCompany) else []
        self.inputs += kept
        if not kept:
            self.report.commands_passed_over += 1

    async def flush(self) -> None:
        if self.batch:
            await self.store.write_events(self.batch)
            self.report.events_stored += len(self.batch)
            self.batch = []
        if self.inputs:
            await self.store.write_inputs(self.inputs)
            self.report.company_inputs += len(self.inputs)
            self.inputs = []


async def import_lines(store: Store, homes: Sequence[HomeConfig], lines: Iterable[str],
                       prefix: str = "zigbee2mqtt", progress: TextIO | None = None) -> ImportReport:
    """Store every decodable message of `lines`; the report lists the lines skipped and why."""
    importer = _Importer(store, homes, prefix)
    for number, text in enumerate(lines, start=1):
        if text.strip():
            await importer.line(number, text)
        if progress is not None and number % PROGRESS_EVERY == 0:
            decoded = importer.report.events_stored + len(importer.batch)
            print(f"import-events: {number:,} lines read, {decoded:,} events", file=progress, flush=True)
    await importer.flush()
    return importer.report


def _homes(paths: Sequence[str]) -> list[HomeConfig]:
    homes = [load_home_config(p, service_fallback=True) for p in paths]  # nobody is called here
    ids = [h.home for h in homes]
    for home in {i for i in ids if ids.count(i) > 1}:
        raise ConfigError(home, [f"home: {home!r} is configured twice"])
    return homes


def cmd_import_events(args: argparse.Namespace) -> int:
    homes = _homes(args.config)

    async def work(store: Store, out: TextIO) -> int:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with source:
            report = await import_lines(store, homes, source, args.prefix, progress=sys.stderr)
        for number, reason in report.problems:
            print(f"{args.file}:{number}: {reason}; line skipped", file=sys.stderr)
        out.write(json.dumps(report.summary()) + "\n")
        return EXIT_BAD_LINES if report.problems else EXIT_OK

    return with_store(args, work)


def add_parser(sub: SubParsers) -> None:
    """`tecmon db import-events` (registered by `gateway.store.cli.register`)."""
    parser = sub.add_parser("import-events", help="store replay-format lines as the homes' history")
    parser.add_argument("file", metavar="FILE.jsonl", help="replay input lines, or - for stdin")
    database_option(parser)
    parser.add_argument("--config", action="append", required=True, metavar="HOME.yaml",
                        help="the configuration of a home in the file, to decode its devices (repeat)")
    parser.add_argument("--prefix", default="zigbee2mqtt", help="MQTT topic prefix (default zigbee2mqtt)")
    parser.set_defaults(func=cmd_import_events)
