"""Word processing and variable substitution with the rules of Docker's ``shell/lex.go``.

``expand`` is what the builder applies to the arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL,
STOPSIGNAL, USER, VOLUME, WORKDIR and ARG: ``$V``/``${V}`` are replaced, ``${V:-x}``, ``${V-x}``,
``${V:+x}``, ``${V+x}``, ``${V:?msg}`` and ``${V?msg}`` behave as in POSIX sh, single quotes stop
expansion, double quotes allow it, the quotes themselves are removed and the escape character
(``\\`` or the ``# escape=`` directive's backtick) escapes the next character.

>>> expand('"$HOME"/bin:${EXTRA:-none}', {"HOME": "/root"})
'/root/bin:none'
>>> expand_words("$PORTS 9090", {"PORTS": "80  443"})
['80', '443', '9090']
"""
from __future__ import annotations

from collections.abc import Mapping

from . import _go

_EOF = ""


class LexError(ValueError):
    """A word could not be processed (unterminated quote, bad substitution, ``${V:?}`` unset)."""


class _ShellWord:
    """One pass of the lexer over one input (``shellWord`` in lex.go)."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str, *, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def process(self) -> tuple[str, list[str]]:
        try:
            return self.process_stop_on(_EOF)
        except LexError as err:
            raise LexError(f"failed to process {_go.quote(self.text)}: {err}") from None

    def process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek() != _EOF:
            ch = self.peek()
            if stop != _EOF and ch == stop:
                self.next()
                return "".join(result), words.finish()
            if ch == "$":
                value = self.process_dollar()
                result.append(value)
                words.add_string(value)
            elif ch == "'":
                value = self.process_single_quote()
                result.append(value)
                words.add_raw_string(value)
            elif ch == '"':
                value = self.process_double_quote()
                result.append(value)
                words.add_raw_string(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw_string(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw_string(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop != _EOF:
            raise LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def process_single_quote(self) -> str:
        result: list[str] = []
        ch = self.next()
        if self.raw_quotes:
            result.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    result.append(ch)
                return "".join(result)
            result.append(ch)

    def process_double_quote(self) -> str:
        result: list[str] = []
        ch = self.next()
        if self.raw_quotes:
            result.append(ch)
        while True:
            peeked = self.peek()
            if peeked == _EOF:
                raise LexError("unexpected end of statement while looking for matching double-quote")
            if peeked == '"':
                ch = self.next()
                if self.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if peeked == "$":
                result.append(self.process_dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    result.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue  # ignore an escape at the end; the loop then reports the open quote
                if following in ('"', "$", self.escape):
                    ch = self.next()
            result.append(ch)

    def process_dollar(self) -> str:
        self.next()  # the "$"
        if self.peek() != "{":
            name = self.process_name()
            if name == "":
                return "$"
            if name not in self.env and self.skip_unset:
                return "$" + name
            return self.env.get(name, "")
        self.next()  # the "{"
        following = self.peek()
        if following == _EOF:
            raise LexError("syntax error: missing '}'")
        if following in ("{", "}", ":"):
            raise LexError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        modifier = ch if ch != _EOF else "\ufffd"
        if ch == "}":
            if name not in self.env and self.skip_unset:
                return "${" + name + "}"
            return self.env.get(name, "")
        if ch not in (":", "+", "-", "?"):
            raise LexError(f"unsupported modifier ({modifier}) in substitution")
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch if ch != _EOF else "\ufffd"
        try:
            word, _ = self.process_stop_on("}")
        except LexError:
            if self.peek() == _EOF:
                raise LexError("syntax error: missing '}'") from None
            raise
        is_set = name in self.env
        value = self.env.get(name, "")
        if self.skip_unset and not is_set:
            return "${" + name + modifier + word + "}"
        unset = not is_set or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if not is_set:
                raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        raise LexError(f"unsupported modifier ({modifier}) in substitution")

    def process_name(self) -> str:
        name: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not name and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    name.append(self.next())
                return "".join(name)
            if not name and ch in "@*#?-$!0":
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self.next())
        return "".join(name)


class _Words:
    """The word splitter that runs alongside the lexer (``wordsStruct`` in lex.go)."""

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _go.is_space(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_string(ch)

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


def _check_escape(escape: str) -> None:
    if escape not in ("\\", "`"):
        raise ValueError(f"escape must be '\\' or '`', not {escape!r}")


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Substitute variables in ``word`` and remove its quotes, like ``shell.Lex.ProcessWord``.

    Whitespace is kept (this is one word in, one word out: ``ENV``, ``LABEL``, ``COPY``…).
    Unset variables expand to the empty string.  Raises :class:`LexError` with Docker's message.

    >>> expand("'$A'\\"$A\\"\\\\$A", {"A": "x"})
    '$Ax$A'
    """
    _check_escape(escape)
    return _ShellWord(word, env, escape).process()[0]


def expand_words(word: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Substitute variables, then split into words at unquoted whitespace (``ProcessWords``).

    This is what ``EXPOSE`` uses: ``EXPOSE $PORTS`` with ``PORTS="80 443"`` exposes two ports.

    >>> expand_words('a "b c" $X', {"X": "d  e"})
    ['a', 'b c', 'd', 'e']
    """
    _check_escape(escape)
    return _ShellWord(word, env, escape).process()[1]


def lex_words(text: str, *, escape: str = "\\", raw_quotes: bool = False, raw_escapes: bool = False,
              skip_unset: bool = True) -> list[str]:
    """The lexer configured as the parser uses it to find heredocs (no environment)."""
    return _ShellWord(text, {}, escape, raw_quotes=raw_quotes, raw_escapes=raw_escapes,
                      skip_unset=skip_unset).process()[1]
