"""A slot that moves to another master mid-test costs no request: the cluster client follows
ASK while the slot migrates and MOVED once it has moved, for the cache and both limiters."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.redis_cluster import MIGRATION_STEPS, RedisClusterProcesses
from textnlp.adapters.buckets import Lane, RedisBuckets
from textnlp.adapters.cache.redis import RedisCache
from textnlp.backends.ratelimit import ModelRateLimiter, RateLimit

#: Rounds of calls the load makes in each state of the migration before it goes on.
ROUNDS_PER_STEP = 25
HUGE = RateLimit(requests_per_minute=10**9, tokens_per_minute=10**12)


@dataclass
class Load:
    """Cache writes and reads and calls of both limits (a user's bucket, a model's), round after
    round, on keys of one slot (and a few elsewhere); every failure is kept."""

    cache: RedisCache
    buckets: RedisBuckets
    models: ModelRateLimiter
    tag: str
    model: str
    rounds: int = 0
    failures: list[BaseException] = field(default_factory=list)
    progressed: threading.Condition = field(default_factory=threading.Condition)

    def one_round(self, n: int) -> None:
        for key in (f"{{{self.tag}}}:entry-{n % 4}", f"elsewhere-{n % 7}"):
            value = f"{n}".encode()
            self.cache.set(key, value, ttl_s=120)
            read = self.cache.get(key)
            if read != value:
                raise AssertionError(f"{key}: read {read!r} after writing {value!r}")
        if self.buckets.take(f"{{{self.tag}}}:user", [Lane(1e9, 10**9)]) != 0.0:
            raise AssertionError("the token bucket refused a call")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.one_round(self.rounds)
                await self.models.acquire(self.model, HUGE, 1)
            except Exception as exc:  # any failed call fails the test, after the migration
                self.failures.append(exc)
            with self.progressed:
                self.rounds += 1
                self.progressed.notify_all()
            await asyncio.sleep(0)

    def wait_rounds(self, count: int) -> None:
        """Block (the migrating thread) until the load made ``count`` more rounds."""
        with self.progressed:
            target = self.rounds + count
            if not self.progressed.wait_for(lambda: self.rounds >= target, timeout=60):
                raise TimeoutError(f"the load stalled at round {self.rounds}")


def redirections(cluster: RedisClusterProcesses, port: int) -> dict[str, int]:
    """How many ASK and MOVED answers the node on ``port`` has given (INFO errorstats)."""
    node = cluster.node(port)
    try:
        stats = node.info("errorstats")
    finally:
        node.close()
    return {
        name: int(stats.get(f"errorstat_{name}", {}).get("count", 0)) for name in ("ASK", "MOVED")
    }


async def test_moving_a_live_slot_costs_no_request(
    redis_cluster: RedisClusterProcesses, cluster_client: Any, prefix: str
) -> None:
    model_prefix = f"textnlp-test-{uuid.uuid4().hex[:8]}:"
    models = ModelRateLimiter(RedisBuckets(cluster_client, model_prefix))
    model = "bedrock:anthropic.claude-v2"
    tag = f"{model_prefix}model:{model}"  # the model limiter's one key
    load = Load(
        RedisCache(cluster_client, prefix), RedisBuckets(cluster_client), models, tag, model
    )
    live_keys = [tag, f"{prefix}{{{tag}}}:entry-0", f"textnlp:rl:{{{tag}}}:user"]
    slot = redis_cluster.slot_of(tag)
    assert {redis_cluster.slot_of(key) for key in live_keys} == {slot}
    source = redis_cluster.master_of_slot(slot)
    target = next(port for port in redis_cluster.ports if port != source)
    redirections_before = redirections(redis_cluster, source)

    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop))
    await asyncio.to_thread(load.wait_rounds, ROUNDS_PER_STEP)  # every key exists on the source
    steps: list[str] = []

    def after_step(step: str) -> None:
        steps.append(step)
        load.wait_rounds(ROUNDS_PER_STEP)

    try:
        await asyncio.to_thread(redis_cluster.migrate_slot, slot, target, after_step=after_step)
    finally:
        stop.set()
        await running

    assert load.failures == []
    assert steps == list(MIGRATION_STEPS)
    answered = redirections(redis_cluster, source)
    assert answered["ASK"] > redirections_before["ASK"]  # while the keys were on the target
    assert answered["MOVED"] > redirections_before["MOVED"]  # once the slot had moved
    assert redis_cluster.master_of_slot(slot) == target
    assert cluster_client.get_node_from_key(tag).port == target  # the client learnt the move
    node = redis_cluster.node(target)
    try:  # the live keys were moved, not lost and recreated
        assert node.exists(*live_keys) == len(live_keys)
        assert node.hexists(tag, "l1") and node.hexists(tag, "l2")  # both lanes
    finally:
        node.close()
