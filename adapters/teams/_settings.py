"""Teams' settings: the Bot Framework names deployments use, and the Agents SDK's own; no SDK import."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from hitl_chatops.bot.config import SETTINGS_CONFIG, http_url

_AGENTS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"  # the Agents SDK's prefix for the bot's connection


class TeamsSettings(BaseSettings):
    """Teams is on once `MicrosoftAppId` is set, or in emulator mode (`HITL_CHATOPS_TEAMS_EMULATOR`)."""

    model_config = SETTINGS_CONFIG

    # Bot Framework names first; the Microsoft 365 Agents SDK's own names are read too.
    teams_app_id: str | None = Field(None, validation_alias=AliasChoices("MicrosoftAppId", f"{_AGENTS}CLIENTID"))
    teams_app_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MicrosoftAppPassword", f"{_AGENTS}CLIENTSECRET")
    )
    teams_app_type: str = Field("MultiTenant", validation_alias=AliasChoices("MicrosoftAppType"))
    teams_tenant_id: str | None = Field(
        None, validation_alias=AliasChoices("MicrosoftAppTenantId", f"{_AGENTS}TENANTID")
    )
    teams_authority: str | None = Field(None, validation_alias=AliasChoices(f"{_AGENTS}AUTHORITY"))
    teams_openid_url: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_TEAMS_OPENID_URL"))
    teams_graph_url: str = Field(
        "https://graph.microsoft.com/v1.0", validation_alias=AliasChoices("HITL_CHATOPS_GRAPH_URL")
    )
    teams_emulator: bool = Field(False, validation_alias=AliasChoices("HITL_CHATOPS_TEAMS_EMULATOR"))

    @field_validator("teams_authority", "teams_openid_url", "teams_graph_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id) or self.teams_emulator
