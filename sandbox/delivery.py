"""How the sandbox's post-call webhooks leave: one tick at a time, a chunk of due events at a
time, several POSTs at once.

- **One tick at a time.** `tick_lease` takes the single `SandboxTickLease` row with a
  conditional UPDATE; a tick that finds it taken does nothing. A tick killed mid-way (the
  task's hard time limit) leaves a lease that runs out on its own.
- **Bounded memory.** The events due are read `DUE_CHUNK` rows at a time (keyset pagination,
  in `services` and `outbound`), never all at once.
- **Exactly once.** Each slice of a chunk is claimed with one conditional UPDATE per kind of
  row (`... RETURNING` the rows it won), raising the attempt count before anything is sent;
  only a 2xx answer marks the event sent. So an event is sent at most
  `WEBHOOK_MAX_ATTEMPTS` times, and never again once delivered.
- **Concurrently.** The POSTs go out from a pool of SANDBOX_WEBHOOK_CONCURRENCY threads, each
  with a `requests.Session` of its own, while the next slice is claimed; the threads never
  touch the database, which stays with the tick's own thread (no transaction is open while a
  POST is in flight: the receiver may write to the same SQLite file).
- **Within a budget.** Past SANDBOX_TICK_BUDGET_SECONDS the tick claims nothing more; what is
  left is the next tick's.
"""

import collections
import contextlib
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from time import monotonic

import requests
from django.conf import settings
from django.db import connection

from sandbox import serializers
from sandbox.models import SandboxTickLease
from sandbox.signing import HEADER, sign

logger = logging.getLogger(__name__)

WEBHOOK_MAX_ATTEMPTS = 3
WEBHOOK_TIMEOUT = (3, 10)
AUDIO_CHUNK_BYTES = 16_384
# Rows of due events read at a time.
DUE_CHUNK = 500
# Events are claimed a slice at a time: this many POSTs for each thread of the pool. A tick
# that runs past its budget finishes the slices in flight: at most IN_FLIGHT_SLICES x
# SLICE_ROUNDS rounds of POSTs, each at most one WEBHOOK_TIMEOUT long. The lease outlasts that.
SLICE_ROUNDS = 4
IN_FLIGHT_SLICES = 2
LEASE_MARGIN_SECONDS = IN_FLIGHT_SLICES * SLICE_ROUNDS * sum(WEBHOOK_TIMEOUT) + 60


def concurrency() -> int:
    return max(1, int(getattr(settings, "SANDBOX_WEBHOOK_CONCURRENCY", 8)))


def budget_seconds() -> float:
    return float(getattr(settings, "SANDBOX_TICK_BUDGET_SECONDS", 60.0))


# --- One tick at a time ------------------------------------------------------------------


@contextlib.contextmanager
def tick_lease():
    """Yields True when this tick holds the lease (and gives it back after), False when another tick does."""
    now = time.time()
    SandboxTickLease.objects.bulk_create([SandboxTickLease(pk=1, holder="", expires_at=0)], ignore_conflicts=True)
    holder = secrets.token_hex(8)
    taken = SandboxTickLease.objects.filter(pk=1, expires_at__lt=now).update(
        holder=holder, expires_at=now + budget_seconds() + LEASE_MARGIN_SECONDS
    )
    try:
        yield bool(taken)
    finally:
        if taken:
            SandboxTickLease.objects.filter(pk=1, holder=holder).update(expires_at=0)


# --- Events due, claimed, sent -----------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One event to send: the conversation it reports, and what its row showed when read."""

    pk: str
    attempts: int
    # The recipient's attempt (batch calls: a retry reuses the row), None for a campaign call.
    attempt: int | None
    conversation: object


@dataclass(frozen=True)
class Columns:
    """The table of the rows that track one kind of event, and its two delivery columns."""

    model: type
    sent: str
    attempts: str


def _groups(rows: Iterable[Due], *, with_attempts: bool) -> dict[tuple, list[str]]:
    groups: dict[tuple, list[str]] = defaultdict(list)
    for row in rows:
        groups[(row.attempts if with_attempts else None, row.attempt)].append(row.pk)
    return groups


def _where(columns: Columns, pks: list[str], attempts: int | None, attempt: int | None) -> tuple[str, list]:
    quote = connection.ops.quote_name
    pk = quote(columns.model._meta.pk.column)
    where = f"{pk} IN ({', '.join(['%s'] * len(pks))}) AND {quote(columns.sent)} = %s"
    params: list = [*pks, False]
    if attempts is not None:
        where += f" AND {quote(columns.attempts)} = %s"
        params.append(attempts)
    if attempt is not None:
        where += f" AND {quote('attempt')} = %s"
        params.append(attempt)
    return where, params


def claim(columns: Columns, rows: list[Due]) -> set[str]:
    """Raise the attempt count of each row still as it was read; the pks of those this call won.

    One UPDATE ... RETURNING per (attempts, attempt) seen, usually one for the whole slice.
    """
    quote = connection.ops.quote_name
    table, pk, attempts_column = (
        quote(columns.model._meta.db_table),
        quote(columns.model._meta.pk.column),
        quote(columns.attempts),
    )
    won: set[str] = set()
    with connection.cursor() as cursor:
        for (attempts, attempt), pks in _groups(rows, with_attempts=True).items():
            where, params = _where(columns, pks, attempts, attempt)
            cursor.execute(
                f"UPDATE {table} SET {attempts_column} = {attempts_column} + 1 WHERE {where} RETURNING {pk}", params
            )
            won.update(found for (found,) in cursor.fetchall())
    return won


def mark_sent(columns: Columns, rows: list[Due]) -> None:
    """The events of `rows` were delivered (unless a retry has started the recipient's next attempt)."""
    for (_, attempt), pks in _groups(rows, with_attempts=False).items():
        which = {"pk__in": pks}
        if attempt is not None:
            which["attempt"] = attempt
        columns.model.objects.filter(**which).update(**{columns.sent: True})


class Sender:
    """POSTs events from a pool of threads, each with a `requests.Session` of its own."""

    def __init__(self, *, url: str, secret: str):
        self.url, self.secret = url, secret
        self.size = concurrency()
        self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="sandbox-webhook")
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def _post(self, job: tuple[object, bool]) -> bool:
        conversation, audio = job
        return webhook_post(
            session=self._session(), url=self.url, secret=self.secret, conversation=conversation, audio=audio
        )

    def submit(self, conversations: list, *, audio: bool) -> list[Future]:
        """Start sending each; each future's result says whether it was delivered."""
        return [self._pool.submit(self._post, (conversation, audio)) for conversation in conversations]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for session in self._sessions:
            session.close()


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0
    out_of_time: bool = False


def deliver(
    *, columns: Columns, due: Iterator[list[Due]], sender: Sender, audio: bool, deadline: float, outcome: Outcome
) -> None:
    """Claim, send and record the events `due` yields, chunk by chunk, until they run out or `deadline` passes.

    Slices of 4 x concurrency events are claimed one at a time; the next is claimed and
    queued while the one before is still being sent, so the pool's threads never wait for
    the slowest POST of a slice. At most IN_FLIGHT_SLICES are claimed and unanswered at once.
    """
    slice_size = sender.size * SLICE_ROUNDS
    in_flight: collections.deque[tuple[list[Due], list[Future]]] = collections.deque()

    def record(rows: list[Due], futures: list[Future]) -> None:
        results = [future.result() for future in futures]
        mark_sent(columns, [row for row, delivered in zip(rows, results, strict=True) if delivered])
        delivered = sum(results)
        outcome.sent += delivered
        outcome.failed += len(results) - delivered

    try:
        for chunk in due:
            for start in range(0, len(chunk), slice_size):
                if monotonic() >= deadline:
                    outcome.out_of_time = True
                    return
                rows = chunk[start : start + slice_size]
                won = claim(columns, rows)
                rows = [row for row in rows if row.pk in won]
                if not rows:
                    continue
                in_flight.append((rows, sender.submit([row.conversation for row in rows], audio=audio)))
                while len(in_flight) >= IN_FLIGHT_SLICES:
                    record(*in_flight.popleft())
    finally:
        while in_flight:
            record(*in_flight.popleft())


# --- One POST ----------------------------------------------------------------------------


def _audio_chunks(body: bytes):
    for start in range(0, len(body), AUDIO_CHUNK_BYTES):
        yield body[start : start + AUDIO_CHUNK_BYTES]


def webhook_post(*, session: requests.Session, url: str, secret: str, conversation, audio: bool) -> bool:
    """POST the call's event (its audio when `audio`), signed; True on a 2xx answer."""
    timestamp = int(time.time())
    if audio:
        size = int(getattr(settings, "SANDBOX_WEBHOOK_AUDIO_BYTES", 65_536))
        event = serializers.audio_event(conversation, event_timestamp=timestamp, audio=secrets.token_bytes(size))
    else:
        event = serializers.call_event(conversation, event_timestamp=timestamp)
    body = serializers.json_bytes(event)
    headers = {"Content-Type": "application/json", HEADER: sign(body, secret, timestamp)}
    # ElevenLabs streams the audio event: a generator makes requests send it chunked.
    data = _audio_chunks(body) if audio else body
    try:
        response = session.post(url, data=data, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except requests.RequestException as exc:
        logger.warning("Sandbox webhook %s for %s failed: %s", event["type"], conversation.conversation_id, exc)
        return False
    if not 200 <= response.status_code < 300:
        logger.warning(
            "Sandbox webhook %s for %s answered %s", event["type"], conversation.conversation_id, response.status_code
        )
        return False
    return True
