"""deploy/haproxy.cfg with `AMI_WS_1` set sends `/ws/` to the websockets' own web instance
and everything else to the page instances; without it, `/ws/` goes to the page instances as
before (docs/operations.md, "Websockets apart"). Two small HTTP servers stand in for the
instances: what is checked is the balancer's routing, by the instance it names."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cluster.test_web_failover import HAPROXY, free_port, get, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # quiet
        pass


def stand_in() -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.mark.parametrize("apart", [True, False], ids=["AMI_WS_1 set", "AMI_WS_1 unset"])
def test_websockets_go_to_their_own_instance_when_one_is_named(apart, tmp_path):
    servers = dict(stand_in() for _ in range(3))
    pages1, pages2, sockets = servers.values()
    lb = free_port()
    env = os.environ | {
        "AMI_LB_BIND": f"127.0.0.1:{lb}",
        "AMI_WEB_1": f"127.0.0.1:{pages1}",
        "AMI_WEB_2": f"127.0.0.1:{pages2}",
    }
    env.pop("AMI_WS_1", None)
    if apart:
        env["AMI_WS_1"] = f"127.0.0.1:{sockets}"
    balancer = subprocess.Popen(
        [HAPROXY, "-f", str(ROOT / "deploy/haproxy.cfg"), "-db"],
        env=env,
        stdout=(tmp_path / "haproxy.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{lb}"
    try:
        wanted = {"ws1"} if apart else {"web1", "web2"}
        seen: set[str] = set()

        def routed() -> bool:
            answers = [get(f"{base}/ws/alarms/") for _ in range(4)]
            seen.update(instance for status, instance in answers if status == 200)
            return wanted <= seen

        try:
            wait_for(routed, 20, f"/ws/ answered by {wanted}")
        except AssertionError:
            raise AssertionError(
                f"/ws/ answered by {seen}; haproxy: {(tmp_path / 'haproxy.log').read_text()}"
            ) from None
        assert seen == wanted  # and by no other
        pages = {get(f"{base}/meters/")[1] for _ in range(8)}
        assert pages <= {"web1", "web2"} and pages
    finally:
        balancer.kill()
        balancer.wait(10)
        for server in servers:
            server.shutdown()
