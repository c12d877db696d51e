"""Which partition a home belongs to.

One function, shared by every form of partitioning: `tecmon serve --workers N`
on one box, and gateway instances consuming a NATS JetStream stream whose
subject mapping is `{{partition(N,1)}}` on the home token. NATS hashes the
token with FNV-1a (32 bit) and takes it modulo N; computing the same here
means a gateway knows, without asking the server, which partition (and so
which worker or instance) owns a home.
"""

from __future__ import annotations

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv1a_32(data: bytes) -> int:
    """FNV-1a, 32 bit: the hash NATS's `partition()` mapping uses."""
    h = _FNV32_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def partition_of(home: str, partitions: int) -> int:
    """The partition (0..partitions-1) that owns `home`."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    return fnv1a_32(home.encode("utf-8")) % partitions


def homes_of(partition: int, partitions: int, homes: list[str]) -> list[str]:
    """The homes among `homes` that `partition` owns, in their given order."""
    return [h for h in homes if partition_of(h, partitions) == partition]
