"""The demo: an example night of Julie's replayed, as a readable timeline."""

from __future__ import annotations

from importlib.resources import files
from typing import TextIO

import yaml

from alerts.decisions import Decision
from alerts.homeconfig import parse_home_config
from gateway.replay import lifecycle_line, run_replay


def run_demo(out: TextIO) -> int:
    data = files("simulator") / "data"
    cfg = parse_home_config(yaml.safe_load((data / "julie.home.yaml").read_text()), "julie.home.yaml")
    night = (data / "julie.night.jsonl").read_text().splitlines()

    def show(d: Decision) -> None:
        local = d.at.astimezone(cfg.zone).strftime("%a %H:%M")
        who = getattr(d, "contact", None)
        name = who.name if who is not None else ""
        line = lifecycle_line(d)
        out.write(f"{local}  {d.step:<12} {line['kind']:<22} {name}\n            {line['reason']}\n")

    run_replay([cfg], night, show)
    return 0
