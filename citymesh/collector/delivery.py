"""MQTT deliveries to the collector, acknowledged by hand once handled.

aiomqtt 2.5 has no manual-acknowledgement option, but the paho-mqtt 2.x client
it wraps has: with `manual_ack_set(True)` paho sends no PUBACK until `ack()` is
called. aiomqtt keeps that client in the private attribute `_client`, which is
the one place this module reaches into. A message that is never acknowledged
(the collector died or lost the connection first) is redelivered by the broker
from the collector's persistent session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiomqtt

from citymesh.protocol.topics import uplink_filter

logger = logging.getLogger(__name__)


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Make `client` acknowledge QoS 1 and 2 messages only through `Delivery.ack`."""
    client._client.manual_ack_set(True)  # no public aiomqtt API, see module doc


@dataclass(slots=True)
class Delivery:
    """One message as the broker delivered it, and how to acknowledge it."""

    client: aiomqtt.Client | None
    mid: int = 0
    qos: int = 0
    retained: bool = False
    deferred: bool = False
    """Set when the message is queued for storage, which acknowledges it later."""

    @classmethod
    def of(cls, client: aiomqtt.Client, message: aiomqtt.Message) -> Delivery:
        """Return the delivery of `message` received on `client`."""
        return cls(client, message.mid, message.qos, bool(message.retain))

    def ack(self, current: aiomqtt.Client | None) -> None:
        """Send the PUBACK (or PUBCOMP) if the message came on the `current` link.

        On a link that has since been replaced, the broker redelivers the
        message on the new one, so nothing is sent.
        """
        if self.client is None or self.qos == 0 or self.client is not current:
            return
        self.client._client.ack(self.mid, self.qos)


def subscription_filter(tenant: str, share_group: str | None) -> str:
    """Return the uplink filter, as an MQTT shared subscription if a group is set."""
    topic_filter = uplink_filter(tenant)
    if share_group is None:
        return topic_filter
    return f"$share/{share_group}/{topic_filter}"


def responses_filter(tenant: str) -> str:
    """Return the filter of every gateway's command responses, never shared."""
    return f"{uplink_filter(tenant).removesuffix('/+')}/responses"
