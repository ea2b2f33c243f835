"""The SQL of cost, on SQLite and on the real PostgreSQL: a job's cost grows by the records a
checkpoint inserted (never twice for one record), and a user's direct spend is a counter that
concurrent requests never lose an increment of."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from tests.support.holds import held_by
from tests.support.records import stored_record
from tests.unit.test_cost import Fixed
from textnlp.adapters.db import job_store
from textnlp.adapters.db import spending as spending_store
from textnlp.adapters.db.base import make_sessionmaker
from textnlp.adapters.db.job_store import JobStore, NewJob
from textnlp.adapters.db.spending import SpendingStore
from textnlp.adapters.db.users import UserRepository
from textnlp.backends.pricing import CappedBackend, Price, PriceTable
from textnlp.domain import Completion, GenerationParams, GenerationRequest, Record
from textnlp.errors import Conflict, NotFound
from textnlp.services import spending as spending_service
from textnlp.services.spending import HeldSpendingCap


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    value: Engine = request.getfixturevalue(name)
    return value


def record(index: int, cost: float | None) -> Record:
    return stored_record(index, prompt_tokens=3, completion_tokens=5, cost_usd=cost)


def new_job(store: JobStore, owner: str = "owner") -> str:
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, owner, {"template": "t", "count": 10}, "q", 10, "{}"))
    return job_id


def test_job_cost_grows_by_inserted_records_only(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = new_job(store)
    assert store.save_records(job_id, [record(0, 0.25), record(1, 0.5)]) == 2
    row = store.get(job_id)
    assert row is not None and row.cost_usd == pytest.approx(0.75) and row.done == 2
    # A racing or resumed worker stores 1 again with 2: only 2 is new, and counted.
    assert store.save_records(job_id, [record(1, 0.5), record(2, 0.125)]) == 1
    row = store.get(job_id)
    assert row is not None and row.cost_usd == pytest.approx(0.875) and row.done == 3
    assert store.save_records(job_id, [record(0, 0.25), record(1, 0.5)]) == 0
    row = store.get(job_id)
    assert row is not None and row.cost_usd == pytest.approx(0.875) and row.done == 3


def test_unpriced_records_leave_the_cost_unknown(engine: Engine) -> None:
    store = JobStore(engine)
    job_id = new_job(store)
    store.save_records(job_id, [record(0, None), record(1, None)])
    row = store.get(job_id)
    assert row is not None and row.cost_usd is None and row.done == 2


def test_user_spend_is_direct_generations_plus_jobs(engine: Engine) -> None:
    with make_sessionmaker(engine).begin() as session:
        user = UserRepository(session).create(f"spender-{uuid.uuid4().hex[:8]}", "hash")
    spending = SpendingStore(engine)
    assert spending.spend(user.id).spent_usd == 0.0 and spending.spend(user.id).cap_usd is None

    with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent requests of one user
        list(pool.map(lambda _: spending.add_direct(user.id, 0.01), range(200)))
    jobs = JobStore(engine)
    job_id = new_job(jobs, owner=user.id)
    jobs.save_records(job_id, [record(0, 0.5), record(1, 0.25)])
    spend = spending.spend(user.id)
    assert spend.spent_usd == pytest.approx(2.0 + 0.75)  # no increment lost

    assert spending.set_cap(user.username, 5.0) == user.id
    assert spending.spend(user.id).cap_usd == 5.0
    spending.set_cap(user.username, None)
    assert spending.spend(user.id).cap_usd is None
    with pytest.raises(NotFound):
        spending.set_cap("no-such-user", 1.0)
    # An owner that is no user (the CLI's "local") has jobs but no counter.
    spending.add_direct("local", 1.0)
    assert spending.spend("local").spent_usd == 0.0


def test_a_runs_reservations_count_until_stored_and_die_with_it(engine: Engine) -> None:
    """A job's requests hold their worst case in their run's hold against the owner's cap,
    beside every other job's: past the cap one is refused; settled, a request holds its cost
    until its record is stored (then it is the job's cost). A run's end releases its hold,
    and an ended job holds nothing."""
    store, spending = JobStore(engine), SpendingStore(engine)
    first, second = new_job(store, "carol"), new_job(store, "carol")
    one, two = spending.open_hold(first, 60), spending.open_hold(second, 60)
    assert spending.reserve("carol", 0.6, 1.0, hold_id=one) is True
    assert spending.reserve("carol", 0.5, 1.0, hold_id=two) is False  # $1.10 > $1.00
    assert spending.reserve("carol", 0.4, 1.0, hold_id=two) is True
    assert spending.spend("carol").spent_usd == pytest.approx(1.0)
    spending.settle(one, 0.6, 0.25)  # answered for $0.25, not stored yet
    assert spending.spend("carol").spent_usd == pytest.approx(0.65)
    store.save_records(first, [record(0, 0.25)], hold_id=one)
    assert held_by(store, first) == pytest.approx(0.0)
    assert spending.spend("carol").spent_usd == pytest.approx(0.65)  # now the job's cost
    spending.release_hold(two)  # the second job's run ended (its requests settled or not)
    assert spending.spend("carol").spent_usd == pytest.approx(0.25)
    again = spending.open_hold(second, 60)
    assert spending.reserve("carol", 0.3, 1.0, hold_id=again) is True
    store.finish(second, "failed", error="its last attempt")
    assert spending.spend("carol").spent_usd == pytest.approx(0.25)


def test_a_dead_workers_hold_stops_counting_when_its_lease_runs_out(engine: Engine) -> None:
    """A worker killed mid-run (SIGKILL, a lost host) leaves its hold: it counted until the
    job's message came back, an hour in production, and refused the owner's other requests
    meanwhile. It counts while its lease lasts (renewed by a live worker), not after."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"fay-{uuid.uuid4().hex[:6]}"
    dead, other = new_job(store, owner), new_job(store, owner)
    held = spending.open_hold(dead, 0.5)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=held) is True
    alive = spending.open_hold(other, 60)
    assert spending.reserve(owner, 0.5, 1.0, hold_id=alive) is False  # held: no room
    spending.renew_hold(held, 0.5)  # a live worker renews it at its heartbeat
    assert spending.reserve(owner, 0.5, 1.0, hold_id=alive) is False
    time.sleep(0.6)  # the worker died: no renewal
    assert spending.spend(owner).spent_usd == pytest.approx(0.0)
    assert spending.reserve(owner, 0.5, 1.0, hold_id=alive) is True


def test_two_runs_of_one_job_keep_their_own_holds(engine: Engine) -> None:
    """A duplicate delivery runs a job twice at once: the second run's start erased what the
    first held (one figure per job), and either's end erased the other's; each holds its own."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"gus-{uuid.uuid4().hex[:6]}"
    job_id = new_job(store, owner)
    first = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.5, 1.0, hold_id=first) is True
    second = spending.open_hold(job_id, 60)  # the duplicate's run starts
    assert spending.spend(owner).spent_usd == pytest.approx(0.5)
    assert spending.reserve(owner, 0.4, 1.0, hold_id=second) is True
    assert spending.reserve(owner, 0.2, 1.0, hold_id=second) is False  # $1.10 > $1.00
    spending.release_hold(second)
    assert spending.spend(owner).spent_usd == pytest.approx(0.5)  # the first still holds


def test_a_provider_batch_stays_held_until_the_next_run_takes_it_over(engine: Engine) -> None:
    """A provider batch runs on, and is paid, whatever becomes of the run that submitted it: its
    worst case outlives the run's end and its lease (a worker that died); the job's next run
    holds it again instead, and the job's end drops it."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"hal-{uuid.uuid4().hex[:6]}"
    job_id = new_job(store, owner)
    run = spending.open_hold(job_id, 0.2)
    assert spending.reserve(owner, 0.3, 1.0, hold_id=run, lasting_s=3600) is True
    assert spending.reserve(owner, 0.1, 1.0, hold_id=run) is True  # a request in flight
    time.sleep(0.3)  # the worker died: its lease ran out, not the batch
    assert spending.spend(owner).spent_usd == pytest.approx(0.3)
    again = spending.open_hold(job_id, 60)
    # Still held until this run holds it again: the run may fail, or wait out an outage, first.
    assert spending.spend(owner).spent_usd == pytest.approx(0.3)
    spending.hold(again, 0.3, lasting_s=3600)
    spending.release_hold(again)  # this run is stopped, the batch running
    spending.renew_hold(again, 60)  # a renewal in flight at its end changes nothing
    assert spending.spend(owner).spent_usd == pytest.approx(0.3)
    third = spending.open_hold(job_id, 60)
    spending.hold(third, 0.3, lasting_s=3600)
    assert spending.spend(owner).spent_usd == pytest.approx(0.3)
    spending.settle(third, 0.3, 0.25, lasting=True)  # its answers, paid, held until stored
    assert spending.spend(owner).spent_usd == pytest.approx(0.25)
    store.finish(job_id, "succeeded")
    assert spending.spend(owner).spent_usd == pytest.approx(0.0)


def test_a_provider_batch_stays_held_until_the_next_run_holds_it_again(engine: Engine) -> None:
    """A run handed its job back with its provider batch running (a stop, an outage): the
    job's next run dropped the batch's worst case as it started, before it read the manifest
    and held it again, and a run that failed or waited out an outage before then (storage
    gone) left it held nowhere while the batch ran on: the owner's other work took its room."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"ida-{uuid.uuid4().hex[:6]}"
    job_id, other = new_job(store, owner), new_job(store, owner)
    run = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=run, lasting_s=3600) is True
    spending.release_hold(run)
    next_run = spending.open_hold(job_id, 60)  # it has not read the manifest yet
    alive = spending.open_hold(other, 60)
    assert spending.reserve(owner, 0.5, 1.0, hold_id=alive) is False  # before: True
    spending.release_hold(next_run)  # it failed before it read the manifest
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)
    third = spending.open_hold(job_id, 60)
    spending.hold(third, 0.8, lasting_s=3600)  # taken over: held once
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)
    spending.release_hold(third)
    fourth = spending.open_hold(job_id, 60)
    spending.hold(fourth, 0.0, lasting_s=3600)  # it finds every part ended: none runs on
    assert spending.spend(owner).spent_usd == pytest.approx(0.0)


def test_a_batch_reserved_again_is_not_counted_twice(engine: Engine) -> None:
    """A run that died between its batch's reservation and its manifest left a worst case
    that was never submitted: the next run reserves the batch again in its place, and fits."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"jo-{uuid.uuid4().hex[:6]}"
    job_id = new_job(store, owner)
    dead = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=dead, lasting_s=3600) is True
    again = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=again, lasting_s=3600) is True
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)


def test_a_run_stalled_past_its_lease_counts_again_when_it_renews(engine: Engine) -> None:
    """A worker paused past its lease (a frozen host, a partition) while its job's message came
    back: the duplicate's run deleted the stalled run's hold, and when the stalled worker went
    on its requests reserved into nothing (allowed, held nowhere): the owner's other work
    passed the cap beside them."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"kim-{uuid.uuid4().hex[:6]}"
    job_id, other = new_job(store, owner), new_job(store, owner)
    stalled = spending.open_hold(job_id, 0.3)
    time.sleep(0.4)  # stalled past its lease: it counts nothing
    assert spending.spend(owner).spent_usd == pytest.approx(0.0)
    spending.open_hold(job_id, 60)  # the duplicate delivery's run
    spending.renew_hold(stalled, 60)  # the stalled worker goes on
    assert spending.reserve(owner, 0.8, 1.0, hold_id=stalled) is True
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)  # before: 0.0
    alive = spending.open_hold(other, 60)
    assert spending.reserve(owner, 0.5, 1.0, hold_id=alive) is False


@pytest.mark.parametrize("end", ["failed", "cancelled while queued"])
def test_a_jobs_end_keeps_its_running_batch_held(engine: Engine, end: str) -> None:
    """A job that failed for good, or was cancelled while no worker ran it, with its provider
    batch submitted: the batch runs on at the provider and is paid (no worker cancelled it),
    but the job's end dropped its worst case. It stays held for the batch's time; what the
    job's runs held beside it does not."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"lou-{uuid.uuid4().hex[:6]}"
    job_id = new_job(store, owner)
    store.start(job_id, "w1")
    run = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=run, lasting_s=3600) is True
    spending.release_hold(run)  # handed back with its batch running
    dead = spending.open_hold(job_id, 60)  # a run that died holding a request in flight
    assert spending.reserve(owner, 0.1, 1.0, hold_id=dead) is True
    if end == "failed":
        assert store.finish(job_id, "failed", error="its last attempt")
    else:
        assert store.finish(job_id, "cancelled")
        store.start(job_id, "w2")  # the next delivery finds it cancelled
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)  # before: 0.0
    assert store.save_records(job_id, [record(0, 0.25)]) == 1
    store.finish(job_id, "succeeded", only_from=("failed", "cancelled"))
    assert spending.spend(owner).spent_usd == pytest.approx(0.25)


def test_a_job_whose_batch_may_still_run_is_not_deleted(engine: Engine) -> None:
    """A job that ended (failed, or cancelled while no worker ran it) with its provider batch
    running: deleting it dropped its holds with it, so the batch, still running and paid,
    stopped counting against the owner's cap, and no worker would cancel or collect it. A
    delete is refused (``Conflict``) and a purge skips it until the batch is let go."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"max-{uuid.uuid4().hex[:6]}"
    job_id, plain = new_job(store, owner), new_job(store, owner)
    run = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=run, lasting_s=3600) is True
    spending.release_hold(run)  # handed back with its batch running
    assert store.finish(job_id, "cancelled") and store.finish(plain, "failed", error="x")
    gone = datetime.now(UTC) + timedelta(hours=1)  # no worker heartbeats since
    with pytest.raises(Conflict, match="provider batch may still be running"):
        store.delete(job_id, live_since=gone)
    purged = store.purge_ended(gone, 10, live_since=gone)
    assert [row.id for row in purged] == [plain]  # before: both
    assert store.get(job_id) is not None
    assert spending.spend(owner).spent_usd == pytest.approx(0.8)
    store.end_holds(job_id)  # its batch was cancelled
    row = store.delete(job_id, live_since=gone)
    assert row is not None and store.get(job_id) is None


def test_a_cancelled_batchs_answers_move_from_its_hold_to_the_jobs_cost(engine: Engine) -> None:
    """A cancelled batch still held while it cancels: what it answered before the cancel is
    added to the job's cost, its hold stays while it may still run, and goes once it ended; the
    owner's spend counts the worst case, then the cost, never neither."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"ned-{uuid.uuid4().hex[:6]}"
    job_id = new_job(store, owner)
    run = spending.open_hold(job_id, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=run, lasting_s=3600) is True
    spending.release_hold(run)
    assert store.finish(job_id, "cancelled")
    store.count_batch_cost(job_id, 0.125, ended=False)  # one part ended, another cancelling
    assert store.batch_may_run(job_id)
    assert spending.spend(owner).spent_usd == pytest.approx(0.8 + 0.125)
    store.count_batch_cost(job_id, 0.25, ended=True)  # the last ended
    row = store.get(job_id)
    assert row is not None and row.cost_usd == pytest.approx(0.375)
    assert not store.batch_may_run(job_id) and held_by(store, job_id) == 0.0
    assert spending.spend(owner).spent_usd == pytest.approx(0.375)


def _skewed(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """This process's clock reads ``by`` off the database's from now on (a host whose clock
    drifted), for the stores' own reads of it."""
    clock = SimpleNamespace(now=lambda tz=None: datetime.now(tz) + by)
    for module in (spending_store, job_store):
        monkeypatch.setattr(module, "datetime", clock, raising=False)


def test_hold_leases_are_read_and_written_on_the_databases_clock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers on several hosts write and compare one another's hold leases: one whose clock
    ran an hour ahead took every live hold for expired (the owner passed their cap beside
    them) and wrote leases that held for an hour too long; one an hour behind counted dead
    holds for an hour and wrote leases that had ended as it wrote them. Every lease time is the
    database's now."""
    store, spending = JobStore(engine), SpendingStore(engine)
    owner = f"ned-{uuid.uuid4().hex[:6]}"
    live, other, dead = new_job(store, owner), new_job(store, owner), new_job(store, owner)
    held = spending.open_hold(live, 60)  # a worker with the right time holds $0.60
    assert spending.reserve(owner, 0.6, 1.0, hold_id=held) is True
    with monkeypatch.context() as ahead:
        _skewed(ahead, timedelta(hours=1))
        mine = spending.open_hold(other, 60)
        assert spending.reserve(owner, 0.5, 1.0, hold_id=mine) is False  # before: True
        assert spending.spend(owner).spent_usd == pytest.approx(0.6)
        short = spending.open_hold(dead, 0.2)  # a lease that ends 0.2 s from now
        assert spending.reserve(owner, 0.3, 1.0, hold_id=short) is True
    time.sleep(0.3)  # its worker died: no renewal
    assert spending.spend(owner).spent_usd == pytest.approx(0.6)  # before: 0.9, for an hour
    with monkeypatch.context() as behind:
        _skewed(behind, timedelta(hours=-1))
        late = spending.open_hold(other, 60)
        assert spending.reserve(owner, 0.3, 1.0, hold_id=late) is True
        spending.renew_hold(held, 60)
    assert spending.spend(owner).spent_usd == pytest.approx(0.9)  # before: 0.0
    store.finish(live, "failed", error="its last attempt")
    assert spending.spend(owner).spent_usd == pytest.approx(0.3)


#: ``Fixed``'s model at a price that makes its worst case (10 + 20 tokens) $0.30.
FIXED_PRICES = PriceTable({"m": Price(10.0, 10.0)})
ONE = GenerationRequest(prompt="x", params=GenerationParams(max_tokens=20))


def _held_cap(spending: SpendingStore, owner: str, job_id: str) -> HeldSpendingCap:
    hold_id = spending.open_hold(job_id, 60)
    return HeldSpendingCap(
        1.0, store=spending, owner_id=owner, hold_id=hold_id, default_cap_usd=1.0
    )


def test_a_request_cancelled_while_it_reserves_leaves_no_hold(engine: Engine) -> None:
    """A judge's other criteria and a recipe's spare candidates are cancelled in flight: one
    cancelled while its thread reserved held $0.30 for ever, and with $0.50 spent of $1.00
    every later request of the job waited for that hold to settle, for ever."""
    store = JobStore(engine)
    owner = f"dave-{uuid.uuid4().hex[:6]}"
    store.save_records(new_job(store, owner), [record(0, 0.5)])
    job_id = new_job(store, owner)
    reserved = threading.Event()

    class Signalling(SpendingStore):
        def reserve(self, *args: Any, **kwargs: Any) -> bool | None:
            held = super().reserve(*args, **kwargs)
            reserved.set()
            return held

    cap = _held_cap(Signalling(engine), owner, job_id)
    capped = CappedBackend(Fixed(), cap, FIXED_PRICES)

    async def scenario() -> None:
        with engine.connect() as blocker:  # holds the owner's lock: the reserve waits in it
            if engine.dialect.name == "postgresql":
                blocker.execute(select(func.pg_advisory_xact_lock(func.hashtext(owner))))
            else:
                blocker.execute(text("UPDATE users SET id = id WHERE 0"))  # the write lock
            task = asyncio.create_task(capped.generate_one(ONE))
            await asyncio.sleep(0.5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            blocker.rollback()  # the cancelled request's thread now takes its hold
        assert await asyncio.to_thread(reserved.wait, 20)
        await asyncio.wait_for(capped.generate_one(ONE), 20)  # before: waited for ever

    asyncio.run(scenario())
    assert held_by(store, job_id) == pytest.approx(0.01)  # answered, unstored
    assert cap.reserved_usd == 0.0


def test_each_waiting_request_has_its_own_polls(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another job of the owner holds what four requests need, for six polls in all: each
    request may wait its own ``HOLD_WAITS`` (3 here) polls, so all four run once it lets go;
    with one count for the job, three polls of any of them refused all four."""
    monkeypatch.setattr(spending_service, "HOLD_WAITS", 3)
    store = JobStore(engine)
    owner = f"erin-{uuid.uuid4().hex[:6]}"
    other, job_id = new_job(store, owner), new_job(store, owner)

    class LetsGoAfterSixPolls(SpendingStore):
        polls = 0

        def held(self, owner_id: str, *, but: str) -> float:
            self.polls += 1
            if self.polls == 6:
                self.settle(other_hold, 0.8, 0.0)
            return super().held(owner_id, but=but)

    spending = LetsGoAfterSixPolls(engine)
    other_hold = spending.open_hold(other, 60)
    assert spending.reserve(owner, 0.8, 1.0, hold_id=other_hold) is True
    cap = _held_cap(spending, owner, job_id)
    cap.poll_s = 0.01
    capped = CappedBackend(Fixed(), cap, FIXED_PRICES)

    async def four() -> list[Completion]:
        return list(await asyncio.gather(*(capped.generate_one(ONE) for _ in range(4))))

    assert len(asyncio.run(four())) == 4
    assert spending.polls >= 6
