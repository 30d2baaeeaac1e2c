"""Per-key JSON state in Redis, updated optimistically and cached in the process.

Several replicas may update the same key (a token's detector state) at once. An update
reads the states, computes, and commits with one atomic compare-and-set (a Lua script that
checks each key's SHA-1 is still the one we read). On conflict it re-reads and recomputes.
The last states this process committed are kept in memory, so a replica that sees a token
again skips the read: one round trip per batch in the common case, and Redis stays the
only source of truth because the compare-and-set checks every key it relies on. The cache is
bounded in bytes, not entries: a token's state runs to kilobytes, and with new tokens
arriving all day a count bound let a process grow for hours.

An update may name an outbox key (one per event: `kades.keys.outbox_key`). What `compute`
returned is then committed in the same script as the states, and a later update under the
same key (the Broker's retry after the database, the sink or the process failed past the
commit) gets that result back instead of its own: the retry redoes the first attempt's
effects -- its rows, its replies -- rather than finding the input already counted and doing
nothing. Rows are inserted idempotently and event ids are derived from the input, so each
effect lands once. With `keep_empty` a result without effects is kept too: the outbox is
then the event's done mark, committed with the states, and the function needs no claim of
its own (`Function.idempotent`; temporal-analysis).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterator, NamedTuple, TypeVar

import redis

from kades import jsontext
from kades.errors import TemporaryFailure
from kades.runtime import faults
from kades.runtime.bulkhead import PASSED_ON, StateNotEncoded
from kades.runtime.dedup import IN_STEP_SCRIPT, NotReplicated, eval_then_wait

Result = TypeVar("Result")
# compute(current states, None where absent) -> (new states, result)
Compute = Callable[[list[dict | None]], tuple[list[dict], Result]]

# KEYS: the n states, then the outbox key if any, then the waiting set if any. ARGV: n, flags
# (1: an outbox; 2: the replicas are waited for), n digests, n documents ('' for unchanged),
# the states' TTL, then the outbox value ('' for none) and its TTL if an outbox, then (member,
# score) pairs if a waiting set, one per listed state (score '': nothing waits, the member
# leaves the set). Returns 0 on a conflict, 1 when committed, or the outbox value an earlier
# attempt committed; when the replicas are waited for, {that, the replicas in step}, and an
# earlier outbox is touched (its own TTL again): a write of this connection, so that the WAIT
# after it covers the earlier attempt's, made on another connection.
_COMPARE_AND_SET = """
local n, flags = tonumber(ARGV[1]), tonumber(ARGV[2])
local outbox, replicated = flags % 2 == 1, flags >= 2
local function answer(value)
  if not replicated then return value end
  """ + IN_STEP_SCRIPT + """
  return {value, in_step}
end
if outbox then
  local earlier = redis.call('GET', KEYS[n + 1])
  if earlier then
    if replicated then
      local ttl = redis.call('PTTL', KEYS[n + 1])
      if ttl > 0 then redis.call('PEXPIRE', KEYS[n + 1], ttl) end
    end
    return answer(earlier)
  end
end
for i = 1, n do
  local current = redis.call('GET', KEYS[i])
  if (current and redis.sha1hex(current) or '') ~= ARGV[2 + i] then return answer(0) end
end
for i = 1, n do
  if ARGV[2 + n + i] ~= '' then redis.call('SET', KEYS[i], ARGV[2 + n + i], 'EX', ARGV[3 + 2 * n]) end
end
local at = 4 + 2 * n
if outbox then
  if ARGV[at] ~= '' then redis.call('SET', KEYS[n + 1], ARGV[at], 'EX', ARGV[at + 1]) end
  at = at + 2
end
if #KEYS > n + (outbox and 1 or 0) then
  for i = 0, (#ARGV - at + 1) / 2 - 1 do
    local member, score = ARGV[at + 2 * i], ARGV[at + 2 * i + 1]
    if score == '' then redis.call('ZREM', KEYS[#KEYS], member)
    else redis.call('ZADD', KEYS[#KEYS], score, member) end
  end
end
return answer(1)
"""
OUTBOX_TTL_S = 3600  # well past the Broker's whole retry span (minutes)
# An outbox holding what an event found (its anomalies, the replies it sent) is kept as long
# as the event's done mark (Settings.dedup_ttl_s's default): its event may come back from the
# dead letters days later (`kades dlq replay`, once the database that failed it is back),
# and after an hour the outbox was gone, the analysis done and the anomaly never sent.
EFFECTS_OUTBOX_TTL_S = 7 * 24 * 3600
LOCK_STRIPES = 256  # a store's per-key locks (KeyTurns): bounded, whatever the keys
# How long an update waits for its keys' turns before it goes ahead without them, as before
# the turns (the compare-and-set still keeps it right): an update stuck on Redis (2 s a
# command, Settings.redis_timeout_s) holds its turns, and 16 threads in line on one token
# would each wait out the timeout in turn, the last one 32 s.
TURN_WAIT_S = 5.0


class Waiting(NamedTuple):
    """A sorted set that `StateStore.update` keeps true with the states it commits: each
    key's member scored `score_of(its new state)`, or removed where that is None (what
    a separate pipeline would do in a round trip of its own)."""

    key: str
    members: list[str | None]     # one per state key, in the same order (None: not listed)
    score_of: Callable[[dict], float | None]


def by_key(keys: list[str], compute: Callable[[dict[str, dict | None]], tuple[dict[str, dict], Result]]
           ) -> Compute:
    """A compute that reads and returns the states by key, as `update` takes it (a list in
    the order of `keys`), so that no caller slices the states by position.

    >>> positional = by_key(["a", "b"], lambda docs: ({"a": {"n": 1}, "b": docs["b"] or {}}, "ok"))
    >>> positional([None, None])
    ([{'n': 1}, {}], 'ok')
    """
    def positional(states: list[dict | None]) -> tuple[list[dict], Result]:
        docs, result = compute(dict(zip(keys, states)))
        return [docs[key] for key in keys], result
    return positional


class JsonCodec:
    """How a StateStore turns documents into bytes and back: compact JSON, by orjson where it
    reads back as the document and as the stdlib reads it (kades.jsontext; a sentiment state
    of 8 kB was a quarter of its event in the stdlib's json). A caller may pass its own codec
    (kades.chain.codec) that keeps more between events; `key` lets it tell its documents
    apart."""

    @staticmethod
    def loads(key: str, raw: bytes):
        return jsontext.loads(raw)

    @staticmethod
    def dumps(key: str, state) -> bytes:
        return jsontext.compact_json(state)


def digest(raw: bytes | None) -> str:
    """What the compare-and-set scripts check a string key by: its SHA-1, '' when absent."""
    return hashlib.sha1(raw).hexdigest() if raw is not None else ""


def outbox_ttl(result, ttl_s: int = OUTBOX_TTL_S) -> int:
    """How long an outbox holding `result` is kept: EFFECTS_OUTBOX_TTL_S when it holds
    something, else `ttl_s`."""
    return max(ttl_s, EFFECTS_OUTBOX_TTL_S) if has_effects(result) else ttl_s


def worth_keeping(result, keep_empty: bool | Callable[[], bool]) -> bool:
    """Whether an update's result goes into its outbox: when it holds effects, or when its
    caller says so (`keep_empty`, or asked once the compute ran: it counted something, a
    late input, that a redelivery answered by no outbox would compute and count again)."""
    return has_effects(result) or bool(keep_empty() if callable(keep_empty) else keep_empty)


def has_effects(result) -> bool:
    """Whether a result holds anything (nested lists and tuples all empty: nothing), so is
    worth keeping in an outbox."""
    if isinstance(result, (list, tuple)):
        return any(has_effects(item) for item in result)
    return result is not None and result != {}


# Set when an update was answered by the outbox of an earlier attempt of its event (or an
# idempotent handler found every effect of its event done, as alert-dispatch does): for a
# function that takes no claim, the delivery is a duplicate (kades.runtime.endpoint counts it).
answered_by_outbox: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "answered_by_outbox", default=False)

# One attempt: the script's answer, the result computed, and what to do once it committed.
Attempt = Callable[[], tuple[object, Result, Callable[[], None]]]


def until_committed(attempt: Attempt, *, max_attempts: int, forget: Callable[[], None]) -> Result:
    """The optimistic loop of every compare-and-set store (StateStore, kades.chain.store):
    run `attempt` (read, compute, one script call) until its script commits, and return the
    result; an outbox value from an earlier attempt of the event is returned instead (its
    effects are redone). On a conflict, `forget` what was read and try again after a wait."""
    for number in range(max_attempts):
        answer, result, committed = attempt()
        if answer == 1:
            committed()
            faults.point("after_state")  # tests only (KADES_FAULT_POINTS)
            return result
        if answer != 0:  # an earlier attempt of this event committed: redo its effects
            answered_by_outbox.set(True)
            return json.loads(answer)
        forget()  # someone else moved a key on: read afresh and recompute
        # Jittered exponential backoff (2 ms, 4 ms ... 128 ms at most): with linear waits of
        # a few ms, a replica on a loaded machine lost the race eight times in a row to
        # one that kept committing the same token's next events.
        time.sleep(random.uniform(0, min(0.128, 0.002 * 2 ** number)))
    raise TemporaryFailure(f"state kept changing under us ({max_attempts} attempts)")


class KeyTurns:
    """A store's threads take turns per key. Two threads of one process updating a key at
    once both read it and compute, and the one that commits second finds it moved, reads it
    again and computes again: 100 500-tick events on 8 threads lost 59-92 commits and took up
    to 42 % more CPU, for no parallelism (the GIL). An update holds its keys' locks (one of
    LOCK_STRIPES each, by the key's hash) while it reads, computes and commits, retries
    included; other replicas' updates still meet the compare-and-set. One that waited
    `wait_s` for its turns goes ahead without them (TURN_WAIT_S)."""

    def __init__(self, stripes: int = LOCK_STRIPES, *, wait_s: float = TURN_WAIT_S):
        self._locks = [threading.RLock() for _ in range(stripes)]
        self.wait_s = wait_s

    @contextlib.contextmanager
    def held(self, keys: list[str]) -> Iterator[None]:
        locks = [self._locks[i] for i in sorted({hash(key) % len(self._locks) for key in keys})]
        taken, until = [], time.monotonic() + self.wait_s
        try:
            for lock in locks:  # in one order: no two updates wait for each other in a circle
                if not lock.acquire(timeout=max(0.0, until - time.monotonic())):
                    while taken:  # all its turns or none
                        taken.pop().release()
                    break
                taken.append(lock)
            yield
        finally:
            while taken:
                taken.pop().release()


class StateStore:
    """JSON documents under Redis keys with optimistic, cached, atomic batch updates.

    `replicas` (Settings.redis_wait_replicas), for a function that takes no claim and so has
    no done mark to wait on (Function.idempotent): each commit is pipelined with a WAIT on
    its connection, one round trip, and an update returns only once every replica in step
    with the primary, and at least `replicas`, has it (else NotReplicated, a 503)."""

    def __init__(self, *, ttl_s: int, cache_bytes: int = 4 << 20, max_attempts: int = 8,
                 codec=JsonCodec, replicas: int = 0, wait_s: float = 0.5):
        self.replicas, self.wait_s = replicas, wait_s
        self._in_step = 0  # the replicas in step at the last commit: what the next one waits for
        self.ttl_s = ttl_s
        self.codec = codec
        self.cache_bytes = cache_bytes
        self.max_attempts = max_attempts
        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()  # a function serves requests on several threads
        self._turns = KeyTurns()

    def update(self, client: redis.Redis, keys: list[str], compute: Compute, *,
               outbox: str | None = None, outbox_ttl_s: int = OUTBOX_TTL_S,
               waiting: Waiting | None = None, keep_empty: bool | Callable[[], bool] = False,
               on_commit: Callable[[list[dict]], None] | None = None) -> Result:
        """Apply `compute` to the states of `keys` atomically; its result once committed.
        With `outbox`, the result (JSON: tuples come back as lists) of the first attempt
        that committed under that key, whatever this call computes; a result without
        effects is kept only with `keep_empty` (a flag, or a call asked after the compute:
        worth_keeping), else a retry computes it again, just as empty unless the states
        moved on meanwhile. With `waiting`, its
        sorted set is kept true for the new states in the same script (one round trip, and
        never a state committed without it). `on_commit` is given the states this call
        committed (not called when an earlier attempt's outbox answered): a caller that reads
        them afterwards need not decode them again (`current`)."""
        script = client.register_script(_COMPARE_AND_SET)

        def attempt():
            raws = self._read(client, keys)
            states, result = compute([self.codec.loads(key, raw) if raw else None
                                      for key, raw in zip(keys, raws)])
            documents = [self._encoded(key, s) for key, s in zip(keys, states)]
            writes = [b"" if doc == raw else doc for doc, raw in zip(documents, raws)]
            extra_keys, extra_args = [], []
            if outbox is not None:
                extra_keys.append(outbox)
                kept = (json.dumps(result, separators=(",", ":"))
                        if worth_keeping(result, keep_empty) else "")
                extra_args = [kept, outbox_ttl(result, outbox_ttl_s)]
            if waiting is not None:
                extra_keys.append(waiting.key)
                for member, state in zip(waiting.members, states):
                    if member is None:
                        continue
                    score = waiting.score_of(state)
                    extra_args += [member, "" if score is None else repr(score)]
            # Even when nothing changed (a replay) the script runs: it proves that the states
            # we computed from (perhaps cached) were still the current ones.
            flags = int(outbox is not None) + 2 * bool(self.replicas)
            args = [len(keys), flags, *map(digest, raws), *writes, self.ttl_s, *extra_args]
            if self.replicas:
                answer = self._commit_replicated(client, script, [*keys, *extra_keys], args)
            else:
                answer = script(keys=[*keys, *extra_keys], args=args)

            def committed():
                for key, doc in zip(keys, documents):
                    self._remember(key, doc)
                if on_commit is not None:
                    on_commit(states)
            return answer, result, committed

        with self._turns.held(keys):
            return until_committed(attempt, max_attempts=self.max_attempts,
                                   forget=lambda: self._drop_all(keys))

    def _encoded(self, key: str, state) -> bytes:
        try:
            return self.codec.dumps(key, state)
        except PASSED_ON:
            raise
        except Exception as error:  # noqa: BLE001 - the caller's bulkhead's (kades.runtime.bulkhead)
            raise StateNotEncoded(key) from error

    def _commit_replicated(self, client: redis.Redis, script, keys: list[str], args: list):
        """The script's answer, once the replicas have what it wrote: the script and a WAIT
        pipelined on one connection (WAIT counts that connection's writes). It waits for as
        many replicas as were in step at the last commit; the script says how many are now,
        and fewer acknowledgements than that (or than `replicas`) is NotReplicated."""
        (answer, self._in_step), acked = eval_then_wait(
            client, script.sha, script.script, keys, args,
            replicas=max(self.replicas, self._in_step),
            timeout_ms=max(1, round(self.wait_s * 1000)))
        needed = max(self.replicas, self._in_step)
        if answer != 0 and acked < needed:
            raise NotReplicated(f"a state commit reached {acked} of {needed} replicas "
                                f"within {self.wait_s} s")
        return answer

    def _drop_all(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._drop(key)

    def _read(self, client: redis.Redis, keys: list[str]) -> list[bytes | None]:
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
        missing = [key for key in keys if key not in found]
        if missing:
            found.update(zip(missing, client.mget(missing)))
            for key in missing:
                self._remember(key, found[key])
        return [found[key] for key in keys]

    def _remember(self, key: str, raw: bytes | None) -> None:
        with self._lock:
            self._drop(key)
            self._cache[key] = raw
            self._cached_bytes += _size(key, raw)
            while self._cached_bytes > self.cache_bytes and self._cache:
                self._drop(next(iter(self._cache)))  # the least recently used

    def _drop(self, key: str) -> None:
        if key in self._cache:
            self._cached_bytes -= _size(key, self._cache.pop(key))

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def current(self, client: redis.Redis, keys: list[str]) -> list[dict | None]:
        """The states of `keys` as last committed (from this process's cache when it has them)."""
        return [self.codec.loads(key, raw) if raw else None
                for key, raw in zip(keys, self._read(client, keys))]

    def forget(self) -> None:
        """Drop the in-process cache (tests; a state reset)."""
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0


def _size(key: str, raw: bytes | None) -> int:
    return len(key) + (len(raw) if raw else 0)
