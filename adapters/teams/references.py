"""Conversation references: where the bot may post proactively, kept in the core's store.

botbuilder serializes `ConversationAccount.tenant_id` as `tenantID`, so Teams' `tenantId` never
survives a round trip; we keep `channelData.tenant.id` beside the reference ourselves.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ConversationReference

from hitl_chatops.bot.store import Store

PLATFORM: Final[Literal["teams"]] = "teams"
_TENANT_KEY = "tenant_id"


def tenant_of(activity: Activity) -> str | None:
    data = activity.channel_data
    tenant = data.get("tenant") if isinstance(data, dict) else None
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
        return str(tenant["id"])
    conversation = activity.conversation
    return str(conversation.tenant_id) if conversation and conversation.tenant_id else None


async def remember(store: Store, activity: Activity) -> str | None:
    """Save the reference of the conversation `activity` came from; returns its id."""
    conversation = activity.conversation
    if conversation is None or not conversation.id or not activity.service_url:
        return None
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None  # posts start new messages, not replies to this activity
    data: dict[str, Any] = reference.serialize()
    data[_TENANT_KEY] = tenant_of(activity)
    await store.put_conversation(PLATFORM, str(conversation.id), data)
    return str(conversation.id)


async def recall(store: Store, conversation_id: str) -> tuple[ConversationReference, str | None] | None:
    """The stored reference (tenant restored) and tenant id, or None if the bot never saw the conversation."""
    data = await store.get_conversation(PLATFORM, conversation_id)
    if data is None:
        return None
    tenant = data.pop(_TENANT_KEY, None)
    reference = ConversationReference.deserialize(data)
    if tenant and reference.conversation is not None:
        reference.conversation.tenant_id = tenant
    return reference, tenant if isinstance(tenant, str) else None


def message_key(conversation_id: str, activity_id: str) -> str:
    """A store-safe key for one posted card (Teams ids hold ':' ';' '@' and can be long)."""
    return hashlib.sha256(f"{conversation_id}\n{activity_id}".encode()).hexdigest()[:40]
