"""A gateway that cannot run one of its parts stops and says why, instead of running on deaf.

The case that used to be silent: an instance of a NATS cluster whose NATS has no JetStream
(a configuration slip) served its API as if all was well while no home's messages were read.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, port_open
from tests.integration.nats_cluster import NATS_SERVER
from tests.integration.nats_gateways import Gateway, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def nats_without_jetstream(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with open(tmp_path / "nats.log", "wb") as log:
        server = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "nats-server listening")
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def test_an_instance_whose_nats_has_no_jetstream_exits_non_zero_and_names_the_part(
        tmp_path: Path, database: str, nats_without_jetstream: str) -> None:
    homes = tmp_path / "homes"
    homes.mkdir()
    gateway = Gateway("lonely", tmp_path, homes, [nats_without_jetstream], database, partitions=4)
    gateway.start()
    assert gateway.proc is not None
    try:
        code = gateway.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        gateway.close()
        pytest.fail(f"tecmon serve kept running without its ingest:\n{gateway.log.read_text()[-3000:]}")
    log = gateway.log.read_text()
    assert code != 0, log[-3000:]
    assert "tecmon stopped: ingest ended" in log, log[-3000:]
    assert "stopping: ingest ended" in log, log[-3000:]
