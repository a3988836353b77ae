"""The fleet's state in Redis: key names, Lua scripts, and every Redis call the fleet makes.

Keys (``prefix`` defaults to ``aiolens:fleet``):

* ``{prefix}:feeds`` — the work queue: a stream with one entry per feed to run
  (field ``feed``), read through the consumer group ``workers``. A worker's
  pending entries (its PEL) are the feeds it runs; their idle time is the lease.
* ``{prefix}:index`` — a set of every feed id (for ``status``).
* ``{prefix}:{<feed_id>}:state`` — a hash: ``spec``, ``status``, ``epoch``,
  ``owner``, ``session_id``, ``endpoint``, ``lens_id``, ``lens_owned``,
  ``started``, ``last_id`` (the checkpoint), ``delivered``, ``ended``, ``error``.
* ``{prefix}:{<feed_id>}:results`` — the results stream: one entry per event
  (``id``, ``type``, ``epoch``, ``data``), trimmed to about ``results_maxlen``.

The ``{<feed_id>}`` hash tag puts a feed's two keys in one Redis Cluster slot, so
every script that touches them runs on one shard; the queue and index are one key
each. A script never touches the queue and a feed's keys together.

**Fencing.** Taking a feed (:data:`_TAKE`) increments its ``epoch``. Every later
write of a worker about the feed (:data:`_APPEND`, :data:`_SET`) names the
epoch it took and does nothing when the feed's epoch has moved on: a worker that
lost its lease (paused, partitioned) cannot write again.

**Exactly once.** :data:`_APPEND` appends a batch of events to the results and
moves the checkpoint in one atomic step, skipping events at or below the
checkpoint (numeric ids), so a batch retried after a lost reply, or an event the
server sends again, is written once. An event without an id of its own (a stream end
some servers send without one) is written unless the feed already ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from aiolens.fleet.spec import (
    FeedExistsError,
    FeedNotFoundError,
    FeedResult,
    FeedSpec,
    FeedStatus,
    encode_spec,
)

__all__ = ["DEFAULT_PREFIX", "GROUP", "Claim", "FeedState", "FleetStore"]

DEFAULT_PREFIX: Final = "aiolens:fleet"
GROUP: Final = "workers"

# KEYS[1] state; ARGV[1] owner. Returns the new epoch and the state, or nil (no feed).
_TAKE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'running')
end
return {epoch, redis.call('HMGET', KEYS[1], 'spec', 'status', 'session_id', 'endpoint',
  'lens_id', 'lens_owned', 'started', 'last_id', 'ended')}
"""

# KEYS[1] state; ARGV[1] epoch, then field, value pairs. 1 when written, 0 when fenced.
_SET: Final = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS[1] state, KEYS[2] results; ARGV[1] epoch, ARGV[2] maxlen, ARGV[3] '1' when the
# batch ends the stream, then id, type, data triples. Returns events appended, -1 fenced.
# An event without an id ('') cannot be checked against the checkpoint: it is appended
# unless the feed has ended (so a retried final batch does not repeat its end event).
_APPEND: Final = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return -1 end
local last = redis.call('HGET', KEYS[1], 'last_id') or ''
local lastn = tonumber(last)
local ended = redis.call('HGET', KEYS[1], 'ended') == '1'
local added = 0
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local n = tonumber(id)
  local new
  if id == '' then new = not ended else new = not (n and lastn and n <= lastn) end
  if new then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
      'id', id, 'type', ARGV[i + 1], 'epoch', ARGV[1], 'data', ARGV[i + 2])
    if id ~= '' then
      last = id
      lastn = n
    end
    added = added + 1
  end
end
redis.call('HSET', KEYS[1], 'last_id', last)
if added > 0 then redis.call('HINCRBY', KEYS[1], 'delivered', added) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'ended', '1') end
return added
"""

# KEYS[1] queue; ARGV[1] group, ARGV[2] consumer, then entry ids. Renews the lease of
# the entries still pending for this consumer; returns the ids it no longer holds.
_RENEW: Final = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""

# KEYS[1] queue; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry, ARGV[4] feed id.
# Hands a feed back: a fresh queue entry, if this consumer still held the old one.
_RELEASE: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not (p[1] and p[1][2] == ARGV[2]) then return nil end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return redis.call('XADD', KEYS[1], '*', 'feed', ARGV[4])
"""

# KEYS[1] state, KEYS[2] results; ARGV[1] feed spec JSON, ARGV[2] '1' to replace a feed
# that is over (and its results). Returns 1 when created, 0 when the id is taken.
_CREATE: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if status and (ARGV[2] ~= '1' or
    (status ~= 'ended' and status ~= 'cancelled' and status ~= 'failed')) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'status', 'pending', 'epoch', 0,
  'owner', '', 'last_id', '', 'delivered', 0)
return 1
"""

# KEYS[1] state. Marks a live feed for cancelling; returns its status before.
_CANCEL: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
if status == 'pending' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling')
end
return status
"""

_STATUS_FIELDS: Final = (
    "status",
    "owner",
    "epoch",
    "session_id",
    "last_id",
    "delivered",
    "error",
)


class FeedState(msgspec.Struct):
    """A feed as a worker takes it (the result of :meth:`FleetStore.take`)."""

    feed_id: str
    epoch: int
    spec: FeedSpec
    status: str
    session_id: str = ""
    endpoint: str = ""
    lens_id: str = ""
    lens_owned: bool = False
    started: bool = False
    last_id: str = ""
    ended: bool = False


class Claim(msgspec.Struct, frozen=True):
    """A queue entry a worker now holds: ``entry_id`` names it in the consumer group."""

    entry_id: str
    feed_id: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


_spec_decoder: Final = msgspec.json.Decoder(FeedSpec)


class FleetStore:
    """The Redis calls of the fleet, on one :class:`redis.asyncio.Redis` client.

    Every method is one round trip (a pipeline counts as one), except where it
    says otherwise; it raises what redis-py raises (``redis.ConnectionError``
    when Redis is unreachable). :attr:`round_trips` counts them.

    Args:
        redis: the client (its connection pool is shared, not closed here).
        prefix: the key prefix.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self.queue: str = f"{prefix}:feeds"
        self.index: str = f"{prefix}:index"
        self.round_trips: int = 0
        self._take = redis.register_script(_TAKE)
        self._set = redis.register_script(_SET)
        self._append = redis.register_script(_APPEND)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._create = redis.register_script(_CREATE)
        self._cancel = redis.register_script(_CANCEL)

    def state_key(self, feed_id: str) -> str:
        """The feed's state hash (hash-tagged by feed id)."""
        return f"{self.prefix}:{{{feed_id}}}:state"

    def results_key(self, feed_id: str) -> str:
        """The feed's results stream (hash-tagged by feed id)."""
        return f"{self.prefix}:{{{feed_id}}}:results"

    # ---- submitting and inspecting --------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the queue and its consumer group when missing."""
        self.round_trips += 1
        try:
            await self.redis.xgroup_create(self.queue, GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def submit(self, spec: FeedSpec, *, replace: bool = False) -> str:
        """Record the feed and queue it; returns its queue entry id.

        Args:
            spec: the feed.
            replace: a feed of this id that is over (ended, cancelled, failed)
                is replaced, its results deleted.

        Raises:
            FeedExistsError: a feed with this id exists (and is not over, or
                ``replace`` is false).
        """
        await self.ensure_group()
        keys = [self.state_key(spec.feed_id), self.results_key(spec.feed_id)]
        self.round_trips += 1
        if not await self._create(keys=keys, args=[encode_spec(spec), "1" if replace else "0"]):
            raise FeedExistsError(
                f"feed {spec.feed_id} is already in the fleet"
                + (" and not over; cancel it first" if replace else "; pick another id")
            )
        self.round_trips += 1
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.index, spec.feed_id)
        pipe.xadd(self.queue, {"feed": spec.feed_id})
        _, entry = await pipe.execute()
        return _text(entry)

    async def cancel(self, feed_id: str) -> str:
        """Ask for the feed to be cancelled; returns its status before.

        Raises:
            FeedNotFoundError: no such feed.
        """
        self.round_trips += 1
        before = await self._cancel(keys=[self.state_key(feed_id)])
        if before is None:
            raise FeedNotFoundError(f"no feed {feed_id!r} in the fleet")
        return _text(before)

    async def feed_ids(self) -> list[str]:
        """Every feed id known, sorted."""
        self.round_trips += 1
        return sorted(_text(m) for m in await self.redis.smembers(self.index))

    async def statuses(self, feed_ids: Sequence[str]) -> list[FeedStatus | None]:
        """The status of each feed (``None`` for an unknown one), in one round trip."""
        if not feed_ids:
            return []
        self.round_trips += 1
        pipe = self.redis.pipeline(transaction=False)
        for feed_id in feed_ids:
            pipe.hmget(self.state_key(feed_id), _STATUS_FIELDS)
        out: list[FeedStatus | None] = []
        for feed_id, row in zip(feed_ids, await pipe.execute(), strict=True):
            status, owner, epoch, session_id, last_id, delivered, error = map(_text, row)
            if not status:
                out.append(None)
                continue
            out.append(
                FeedStatus(
                    feed_id=feed_id,
                    status=status,
                    owner=owner,
                    epoch=int(epoch or 0),
                    session_id=session_id,
                    last_event_id=last_id,
                    delivered=int(delivered or 0),
                    error=error,
                )
            )
        return out

    async def read_results(
        self, feed_id: str, after: str, *, count: int, block_ms: int | None
    ) -> list[FeedResult]:
        """Up to ``count`` results after entry ``after``; waits ``block_ms`` when none."""
        self.round_trips += 1
        reply: Any = await self.redis.xread(
            {self.results_key(feed_id): after}, count=count, block=block_ms
        )
        out = []
        for _, entries in reply or ():
            for entry_id, fields in entries:
                out.append(
                    FeedResult(
                        feed_id=feed_id,
                        entry_id=_text(entry_id),
                        event_id=_text(fields.get(b"id")),
                        type=_text(fields.get(b"type")),
                        epoch=int(fields.get(b"epoch") or 0),
                        data=_text(fields.get(b"data")),
                    )
                )
        return out

    # ---- claiming ------------------------------------------------------------------------

    async def claim_new(self, consumer: str, count: int, block_ms: int) -> list[Claim]:
        """Feeds never delivered to a worker; waits up to ``block_ms`` for one."""
        self.round_trips += 1
        reply: Any = await self.redis.xreadgroup(
            GROUP, consumer, {self.queue: ">"}, count=count, block=block_ms
        )
        return [c for _, entries in reply or () for c in _claims(entries)]

    async def claim_lapsed(self, consumer: str, count: int, lease_ms: int) -> list[Claim]:
        """Feeds whose owner let the lease lapse (``XAUTOCLAIM``), up to ``count``."""
        self.round_trips += 1
        reply: Any = await self.redis.xautoclaim(
            self.queue, GROUP, consumer, min_idle_time=lease_ms, start_id="0-0", count=count
        )
        return list(_claims(reply[1]))

    async def renew(self, consumer: str, entry_ids: Sequence[str]) -> set[str]:
        """Renew the leases of the given entries; returns the ids this consumer lost."""
        if not entry_ids:
            return set()
        self.round_trips += 1
        lost = await self._renew(keys=[self.queue], args=[GROUP, consumer, *entry_ids])
        return {_text(x) for x in lost}

    async def release(self, consumer: str, claim: Claim) -> bool:
        """Hand a feed back to the queue at once; ``False`` when the entry was not ours."""
        self.round_trips += 1
        new = await self._release(
            keys=[self.queue], args=[GROUP, consumer, claim.entry_id, claim.feed_id]
        )
        return new is not None

    async def hand_back(self, consumer: str, feeds: Sequence[tuple[Claim, int]]) -> list[bool]:
        """Hand feeds back to the queue at once, in one pipeline (two round trips
        with the scripts' ``SCRIPT EXISTS``).

        Each ``(claim, epoch)``: the feed's owner is cleared if ``epoch`` (non-zero:
        the worker took it) is still its epoch, and the claim's entry is replaced by a
        fresh one if this consumer still holds it. Returns, per feed, whether it was
        requeued.
        """
        if not feeds:
            return []
        self.round_trips += 2
        pipe = self.redis.pipeline(transaction=False)
        for claim, epoch in feeds:
            if epoch:
                await self._set(
                    keys=[self.state_key(claim.feed_id)], args=[epoch, "owner", ""], client=pipe
                )
            await self._release(
                keys=[self.queue],
                args=[GROUP, consumer, claim.entry_id, claim.feed_id],
                client=pipe,
            )
        replies = iter(await pipe.execute())
        out = []
        for _, epoch in feeds:
            if epoch:
                next(replies)
            out.append(next(replies) is not None)
        return out

    async def finish(self, claim: Claim) -> None:
        """Remove a finished feed's entry from the queue (``XACK`` + ``XDEL``)."""
        self.round_trips += 1
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.queue, GROUP, claim.entry_id)
        pipe.xdel(self.queue, claim.entry_id)
        await pipe.execute()

    # ---- a worker's writes about one feed ------------------------------------------------

    async def take(self, feed_id: str, owner: str) -> FeedState | None:
        """Become the feed's owner: a new epoch, and the feed's state; ``None`` if unknown."""
        self.round_trips += 1
        reply = await self._take(keys=[self.state_key(feed_id)], args=[owner])
        if reply is None:
            return None
        epoch, fields = reply
        spec, status, session_id, endpoint, lens_id, lens_owned, started, last_id, ended = map(
            _text, fields
        )
        return FeedState(
            feed_id=feed_id,
            epoch=int(epoch),
            spec=_spec_decoder.decode(spec),
            status=status,
            session_id=session_id,
            endpoint=endpoint,
            lens_id=lens_id,
            lens_owned=lens_owned == "1",
            started=started == "1",
            last_id=last_id,
            ended=ended == "1",
        )

    async def set_fields(self, feed_id: str, epoch: int, **fields: str) -> bool:
        """Set fields of the feed's state if ``epoch`` is still its epoch (else ``False``)."""
        self.round_trips += 1
        args: list[Any] = [epoch]
        for name, value in fields.items():
            args += [name, value]
        return bool(await self._set(keys=[self.state_key(feed_id)], args=args))

    async def poll_status(self, feed_ids: Sequence[str]) -> list[str]:
        """The ``status`` field of each feed, in one round trip."""
        if not feed_ids:
            return []
        self.round_trips += 1
        pipe = self.redis.pipeline(transaction=False)
        for feed_id in feed_ids:
            pipe.hget(self.state_key(feed_id), "status")
        return [_text(s) for s in await pipe.execute()]

    def queue_append(
        self,
        pipe: Pipeline,
        feed_id: str,
        epoch: int,
        maxlen: int,
        events: Iterable[tuple[str, str, str]],
        *,
        final: bool,
    ) -> None:
        """Add one fenced append (events as ``(id, type, data)``) to ``pipe``.

        Its reply in the pipeline: events appended, or -1 when fenced, or a
        ``NoScriptError`` after Redis restarted (:meth:`load_scripts`, then retry:
        the append is idempotent).
        """
        args: list[Any] = [epoch, maxlen, "1" if final else "0"]
        for event in events:
            args.extend(event)
        pipe.evalsha(self._append.sha, 2, self.state_key(feed_id), self.results_key(feed_id), *args)

    async def load_scripts(self) -> None:
        """Load the append script into Redis (after a restart emptied its script cache)."""
        self.round_trips += 1
        await self.redis.script_load(_APPEND)

    def pipeline(self) -> Pipeline:
        """A non-transactional pipeline (for :meth:`queue_append`)."""
        return self.redis.pipeline(transaction=False)

    async def execute(self, pipe: Pipeline) -> list[Any]:
        """Run a pipeline (one round trip); errors of single commands come back as values."""
        self.round_trips += 1
        result: list[Any] = await pipe.execute(raise_on_error=False)
        return result


def _claims(entries: Iterable[Any]) -> Iterable[Claim]:
    for entry_id, fields in entries:
        if fields is None:  # deleted while pending
            continue
        feed = fields.get(b"feed")
        if feed is not None:
            yield Claim(entry_id=_text(entry_id), feed_id=_text(feed))
