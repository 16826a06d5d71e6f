from datetime import timedelta

from stratum.core.errors import PermanentError, TemporaryError
from stratum.reconcile.backoff import KeyedBackoff
from stratum.testing.clock import FakeClock


def test_failures_back_off_exponentially_up_to_a_cap_and_success_clears() -> None:
    clock = FakeClock()
    b = KeyedBackoff(base_seconds=1, cap_seconds=5)
    delays = [b.failed("c", clock.now(), RuntimeError("boom")) for _ in range(5)]
    assert delays == [1, 2, 4, 5, 5]
    assert not b.ready("c", clock.now())
    assert b.ready("other", clock.now()), "one failing key never holds up another"
    clock.advance(5)
    assert b.ready("c", clock.now())
    b.succeeded("c")
    assert b.failures("c") == 0


def test_a_temporary_error_waits_at_least_its_own_delay() -> None:
    clock = FakeClock()
    b = KeyedBackoff(base_seconds=0.5)
    assert b.failed("c", clock.now(), TemporaryError("backend busy", delay=30)) == 30
    clock.advance(29)
    assert not b.ready("c", clock.now())
    clock.advance(1)
    assert b.ready("c", clock.now())


def test_a_permanent_error_waits_for_the_object_to_change() -> None:
    clock = FakeClock()
    b = KeyedBackoff()
    b.failed("c", clock.now(), PermanentError("profile missing"), generation=3)
    clock.advance(timedelta(days=1).total_seconds())
    assert not b.ready("c", clock.now(), generation=3)
    assert b.ready("c", clock.now(), generation=4)
