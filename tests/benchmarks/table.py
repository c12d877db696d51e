"""README's Performance table, written from `out/bench.json` (what `make bench` measured).

`python -m tests.benchmarks.table [--bench out/bench.json] [--readme README.md] [--keep-others]`

The rows between the `bench-table` markers in README.md are replaced by one
row per figure in the results file: value, target and PASS/MISS as measured,
never typed in. `--keep-others` keeps the rows of figures the file does not
have (after `run --only ingest`, the other figures stay as last measured).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

START = "<!-- bench-table:start (written by python -m tests.benchmarks.table from out/bench.json) -->"
END = "<!-- bench-table:end -->"
HEADER = ["| figure | value | target | result |", "|---|---|---|---|"]


def value_text(figure: dict[str, Any]) -> str:
    value, unit = figure["value"], figure["unit"]
    number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return number if unit == "ratio" else f"{number} {unit}"


def row(figure: dict[str, Any]) -> str:
    verdict = "PASS" if figure["pass"] else "MISS"
    return f"| {figure['name']} | {value_text(figure)} | {figure['target']} | {verdict} |"


def rows_by_name(lines: list[str]) -> dict[str, str]:
    """The table rows already there, by figure name (header and separator left out)."""
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] not in ("figure", "---"):
            rows[cells[0]] = line
    return rows


def render(report: dict[str, Any], old: list[str], keep_others: bool) -> list[str]:
    new = {f["name"]: row(f) for f in report["figures"]}
    kept = {name: line for name, line in rows_by_name(old).items() if name not in new} if keep_others else {}
    machine = report.get("machine", {})
    note = (f"Measured {report['at']} ({'quick sizes, ' if report.get('quick') else ''}Python "
            f"{machine.get('python', '?')}, {machine.get('cpus', '?')} CPUs)"
            + ("; rows of figures not in that run are from earlier runs." if kept else "."))
    return [START, *HEADER, *new.values(), *kept.values(), "", note, END]


def rewrite(readme: Path, report: dict[str, Any], keep_others: bool) -> None:
    lines = readme.read_text(encoding="utf-8").splitlines()
    if START not in lines or END not in lines:
        raise SystemExit(f"{readme}: no bench-table markers")
    begin, end = lines.index(START), lines.index(END)
    table = render(report, lines[begin + 1 : end], keep_others)
    readme.write_text("\n".join([*lines[:begin], *table, *lines[end + 1 :]]) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="out/bench.json")
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--keep-others", action="store_true", help="keep rows of figures not in the file")
    args = parser.parse_args()
    report = json.loads(Path(args.bench).read_text(encoding="utf-8"))
    rewrite(Path(args.readme), report, args.keep_others)
    print(f"{args.readme}: Performance table written from {args.bench} ({len(report['figures'])} figures)")


if __name__ == "__main__":
    main()
