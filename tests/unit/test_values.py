"""engine.values behaves like the standard library's frozen dataclasses (checked side by side)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from engine import values


def _pair(**options):
    """The same class declared with dataclasses and with engine.values."""
    std_options = {"frozen": options.get("frozen", True), "kw_only": options.get("kw_only", False)}

    def declare(decorator, field):
        @decorator
        class Sample:
            kind: ClassVar[str] = "sample"
            name: str
            size: int = 0
            tags: list[str] = field(default_factory=list)
            note: str = field(default="", repr=False, compare=False)
        return Sample

    return (declare(dataclasses.dataclass(**std_options), dataclasses.field),
            declare(values.value(**options), values.field))


CALLS = [
    ((("a",), {}),),
    ((("a", 3), {}),),
    (((), {"name": "b", "size": 2, "tags": ["x"]}),),
    ((("a",), {"note": "ignored by =="}),),
]


@pytest.mark.parametrize("call", [c[0] for c in CALLS])
def test_init_repr_eq_hash_like_dataclasses(call) -> None:
    args, kwargs = call
    std_cls, val_cls = _pair()
    std, val = std_cls(*args, **kwargs), val_cls(*args, **kwargs)
    assert repr(val) == repr(std)
    assert dataclasses.asdict(std) == values.asdict(val)
    assert val == val_cls(*args, **{**kwargs, "note": "other"})
    assert val != val_cls("zzz")
    assert val != std  # another class is never equal
    assert val_cls.kind == "sample" and "kind" not in [f.name for f in values.fields(val)]
    with pytest.raises(TypeError):  # list field: unhashable, like the dataclass
        hash(std)
    with pytest.raises(TypeError):
        hash(val)


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),                              # missing required
    (("a", 1, [], "n", "extra"), {}),      # too many positional
    (("a",), {"name": "b"}),               # twice
    (("a",), {"colour": "red"}),           # unknown
])
def test_bad_calls_fail_like_dataclasses(args, kwargs) -> None:
    std_cls, val_cls = _pair()
    with pytest.raises(TypeError):
        std_cls(*args, **kwargs)
    with pytest.raises(TypeError):
        val_cls(*args, **kwargs)


def test_frozen_replace_and_hash() -> None:
    @values.value
    class Point:
        x: int
        y: int = 0

    p = Point(1)
    with pytest.raises(values.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y
    q = values.replace(p, y=5)
    assert (p.y, q.y, q.x) == (0, 5, 1)
    assert hash(p) == hash(Point(1, 0)) and {p, Point(1)} == {p}
    assert Point.__match_args__ == ("x", "y")
    with pytest.raises(TypeError):
        values.replace(p, z=1)


def test_kw_only_inheritance_and_post_init() -> None:
    seen = []

    @values.value(kw_only=True)
    class Base:
        line: int

    @values.value(kw_only=True)
    class Child(Base):
        text: str = "x"

        def __post_init__(self) -> None:
            seen.append(self.line)

    c = Child(line=3)
    assert (c.line, c.text, seen) == (3, "x", [3])
    with pytest.raises(TypeError):
        Child(3)  # keyword-only
    assert [f.name for f in values.fields(Child)] == ["line", "text"]


def test_mutable_values_and_factories_are_fresh() -> None:
    @values.value(frozen=False)
    class Bag:
        items: list[int] = values.field(default_factory=list)

    a, b = Bag(), Bag()
    a.items.append(1)
    a.items = [*a.items, 2]
    assert (a.items, b.items) == ([1, 2], [])
    assert Bag.__hash__ is None  # mutable and comparable: unhashable, like a dataclass
