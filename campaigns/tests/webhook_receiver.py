"""A real HTTP server in a thread standing in for a program that receives our event webhooks,
and a stand-in DNS for names the tests use (the internet is not reachable here)."""

import dataclasses
import http.server
import queue
import socket
import ssl
import threading
import time

# Names the tests resolve, set by the `dns` fixture through OUTBOUND_WEBHOOKS_RESOLVER.
ANSWERS: dict[str, list[str]] = {}


def resolve(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return ANSWERS[host]


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Records every POST; answers `status` after `delay` seconds, with `location` on a redirect."""

    def __init__(self, port: int = 0, *, status: int = 204, delay: float = 0.0, location: str = "", tls: tuple = ()):
        """`tls`: (certificate chain file, key file) to serve https; the names clients ask for
        in TLS (SNI) are kept in `server_names`."""
        self.status, self.delay, self.location = status, delay, location
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
                time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting, as a slow receiver's sender does

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on (yet): a receiver that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_queued(broker_queue, celery_app) -> list[str]:
    """Play the worker: run every task waiting on the test broker, and what they queue, in order."""
    ran = []
    while True:
        try:
            message = broker_queue.get(block=False)
        except queue.Empty:
            return ran
        message.ack()
        name = message.headers["task"]
        args, kwargs, _ = message.payload
        celery_app.tasks[name](*args, **kwargs)
        ran.append(name)
