"""Temporary AWS credentials and long conversations.

A Bedrock stream is signed with the credentials it was opened with; temporary credentials
(STS, SSO, ECS task roles, EC2 instance profiles) expire, and a conversation can outlive them.
So every stream is opened with credentials valid for at least ``margin_s`` more seconds
(`fresh_identity` asks the SDK's resolver to refresh ones that expire sooner), and the session
moves to a new stream, as for Nova's time limit, ``margin_s`` before the current stream's
credentials expire (`seconds_left` gives the time the stream was opened with).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["fresh_identity", "seconds_left"]

_log = logging.getLogger(__name__)


def seconds_left(identity: Any, now: datetime | None = None) -> float | None:
    """Seconds until ``identity`` (an `AWSCredentialsIdentity`) expires; None if it does not."""
    expiration = getattr(identity, "expiration", None)
    if not isinstance(expiration, datetime):
        return None
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return (expiration - (now or datetime.now(UTC))).total_seconds()


async def fresh_identity(resolver: Any, margin_s: float) -> Any:
    """Credentials from ``resolver`` (an SDK identity resolver) that stay valid for at least
    ``margin_s`` seconds if the resolver can refresh them: ones expiring sooner are dropped
    (`invalidate`, part of the SDK's resolver protocol) and resolved again. Static credentials
    that cannot be refreshed are returned as they are (with a warning)."""
    identity = await resolver.get_identity(properties={})
    left = seconds_left(identity)
    if left is None or left > margin_s:
        return identity
    invalidate = getattr(resolver, "invalidate", None)
    if callable(invalidate):
        await invalidate()
        identity = await resolver.get_identity(properties={})
        left = seconds_left(identity)
    if left is not None and left <= margin_s:
        _log.warning(
            "nova: AWS credentials expire in %.0f s and could not be refreshed earlier", left
        )
    return identity
