"""Conversation references: where the bot may post proactively, kept in the core's store.

The tenant (`channelData.tenant.id`, which Teams needs on every proactive post) is kept beside
the reference, so a post never depends on which fields a reference happens to carry.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

from microsoft_agents.activity import Activity, ConversationReference
from pydantic import ValidationError

from hitl_chatops.bot.errors import StoreError
from hitl_chatops.bot.service import HitlService

PLATFORM: Final[Literal["teams"]] = "teams"
_TENANT_KEY = "tenant_id"


def tenant_of(activity: Activity) -> str | None:
    data = activity.channel_data
    tenant = data.get("tenant") if isinstance(data, dict) else None
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
        return str(tenant["id"])
    conversation = activity.conversation
    return str(conversation.tenant_id) if conversation and conversation.tenant_id else None


async def remember(service: HitlService, activity: Activity) -> str | None:
    """Save the reference of the conversation `activity` came from; returns its id."""
    conversation = activity.conversation
    if conversation is None or not conversation.id or not activity.service_url:
        return None
    reference = activity.get_conversation_reference()
    reference.activity_id = None  # posts start new messages, not replies to this activity
    data: dict[str, Any] = reference.model_dump(mode="json", by_alias=True, exclude_none=True)
    data[_TENANT_KEY] = tenant_of(activity)
    await service.delivery.save_conversation(PLATFORM, str(conversation.id), data)
    return str(conversation.id)


async def recall(service: HitlService, conversation_id: str) -> tuple[ConversationReference, str | None] | None:
    """The stored reference and tenant id, or None if the bot never saw the conversation."""
    data = await service.delivery.conversation(PLATFORM, conversation_id)
    if data is None:
        return None
    tenant = data.pop(_TENANT_KEY, None)
    try:
        reference = ConversationReference.model_validate(data)
    except ValidationError as error:  # written by another version, or by hand
        raise StoreError(f"unreadable Teams conversation reference for {conversation_id}") from error
    return reference, tenant if isinstance(tenant, str) else None


def message_key(conversation_id: str, activity_id: str) -> str:
    """A store-safe key for one posted card (Teams ids hold ':' ';' '@' and can be long)."""
    return hashlib.sha256(f"{conversation_id}\n{activity_id}".encode()).hexdigest()[:40]
