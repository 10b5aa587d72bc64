"""What ingest hands on after each commit: the readings that were new.

In process, handlers (the alert engine) are called with the batch; for other
processes, the same batch is published on the internal topic as one JSON
message. Redeliveries never reach either, so a downstream detector sees each
reading once.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from eldercare.logs import get_logger
from eldercare.protocol import DeviceEvent, ImuWindow, StatusReport, Telemetry
from ingest.rows import Accepted

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IngestedBatch:
    telemetry: list[Accepted] = field(default_factory=list)
    events: list[Accepted] = field(default_factory=list)
    imu: list[Accepted] = field(default_factory=list)
    status: list[Accepted] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.telemetry or self.events or self.imu or self.status)


Handler = Callable[[IngestedBatch], Awaitable[None] | None]


class InternalItem(msgspec.Struct, frozen=True):
    channel: str
    resident_id: int | None
    message: Any


_encoder = msgspec.json.Encoder()


def encode_batch(batch: IngestedBatch) -> bytes:
    items = [
        InternalItem(channel, a.resident_id, a.message)
        for channel, group in (
            ("telemetry", batch.telemetry),
            ("events", batch.events),
            ("imu", batch.imu),
            ("status", batch.status),
        )
        for a in group
    ]
    return _encoder.encode(items)


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
    """Rebuild a batch published on the internal topic (the consumer side)."""
    types: dict[str, type[msgspec.Struct]] = {
        "telemetry": Telemetry, "events": DeviceEvent, "imu": ImuWindow, "status": StatusReport,
    }  # fmt: skip
    batch = IngestedBatch()
    for item in msgspec.json.decode(data, type=list[InternalItem]):
        message = msgspec.convert(item.message, types[item.channel])
        getattr(batch, item.channel).append(Accepted(message, item.resident_id))  # type: ignore[arg-type]
    return batch
