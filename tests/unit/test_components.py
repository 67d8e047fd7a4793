"""The application container: parts found by type, and invalidation by topic."""

from __future__ import annotations

import pytest

from entrepot.components import EVERY_TOPIC, Components


class Cache:
    def __init__(self) -> None:
        self.dropped: list[str] = []

    def drop(self, topic: str) -> None:
        self.dropped.append(topic)


def test_a_part_is_found_by_its_type_or_the_type_it_was_provided_as() -> None:
    parts = Components()
    cache = parts.provide(Cache())
    assert parts.get(Cache) is cache
    parts.provide(3, int)
    assert parts.get(int) == 3


def test_a_missing_part_is_named_and_an_optional_one_is_none() -> None:
    parts = Components()
    with pytest.raises(LookupError, match="no Cache was provided"):
        parts.get(Cache)
    assert parts.find(Cache) is None


def test_a_part_cannot_be_provided_twice() -> None:
    parts = Components()
    parts.provide(Cache())
    with pytest.raises(ValueError, match="Cache is provided twice"):
        parts.provide(Cache())


def test_each_listener_hears_its_topics_its_prefixes_and_every_topic() -> None:
    parts = Components()
    everything, plans, datasets = Cache(), Cache(), Cache()
    parts.on_invalidate(everything.drop)
    parts.on_invalidate(plans.drop, topics=["plans"])
    parts.on_invalidate(datasets.drop, prefixes=["dataset:"])
    for topic in ("plans", "dataset:a", "credentials", EVERY_TOPIC):
        parts.invalidate(topic)
    assert everything.dropped == ["plans", "dataset:a", "credentials", EVERY_TOPIC]
    assert plans.dropped == ["plans", EVERY_TOPIC]
    assert datasets.dropped == ["dataset:a", EVERY_TOPIC]
