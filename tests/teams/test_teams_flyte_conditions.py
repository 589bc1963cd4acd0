"""Native Flyte conditions with Teams: a card answer signals the condition the event mirrors."""

from __future__ import annotations

from collections.abc import Callable

from hitl_chatops.bot.protocol import ConditionRef
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.bot_connector import FakeConnector, card_of
from tests.fakes.flyte import DOMAIN, PROJECT, FakeFlyte
from tests.helpers import signal_record
from tests.teams.teams_helpers import CHANNEL, Teams, answer, make_event, texts


async def test_card_answer_signals_the_condition_once(
    fake_flyte: FakeFlyte, connector: FakeConnector, start_bot: Callable[..., BotThread]
) -> None:
    bot = start_bot(teams_emulator=True, flyte_endpoint=fake_flyte.endpoint, flyte_insecure=True)
    teams = Teams(bot, connector)
    await teams.install()
    condition = fake_flyte.add_condition("r-teams-1", "a0", "deploy_size", int)
    ref = ConditionRef(project=PROJECT, domain=DOMAIN, run_name="r-teams-1", action_name="a0", name="deploy_size")
    event = await make_event(bot, channels=[f"teams:{CHANNEL}"], min_value=1, max_value=5, condition=ref)
    [posted] = await connector.wait_for(lambda: connector.sent(CHANNEL)[1:])  # after the welcome
    assert "Can also be answered in Flyte" in texts(card_of(posted.body))

    status, body = await teams.invoke(answer(event.request_id, "9"))
    assert status == 200 and "from 1 to 5" in texts(body["value"])
    status, _ = await teams.invoke(answer(event.request_id, "4"))
    assert status == 200
    assert (await signal_record(Store(bot.settings.store), event.request_id))["outcome"] == "signalled"
    assert fake_flyte.signals_to(condition) == [4]
