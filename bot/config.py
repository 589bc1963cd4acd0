"""One typed settings object, read from the environment once and checked at start-up.

Explicit arguments beat environment variables; each ecosystem keeps its own variable names
(`SLACK_BOT_TOKEN`, `MicrosoftAppId`, fsspec URLs), and every error names the variable to set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["FLYTE_CALL_SECONDS", "SETTINGS_CONFIG", "Settings", "http_url", "load_settings", "read_settings"]

FLYTE_CALL_SECONDS = 5.0  # each call to Flyte's control plane (bot/flyte_signal.py; a healthy one answers in ms)
# Every settings class of the bot, a platform's included, reads the environment this way.
SETTINGS_CONFIG = SettingsConfigDict(extra="ignore", frozen=True, validate_by_name=True, env_ignore_empty=True)


def default_store_url() -> str:
    return (Path(platformdirs.user_data_dir("hitl-chatops")) / "store").as_uri()


def http_url(value: str | None) -> str | None:
    """A URL setting: http(s) only, without a trailing slash."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/") if value else value


class Settings(BaseSettings):
    """The core's settings; see docs/configuration.md.

    The bot runs with an instance of a subclass that also holds every registered platform's
    settings (`slack_…`, `teams_…`: see `adapter.load_bot_settings`), so one object is validated once.
    """

    model_config = SETTINGS_CONFIG

    store: str = Field(default_factory=default_store_url, validation_alias=AliasChoices("HITL_CHATOPS_STORE"))
    secret: SecretStr | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_SECRET"))
    public_url: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_PUBLIC_URL"))
    bot_url: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_URL"))
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("HITL_CHATOPS_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=AliasChoices("HITL_CHATOPS_PORT"))
    metrics_port: int | None = Field(None, ge=0, le=65535, validation_alias=AliasChoices("HITL_CHATOPS_METRICS_PORT"))
    reconcile_seconds: float = Field(15, ge=0, validation_alias=AliasChoices("HITL_CHATOPS_RECONCILE_SECONDS"))
    log_format: Literal["json", "text"] = Field("json", validation_alias=AliasChoices("HITL_CHATOPS_LOG_FORMAT"))
    # A local run with a terminal asks there too (plugin/_console.py); false keeps it to the form and chat.
    console: bool = Field(True, validation_alias=AliasChoices("HITL_CHATOPS_CONSOLE"))
    # A YAML file (path or fsspec URL) of rules that tighten every event the plugin creates (bot/policy.py).
    policy: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_POLICY"))

    # Native Flyte conditions (bot/conditions.py): where and how the bot signals them.
    flyte_endpoint: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_ENDPOINT"))
    flyte_insecure: bool = Field(False, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_INSECURE"))
    flyte_config: str | None = Field(None, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_CONFIG"))
    flyte_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("FLYTE_API_KEY"))
    flyte_timeout_seconds: float = Field(
        FLYTE_CALL_SECONDS, gt=0, validation_alias=AliasChoices("HITL_CHATOPS_FLYTE_TIMEOUT_SECONDS")
    )

    @field_validator("public_url", "bot_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def flyte_enabled(self) -> bool:
        return bool(self.flyte_endpoint or self.flyte_config or self.flyte_api_key)

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


SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(**overrides: Any) -> Settings:
    """The core's settings: read the environment, apply explicit overrides, and turn errors into one line.

    Enough for the plugin and the CLI's listings; the bot itself runs with `adapter.load_bot_settings`,
    which adds every platform's fields (and so imports the adapters' packages).
    """
    return read_settings(Settings, overrides)


def read_settings(kind: type[SettingsT], overrides: Mapping[str, Any]) -> SettingsT:
    """`kind` from the environment and the given overrides (None: not given); errors name the variable."""
    try:
        return kind(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "setting"
        name = _variable_name(kind, field)
        raise ConfigError(f"{name} is invalid: {first['msg']}. Fix or unset {name}.") from None


def _variable_name(kind: type[Settings], field: str) -> str:
    info = kind.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field
