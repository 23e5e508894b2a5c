"""Value classes: what ``@dataclass(frozen=True)`` gives, without its cost at import time.

The standard decorator compiles five or six functions per class with ``exec`` and needs
``inspect``; over the ~100 value classes of the engine that was a third of ``layerlab run``'s
whole time (see bench/README.md).  :func:`value` builds the same methods from closures shared by
every class: the class is ready in microseconds, an instance costs about what a dataclass's does.

>>> @value
... class Point:
...     x: int
...     y: int = 0
>>> p = Point(1)
>>> p, p == Point(1, 0), replace(p, y=2)
(Point(x=1, y=0), True, Point(x=1, y=2))
>>> p.x = 3
Traceback (most recent call last):
engine.values.FrozenInstanceError: cannot assign to field 'x'

Supported, with dataclasses' meaning: ``frozen``, ``kw_only``, :func:`field` (``default``,
``default_factory``, ``repr``, ``compare``), ``__post_init__``, inheritance, ``ClassVar``
annotations (skipped), :func:`replace`, :func:`fields`, :func:`asdict`.
"""
from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value."""


class Field:
    """One field of a value class."""

    __slots__ = ("name", "default", "default_factory", "repr", "compare", "kw_only")

    def __init__(self, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None,
                 repr: bool = True, compare: bool = True) -> None:  # noqa: A002 - dataclasses' names
        if default is not _MISSING and default_factory is not None:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.kw_only = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None,
          repr: bool = True, compare: bool = True) -> Any:  # noqa: A002
    """A field with a default, a default factory, or left out of ``repr``/``==``."""
    return Field(default, default_factory, repr, compare)


def _own_fields(cls: type, kw_only: bool) -> list[Field]:
    found = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        spec = cls.__dict__.get(name, _MISSING)
        f = spec if isinstance(spec, Field) else Field(spec)
        f.name = name
        f.kw_only = kw_only
        if isinstance(spec, Field):  # like dataclasses: the class attribute becomes the plain default
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        found.append(f)
    return found


def _all_fields(cls: type, kw_only: bool) -> tuple[Field, ...]:
    by_name: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__value_fields__", ()):
            by_name[f.name] = f
    for f in _own_fields(cls, kw_only):
        by_name[f.name] = f
    return tuple(by_name.values())


def _make_init(cls: type, all_fields: tuple[Field, ...]) -> Callable[..., None]:
    positional = tuple(f.name for f in all_fields if not f.kw_only)
    names = frozenset(f.name for f in all_fields)
    optional = tuple((f.name, f.default, f.default_factory) for f in all_fields if not f.required)
    required = tuple(f.name for f in all_fields if f.required)
    count = len(all_fields)
    has_post_init = hasattr(cls, "__post_init__")
    qualname = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(positional):
            raise TypeError(f"{qualname}.__init__() takes {len(positional) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        d = self.__dict__
        d.update(zip(positional, args))
        if kwargs:
            for key in kwargs:
                if key not in names:
                    raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {key!r}")
                if key in d:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument {key!r}")
            d.update(kwargs)
        if len(d) < count:
            for name, default, factory in optional:
                if name not in d:
                    d[name] = factory() if factory is not None else default
            if len(d) < count:
                missing = ", ".join(repr(n) for n in required if n not in d)
                raise TypeError(f"{qualname}.__init__() missing required arguments: {missing}")
        if has_post_init:
            self.__post_init__()

    return __init__


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda self: ()
    if len(names) == 1:
        getter = attrgetter(names[0])
        return lambda self: (getter(self),)
    return attrgetter(*names)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _process(cls: type, frozen: bool, kw_only: bool) -> type:
    all_fields = _all_fields(cls, kw_only)
    cls.__value_fields__ = all_fields  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(f.name for f in all_fields if not f.kw_only)  # type: ignore[attr-defined]
    cls.__init__ = _make_init(cls, all_fields)  # type: ignore[misc]
    shown = tuple(f.name for f in all_fields if f.repr)
    qualname = cls.__qualname__

    def __repr__(self: Any) -> str:
        return f"{qualname}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in shown) + ")"

    key = _key(tuple(f.name for f in all_fields if f.compare))

    def __eq__(self: Any, other: Any) -> bool:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__  # type: ignore[method-assign]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = __eq__  # type: ignore[method-assign]
    if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
        cls.__hash__ = (lambda self: hash(key(self))) if frozen else None  # type: ignore[assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign]
        cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign]
    return cls


def value(cls: type[T] | None = None, /, *, frozen: bool = True, kw_only: bool = False) -> Any:
    """Class decorator: ``@value``, ``@value(kw_only=True)``, ``@value(frozen=False)``."""
    if cls is None:
        return lambda c: _process(c, frozen, kw_only)
    return _process(cls, frozen, kw_only)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a value class or instance, in order."""
    return obj.__value_fields__


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of ``obj`` with some fields changed (through ``__init__``, so checks run again)."""
    values = {f.name: getattr(obj, f.name) for f in obj.__value_fields__ if f.name not in changes}  # type: ignore[attr-defined]
    values.update(changes)
    return obj.__class__(**values)


def asdict(obj: Any) -> Any:
    """``obj`` as plain dicts, lists and tuples, recursively (like :func:`dataclasses.asdict`)."""
    if hasattr(obj.__class__, "__value_fields__"):
        return {f.name: asdict(getattr(obj, f.name)) for f in obj.__value_fields__}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {asdict(k): asdict(v) for k, v in obj.items()}
    return obj
