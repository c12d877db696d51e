"""A home's past, read back for people: one night as a chart, a summary of many, a what-if.

Pure logic only (no store, no HTTP): `nights` says which instants belong to
which night and turns stored events into a night's chart, `summary` computes
the figures of many nights, `preview` replays stored events through the
engine under two configurations. `gateway/api/history.py` is the HTTP edge.
"""
