"""The gateway's MQTT client: aiomqtt's, reading PUBLISH packets in bulk into a bounded inbox.

Part of the MQTT edge (`gateway.mqtt`), kept apart because it reaches into
aiomqtt 2.x and paho 2.x internals (both pinned `<3` in pyproject): the one
place where their private attributes are used.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.inbox import Inbox
from gateway.settings import MqttSettings

MAX_PACKET_BYTES = 1024 * 1024
"""MQTT 5: the broker is told not to send us larger packets (it drops them). A device state
is a few hundred bytes; up to this size a payload still arrives to be refused and counted."""
READ_CHUNK = 64 * 1024
"""Bytes taken from the socket per `recv`: a few hundred device messages, a few ms of work."""
PACKETS_PER_WAKE = 1000
"""Packets read each time a socket is readable; then the other tasks get their turn."""
_PUBACK = 0x40

def _tls(settings: MqttSettings) -> aiomqtt.TLSParameters | None:
    if not settings.tls:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=str(settings.ca_file) if settings.ca_file else None,
        certfile=str(settings.cert_file) if settings.cert_file else None,
        keyfile=str(settings.key_file) if settings.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )


def make_client(settings: MqttSettings, inbox: Inbox | None = None, suffix: str = "") -> aiomqtt.Client:
    """A client with a persistent session for the configured protocol version.

    With an inbox, it reads into it (the gateway's own sessions); `suffix` tells a
    second session's client id from the first's.
    """
    password = settings.password.get_secret_value() if settings.password else None
    common: dict[str, object] = {
        "hostname": settings.host,
        "port": settings.port,
        "identifier": settings.client_id + suffix,
        "username": settings.username,
        "password": password,
        "keepalive": settings.keepalive_s,
        "tls_params": _tls(settings),
        "timeout": 10.0,
    }
    if settings.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry_s
        props.MaximumPacketSize = MAX_PACKET_BYTES
        common.update(protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props)
    else:
        common.update(protocol=aiomqtt.ProtocolVersion.V311, clean_session=False)
    if inbox is None:
        return aiomqtt.Client(**common)  # type: ignore[arg-type]
    return InboxClient(inbox, **common)


class InboxClient(aiomqtt.Client):
    """aiomqtt's client reading into an `Inbox`, in bulk, and able to stop reading its socket.

    Reaches into aiomqtt 2.x and paho 2.x (pinned `<3` in pyproject), for these
    sessions only; paho still owns the connection, every other packet type and QoS 2:
    - `recv` fills a 64 KB buffer that paho's small reads are served from (paho
      otherwise makes a system call per header byte), and a readable socket is
      read up to `PACKETS_PER_WAKE` packets at a time;
    - a PUBLISH at QoS 0 or 1 goes into the inbox as (topic, bytes) at once, its
      MQTT 5 properties skipped (tecmon uses none; topic aliases are never
      enabled), without paho's and aiomqtt's message objects and queue;
    - the PUBACKs of one read go out as one write once that read's messages are
      in the inbox: acknowledged on receipt, as paho does;
    - reading pauses while the inbox is full (backpressure to the broker).
    """

    def __init__(self, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox = inbox
        self.suback_arrivals = 0  # the inbox's arrival count when the last SUBACK came
        self._fd: int | None = None
        self._reading = False
        self._buf, self._pos = b"", 0
        self._acks = bytearray()
        p: Any = cast(Any, self._client)
        self._v5 = p._protocol == paho.MQTTv5
        self._paho_publish = p._handle_publish
        p._sock_recv = self._sock_recv
        p._handle_publish = self._handle_publish

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """QoS 2, which paho still delivers itself."""
        try:
            topic = message.topic
        except UnicodeDecodeError:  # a broker should refuse these; never let one break the session
            topic = message._topic.decode("utf-8", "replace")
        self.inbox.put(topic, bytes(message.payload), message.qos)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Properties | None = None) -> None:
        self.suback_arrivals = self.inbox.received
        super()._on_subscribe(client, userdata, mid, reason_codes, properties)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()

        def opened() -> None:  # paho calls this from the executor thread that connects
            self._fd = fd
            self._misc_task = self._loop.create_task(self._misc_loop())
            if self.inbox.attach(self):
                self.start_reading()

        self._loop.call_soon_threadsafe(opened)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._reading = False
        self._fd = None
        self._buf, self._pos = b"", 0
        self.inbox.attach(None)
        super()._on_socket_close(client, userdata, sock)

    def start_reading(self) -> None:
        if self._fd is not None and not self._reading:
            self._reading = True
            self._loop.add_reader(self._fd, self._read)
            self._loop.call_soon(self._read)  # bytes already buffered (ours, or TLS's) are not signalled

    def stop_reading(self) -> None:
        if self._fd is not None and self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _read(self) -> None:
        paho_client = self._client
        try:
            for _ in range(PACKETS_PER_WAKE):
                if not self._reading or paho_client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
                if not (self._pos < len(self._buf) or self._tls_pending()):
                    return
            if self._reading:
                self._loop.call_soon(self._read)  # bytes left that the selector will not report
        except Exception as exc:  # a broken connection: the session reconnects
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)
        finally:
            self._send_acks()

    def _send_acks(self) -> None:
        if self._acks:
            acks, self._acks = bytes(self._acks), bytearray()
            p: Any = self._client
            if p._sock is not None:
                p._packet_queue(_PUBACK, acks, 0, 0)

    def _tls_pending(self) -> bool:
        sock = self._client._sock
        return sock is not None and hasattr(sock, "pending") and sock.pending() > 0

    def _sock_recv(self, bufsize: int) -> bytes:
        pos, buf = self._pos, self._buf
        if pos >= len(buf):
            p: Any = self._client
            sock = p._sock
            if sock is None:
                raise ConnectionError("self._sock is None")
            try:
                buf = sock.recv(READ_CHUNK)
            except ssl.SSLWantReadError as err:
                raise BlockingIOError() from err
            except ssl.SSLWantWriteError as err:
                p._call_socket_register_write()
                raise BlockingIOError() from err
            if not buf:
                return b""
            self._buf, pos = buf, 0
        end = pos + bufsize
        self._pos = end if end < len(buf) else len(buf)
        return buf[pos:end]

    def _handle_publish(self) -> MQTTErrorCode:
        packet = cast(Any, self._client)._in_packet
        command, data = packet["command"], packet["packet"]
        qos = (command & 0x06) >> 1
        if qos == 2:
            return cast(MQTTErrorCode, self._paho_publish())
        try:
            end = 2 + ((data[0] << 8) | data[1])
            topic = data[2:end].decode("utf-8", "replace")
            if qos:
                mid, end = (data[end] << 8) | data[end + 1], end + 2
                self._acks += bytes((_PUBACK, 2, mid >> 8, mid & 0xFF))
            if self._v5:
                end = _skip_properties(data, end)
        except IndexError:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if end > len(data):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        self.inbox.put(topic, bytes(data[end:]), qos)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    async def closed(self) -> None:
        """Wait until the connection is lost; always ends in `aiomqtt.MqttError`."""
        try:
            await asyncio.shield(self._disconnected)
        except aiomqtt.MqttError:
            raise
        except Exception as exc:
            raise aiomqtt.MqttError(f"connection lost: {exc}") from exc
        raise aiomqtt.MqttError("disconnected")


def _skip_properties(data: bytes, end: int) -> int:
    """Past an MQTT 5 property block: a variable-length size, then that many bytes."""
    size, shift = 0, 0
    while True:
        byte = data[end]
        end += 1
        size |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return end + size
        shift += 7
