"""One way to open an aiomqtt client from the configured endpoint (TLS for mqtts://)."""

from __future__ import annotations

import ssl
from typing import Any

import aiomqtt

from eldercare.settings import MqttEndpoint


def aiomqtt_client(
    endpoint: MqttEndpoint, *, identifier: str | None, **options: Any
) -> aiomqtt.Client:
    """An (unconnected) aiomqtt client for ``endpoint``; ``options`` go to aiomqtt."""
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=identifier,
        tls_context=ssl.create_default_context() if endpoint.tls else None,
        **options,
    )
