"""What ingest hands on after each commit: the readings that were new.

In process, handlers (the alert engine) are called with the batch; for other
processes, the same batch is published on the internal topic as JSON messages
of at most 256 KiB (:func:`encode_batches`). Redeliveries never reach either,
so a downstream detector sees each reading once.

With the readings go the refusals: messages of bands paired with a resident that
decode or the database refused (:class:`~ingest.rows.Refusal`, channel ``refused``;
reason and detail, never the payload), so the alert engine can tell a band whose data is all
refused from one that is silent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from eldercare.logs import get_logger
from eldercare.protocol import DeviceEvent, ImuWindow, RejectReason, StatusReport, Telemetry
from eldercare.topics import Channel
from ingest.rows import Accepted, Refusal

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IngestedBatch:
    telemetry: list[Accepted] = field(default_factory=list)
    events: list[Accepted] = field(default_factory=list)
    imu: list[Accepted] = field(default_factory=list)
    status: list[Accepted] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.telemetry or self.events or self.imu or self.status or self.refused)


Handler = Callable[[IngestedBatch], Awaitable[None] | None]


class InternalItem(msgspec.Struct, frozen=True):
    channel: str
    resident_id: int | None
    message: Any


class RefusedMessage(msgspec.Struct, frozen=True):
    """A :class:`~ingest.rows.Refusal` on the internal topic (its resident is the item's)."""

    device_id: str
    channel: Channel
    reason: RejectReason
    detail: str
    event: DeviceEvent | None = None


_encoder = msgspec.json.Encoder()
MAX_HANDOFF_BYTES = 256 * 1024  # per internal message: well under the broker's 1 MiB


def _items(batch: IngestedBatch) -> list[tuple[str, Accepted]]:
    return [
        (channel, a)
        for channel, group in (
            ("telemetry", batch.telemetry),
            ("events", batch.events),
            ("imu", batch.imu),
            ("status", batch.status),
        )
        for a in group
    ]


def _internal(batch: IngestedBatch, *, in_time_order: bool) -> list[InternalItem]:
    """The refusals first (they have no time of their own), then the readings."""
    items = _items(batch)
    if in_time_order:
        items.sort(key=lambda ca: (ca[1].message.ts is None, ca[1].message.ts or 0))
    refused = [
        InternalItem("refused", r.resident_id,
                     RefusedMessage(r.device_id, r.channel, r.reason, r.detail, r.event))
        for r in batch.refused
    ]  # fmt: skip
    return refused + [InternalItem(c, a.resident_id, a.message) for c, a in items]


def encode_batch(batch: IngestedBatch) -> bytes:
    """The batch as one internal message (tests and benchmarks; ingest splits it)."""
    return _encoder.encode(_internal(batch, in_time_order=False))


def encode_batches(batch: IngestedBatch, *, max_bytes: int = MAX_HANDOFF_BYTES) -> list[bytes]:
    """The batch as internal messages of at most ``max_bytes`` each (one item larger than
    that goes alone), items in the band's time order so that the chunks follow each
    other in time.

    The broker refuses a message over its ``message_size_limit`` (1 MiB deployed) and
    paho one over 256 MiB. A batch of 4,000 readings encodes to ~1 MB, and a few IMU
    windows (up to 512 KiB each) to several: published as one message, such a batch
    never reached the alert engine (found by fuzzing on 2026-12-03).
    """
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for item in _internal(batch, in_time_order=True):
        encoded = _encoder.encode(item)
        if chunk and size + len(encoded) + 1 > max_bytes:
            out.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        out.append(b"[" + b",".join(chunk) + b"]")
    return out


async def deliver(handlers: list[Handler], batch: IngestedBatch) -> None:
    """Call every handler; one that fails is logged and does not stop ingest."""
    for handler in handlers:
        try:
            result = handler(batch)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("handoff_handler_failed", handler=getattr(handler, "__name__", "?"))


def decode_batch(data: bytes) -> IngestedBatch:
    """Rebuild a batch published on the internal topic (the consumer side). An item of a
    channel this version does not know is skipped, not the batch: an engine older than
    its ingest (a rolling upgrade) still gets the readings. Until 2026-12-03 it raised,
    and the consumer set the whole message aside; so upgrade the alert engines before
    ingest when ingest gains a channel (``refused`` did on 2026-12-03)."""
    types: dict[str, type[msgspec.Struct]] = {
        "telemetry": Telemetry, "events": DeviceEvent, "imu": ImuWindow, "status": StatusReport,
    }  # fmt: skip
    batch = IngestedBatch()
    for item in msgspec.json.decode(data, type=list[InternalItem]):
        if item.channel == "refused":
            r = msgspec.convert(item.message, RefusedMessage)
            if item.resident_id is not None:
                batch.refused.append(Refusal(r.device_id, item.resident_id, r.channel,
                                             r.reason, r.detail, r.event))  # fmt: skip
            continue
        if item.channel not in types:  # a newer ingest's: the rest of the batch still counts
            continue
        message = msgspec.convert(item.message, types[item.channel])
        getattr(batch, item.channel).append(Accepted(message, item.resident_id))  # type: ignore[arg-type]
    return batch
