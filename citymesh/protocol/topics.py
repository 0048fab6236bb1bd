"""MQTT topic layout of protocol version 1.

citymesh/v1/<tenant>/<gateway>/readings   gateway -> data centre, QoS 1
citymesh/v1/<tenant>/<gateway>/birth      gateway -> data centre, retained
citymesh/v1/<tenant>/<gateway>/status     gateway -> data centre, retained
citymesh/v1/<tenant>/<gateway>/death      last will, retained
citymesh/v1/<tenant>/<gateway>/commands   data centre -> gateway
citymesh/v1/<tenant>/<gateway>/responses  gateway -> data centre
citymesh/v1/<tenant>/<gateway>/topology   gateway -> data centre, retained
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from citymesh.protocol.names import is_identifier

PREFIX = "citymesh/v1"


class Channel(StrEnum):
    """Last topic level: what kind of message travels on the topic."""

    READINGS = "readings"
    BIRTH = "birth"
    STATUS = "status"
    DEATH = "death"
    COMMANDS = "commands"
    RESPONSES = "responses"
    TOPOLOGY = "topology"


UPLINK_CHANNELS = (
    Channel.READINGS,
    Channel.BIRTH,
    Channel.STATUS,
    Channel.DEATH,
    Channel.RESPONSES,
    Channel.TOPOLOGY,
)


@dataclass(frozen=True, slots=True)
class GatewayTopic:
    """A parsed topic: tenant, gateway and channel."""

    tenant: str
    gateway: str
    channel: Channel

    def __str__(self) -> str:
        return f"{PREFIX}/{self.tenant}/{self.gateway}/{self.channel.value}"


def topic_for(tenant: str, gateway: str, channel: Channel) -> str:
    """Return the topic on which `gateway` of `tenant` uses `channel`."""
    return str(GatewayTopic(tenant, gateway, channel))


def uplink_filter(tenant: str = "+") -> str:
    """Return the subscription filter for every uplink message of `tenant`."""
    return f"{PREFIX}/{tenant}/+/+"


def parse_topic(topic: str) -> GatewayTopic:
    """Parse a protocol topic or raise ValueError explaining what is wrong."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise ValueError(
            f"topic {topic!r} is not of the form {PREFIX}/<tenant>/<gateway>/<channel>"
        )
    tenant, gateway, channel = parts[2], parts[3], parts[4]
    if not is_identifier(tenant):
        raise ValueError(f"topic {topic!r} has an invalid tenant {tenant!r}")
    if not is_identifier(gateway):
        raise ValueError(f"topic {topic!r} has an invalid gateway {gateway!r}")
    try:
        kind = Channel(channel)
    except ValueError:
        known = ", ".join(c.value for c in Channel)
        raise ValueError(
            f"topic {topic!r} has an unknown channel {channel!r}; known: {known}"
        ) from None
    return GatewayTopic(tenant, gateway, kind)
