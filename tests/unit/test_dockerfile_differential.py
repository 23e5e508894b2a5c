"""Differential test: LayerLab's raw Dockerfile parser against Docker's own Go parser.

The PyPI package ``dockerfile`` is moby/buildkit's ``frontend/dockerfile/parser`` (v0.12.5) compiled
as a Python extension.  For hand-written tricky files and a Hypothesis-generated corpus, both must
agree on every command's name, ONBUILD trigger, start/end line, flags, JSON-ness, raw values,
``Original`` and heredocs, and on which files are errors (with the same message).

Known, deliberate divergences are kept out of the generated corpus (see ``DIFFERENCES`` in
``engine.dockerfile``): Go scans ``--flag`` words and HEALTHCHECK's type byte by byte, so non-ASCII
characters there come out garbled; NUL characters do not survive the extension's C strings.
"""
from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dockerfile import DockerfileError, parse, raw_commands

dockerfile = pytest.importorskip("dockerfile", reason="the Go parser (pip install dockerfile) is not installed")


def go_view(text: str) -> tuple:
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as err:
        return ("error", str(err))
    return tuple(
        (c.cmd or "", c.sub_cmd, c.json, c.original or "", c.start_line, c.end_line, tuple(c.flags), tuple(c.value),
         tuple((h.name, h.file_descriptor, h.content) for h in c.heredocs))
        for c in commands)


def our_view(text: str) -> tuple:
    try:
        commands = raw_commands(text)
    except DockerfileError as err:
        return ("error", err.message)
    view = []
    for c in commands:
        # the extension appends heredoc bodies to Original, and (reading the trigger node) loses
        # the heredocs of ONBUILD
        heredocs = () if c.sub_cmd is not None else c.heredocs
        original = c.original
        if heredocs:
            original += "\n" + "".join(h.content + h.name + "\n" for h in heredocs)
        view.append((c.cmd, c.sub_cmd, c.json, original, c.start_line, c.end_line, c.flags, c.value,
                     tuple((h.name, h.file_descriptor, h.content) for h in heredocs)))
    return tuple(view)


def assert_same(text: str) -> None:
    assert our_view(text) == go_view(text), text
    try:
        parse(text)  # the typed layer never fails with anything but a DockerfileError
    except DockerfileError:
        pass


TRICKY = [
    "FROM busybox:latest\nLABEL maintainer=whoami\nENV REFRESHED_AT=2014-07-01\n"
    "RUN echo hello > /greeting && mkdir -p /var/www/html\nCOPY index.html /var/www/html/\n"
    'CMD ["cat", "/var/www/html/index.html"]\n',
    "", "\n", "# only a comment\n", "\ufeffFROM x\n", "\\\n", "\\\nFROM x\n", "FROM x\\", "  FROM a   \n",
    "FROM a\r\nRUN x \\\r\n y\r\n", "FROM a\nRUN x \\\\\n", "FROM a\nRUN x \\\\\\\n y\n", "FROM a\n  \\  \n RUN x\n",
    "FROM a\nRUN a \\\n\n  # c\n b\n", "FROM a\nRUN a \\\n# c\n\n", "FROM a\nRUN a \\  \t\nb\n",
    "# escape=`\nFROM a\nRUN x `\n y\nRUN c:\\ \\\n", "# escape=x\nFROM a\n", "# escape=`\n# escape=`\nFROM a\n",
    "# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n", "#escape = `\nFROM a\nRUN `\n b\n",
    "# foo\n# escape=`\nFROM a\nRUN x `\n", "\n# escape=`\nFROM a\nRUN x `\n", "# ESCAPE=\\\n# Syntax=x\nFROM a\n",
    'CMD ["a"] x\n', 'CMD ["a"]]\n', "CMD [1]\n", "CMD [NaN]\n", "CMD [1e999]\n", 'CMD ["\\ud800"]\n', "CMD []\n",
    'CMD ["a", \n', 'RUN ["a", 1]\n', "RUN [true]\n", 'RUN [["a"]]\n', "RUN [\"a\",]\n", "RUN ['a']\n",
    'RUN [ "a" , "b\\u00e9" ]\n', 'VOLUME ["/a", "/b"]\n', 'VOLUME [1]\n', 'COPY ["a", 2]\n', "COPY [\n",
    "ONBUILD --foo COPY --from=a x y\n", "ONBUILD\n", "ONBUILD ONBUILD RUN x\n", "ONBUILD FOO bar\n",
    "ONBUILD RUN <<EOF\nx\nEOF\n", 'ONBUILD CMD ["a"]\n', "ONBUILD ENV a b c\n",
    "RUN\n", "ENV\n", "FROM\n", "LABEL\n", "HEALTHCHECK\n", "HEALTHCHECK NONE\n", "HEALTHCHECK   CMD   x  \n",
    'HEALTHCHECK --interval=1s CMD ["a","b"]\n', "HEALTHCHECK CMD\n", 'HEALTHCHECK CMD [1]\n',
    "ENV a\n", "ENV a b c\n", 'LABEL "a b"=c d=e\n', "LABEL a\n", "ENV a=b c\n", 'ENV a="b c" d=e\\ f\n',
    "ENV x=\n", "ENV =x\n", "ENV a='b\n", "ENV a=\"b\\\n", "ENV a=b\\\n", "ARG a=1 b c=\"x y\"\n", "ARG\n",
    "ENV \"a b\" c\n", "ENV a\\ b c\n", "ENV a=b\tc=d\n", "LABEL a=b\u00a0c=d\n",
    "RUN <<EOF echo \"x\nhi\nEOF\n", 'RUN <<-"E"1 <<X\n\thi\n\tE1\nbody\nX\n', "COPY <<EOF /x\nhello\nEOF\n",
    "RUN <<EOF\nhi\n", "RUN <<EOF\r\nhi\r\nEOF\r\n", "RUN <<'EOF' <<\"B\"\na\nEOF\nb\nB\n", "RUN 3<<X cat\nx\nX\n",
    "RUN <<EOF <<EOF\na\nEOF\nb\nEOF\n", "RUN <<<EOF\n", "RUN <<\n", "RUN a<<EOF\nx\nEOF\n", "RUN <<$X\na\n$X\n",
    "RUN <<${X}\na\n${X}\n", "RUN <<EOF\n\tEOF\nEOF\n", "RUN <<-EOF\n\tEOF\n", 'RUN ["<<EOF"]\nEOF\n',
    "ADD <<EOF /x\nEOF\n", "COPY a <<EOF\nx\nEOF\n", "run <<eof\nx\neof\n", "RUN <<E\\OF\nx\nEOF\n",
    "RUN <<'E'OF x\ny\nEOF\n", "RUN echo '<<EOF'\n", "RUN <<EOF \\\n  && echo\nbody\nEOF\n",
    "COPY -- --x y\n", "COPY --a --b=\"c d\" -- x\n", "COPY --a\n", "COPY --a= b\n", "COPY --'a b'=c d\n",
    "COPY --a\\ b=c d\n", "COPY --a=\\\"b c\n", "COPY ---a b\n", "COPY -a b\n", "COPY --=a b\n", "COPY --\n",
    "RUN --mount=type=cache,target=/x echo\n", "FROM --platform=$X a AS b\n", "COPY \"a b\" c\n",
    "run x\n", "Run X\n", "foo bar\n", "FOO\n", "FROM a\nUSER  x y  \n", "EXPOSE 80   90\n", "EXPOSE\t80\v90\f1\n",
    "SHELL [\"a\"]\n", "MAINTAINER a b\n", "STOPSIGNAL  9 \n", "WORKDIR\t/a b\n",
    "RUN x\u00a0\n", "\u00a0RUN x\n", "RUN\u00a0x\n", "RUN x\u3000y\n", "RUN é ü 日本 😀\n", "ENV é=ü\n",
    "RUN a\rb\n", "RUN a \\\rb\n", "FROM a\n#\n#x\n  #y\nRUN b\n", "RUN a \\\n#c\\\nb\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_cases_agree_with_go(text):
    assert_same(text)


# ------------------------------------------------------------------------------- generated corpus

KEYWORDS = ["FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
            "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"]
UNKNOWN = ["FOO", "apt-get", "echo", "X1", "-", "#", "\\", "[x]"]
SAFE_UNICODE = ["é", "ü", "日本", "😀"]  # no UTF-8 byte 0x85/0xA0, no Unicode space
SPECIAL = ["$V", "${V}", "${V:-x y}", "${V:+a}", "${", "${}", "\\$V", "'a b'", '"a b"', '"x\\"y"', "a\\ b",
           "\\", "'", '"', "=", "a=b", 'k="v 2"', "k='v 3'", "k=", "=v", "#", "# c", "[", "]", "{", "}", "`",
           "``", "\\\\", "<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "2<<X", "<<X", "<<", "a<<EOF", "--", "-x",
           "--y=z", "NONE", "CMD", "AS", "as", "x=y=z", '"="', "\\\"", "'\\''", '""', "''"]
WORD = st.text(alphabet=string.ascii_letters + string.digits + "._/-:@+,", min_size=1, max_size=8)
TOKEN = st.one_of(WORD, WORD, st.sampled_from(SAFE_UNICODE), st.sampled_from(SPECIAL))
ASCII_TOKEN = st.one_of(WORD, WORD, st.sampled_from(SPECIAL))
SEP = st.sampled_from([" ", " ", " ", "  ", "\t", " \t "])
FLAG_NAME = st.sampled_from(["from", "chown", "chmod", "platform", "interval", "link", "mount", "x", "a-b", ""])
FLAG_VALUE = st.one_of(WORD, st.sampled_from(['"a b"', "'c d'", "", "x\\ y", '"', "$V", "a=b"]))


@st.composite
def flags(draw) -> list[str]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(FLAG_NAME)
        form = draw(st.sampled_from(["value", "value", "bare", "dashdash"]))
        out.append({"value": f"--{name}={draw(FLAG_VALUE)}", "bare": f"--{name}", "dashdash": "--"}[form])
    return out


JSON_ITEM = st.one_of(WORD, st.text(alphabet=string.printable + "éü日", max_size=6), st.sampled_from(SAFE_UNICODE))
ASCII_JSON_ITEM = st.one_of(WORD, st.text(alphabet=string.printable, max_size=6))


@st.composite
def json_args(draw, ascii_only: bool = False) -> str:
    items = draw(st.lists(ASCII_JSON_ITEM if ascii_only else JSON_ITEM, max_size=4))
    text = json.dumps(items, ensure_ascii=ascii_only or draw(st.booleans()))
    corruption = draw(st.sampled_from(["none", "none", "none", "number", "comma", "trail", "cut", "single", "space"]))
    if corruption == "number" and items:
        text = text[:-1] + ", 1]"
    elif corruption == "comma":
        text = text[:-1] + ",]"
    elif corruption == "trail":
        text += draw(st.sampled_from([" x", "]", " ", " [\"b\"]"]))
    elif corruption == "cut":
        text = text[: draw(st.integers(1, max(1, len(text) - 1)))]
    elif corruption == "single":
        text = text.replace('"', "'")
    elif corruption == "space":
        text = text.replace(",", " , ").replace("[", "[ ")
    return text


@st.composite
def arguments(draw, ascii_only: bool) -> list[str]:
    """Arguments; ASCII only after --flags, which Go scans byte by byte (a known divergence)."""
    if draw(st.integers(0, 4)) == 0:
        return [draw(json_args(ascii_only))]
    return draw(st.lists(ASCII_TOKEN if ascii_only else TOKEN, max_size=6))


@st.composite
def instruction(draw, depth: int = 0) -> list[str]:
    """The words of one instruction (keyword, flags, arguments)."""
    if draw(st.integers(0, 5)) == 0:  # a heredoc instruction
        marker = draw(st.sampled_from(["<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "<<X", "2<<X", "<<EOF <<X"]))
        keyword = draw(st.sampled_from(["RUN", "COPY", "ADD", "run", "ONBUILD RUN"]))
        return [keyword, marker, *draw(st.lists(ASCII_TOKEN, max_size=3))]
    keyword = draw(st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(KEYWORDS).map(str.lower),
                             st.sampled_from(UNKNOWN)))
    flag_words = draw(flags())
    words = [keyword, *flag_words]
    if keyword.upper() == "ONBUILD" and depth == 0 and draw(st.booleans()):
        words += draw(instruction(depth=1))
    else:
        words += draw(arguments(ascii_only=bool(flag_words)))
    if any(word.startswith("-") for word in words[1:]):
        # a continuation may glue a later word onto a --flag, which Go scans byte by byte
        words = [word if word.isascii() else "".join(c if c.isascii() else "u" for c in word) for word in words]
    return words


@st.composite
def instruction_lines(draw, escape: str) -> list[str]:
    """One instruction, possibly spread over continuation lines, comments and empty lines between."""
    words = draw(instruction())
    lines = [draw(st.sampled_from(["", "", " ", "\t"])) + words[0]]
    for word in words[1:]:
        if draw(st.integers(0, 5)) == 0:  # continue on a new line
            lines[-1] += draw(st.sampled_from(["", " "])) + escape + draw(st.sampled_from(["", "", " ", "\t"]))
            for _ in range(draw(st.integers(0, 2))):
                lines.append(draw(st.sampled_from(["# comment", "  # indented", "", "   ", "#"])))
            lines.append(draw(st.sampled_from(["", "  ", "\t"])) + word)
        else:
            lines[-1] += draw(SEP) + word
    has_flags = any(word.startswith("--") for word in words)
    if not has_flags and draw(st.integers(0, 8)) == 0:  # glue the next instruction on (never into a flag)
        lines[-1] += draw(st.sampled_from([escape, " " + escape, escape + escape]))
    for name, chomped in (("EOF", False), ("X", False), ("EOF", True)):
        marker = ("<<-" if chomped else "<<") + name
        if any(marker in word.replace("'", "").replace('"', "") for word in words) and draw(st.integers(0, 3)):
            body = draw(st.lists(st.sampled_from(["echo hi", "\tindented", "", "$V", "RUN x", "EO"]), max_size=3))
            lines += body + [("\t" if chomped and draw(st.booleans()) else "") + name]
    return lines


@st.composite
def dockerfiles(draw) -> str:
    escape = "\\"
    top: list[str] = []
    if draw(st.integers(0, 3)) == 0:
        directive = draw(st.sampled_from(["# escape=`", "# escape=\\", "#escape = `", "# syntax=x/y",
                                          "# escape=x", "# Escape=`"]))
        top.append(directive)
        if directive.replace(" ", "").lower() == "#escape=`":
            escape = "`"
        if draw(st.integers(0, 3)) == 0:
            top.append(draw(st.sampled_from(["# escape=`", "# syntax=z", "# comment"])))
    lines = list(top)
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            lines.append(draw(st.sampled_from(["", "   ", "# a comment", "  # indented comment", escape])))
        else:
            lines += draw(instruction_lines(escape))
    newline = draw(st.sampled_from(["\n", "\n", "\n", "\r\n"]))
    text = newline.join(lines)
    if draw(st.booleans()):
        text += newline
    if draw(st.integers(0, 20)) == 0:
        text = "\ufeff" + text
    return text


@settings(derandomize=True, max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(dockerfiles())
def test_generated_dockerfiles_agree_with_go(text):
    assert_same(text)


def test_the_corpus_reaches_the_interesting_parts():
    """The generator is not vacuous: its files hit errors, JSON, heredocs, continuations, ONBUILD."""
    seen: set[str] = set()

    @settings(derandomize=True, max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(dockerfiles())
    def collect(text):
        view = go_view(text)
        if view and view[0] == "error":
            seen.add("error")
            return
        for cmd, sub, is_json, _original, start, end, flag_words, _value, heredocs in view:
            seen.update(name for name, hit in [
                ("json", is_json), ("heredoc", heredocs), ("continuation", end > start), ("onbuild", sub),
                ("flags", flag_words), ("unknown", cmd.upper() not in KEYWORDS)] if hit)

    collect()
    assert seen >= {"error", "json", "heredoc", "continuation", "onbuild", "flags", "unknown"}
