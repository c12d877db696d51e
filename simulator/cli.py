"""`tecmon sim ...`: the device simulator's command line.

Each family of sub-commands lives in its own module and registers itself here.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_sim_parser(sub: Any) -> None:
    from simulator import dataset_cmd, load_cmd, persona_cmd, scenario_cmd

    sim: argparse.ArgumentParser = sub.add_parser(
        "sim", help="device simulator: datasets, scenarios, personas, load"
    )
    commands = sim.add_subparsers(dest="sim_command", required=True)
    dataset_cmd.register(commands)
    scenario_cmd.register(commands)
    persona_cmd.register(commands)
    load_cmd.register(commands)
