"""Slack's settings, under Slack's own variable names (`SLACK_BOT_TOKEN`, …); no Slack SDK import."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from hitl_chatops.bot.config import SETTINGS_CONFIG, http_url

EVENTS_PATH = "/slack/events"  # where Slack sends events, clicks and commands (the manifest's request URLs)


class SlackSettings(BaseSettings):
    """Slack is on once `SLACK_BOT_TOKEN` is set."""

    model_config = SETTINGS_CONFIG

    slack_bot_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = Field(None, validation_alias=AliasChoices("SLACK_API_URL"))
    slack_channel: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_SLACK_CHANNEL"))
    slack_command: str = Field("/hitl", validation_alias=AliasChoices("HITL_CHATOPS_SLACK_COMMAND"))

    @field_validator("slack_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None
