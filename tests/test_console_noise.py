"""The console keeps what an operator must act on: no traceback for a 403, nothing for a wrong
URL, and a websocket whose channel layer times out closes with one line instead of crashing."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import SimpleNamespace

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from amisite.websocket import TRY_AGAIN_LATER
from collection.consumers import RunProgressConsumer, SystemStatusConsumer
from meters.alarms.consumers import AlarmConsumer


def request_records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


@pytest.mark.django_db
def test_a_403_is_one_line_without_a_traceback(world, caplog):
    web = Client()
    web.force_login(world.customer)  # a portal customer on the operators' meter list
    with caplog.at_level(logging.INFO):
        assert web.get("/meters/").status_code == 403
    [record] = request_records(caplog)
    assert record.levelno == logging.WARNING and record.status_code == 403
    assert record.exc_info is None and "Traceback" not in caplog.text
    assert "/meters/" in record.getMessage()


@pytest.mark.django_db
def test_a_wrong_url_logs_nothing(world, caplog):
    web = Client()
    web.force_login(world.operator_a)
    with caplog.at_level(logging.INFO):
        assert web.get("/no-such-page/").status_code == 404
        assert web.get("/meters/NO-SUCH-SERIAL/").status_code == 404
    assert request_records(caplog) == []


def test_server_errors_keep_their_traceback(caplog):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        with caplog.at_level(logging.INFO):
            logging.getLogger("django.request").error(
                "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
            )
    [record] = request_records(caplog)
    assert record.exc_info is not None and "RuntimeError: boom" in caplog.text


class SilentRedis:
    """A TCP server on loopback that accepts connections and never answers: every Redis
    command sent to it times out (a real `redis.exceptions.TimeoutError`)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_channel_layer(settings):
    server = SilentRedis()
    address = f"redis://127.0.0.1:{server.port}/0"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": address, "socket_timeout": 0.3}]},
        }
    }
    yield
    server.close()


@pytest.mark.parametrize(
    ("consumer", "path"),
    [
        (SystemStatusConsumer, "/ws/status/"),
        (AlarmConsumer, "/ws/alarms/"),
        (RunProgressConsumer, "/ws/runs/1/"),
    ],
)
def test_a_channel_layer_timeout_closes_the_socket_with_one_line(
    consumer, path, silent_channel_layer, caplog, monkeypatch
):
    # Skip the database: each consumer reaches the channel layer right after its own checks.
    monkeypatch.setattr("meters.alarms.consumers._groups_of_user", lambda user: ["alarms-org-1"])
    monkeypatch.setattr(
        "collection.consumers._visible_run_snapshot", lambda user, run_id: {"status": "running"}
    )

    async def scenario():
        communicator = WebsocketCommunicator(consumer.as_asgi(), path)
        communicator.scope["user"] = SimpleNamespace(pk=1, is_authenticated=True)
        communicator.scope["url_route"] = {"kwargs": {"run_id": 1}}
        connected, code = await communicator.connect(timeout=5)
        await communicator.wait(timeout=5)  # the application ends: it does not crash
        return connected, code

    with caplog.at_level(logging.INFO):
        connected, code = asyncio.run(scenario())
    assert (connected, code) == (False, TRY_AGAIN_LATER)
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.name == "amisite.websocket" and "TimeoutError" in line.getMessage()
    assert line.exc_info is None and "Traceback" not in caplog.text


class CuttableProxy:
    """A TCP relay on loopback to the real Redis that the test can cut: every relayed
    connection is closed and new ones are refused (Redis gone mid-life)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client = self.sock.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.sock.close()
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_redis_lost_under_open_alarm_sockets_closes_them_to_reconnect(
    settings, caplog, monkeypatch
):
    """Redis goes away while alarm sockets are open (they hear it through their process's hub):
    every socket is closed with "try again later" and no traceback, and the hub is left empty,
    so the sockets that reconnect once Redis is back join afresh."""
    from urllib.parse import urlsplit

    from channels.layers import channel_layers, get_channel_layer

    from meters.alarms.consumers import _hub

    redis = urlsplit(settings.REDIS_URL)
    proxy = CuttableProxy(redis.hostname, redis.port or 6379)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": f"redis://127.0.0.1:{proxy.port}{redis.path or '/0'}"}],
                "prefix": "ami-cut-test",
            },
        }
    }
    channel_layers.backends.clear()
    # Skip the database: the sockets' groups and access fingerprint are given.
    monkeypatch.setattr("meters.alarms.consumers._groups_of_user", lambda user: ["alarms-org-1"])
    monkeypatch.setattr("amisite.websocket.access_fingerprint", lambda user_id, key: "same")

    async def scenario():
        sockets = []
        for pk in (1, 2):
            ws = WebsocketCommunicator(AlarmConsumer.as_asgi(), "/ws/alarms/")
            ws.scope["user"] = SimpleNamespace(pk=pk, is_authenticated=True)
            assert (await ws.connect(timeout=5))[0]
            assert (await ws.receive_json_from(timeout=5))["type"] == "hello"
            sockets.append(ws)
        hub = _hub(get_channel_layer())
        assert hub.channel is not None and len(hub.members["alarms-org-1"]) == 2
        proxy.cut()
        closes = [await ws.receive_output(timeout=10) for ws in sockets]
        for ws in sockets:
            await ws.wait(timeout=5)
        return closes, hub

    try:
        with caplog.at_level(logging.INFO):
            closes, hub = asyncio.run(scenario())
    finally:
        proxy.cut()
        channel_layers.backends.clear()
    assert closes == [{"type": "websocket.close", "code": TRY_AGAIN_LATER}] * 2
    assert hub.members == {} and hub.channel is None
    assert "Traceback" not in caplog.text
