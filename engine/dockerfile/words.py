"""The two ways Docker's parser cuts an instruction's arguments into words.

* :func:`split_words` — ENV, LABEL and ARG: at whitespace outside quotes; quotes and escapes stay in
  the words (the builder's substitution removes them later).
* :func:`split_fields` — FROM, EXPOSE and the shell form of COPY, ADD and VOLUME: at runs of
  spaces and tabs, quotes mean nothing (``COPY "a b" c`` has three words).

>>> split_words('a=1 b="x y" c=\\\\ z')
['a=1', 'b="x y"', 'c=\\\\ z']
>>> split_fields('"a b"  c')
['"a', 'b"', 'c']
"""
from __future__ import annotations

from . import _go
from .arguments import parse_words


def split_words(text: str, *, escape: str = "\\") -> list[str]:
    """Split like ``parseWords`` (ENV/LABEL/ARG), keeping quotes and escape characters."""
    if escape not in ("\\", "`"):
        raise ValueError(f"escape must be '\\' or '`', not {escape!r}")
    return parse_words(text, escape)


def split_fields(text: str) -> list[str]:
    """Split at ASCII whitespace runs like ``parseStringsWhitespaceDelimited`` (COPY/ADD/EXPOSE)."""
    text = _go.trim_space(text)
    return _go.split_whitespace(text) if text else []
