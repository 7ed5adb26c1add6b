"""A fleet on one machine: several web nodes behind a round-robin balancer, several workers,
beat, one PostgreSQL and one Redis, as docker-compose.scale.yml deploys them.

The balancer runs in the test's process (threads) and does what deploy/haproxy.cfg does:
round robin over the nodes, a node that refuses connections skipped (as HAProxy's health
check takes it out), the client's address appended to X-Forwarded-For and X-Forwarded-Proto
set. It records which node served each request, for tests to assert on.

Outside pytest (a benchmark script): build a Stack with conftest.stack_env on a migrated
PostgreSQL database and a Redis, then fleet_start(stack), stack.worker(...), stack.beat().
"""

import contextlib
import http.client
import itertools
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

from .conftest import Stack

# Headers that describe one connection, not the request: a proxy does not pass them on.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass(frozen=True)
class Served:
    method: str
    path: str
    node: str  # the node's name, or "" when none could be reached
    status: int


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class RoundRobinProxy:
    """A small HTTP load balancer over `nodes` ({name: "http://host:port"})."""

    def __init__(self, nodes: dict[str, str], *, timeout: float = 120):
        self.nodes = dict(nodes)
        self.timeout = timeout
        self.served: list[Served] = []
        self._order = itertools.cycle(list(self.nodes))
        self._lock = threading.Lock()
        self._peeked: str | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                proxy.forward(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "RoundRobinProxy":
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _next(self) -> str:
        with self._lock:
            if self._peeked is not None:
                name, self._peeked = self._peeked, None
                return name
            return next(self._order)

    def peek(self) -> str:
        """The node the next request goes to (if it answers)."""
        with self._lock:
            if self._peeked is None:
                self._peeked = next(self._order)
            return self._peeked

    def forward(self, handler: BaseHTTPRequestHandler):
        body = _read_body(handler)
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
        forwarded_for = handler.headers.get("X-Forwarded-For")
        client = handler.client_address[0]
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["X-Forwarded-Proto"] = "http"
        headers["Content-Length"] = str(len(body))
        # Its turn's node first, then each other node once, whatever other requests pick meanwhile.
        names = list(self.nodes)
        first = names.index(self._next())
        for name in names[first:] + names[:first]:
            address = urllib.parse.urlsplit(self.nodes[name])
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=self.timeout)
            try:
                connection.connect()
            except ConnectionRefusedError:
                connection.close()
                continue  # the node is down: the next one takes the request
            try:
                connection.request(handler.command, handler.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                # The node died with the request: a real balancer answers 502 too.
                connection.close()
                return self._answer(handler, 502, [], b"node lost", name)
            connection.close()
            return self._answer(handler, response.status, response.getheaders(), answer, name)
        return self._answer(handler, 503, [], b"no node answers", "")

    def _answer(self, handler, status: int, headers, body: bytes, node: str):
        with self._lock:
            self.served.append(Served(handler.command, handler.path, node, status))
        handler.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            with contextlib.suppress(OSError):
                handler.wfile.write(body)
        handler.close_connection = True

    def nodes_serving(self, method: str, path: str, status: int | None = None) -> list[str]:
        """The nodes that served each request for `path`, in order."""
        with self._lock:
            return [
                s.node
                for s in self.served
                if s.method == method and s.path.split("?", 1)[0] == path and status in (None, s.status)
            ]


@dataclass
class Received:
    message_id: str
    type: str
    data: dict


@dataclass
class WebhookReceiver:
    """An event webhook endpoint of a user's own: verifies each delivery and keeps it."""

    secret: str = ""
    received: list[Received] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = _read_body(self)
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except Exception:  # a delivery that does not verify is refused, and counted
                    receiver.refused += 1
                    self.send_response(400)
                else:
                    receiver.received.append(Received(self.headers["webhook-id"], event["type"], event["data"]))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def ids(self) -> list[str]:
        return [item.message_id for item in self.received]


@dataclass
class Fleet:
    """Web nodes behind the proxy; workers and beats are started through the stack."""

    stack: Stack
    proxy: RoundRobinProxy
    web_names: list[str]

    @property
    def url(self) -> str:
        return self.proxy.url


def fleet_start(
    stack: Stack, *, webs: int = 2, web_env: dict | None = None, proxy_timeout: float = 120, **env
) -> Fleet:
    """Start `webs` web nodes behind a round-robin proxy, and point everything at the proxy:
    SITE_URL (so the sandbox's API and its webhooks go through it too) for every process the
    stack starts from now on. Workers and beat are left to the caller. `web_env` overrides the
    web nodes' own settings (WEB_TIMEOUT, say); `proxy_timeout` is how long the proxy waits for
    a node's answer."""
    nodes = {f"web-{n}": stack.free_url() for n in range(1, webs + 1)}
    proxy = RoundRobinProxy(nodes, timeout=proxy_timeout).start()
    stack.url = proxy.url
    stack.env.update({"SITE_URL": proxy.url, **{k: str(v) for k, v in env.items()}})
    for name, url in nodes.items():
        stack.web(name, url, **(web_env or {}))
    return Fleet(stack=stack, proxy=proxy, web_names=list(nodes))
