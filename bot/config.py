"""One typed settings object, read from the environment once and checked at start-up.

Explicit arguments beat environment variables; each ecosystem keeps its own variable names
(`SLACK_BOT_TOKEN`, `MicrosoftAppId`, fsspec URLs), and every error names the variable to set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

_AGENTS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"  # the Agents SDK's prefix for the bot's connection


def default_store_url() -> str:
    return (Path(platformdirs.user_data_dir("hitl-chatops")) / "store").as_uri()


class Settings(BaseSettings):
    """Everything the bot and the plugin can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, validate_by_name=True, env_ignore_empty=True)

    store: str = Field(default_factory=default_store_url, validation_alias=AliasChoices("HITL_CHATOPS_STORE"))
    secret: SecretStr | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_SECRET"))
    public_url: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_PUBLIC_URL"))
    bot_url: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_URL"))
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("HITL_CHATOPS_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=AliasChoices("HITL_CHATOPS_PORT"))
    metrics_port: int | None = Field(None, ge=0, le=65535, validation_alias=AliasChoices("HITL_CHATOPS_METRICS_PORT"))
    reconcile_seconds: float = Field(15, ge=0, validation_alias=AliasChoices("HITL_CHATOPS_RECONCILE_SECONDS"))
    log_format: Literal["json", "text"] = Field("json", validation_alias=AliasChoices("HITL_CHATOPS_LOG_FORMAT"))

    slack_bot_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = Field(None, validation_alias=AliasChoices("SLACK_API_URL"))
    slack_channel: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_SLACK_CHANNEL"))
    slack_command: str = Field("/hitl", validation_alias=AliasChoices("HITL_CHATOPS_SLACK_COMMAND"))

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

    # Native Flyte conditions (bot/conditions.py): where and how the bot signals them.
    flyte_endpoint: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_ENDPOINT"))
    flyte_insecure: bool = Field(False, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_INSECURE"))
    flyte_config: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_CONFIG"))
    flyte_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("FLYTE_API_KEY"))

    @field_validator("public_url", "bot_url", "slack_api_url", "teams_authority", "teams_openid_url", "teams_graph_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def flyte_enabled(self) -> bool:
        return bool(self.flyte_endpoint or self.flyte_config or self.flyte_api_key)

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id) or self.teams_emulator

    def secret_value(self) -> str:
        """The shared secret, or a one-line error saying how to set it."""
        if self.secret is None or len(self.secret.get_secret_value()) < 16:
            raise ConfigError(
                "Set HITL_CHATOPS_SECRET to a random string of at least 16 characters "
                "(for example `openssl rand -hex 32`); the plugin and the bot must share it."
            )
        return self.secret.get_secret_value()

    @property
    def listen_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def form_base_url(self) -> str:
        return self.public_url or self.bot_url or self.listen_url


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, apply explicit overrides, and turn errors into one line."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "setting"
        name = _variable_name(field)
        raise ConfigError(f"{name} is invalid: {first['msg']}. Fix or unset {name}.") from None


def _variable_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field
