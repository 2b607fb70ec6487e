"""Wiring the live feeds (state watch, topic watch) to each other control plane through RedisFanout.

Without --redis only the local feeds are wired: the leader's own watchers
see its state changes and topic publications. With it, the leader also
publishes them (as protobuf bodies) and every control plane feeds what the
others published to its own watchers; a resync (events possibly missed) makes
state watchers re-read the change log.
"""

from __future__ import annotations

import math

from maos.controlplane._convert import timestamp
from maos.controlplane.fanout import RedisFanout, TopicFeed
from maos.controlplane.messaging import Messaging, Publication
from maos.controlplane.messaging._names import TOPIC_PREFIX
from maos.controlplane.state import StateChange, StateEntry, StateHub
from maos.v1 import common_pb2, messages_pb2, state_pb2

from ._state import change_to_proto

STATE_KIND = "state"
TOPIC_KIND = "topic"


def wire_feeds(hub: StateHub, feed: TopicFeed, messaging: Messaging, fanout: RedisFanout | None) -> None:
    """Connect the hubs to the messaging service and, given one, to the fan-out (before `fanout.open()`)."""

    def published(publication: Publication) -> None:
        if fanout is None and not feed.watchers(publication.topic):
            return  # nobody to show it to: no message built on the publish path
        message = publication_to_proto(publication)
        feed.publish(message)
        if fanout is not None:
            fanout.publish(TOPIC_KIND, message.SerializeToString())

    messaging.publication_listeners.append(published)
    if fanout is None:
        return
    hub.forward = lambda change: fanout.publish(STATE_KIND, change_to_proto(change).SerializeToString())
    fanout.on(STATE_KIND, lambda body: hub.deliver(change_from_proto(state_pb2.StateChange.FromString(body))))
    fanout.on(TOPIC_KIND, lambda body: feed.publish(messages_pb2.Message.FromString(body)))
    fanout.on_resync(hub.resync)


def publication_to_proto(publication: Publication) -> messages_pb2.Message:
    message = publication.message
    expires = publication.published_at + message.ttl_seconds
    return messages_pb2.Message(
        id=publication.message_id,
        sender_task_id=publication.sender,
        recipient=TOPIC_PREFIX + publication.topic,
        topic=publication.topic,
        priority=message.priority,  # type: ignore[arg-type]
        payload=common_pb2.Payload(data=message.data, content_type=message.content_type),
        sent_at=timestamp(publication.published_at),
        expires_at=timestamp(expires) if math.isfinite(expires) else None,
        trace_context=message.trace_context or {},
    )


def change_from_proto(change: state_pb2.StateChange) -> StateChange:
    e = change.entry
    entry = StateEntry(e.namespace, e.key, e.value, e.version, e.revision, e.updated_at.ToNanoseconds() / 1e9)
    return StateChange(entry, deleted=change.deleted)
