"""An acknowledgement link through the command router (`ingest: nats`): applied by the owner, and a
press the owner did not apply (a partition changing hands) leaves the link usable once."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.commands import Applied, Command, LocalCommands
from tests.api.test_ack_links import SAM, Ack, _jti, ack  # noqa: F401  (fixture)


@dataclass
class NoOwner:
    """A router that finds nobody running the home, as during a takeover."""

    asked: list[Command] = field(default_factory=list)

    async def apply(self, command: Command) -> Applied:
        self.asked.append(command)
        return Applied("no_owner")


async def test_a_press_not_applied_gives_the_use_back(ack: Ack) -> None:  # noqa: F811
    alert, token = await ack.raise_alert()
    router = NoOwner()
    ack.world.service.api.commands = router
    refused = await ack.world.client.post(f"/ack/{token}")
    assert refused.status_code == 503, refused.text
    assert [(c.kind, c.alert, c.by) for c in router.asked] == [("ack", alert, SAM)]
    assert await ack.world.service.store.ack_link_used_at(_jti(ack, token)) is None, "the use was kept"
    assert ack.acknowledged_by() == {alert: None}
    ack.world.service.api.commands = LocalCommands(ack.world.service.runtime)
    done = await ack.world.client.post(f"/ack/{token}")
    assert done.status_code == 200 and "nobody else will be called" in done.text, done.text
    assert ack.acknowledged_by() == {alert: SAM}
    again = await ack.world.client.post(f"/ack/{token}")
    assert again.status_code == 410, again.text
    resolved = await ack.world.client.post(f"/ack/{token}/resolve", data={"outcome": "false_alarm"})
    assert resolved.status_code == 200, resolved.text
    assert ack.acknowledged_by() == {}
