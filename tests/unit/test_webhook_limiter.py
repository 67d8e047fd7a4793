"""Each endpoint's concurrency limit: additive increase, multiplicative decrease."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from entrepot.webhooks.limiter import INITIAL, Limit, fair_share


def answer_quickly(limit: Limit, times: int) -> None:
    for _ in range(times):
        limit.ended(limit.started(), ok=True, seconds=0.01)


def test_a_new_endpoint_starts_at_the_initial_limit_within_its_ceiling() -> None:
    assert Limit(ceiling=64).free == INITIAL
    assert Limit(ceiling=2).free == 2


def test_quick_answers_raise_the_limit_by_one_per_window_up_to_the_ceiling() -> None:
    limit = Limit(ceiling=6)
    answer_quickly(limit, INITIAL)  # one window of INITIAL answers
    assert limit.free == INITIAL + 1
    answer_quickly(limit, 1000)
    assert limit.free == 6


def test_what_is_in_flight_takes_from_the_free_slots() -> None:
    limit = Limit(ceiling=64)
    tokens = [limit.started() for _ in range(3)]
    assert limit.free == INITIAL - 3
    limit.started()
    assert limit.free == 0
    limit.ended(tokens[0], ok=True, seconds=0.01)
    assert limit.free == 1


def test_a_failure_halves_the_limit_and_a_burst_of_them_halves_it_once() -> None:
    limit = Limit(ceiling=64)
    answer_quickly(limit, 200)
    grown = int(limit.limit)
    burst = [limit.started() for _ in range(5)]  # in flight together, all failing
    for token in burst:
        limit.ended(token, ok=False, seconds=0.01)
    assert int(limit.limit) == grown // 2
    limit.ended(limit.started(), ok=False, seconds=0.01)  # started after: counts again
    assert int(limit.limit) == grown // 4


def test_a_slow_answer_counts_as_a_failure_and_the_limit_never_falls_below_one() -> None:
    limit = Limit(ceiling=64, slow_seconds=1.0)
    for _ in range(10):
        limit.ended(limit.started(), ok=True, seconds=2.5)
    assert limit.limit == 1.0
    assert limit.free == 1


# --- the worker's slots, shared: fair_share -------------------------------------------


def test_an_endpoint_alone_may_hold_half_the_slots() -> None:
    assert fair_share(256, held_by_others=0, held=0) == 128
    assert fair_share(256, held_by_others=0, held=100) == 28
    assert fair_share(7, held_by_others=0, held=0) == 4  # rounded up
    assert fair_share(1, held_by_others=0, held=0) == 1


def test_endpoints_that_all_want_more_leave_a_slot_for_a_newcomer() -> None:
    """Four endpoints take all they may, in turn, round after round, while their
    attempts end (all at once, half, or one each a round): slots stay free."""
    concurrency = 256
    endings = (lambda h: h, lambda h: (h + 1) // 2, lambda h: min(h, 1))
    for ending in endings:
        held = [0, 0, 0, 0]
        for _ in range(100):
            held = [h - ending(h) for h in held]
            for n in range(len(held)):
                held[n] += fair_share(concurrency, sum(held) - held[n], held[n])
            assert sum(held) < concurrency
            assert fair_share(concurrency, sum(held), 0) >= 1, "a newcomer finds a slot"


@given(
    concurrency=st.integers(1, 4096),
    data=st.data(),
)
def test_an_endpoint_that_holds_a_slot_never_takes_the_last_free_one(
    concurrency: int, data: st.DataObject
) -> None:
    held = data.draw(st.integers(0, concurrency), label="held")
    others = data.draw(st.integers(0, concurrency - held), label="others")
    free = concurrency - others - held
    share = fair_share(concurrency, others, held)
    assert 0 <= share <= free
    if held >= 1:
        assert share <= max(0, free - 1)
    elif free >= 1:
        assert share >= 1, "an endpoint holding none gets a slot while any is free"
