"""Tests for engine.names (moby pkg/namesgenerator at v20.10.24)."""
from __future__ import annotations

import random
import re

from engine.names import LEFT, RIGHT, random_name, unique_name

NAME_RE = re.compile(r"^[a-z]+_[a-z]+\d?$")


class ScriptedRandom(random.Random):
    """A Random whose ``randrange`` answers from a script (then falls back to a seeded stream)."""

    def __init__(self, script: list[int]) -> None:
        super().__init__(7)
        self.script = list(script)
        self.calls: list[int] = []

    def randrange(self, stop: int, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        self.calls.append(stop)
        if self.script:
            return self.script.pop(0)
        return super().randrange(stop)


def test_list_sizes_match_moby_v20_10() -> None:
    # moby v20.10.24 pkg/namesgenerator/names-generator.go: 108 adjectives, 236 surnames
    assert len(LEFT) == 108
    assert len(RIGHT) == 236


def test_lists_are_unique_lowercase_words() -> None:
    assert len(set(LEFT)) == len(LEFT)
    assert len(set(RIGHT)) == len(RIGHT)
    assert all(re.fullmatch(r"[a-z]+", word) for word in LEFT + RIGHT)


def test_lists_keep_moby_order_and_known_words() -> None:
    assert LEFT[:3] == ("admiring", "adoring", "affectionate") and LEFT[-1] == "zen"
    assert RIGHT[:3] == ("albattani", "allen", "almeida") and RIGHT[-1] == "zhukovsky"
    # moby 20.10 keeps a few words out of alphabetical order; so do we
    assert LEFT.index("cool") < LEFT.index("compassionate")
    assert RIGHT.index("antonelli") < RIGHT.index("agnesi")
    # the name the daemon gave a container in the transcripts
    assert "amazing" in LEFT and "merkle" in RIGHT
    assert "boring" in LEFT and "wozniak" in RIGHT


def test_random_names_have_docker_shape() -> None:
    rng = random.Random(1234)
    for _ in range(2000):
        name = random_name(rng)
        assert NAME_RE.match(name), name
        left, right = name.split("_")
        assert left in LEFT and right in RIGHT
        assert not name[-1].isdigit()


def test_retry_appends_one_digit() -> None:
    rng = random.Random(99)
    digits = set()
    for _ in range(500):
        name = random_name(rng, retry=1)
        assert NAME_RE.match(name) and name[-1].isdigit()
        left, right = name[:-1].split("_")
        assert left in LEFT and right in RIGHT
        digits.add(name[-1])
    assert digits == set("0123456789")


def test_boring_wozniak_is_redrawn() -> None:
    rng = ScriptedRandom([LEFT.index("boring"), RIGHT.index("wozniak"),
                          LEFT.index("boring"), RIGHT.index("wozniak"),
                          LEFT.index("focused"), RIGHT.index("turing")])
    assert random_name(rng) == "focused_turing"
    assert rng.calls == [108, 236] * 3


def test_boring_wozniak_redrawn_before_the_retry_digit() -> None:
    rng = ScriptedRandom([LEFT.index("boring"), RIGHT.index("wozniak"),
                          LEFT.index("boring"), RIGHT.index("wright"), 3])
    assert random_name(rng, retry=2) == "boring_wright3"
    assert rng.calls == [108, 236, 108, 236, 10]


def test_boring_wozniak_never_appears_when_every_draw_targets_it() -> None:
    # Half of all draws point at boring/wozniak; the result must still never be boring_wozniak.
    seen = {random_name(_BiasedRandom(seed)) for seed in range(300)}
    assert "boring_wozniak" not in seen
    assert any(n.startswith("boring_") for n in seen) and any(n.endswith("_wozniak") for n in seen)


class _BiasedRandom(random.Random):
    """Returns the boring/wozniak index half of the time."""

    def randrange(self, stop: int, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        if self.random() < 0.5:
            return LEFT.index("boring") if stop == len(LEFT) else RIGHT.index("wozniak")
        return super().randrange(stop)


def test_seeded_rng_is_reproducible_and_default_rng_works() -> None:
    assert random_name(random.Random(5)) == random_name(random.Random(5))
    assert NAME_RE.match(random_name())


def test_unique_name_follows_the_daemon() -> None:
    taken: set[str] = set()
    rng = random.Random(3)
    first = unique_name(taken.__contains__, "sha256:" + "ab" * 32, rng)
    assert NAME_RE.match(first) and not first[-1].isdigit()  # retry 0: no digit
    # all six attempts taken -> the short container ID
    assert unique_name(lambda _name: True, "0123456789abcdef" * 4, rng) == "0123456789ab"
    # first attempt taken -> second attempt carries a digit
    calls: list[str] = []

    def busy_once(name: str) -> bool:
        calls.append(name)
        return len(calls) == 1

    second = unique_name(busy_once, "f" * 64, rng)
    assert second[-1].isdigit() and len(calls) == 2
