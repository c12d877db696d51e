"""Accounts, machine tokens, acknowledgement links and managed homes: one contract, two backends."""

from __future__ import annotations

import pytest

from gateway.store.accounts import AccountExists, UserRow
from gateway.store.migrations import LATEST
from tests import store_contract as sc
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration
T0 = sc.T0


def user(name: str = "sam", role: str = "carer", homes: tuple[str, ...] = ("julie",)) -> UserRow:
    return UserRow(name, role, homes, "Sam (daughter)", "$argon2id$hash", T0)  # type: ignore[arg-type]


async def test_accounts_are_kept_listed_and_removed_with_their_tokens(backend: Backend) -> None:
    store = backend.store
    assert await store.schema_version() == LATEST
    await store.add_user(user())
    await store.add_user(user("ana", "coordinator", ("julie", "arthur")))
    with pytest.raises(AccountExists, match="'sam' already exists"):
        await store.add_user(user())
    assert [u.name for u in await store.list_users()] == ["ana", "sam"]
    sam = await store.get_user("sam")
    assert sam == user()
    await store.add_machine_token("t1", "sam", "digest", T0)
    assert await store.machine_token("t1") == ("sam", "digest")
    await store.set_user_homes("sam", ("julie", "maya"))
    assert (await store.get_user("sam")).homes == ("julie", "maya")  # type: ignore[union-attr]
    assert await store.remove_user("sam") is True
    assert await store.remove_user("sam") is False
    assert await store.machine_token("t1") is None
    assert await store.get_user("sam") is None


async def test_an_acknowledgement_link_is_used_once_even_across_a_restart(backend: Backend) -> None:
    assert await backend.store.use_ack_link("abc", "julie:x", "Sam", T0) is True
    again = backend.another()
    await again.open()
    try:
        assert await again.use_ack_link("abc", "julie:x", "Sam", T0) is False
        assert await again.ack_link_used_at("abc") == T0
        assert await again.ack_link_used_at("other") is None
        await again.release_ack_link("abc")  # what it was for was not applied: usable once again
        assert await backend.store.ack_link_used_at("abc") is None
        assert await backend.store.use_ack_link("abc", "julie:x", "Sam", T0) is True
        assert await again.use_ack_link("abc", "julie:x", "Sam", T0) is False
    finally:
        await again.close()


async def test_managed_homes_and_config_versions(backend: Backend) -> None:
    store = backend.store
    await store.set_managed("julie", True, T0)
    await store.set_managed("julie", True, T0)  # idempotent
    assert await store.managed_homes() == ["julie"]
    await store.save_home_config("julie", {"home": "julie", "n": 1}, "ana", "first", T0)
    await store.save_home_config("julie", {"home": "julie", "n": 2}, "ana", "second", T0)
    latest = await store.home_config_version("julie")
    assert latest is not None and latest.version == 2 and latest.config["n"] == 2
    first = await store.home_config_version("julie", 1)
    assert first is not None and first.why == "first" and first.saved_at == T0
    assert await store.home_config_version("julie", 9) is None
    await store.set_managed("julie", False, T0)
    assert await store.managed_homes() == []


async def test_a_signing_key_is_kept_once(backend: Backend) -> None:
    first = await backend.store.set_meta_once("k", "one")
    assert first == "one"
    assert await backend.store.set_meta_once("k", "two") == "one"
    assert await backend.store.get_meta("k") == "one"
