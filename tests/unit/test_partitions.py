"""The partition function: FNV-1a 32 known values, range and stability."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.partitions import fnv1a_32, homes_of, partition_of

# Published FNV-1a 32-bit test vectors.
VECTORS = [(b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968)]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_fnv1a_32_matches_the_published_vectors(data: bytes, expected: int) -> None:
    assert fnv1a_32(data) == expected


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=1024))
def test_every_home_lands_in_one_partition_in_range(home: str, n: int) -> None:
    p = partition_of(home, n)
    assert 0 <= p < n
    assert partition_of(home, n) == p


def test_the_partitions_split_homes_without_overlap_or_loss() -> None:
    homes = [f"home-{i}" for i in range(500)]
    shares = [homes_of(p, 4, homes) for p in range(4)]
    assert sorted(h for share in shares for h in share) == sorted(homes)
    assert all(len(share) > 60 for share in shares)


def test_no_partitions_is_refused_with_the_count() -> None:
    with pytest.raises(ValueError, match="not 0"):
        partition_of("julie", 0)
