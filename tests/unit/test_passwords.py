"""Password hashing: Argon2id, constant-ish cost for unknown accounts, rehash on upgrade."""

from __future__ import annotations

import time

from argon2 import PasswordHasher

from entrepot.users.passwords import Passwords

# Cheap parameters keep the suite fast; the production hasher uses the library defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    hasher = Passwords(FAST)
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "correct horse battery stapler")
    assert not hasher.verify(stored, "")


def test_same_password_hashes_differently_each_time() -> None:
    hasher = Passwords(FAST)
    assert hasher.hash("same password twice") != hasher.hash("same password twice")


def test_default_hasher_uses_argon2id_library_defaults() -> None:
    assert Passwords().hasher.type.name == "ID"
    defaults = PasswordHasher()
    assert Passwords().hasher.time_cost == defaults.time_cost
    assert Passwords().hasher.memory_cost == defaults.memory_cost


def test_unknown_account_and_garbage_hashes_never_verify() -> None:
    hasher = Passwords(FAST)
    assert not hasher.verify(None, "anything at all")
    assert not hasher.verify("not-a-hash", "anything at all")
    assert not hasher.verify("$argon2id$v=19$m=1024,t=1,p=1$broken", "anything at all")


def test_passwords_with_unusual_characters_round_trip() -> None:
    hasher = Passwords(FAST)
    for password in ("ünïcødé pässwörd 🔑", "with\x00nul inside", "lone \ud800 surrogate"):
        stored = hasher.hash(password)
        assert hasher.verify(stored, password)
        assert not hasher.verify(stored, password + "x")


def test_weaker_hashes_need_a_rehash_current_ones_do_not() -> None:
    current = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    old = Passwords(FAST).hash("an older password hash")
    assert current.needs_rehash(old)
    assert current.verify(old, "an older password hash")  # still accepted meanwhile
    assert not current.needs_rehash(current.hash("a fresh password hash"))
    assert current.needs_rehash("not-a-hash")


def test_verifying_an_unknown_account_costs_as_much_as_a_known_one() -> None:
    hasher = Passwords(PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1))
    stored = hasher.hash("the real password")
    hasher.verify(None, "warm up the dummy hash")

    def fastest(stored_hash: str | None) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            hasher.verify(stored_hash, "a wrong password")
            runs.append(time.perf_counter() - started)
        return min(runs)

    known, unknown = fastest(stored), fastest(None)
    assert unknown > known * 0.5, (known, unknown)
