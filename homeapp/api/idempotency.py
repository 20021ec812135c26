"""What the backend API answered, by Idempotency-Key: a retried request is performed once.

A request claims its key before it is performed; the claim holds a fingerprint of its body.
Once answered, the key holds the answer for HOMEAPP_IDEMPOTENCY_SECONDS; a 5xx answer is not
kept (the request is released), so that a retry after an outage is performed. A request whose
key is claimed and not yet answered, or was answered for another body, is a Conflict.

Two stores with one interface: in Redis when REDIS_URL is set, so that a retry reaching
another process is recognised, and in process memory otherwise.
"""
import logging
import secrets
import time
from collections import OrderedDict, namedtuple

import orjson
import redis

from homeapp.store import redis_keys
from homeapp.telemetry import metrics

log = logging.getLogger(__name__)

# A claim in Redis outlives the process that made it only this long: a process that dies
# while handling a request must not block that key's retries for the whole window.
# Handling takes a few Redis round trips at most, each bounded by HOMEAPP_REDIS_TIMEOUT.
IN_FLIGHT_SECONDS = 60

IN_FLIGHT = "A request with this Idempotency-Key is still being handled; retry later."
CHANGED = "This Idempotency-Key was used for a request with another body."

# status: the HTTP status; body: the JSON bytes that were sent
Answer = namedtuple("Answer", "status body")
# what claim() returns: the answer remembered for the key, or, when None, the claim
# that finish() or release() must be given
Ticket = namedtuple("Ticket", "key claim answer")


class Conflict(Exception):
    """The key belongs to another request: one still being handled, or one with another body."""


class IdempotencyUnavailable(Exception):
    """The store cannot be reached; the caller answers UNAVAILABLE."""


def _remembered(key, fingerprint, stored_fingerprint, answer):
    """The Ticket of a key claimed before. Raises Conflict unless it was answered for this body."""
    if answer is None:
        raise Conflict(IN_FLIGHT)
    if stored_fingerprint != fingerprint:
        raise Conflict(CHANGED)
    return Ticket(key, None, answer)


class MemoryIdempotency:
    """Keys in this process's memory, at most `capacity` of them: past it the oldest are
    forgotten (counted in a metric, logged once), so that no client can grow the memory."""

    def __init__(self, seconds, capacity, clock=time.monotonic):
        self._seconds = seconds
        self._capacity = capacity
        self._clock = clock
        # key -> (expires at, fingerprint, claim, answer); all live equally long, so the
        # oldest entry is always first
        self._entries = OrderedDict()
        self._warned = False

    def claim(self, key, fingerprint):
        """Claim the key for a request with this fingerprint; see Ticket. Raises Conflict."""
        now = self._clock()
        while self._entries and next(iter(self._entries.values()))[0] <= now:
            self._entries.popitem(last=False)
        entry = self._entries.get(key)
        if entry is not None:
            return _remembered(key, fingerprint, entry[1], entry[3])
        if len(self._entries) >= self._capacity:
            self._forget_oldest()
        claim = object()
        self._entries[key] = (now + self._seconds, fingerprint, claim, None)
        return Ticket(key, claim, None)

    def _forget_oldest(self):
        self._entries.popitem(last=False)
        metrics.IDEMPOTENCY_KEYS_FORGOTTEN.inc()
        if not self._warned:
            self._warned = True
            log.warning("HOMEAPP_IDEMPOTENCY_KEYS (%d) reached: the oldest keys are forgotten "
                        "before their time (counted in homeapp_idempotency_keys_forgotten_total)",
                        self._capacity)

    def finish(self, ticket, answer):
        """Remember the answer under the ticket's key, if the ticket still holds it."""
        entry = self._entries.get(ticket.key)
        if entry is None or entry[2] is not ticket.claim:
            return
        del self._entries[ticket.key]  # re-inserted last: it lives from now
        self._entries[ticket.key] = (self._clock() + self._seconds, entry[1], None, answer)

    def release(self, ticket):
        """Forget the ticket's key without an answer, if the ticket still holds it."""
        entry = self._entries.get(ticket.key)
        if entry is not None and entry[2] is ticket.claim:
            del self._entries[ticket.key]


# KEYS: the key's entry. ARGV: the claim (a JSON entry without an answer), its lease (ms).
# Returns the entry found, or nil once the claim is stored.
_CLAIM = """
local entry = redis.call('GET', KEYS[1])
if entry then return entry end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# KEYS: the key's entry. ARGV: the claim it must still hold, the answered entry, its life (ms).
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: the key's entry. ARGV: the claim it must still hold.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class RedisIdempotency:
    """Keys in Redis, shared by every process; each operation is one atomic script."""

    def __init__(self, client, seconds):
        self._life_ms = seconds * 1000
        self._lease_ms = min(seconds, IN_FLIGHT_SECONDS) * 1000
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)

    def claim(self, key, fingerprint):
        """Claim the key for a request with this fingerprint; see Ticket.

        Raises Conflict, or IdempotencyUnavailable when Redis fails.
        """
        # the nonce tells this claim from a concurrent one of the same body
        claim = orjson.dumps({"fingerprint": fingerprint, "claim": secrets.token_hex(16)}).decode()
        found = self._call(self._claim, key, [claim, self._lease_ms])
        if found is None:
            return Ticket(key, claim, None)
        entry = orjson.loads(found)
        answer = Answer(entry["status"], entry["body"].encode()) if "status" in entry else None
        return _remembered(key, fingerprint, entry["fingerprint"], answer)

    def finish(self, ticket, answer):
        """Remember the answer under the ticket's key, if the ticket still holds it.

        Raises IdempotencyUnavailable when Redis fails.
        """
        fingerprint = orjson.loads(ticket.claim)["fingerprint"]
        entry = orjson.dumps({"fingerprint": fingerprint, "status": answer.status,
                              "body": answer.body.decode()}).decode()
        self._call(self._finish, ticket.key, [ticket.claim, entry, self._life_ms])

    def release(self, ticket):
        """Forget the ticket's key without an answer, if the ticket still holds it.

        Raises IdempotencyUnavailable when Redis fails.
        """
        self._call(self._release, ticket.key, [ticket.claim])

    @staticmethod
    def _call(script, key, args):
        """Run one of the scripts on a key; its result. Raises IdempotencyUnavailable."""
        try:
            return script([redis_keys.idempotency(key)], args)
        except redis.RedisError as exc:
            raise IdempotencyUnavailable(str(exc) or type(exc).__name__) from exc


def create_idempotency(config, redis_client=None):
    """The Redis store when Redis is configured, the in-process one otherwise."""
    if redis_client is None:
        return MemoryIdempotency(config["IDEMPOTENCY_SECONDS"], config["IDEMPOTENCY_KEYS"])
    return RedisIdempotency(redis_client, config["IDEMPOTENCY_SECONDS"])
