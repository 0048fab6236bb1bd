"""Readings messages turned into batches for the writer."""

from __future__ import annotations

import logging
import time

from citymesh.collector.clock import SkewEstimator
from citymesh.collector.delivery import Delivery
from citymesh.collector.readings import SeriesColumns, decode_readings
from citymesh.collector.sequence import SequenceStates
from citymesh.collector.stats import CollectorStats
from citymesh.collector.writer import AcceptedBatch
from citymesh.errors import MessageRejected
from citymesh.protocol.messages import Birth
from citymesh.protocol.names import series_name
from citymesh.protocol.quantities import lookup_quantity
from citymesh.registry.store import SensorRef
from citymesh.server.settings import CollectorSettings
from citymesh.storage.base import PointsBlock, SeriesMeta

logger = logging.getLogger(__name__)

# Sampling step of a series whose gateway announced none in its birth.
DEFAULT_STEP_S = 60


def check_origin(
    tenant: str, gateway: str, topic_tenant: str, topic_gateway: str
) -> None:
    """Raise MessageRejected unless a payload names the gateway of its topic."""
    if (tenant, gateway) != (topic_tenant, topic_gateway):
        raise MessageRejected(
            "topic_mismatch",
            f"payload claims {tenant}/{gateway} but arrived on the topic of "
            f"{topic_tenant}/{topic_gateway}",
        )


class ReadingsIntake:
    """Validates readings messages, checks their sequence and builds their blocks."""

    def __init__(
        self,
        settings: CollectorSettings,
        stats: CollectorStats,
        sequences: SequenceStates,
        skews: dict[tuple[str, str], SkewEstimator],
    ) -> None:
        self._settings = settings
        self._stats = stats
        self.sequences = sequences
        self._skews = skews
        self.steps: dict[str, int] = {}
        """Nominal step of each series, from the gateways' births."""
        self.known_series: set[str] = set()
        """Series whose sensor the registry has, or gets from a queued batch;
        only the others are sent to it."""
        # Metadata of each series seen, built once: most batches repeat them.
        self._metas: dict[str, SeriesMeta] = {}

    def note_steps(self, birth: Birth) -> None:
        """Take the nominal steps of the sensors a birth announces."""
        for name, step_s in _birth_sensors(birth):
            self.steps[name] = step_s

    def note_registered(self, birth: Birth) -> None:
        """Mark the sensors of a birth that the registry has recorded as known."""
        self.known_series.update(name for name, _ in _birth_sensors(birth))

    def accept(
        self, tenant: str, gateway: str, payload: bytes, delivery: Delivery
    ) -> AcceptedBatch:
        """Validate a readings message and return it as a batch for the writer.

        Raises:
            MessageRejected: the payload is invalid, names another gateway
                than its topic, or repeats an accepted sequence number.
        """
        received_ms = time.time_ns() // 1_000_000
        batch = decode_readings(payload, self._settings.max_message_bytes)
        check_origin(batch.tenant, batch.gateway, tenant, gateway)
        key = (tenant, gateway)
        if not delivery.retained:
            self._skews.setdefault(key, SkewEstimator()).add(batch.sent_ms, received_ms)
        tracker = self.sequences.tracker(key)
        if tracker.is_duplicate(batch.seq):
            raise MessageRejected(
                "duplicate_sequence",
                f"seq {batch.seq} was already accepted (highest {tracker.highest})",
            )
        blocks: list[PointsBlock] = []
        new_sensors: list[SensorRef] = []
        for item in batch.series:
            name = series_name(tenant, batch.site, gateway, item.device, item.quantity)
            meta = self._metas.get(name)
            if meta is None or meta.step_s != self.steps.get(name, DEFAULT_STEP_S):
                meta = self._series_meta(name, tenant, batch.site, gateway, item)
            blocks.append(PointsBlock(meta, item.timestamps, item.values))
            if name not in self.known_series:
                self.known_series.add(name)
                new_sensors.append(
                    SensorRef(
                        tenant,
                        batch.site,
                        gateway,
                        item.device,
                        item.quantity,
                        meta.step_s,
                    )
                )
        skipped = tracker.accept(batch.seq)
        # TODO: members of a shared subscription each see only part of a
        # gateway's sequence, so only a lone collector reports gaps. A store
        # shared by the members would let them track the sequence together.
        if skipped and self._settings.share_group is None:
            self._stats.sequence_gaps += skipped
            logger.warning(
                "gateway %s/%s skipped %d sequence numbers before %d: "
                "readings may be lost",
                tenant,
                gateway,
                skipped,
                batch.seq,
            )
        self._stats.batches_accepted += 1
        count = batch.point_count()
        self._stats.points_accepted += count
        delivery.deferred = True
        return AcceptedBatch(key, batch.seq, blocks, new_sensors, count, delivery)

    def _series_meta(
        self,
        name: str,
        tenant: str,
        site: str,
        gateway: str,
        item: SeriesColumns,
    ) -> SeriesMeta:
        quantity = lookup_quantity(item.quantity)
        meta = SeriesMeta(
            name=name,
            tenant=tenant,
            site=site,
            gateway=gateway,
            device=item.device,
            quantity=item.quantity,
            unit=quantity.unit,
            step_s=self.steps.get(name, DEFAULT_STEP_S),
            tags={
                "quantity": item.quantity,
                "unit": quantity.unit,
                "device": item.device,
            },
        )
        self._metas[name] = meta
        return meta


def _birth_sensors(birth: Birth) -> list[tuple[str, int]]:
    """Return the series name and nominal step of each sensor in a birth."""
    return [
        (
            series_name(
                birth.tenant, birth.site, birth.gateway, device.device, sensor.quantity
            ),
            sensor.step_s,
        )
        for device in birth.devices
        for sensor in device.sensors
    ]
