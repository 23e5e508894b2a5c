"""The Dockerfile parser: every instruction and form, continuations, directives, heredocs,
substitution rules, stage references and every error with its line and hint."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.dockerfile import (
    EXPANDED_INSTRUCTIONS, Add, Arg, Cmd, Copy, Dockerfile, DockerfileError, Entrypoint, Env, Expose, From,
    Healthcheck, Heredoc, Label, LexError, Maintainer, Onbuild, Run, Shell, StopSignal, User, Volume, Workdir,
    check_stages, expand, expand_instruction, expand_words, parse, parse_duration, parse_instruction, parse_raw,
    raw_commands, resolve_from, split_fields, split_words, target_stages,
)
from engine.errors import EngineError
from engine.testing import SEED_WEB_DOCKERFILE

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "docker-20.10-transcripts.md"

SEED = SEED_WEB_DOCKERFILE


def only(text: str):
    """The single instruction after ``FROM x``."""
    df = parse("FROM x\n" + text)
    (instruction,) = df.stages[0].instructions
    return instruction


def error_of(text: str, **kwargs) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text, **kwargs)
    return info.value


# ----------------------------------------------------------------------------------------- the seed


def test_seed_dockerfile_prints_the_transcripts_steps():
    df = parse(SEED)
    assert df.instruction_count == 6
    printed = [f"Step {n}/{df.instruction_count} : {step.original}" for n, step in enumerate(df.steps(), 1)]
    transcript = TRANSCRIPTS.read_text().split("## classic-cold", 1)[1].split("```", 2)[1]
    assert printed == [line for line in transcript.splitlines() if line.startswith("Step ")]


def test_seed_dockerfile_instructions():
    stage = parse(SEED).stages[0]
    assert (stage.name, stage.base, stage.platform, stage.line) == (None, "busybox:latest", None, 1)
    label, env, run, copy, cmd = stage.instructions
    assert label == Label(line=2, end_line=2, original="LABEL maintainer=whoami", pairs=(("maintainer", "whoami"),))
    assert env.pairs == (("REFRESHED_AT", "2014-07-01"),)
    assert run == Run(line=4, end_line=4, original="RUN echo hello > /greeting && mkdir -p /var/www/html",
                      cmd="echo hello > /greeting && mkdir -p /var/www/html", exec_form=False)
    assert (copy.sources, copy.dest, copy.from_stage) == (("index.html",), "/var/www/html/", None)
    assert (cmd.cmd, cmd.exec_form) == (("cat", "/var/www/html/index.html"), True)


def test_the_failing_transcript_counts_four_steps():
    df = parse("FROM busybox:latest\nRUN echo step2 > /step2.txt\nRUN false\nCMD [\"sh\"]\n")
    assert [f"Step {n}/{df.instruction_count} : {s}" for n, s in enumerate(df.steps(), 1)][:3] == [
        "Step 1/4 : FROM busybox:latest", "Step 2/4 : RUN echo step2 > /step2.txt", "Step 3/4 : RUN false"]


# ------------------------------------------------------------------------------------- instructions


@pytest.mark.parametrize("text, expected", [
    ("FROM busybox", From(line=1, end_line=1, original="FROM busybox", base="busybox")),
    ("FROM busybox:1.36 AS Build", From(line=1, end_line=1, original="FROM busybox:1.36 AS Build",
                                        base="busybox:1.36", name="build")),
    ("from busybox as b-1.x_y", From(line=1, end_line=1, original="from busybox as b-1.x_y", base="busybox",
                                     name="b-1.x_y")),
    ("FROM --platform=linux/arm64 alpine AS a", From(line=1, end_line=1, original="FROM --platform=linux/arm64 alpine AS a",
                                                     base="alpine", name="a", platform="linux/arm64")),
    ("FROM --platform=$BUILDPLATFORM scratch", From(line=1, end_line=1, original="FROM --platform=$BUILDPLATFORM scratch",
                                                    base="scratch", platform="$BUILDPLATFORM")),
])
def test_from(text, expected):
    df = parse(text + "\n")
    assert df.stages[0].from_instruction == expected
    assert (df.stages[0].name, df.stages[0].base, df.stages[0].platform) == (expected.name, expected.base, expected.platform)


@pytest.mark.parametrize("text, cmd, exec_form", [
    ("RUN echo hi", "echo hi", False),
    ("RUN   echo   hi  ", "echo   hi", False),
    ('RUN ["echo", "hi"]', ("echo", "hi"), True),
    ('RUN [ "echo" , "a b" ]', ("echo", "a b"), True),
    ("RUN []", (), True),
    ("RUN", (), False),
    ('RUN ["echo", "hi"] trailing', ("echo", "hi"), True),      # Go's json.Decoder reads one value
    ('RUN ["echo", "unterminated', '["echo", "unterminated', False),  # invalid JSON -> shell form
    ("RUN [NaN]", "[NaN]", False),
    ("RUN ['single']", "['single']", False),
    ('RUN ["\\u00e9\\t"]', ("\u00e9\t",), True),
    ('RUN echo "$HOME" \'$X\'', 'echo "$HOME" \'$X\'', False),  # never expanded by the builder
    ("run echo lower-case keyword", "echo lower-case keyword", False),
])
def test_run(text, cmd, exec_form):
    run = only(text)
    assert isinstance(run, Run)
    assert (run.cmd, run.exec_form) == (cmd, exec_form)


@pytest.mark.parametrize("text, kind, cmd, exec_form", [
    ('CMD ["cat", "/x"]', Cmd, ("cat", "/x"), True),
    ("CMD cat /x", Cmd, "cat /x", False),
    ("CMD", Cmd, (), False),
    ("CMD []", Cmd, (), True),
    ('ENTRYPOINT ["/bin/app", "-v"]', Entrypoint, ("/bin/app", "-v"), True),
    ("ENTRYPOINT exec app", Entrypoint, "exec app", False),
    ("ENTRYPOINT []", Entrypoint, (), True),
])
def test_cmd_and_entrypoint(text, kind, cmd, exec_form):
    instruction = only(text)
    assert type(instruction) is kind
    assert (instruction.cmd, instruction.exec_form) == (cmd, exec_form)


@pytest.mark.parametrize("text, pairs", [
    ("LABEL maintainer=whoami", (("maintainer", "whoami"),)),
    ('LABEL "com.example.vendor"="ACME" version=1.0', (('"com.example.vendor"', '"ACME"'), ("version", "1.0"))),
    ('LABEL description="a b  c"', (("description", '"a b  c"'),)),
    ("LABEL old form value", (("old", "form value"),)),
    ("LABEL x=", (("x", ""),)),
])
def test_label(text, pairs):
    assert only(text).pairs == pairs


@pytest.mark.parametrize("text, pairs", [
    ("ENV REFRESHED_AT 2014-07-01", (("REFRESHED_AT", "2014-07-01"),)),
    ("ENV A 1 2  3", (("A", "1 2  3"),)),
    ("ENV REFRESHED_AT=2014-07-01", (("REFRESHED_AT", "2014-07-01"),)),
    ('ENV k=v k2="v 2"', (("k", "v"), ("k2", '"v 2"'))),
    ("ENV a=b\\ c d='e f'", (("a", "b\\ c"), ("d", "'e f'"))),
    ("ENV A=", (("A", ""),)),
    ('ENV A="x=y"', (("A", '"x=y"'),)),
])
def test_env_both_forms(text, pairs):
    env = only(text)
    assert isinstance(env, Env)
    assert env.pairs == pairs


@pytest.mark.parametrize("text, pairs", [
    ("ARG VERSION", (("VERSION", None),)),
    ("ARG VERSION=1.0", (("VERSION", "1.0"),)),
    ("ARG A=1 B C=", (("A", "1"), ("B", None), ("C", ""))),
    ('ARG MSG="hello world"', (("MSG", '"hello world"'),)),
])
def test_arg(text, pairs):
    arg = only(text)
    assert arg.pairs == pairs
    assert (arg.name, arg.default) == pairs[0]


def test_arg_before_from_is_a_meta_arg():
    df = parse("ARG BASE=busybox\nARG TAG\nFROM $BASE:${TAG:-latest}\nARG TAG\nRUN echo $TAG\n")
    assert [a.pairs for a in df.meta_args] == [(("BASE", "busybox"),), (("TAG", None),)]
    assert df.stages[0].base == "$BASE:${TAG:-latest}"
    assert [type(i) for i in df.stages[0].instructions] == [Arg, Run]
    assert df.instruction_count == 5
    assert [s.original for s in df.steps()][:3] == ["ARG BASE=busybox", "ARG TAG", "FROM $BASE:${TAG:-latest}"]


@pytest.mark.parametrize("text, expected", [
    ("COPY index.html /var/www/html/", (("index.html",), "/var/www/html/", None, None, None)),
    ("COPY a b c /dest/", (("a", "b", "c"), "/dest/", None, None, None)),
    ('COPY ["a b", "/dest dir/"]', (("a b",), "/dest dir/", None, None, None)),
    ("COPY --from=builder /out/app /app", (("/out/app",), "/app", "builder", None, None)),
    ("COPY --from=0 --chown=1000:1000 --chmod=0755 x /y", (("x",), "/y", "0", "1000:1000", "0755")),
    ('COPY --chown="app user" x /y', (("x",), "/y", None, "app user", None)),
    ("COPY -- --weird /y", (("--weird",), "/y", None, None, None)),
    ('COPY "a b" c', (('"a', 'b"'), "c", None, None, None)),    # quotes do not group in shell form
    ("COPY $SRC ${DEST}", (("$SRC",), "${DEST}", None, None, None)),
])
def test_copy(text, expected):
    copy = only(text)
    assert isinstance(copy, Copy)
    assert (copy.sources, copy.dest, copy.from_stage, copy.chown, copy.chmod) == expected


@pytest.mark.parametrize("text, expected", [
    ("ADD https://example.com/a.tar.gz /tmp/", (("https://example.com/a.tar.gz",), "/tmp/", None, None)),
    ("ADD --chown=nobody --chmod=644 a.tar b.txt /srv/", (("a.tar", "b.txt"), "/srv/", "nobody", "644")),
    ('ADD ["http://example.com/x y", "/z"]', (("http://example.com/x y",), "/z", None, None)),
    ("ADD git@github.com:moby/moby.git /src", (("git@github.com:moby/moby.git",), "/src", None, None)),
])
def test_add_records_sources_including_urls(text, expected):
    add = only(text)
    assert isinstance(add, Add)
    assert (add.sources, add.dest, add.chown, add.chmod) == expected


@pytest.mark.parametrize("text, cls, field, value", [
    ("MAINTAINER Jane Doe <jane@example.com>", Maintainer, "maintainer", "Jane Doe <jane@example.com>"),
    ("USER nobody:nogroup", User, "user", "nobody:nogroup"),
    ("USER  my user ", User, "user", "my user"),
    ("WORKDIR /var/www/html", Workdir, "path", "/var/www/html"),
    ("WORKDIR $HOME/app", Workdir, "path", "$HOME/app"),
    ("STOPSIGNAL SIGKILL", StopSignal, "signal", "SIGKILL"),
    ("STOPSIGNAL 9", StopSignal, "signal", "9"),
    ("EXPOSE 80", Expose, "ports", ("80",)),
    ("EXPOSE 8080/tcp 80 53/udp", Expose, "ports", ("53/udp", "80", "8080/tcp")),   # Docker sorts them
    ("VOLUME /data", Volume, "paths", ("/data",)),
    ("VOLUME /a /b", Volume, "paths", ("/a", "/b")),
    ('VOLUME ["/a", " /b "]', Volume, "paths", ("/a", "/b")),
    ('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', Shell, "shell", ("/bin/bash", "-o", "pipefail", "-c")),
])
def test_single_field_instructions(text, cls, field, value):
    instruction = only(text)
    assert type(instruction) is cls
    assert getattr(instruction, field) == value


@pytest.mark.parametrize("text, test, interval, timeout, start_period, retries", [
    ("HEALTHCHECK NONE", ("NONE",), 0, 0, 0, 0),
    ("HEALTHCHECK none", ("NONE",), 0, 0, 0, 0),
    ("HEALTHCHECK CMD curl -f http://localhost/", ("CMD-SHELL", "curl -f http://localhost/"), 0, 0, 0, 0),
    ('HEALTHCHECK CMD ["curl", "-f", "http://localhost/"]', ("CMD", "curl", "-f", "http://localhost/"), 0, 0, 0, 0),
    ("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --retries=3 CMD true",
     ("CMD-SHELL", "true"), 300_000_000_000, 3_000_000_000, 90_000_000_000, 3),
    ("HEALTHCHECK --interval=1.5s cmd true", ("CMD-SHELL", "true"), 1_500_000_000, 0, 0, 0),
    ("HEALTHCHECK --unknown=1 NONE", ("NONE",), 0, 0, 0, 0),    # Docker parses no flags for NONE
])
def test_healthcheck(text, test, interval, timeout, start_period, retries):
    check = only(text)
    assert isinstance(check, Healthcheck)
    assert (check.test, check.interval, check.timeout, check.start_period, check.retries) == (
        test, interval, timeout, start_period, retries)


@pytest.mark.parametrize("text, expression, trigger", [
    ("ONBUILD RUN echo built", "RUN echo built", "RUN"),
    ("ONBUILD COPY --from=x a /b", "COPY --from=x a /b", "COPY"),
    ("onbuild   add . /src  ", "add . /src  ", "ADD"),   # Docker keeps trailing blanks in the expression
    ("ONBUILD ENV A=$B", "ENV A=$B", "ENV"),
])
def test_onbuild_wraps_an_instruction(text, expression, trigger):
    onbuild = only(text)
    assert isinstance(onbuild, Onbuild)
    assert (onbuild.expression, onbuild.trigger) == (expression, trigger)
    assert parse_instruction(onbuild.expression).keyword == trigger


def test_parse_instruction_for_commit_changes():
    assert parse_instruction('CMD ["sh"]') == Cmd(line=1, end_line=1, original='CMD ["sh"]', cmd=("sh",), exec_form=True)
    assert parse_instruction("ENV A b").pairs == (("A", "b"),)
    assert parse_instruction("RUN echo `x`", escape="`").cmd == "echo `x`"


# ----------------------------------------------------------------------- continuations and comments


def test_continuation_joins_lines_like_docker_prints_them():
    df = parse("FROM busybox\nRUN apt-get update && \\\n    apt-get install -y curl \\\n      git\nCMD x\n")
    run = df.stages[0].instructions[0]
    assert run.original == "RUN apt-get update &&     apt-get install -y curl       git"
    assert run.cmd == "apt-get update &&     apt-get install -y curl       git"
    assert (run.line, run.end_line) == (2, 4)
    assert df.stages[0].instructions[1].line == 5


def test_comment_lines_inside_a_continuation_are_dropped():
    run = only("RUN echo a \\\n# a comment\n    # an indented comment\n  b\n")
    assert run.original == "RUN echo a   b"
    assert (run.line, run.end_line) == (2, 5)


def test_empty_continuation_lines_are_skipped_with_a_warning():
    df = parse("FROM x\nRUN echo a \\\n\n   \n  b\n")
    assert df.stages[0].instructions[0].original == "RUN echo a   b"
    assert df.warnings == ("[WARNING]: Empty continuation line found in:\n    RUN echo a   b",
                           "[WARNING]: Empty continuation lines will become errors in a future release.")
    assert parse_raw("FROM x\nRUN echo a \\\n\n  b\n").warnings == ("Empty continuation line found in: RUN echo a   b",)
    assert parse(SEED).warnings == ()


@pytest.mark.parametrize("text, original", [
    ("RUN echo a\\\n", "RUN echo a"),                    # continuation at end of file
    ("RUN echo \\\\\n", "RUN echo \\\\"),               # an escaped escape is no continuation
    ("RUN a \\  \t\nb\n", "RUN a b"),                    # blanks after the escape still continue
    ("RUN a \\\r\n b\r\n", "RUN a  b"),                  # CRLF
    ("  RUN indented   \n", "RUN indented"),
    ("RUN a # not a comment\n", "RUN a # not a comment"),
    ("RUN a \\\n \\\n b\n", "RUN a   b"),                # a continuation line keeps its indentation
])
def test_continuation_edge_cases(text, original):
    assert only(text).original == original


def test_comments_blank_lines_and_bom_are_ignored():
    df = parse("\ufeff# comment\n\n   # indented comment\nFROM x\n\n# another\nRUN y\n")
    assert [(s.original, s.line) for s in df.steps()] == [("FROM x", 4), ("RUN y", 7)]


# --------------------------------------------------------------------------------------- directives


def test_escape_directive_backtick():
    text = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    && echo done\nCOPY a\\b c:\\dest\\\n"
    df = parse(text)
    assert df.escape == "`"
    assert df.directive("escape") == "`"
    run, copy = df.stages[0].instructions
    assert run.original == "RUN dir c:\\     && echo done"
    assert copy.sources == ("a\\b",)
    assert copy.dest == "c:\\dest\\"


def test_syntax_directive_is_recorded_and_ignored():
    df = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM x\n")
    assert df.directive("syntax") == "docker/dockerfile:1"
    assert [d.line for d in df.directives] == [1, 2]
    assert df.escape == "\\"


@pytest.mark.parametrize("text", [
    "# comment\n# escape=`\nFROM x\nRUN a `\n",      # a comment ends the directives
    "\n# escape=`\nFROM x\nRUN a `\n",               # so does a blank line
    "FROM x\n# escape=`\nRUN a `\n",                # and an instruction
    "# unknown=1\n# escape=`\nFROM x\nRUN a `\n",     # and an unknown directive
])
def test_directives_only_count_at_the_very_top(text):
    df = parse(text)
    assert df.escape == "\\"
    assert df.stages[0].instructions[-1].original == "RUN a `"


def test_directive_spelling_is_flexible():
    assert parse("#   ESCAPE =  `  \nFROM x\n").escape == "`"


# ------------------------------------------------------------------------------------------ heredocs


def test_run_heredoc():
    df = parse("FROM x\nRUN <<EOF\necho hello\necho $HOME\nEOF\nCMD y\n")
    run, cmd = df.stages[0].instructions
    assert run.cmd == "<<EOF"
    assert run.heredocs == (Heredoc("EOF", "echo hello\necho $HOME\n"),)
    assert (run.line, run.end_line, cmd.line) == (2, 5, 6)
    assert run.original == "RUN <<EOF"


def test_heredoc_variants():
    run = only("RUN <<-'END' 3<<X python3 -\n\tprint(1)\n\tEND\nbody\nX\n")
    quoted, numbered = run.heredocs
    assert quoted == Heredoc("END", "\tprint(1)\n", 0, expand=False, chomp=True)
    assert numbered == Heredoc("X", "body\n", 3, expand=True, chomp=False)


def test_copy_heredoc_sources():
    copy = only("COPY <<a.txt <<-b.txt /dest/\nA\na.txt\n\t\tB\n\tb.txt\n")
    assert copy.sources == ()
    assert copy.heredocs == (Heredoc("a.txt", "A\n"), Heredoc("b.txt", "B\n", chomp=True))
    assert copy.dest == "/dest/"


def test_json_run_has_no_heredoc():
    df = parse('FROM x\nRUN ["cat", "<<EOF"]\nCMD y\n')
    assert df.stages[0].instructions[0].heredocs == ()
    assert df.stages[0].instructions[1].original == "CMD y"


def test_onbuild_heredoc_is_part_of_the_expression():
    onbuild = only("ONBUILD RUN <<EOF\necho hi\nEOF\n")
    assert onbuild.expression == "RUN <<EOF\necho hi\nEOF"


# ------------------------------------------------------------------------------------- substitution


@pytest.mark.parametrize("word, expected", [
    ("$V", "v"), ("${V}", "v"), ("${V}x", "vx"), ("$Vx", ""), ("${UNSET}", ""),
    ("${V:-x}", "v"), ("${UNSET:-x}", "x"), ("${EMPTY:-x}", "x"), ("${EMPTY-x}", ""),
    ("${V:+x}", "x"), ("${UNSET:+x}", ""), ("${EMPTY:+x}", ""), ("${EMPTY+x}", "x"),
    ("\\$V", "$V"), ("'$V'", "$V"), ('"$V"', "v"), ('"a  b"', "a  b"), ("'a'\"b\"c", "abc"),
    ('"\\$V"', "$V"), ("a\\ b", "a b"), ("${UNSET:-${V}}", "v"), ("$", "$"), ("$1", ""),
])
def test_expand(word, expected):
    assert expand(word, {"V": "v", "EMPTY": ""}) == expected


def test_expand_with_backtick_escape():
    assert expand("`$V \\$V", {"V": "v"}, escape="`") == "$V \\v"


@pytest.mark.parametrize("word, message", [
    ("${V", "failed to process \"${V\": unsupported modifier (\ufffd) in substitution"),  # BuildKit's text
    ("${}", 'failed to process "${}": syntax error: bad substitution'),
    ("'open", "failed to process \"'open\": unexpected end of statement while looking for matching single-quote"),
    ("${UNSET:?must be set}", 'failed to process "${UNSET:?must be set}": UNSET: must be set'),
    ("${V:=x}", 'failed to process "${V:=x}": unsupported modifier (:=) in substitution'),
])
def test_expand_errors(word, message):
    with pytest.raises(LexError) as info:
        expand(word, {"V": "v"})
    assert str(info.value) == message


def test_expand_words_splits_after_substitution():
    assert expand_words('$PORTS "8080 tcp" 9', {"PORTS": " 80  443 "}) == ["80", "443", "8080 tcp", "9"]


def test_word_splitting_functions():
    assert split_words('k=v k2="v 2" k3=a\\ b') == ["k=v", 'k2="v 2"', "k3=a\\ b"]
    assert split_words("a `b c`", escape="`") == ["a", "`b", "c"]   # an escape at the very end is dropped
    assert split_fields('  "a b"\tc  ') == ['"a', 'b"', "c"]


def test_which_instructions_the_builder_expands():
    assert EXPANDED_INSTRUCTIONS == {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL",
                                     "USER", "VOLUME", "WORKDIR"}


ENV = {"HOME": "/root", "PORTS": "80 443", "USER_NAME": "app", "SIG": "TERM"}


@pytest.mark.parametrize("text, field, expected", [
    ('ENV A=$HOME B="$HOME/x y" C=\'$HOME\' D=\\$HOME', "pairs",
     (("A", "/root"), ("B", "/root/x y"), ("C", "$HOME"), ("D", "$HOME"))),
    ("ENV OLD \"quoted value\" $HOME", "pairs", (("OLD", "quoted value /root"),)),
    ('LABEL "$USER_NAME.role"="admin user"', "pairs", (("app.role", "admin user"),)),
    ("COPY --chown=$USER_NAME --chmod=$MODE $HOME/a ${HOME}/b /dst/$USER_NAME/", None,
     (("/root/a", "/root/b"), "/dst/app/", "app", "$MODE")),
    ("ADD --chown=${USER_NAME}:${USER_NAME} a $HOME", None, (("a",), "/root", "app:app", None)),
    ("EXPOSE $PORTS 8080", "ports", ("80", "443", "8080")),
    ("VOLUME $HOME/data", "paths", ("/root/data",)),
    ("WORKDIR ${HOME:-/}/app", "path", "/root/app"),
    ("USER $USER_NAME", "user", "app"),
    ("STOPSIGNAL SIG$SIG", "signal", "SIGTERM"),
    ("ARG X=$HOME", "pairs", (("X", "/root"),)),
    ("RUN echo $HOME", "cmd", "echo $HOME"),
    ('CMD ["echo", "$HOME"]', "cmd", ("echo", "$HOME")),
    ("ENTRYPOINT echo $HOME", "cmd", "echo $HOME"),
    ("HEALTHCHECK CMD echo $HOME", "test", ("CMD-SHELL", "echo $HOME")),
    ("MAINTAINER $USER_NAME", "maintainer", "$USER_NAME"),
    ("ONBUILD RUN echo $HOME", "expression", "RUN echo $HOME"),
    ('SHELL ["$HOME/sh", "-c"]', "shell", ("$HOME/sh", "-c")),
])
def test_expand_instruction_follows_dockers_rules(text, field, expected):
    expanded = expand_instruction(only(text), ENV)
    if field is None:
        extra = (expanded.from_stage,) if isinstance(expanded, Copy) else ()
        assert (expanded.sources, expanded.dest, expanded.chown, expanded.chmod) == expected
        assert extra in ((), (None,))
    else:
        assert getattr(expanded, field) == expected


def test_copy_from_is_not_expanded():
    assert expand_instruction(only("COPY --from=$STAGE a b"), {"STAGE": "x"}).from_stage == "$STAGE"


def test_from_is_expanded_with_meta_args():
    df = parse("ARG TAG=1.36\nFROM busybox:${TAG}\n")
    expanded = expand_instruction(df.stages[0].from_instruction, {"TAG": "1.36"})
    assert expanded.base == "busybox:1.36"


def test_expand_instruction_error_has_the_line():
    with pytest.raises(DockerfileError) as info:
        expand_instruction(parse("FROM x\n\nWORKDIR ${DIR:?set DIR}\n").stages[0].instructions[0], {})
    assert info.value.line == 3
    assert str(info.value).startswith('failed to process "${DIR:?set DIR}": DIR: set DIR')


def test_expand_instruction_with_backtick_escape():
    df = parse("# escape=`\nFROM x\nENV A=`$HOME B=$HOME\n")
    assert expand_instruction(df.stages[0].instructions[0], ENV, escape=df.escape).pairs == (
        ("A", "$HOME"), ("B", "/root"))


# ----------------------------------------------------------------------------------- stages, targets


MULTI = """\
FROM golang:1.22 AS builder
RUN go build -o /app
FROM alpine AS Test
COPY --from=builder /app /app
COPY --from=0 /app /app0
FROM scratch
COPY --from=TEST /app /app
COPY --from=busybox:latest /bin/busybox /bin/
COPY --from=1 /a /b
"""


def test_multi_stage():
    df = parse(MULTI)
    assert [(s.index, s.name, s.base, s.line) for s in df.stages] == [
        (0, "builder", "golang:1.22", 1), (1, "test", "alpine", 3), (2, None, "scratch", 6)]
    assert df.instruction_count == 9
    assert df.stage("TEST").index == 1 and df.stage(2).base == "scratch"
    check_stages(df)
    assert [resolve_from(df, 2, v) for v in ("TEST", "busybox:latest", "1", "0")] == [1, "busybox:latest", 1, 0]


def test_target_stages():
    df = parse(MULTI)
    assert [s.name for s in target_stages(df, "Test")] == ["builder", "test"]
    with pytest.raises(DockerfileError) as info:
        target_stages(df, "tset")
    assert info.value.message == "failed to reach build target tset in Dockerfile"
    assert info.value.hint == "did you mean test?"


@pytest.mark.parametrize("text, message, line, hint", [
    ("FROM a AS one\nFROM b AS one\n", "one stage name already used", 2, "line 2: the stage at line 1"),
    ("FROM a\nCOPY --from=0 x y\n", "invalid from flag value 0: refers to current build stage", 2, "line 2: stage 0"),
    ("FROM a\nFROM b\nCOPY --from=2 x y\n", "invalid from flag value 2: index out of bounds", 3, "line 3: only stages 0..0"),
    ("FROM a\nCOPY --from=-1 x y\n", "invalid from flag value -1: index out of bounds", 2, "line 2: this is the first"),
    ("FROM a AS build\nCOPY --from=build x y\n", "invalid from flag value build: stage build is not built yet", 2,
     "line 2: build is this stage"),
    ("FROM a\nCOPY --from=later x y\nFROM b AS later\n", "invalid from flag value later: stage later is not built yet",
     2, "line 2: later is the stage at line 3"),
    ("FROM a AS builder\nFROM b\nCOPY --from=Bulder:x x y\n",
     "invalid from flag value Bulder:x: invalid reference format: repository name must be lowercase", 3,
     "line 3: did you mean builder?"),
    ("FROM a\nCOPY --from=bad//ref x y\n", "invalid from flag value bad//ref: invalid reference format", 2,
     "line 2: no earlier stage has a name"),
])
def test_check_stages_errors(text, message, line, hint):
    with pytest.raises(DockerfileError) as info:
        check_stages(parse(text))
    assert info.value.message == message
    assert info.value.line == line
    assert info.value.hint.startswith(hint)


def test_unknown_name_that_is_a_valid_image_reference_is_an_image():
    df = parse("FROM a\nCOPY --from=nginx:alpine /etc/nginx /x\n")
    check_stages(df)
    assert resolve_from(df, 0, "nginx:alpine") == "nginx:alpine"


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text, message, line, hint", [
    # the seed's failing build: Docker's exact text, plus a hint
    ("FROM busybox:latest\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO", 2,
     "did you mean FROM?"),
    ("FROM x\nCOPPY a b\n", "dockerfile parse error line 2: unknown instruction: COPPY", 2, "did you mean COPY?"),
    ("FROM x\nrnu a\n", "dockerfile parse error line 2: unknown instruction: RNU", 2, "did you mean RUN?"),
    ("FROM x\nRUN apt-get update &&\n  apt-get install -y curl\n",
     "dockerfile parse error line 3: unknown instruction: APT-GET", 3,
     "if this continues line 2, end that line with \\"),
    ("FROM x\nRUN a\necho b\n", "dockerfile parse error line 3: unknown instruction: ECHO", 3,
     "if this continues line 2, end that line with \\"),
    ("# escape=`\nFROM x\nRUN a\nmkdir b\n", "dockerfile parse error line 4: unknown instruction: MKDIR", 4,
     "if this continues line 3, end that line with `"),
    ("FROM x\n\nFOO\n", "dockerfile parse error line 3: unknown instruction: FOO", 3, "did you mean FROM?"),
    ("FROM x\n\nXYZZY\n", "dockerfile parse error line 3: unknown instruction: XYZZY", 3, "instructions are ADD ARG"),
    ("RUN echo hi\nFROM x\n", "no build stage in current context", 1, "line 1: a Dockerfile must start with FROM"),
    ("# just a comment\n\nLABEL a=b\n", "no build stage in current context", 3, "line 3: a Dockerfile must start"),
    ("ARG A\n", "No image was generated. Is your Dockerfile empty?", 1, "the Dockerfile has only ARG"),
    ("# only\n# comments\n\n", "file with no instructions", 3, "the Dockerfile holds only comments"),
    ("FROM\n", "dockerfile parse error line 1: FROM requires either one or three arguments", 1, "use FROM <image>"),
    ("FROM a b\n", "dockerfile parse error line 1: FROM requires either one or three arguments", 1, "use FROM"),
    ("FROM a FOR b\n", "dockerfile parse error line 1: FROM requires either one or three arguments", 1,
     "the second word must be AS, not FOR"),
    ("FROM a AS 1st\n", 'dockerfile parse error line 1: invalid name for build stage: "1st", name can\'t start '
     "with a number or contain symbols", 1, "stage names are"),
    ("FROM --platfrom=x a\n", "dockerfile parse error line 1: Unknown flag: platfrom", 1, "did you mean --platform?"),
    ("FROM x\nENV A\n", "ENV must have two arguments", 2, "line 2: write ENV NAME=value"),
    ("FROM x\nLABEL version\n", "LABEL must have two arguments", 2, "line 2: write LABEL NAME=value"),
    ("FROM x\nENV\n", "dockerfile parse error line 2: ENV requires at least one argument", 2, "use ENV NAME=value"),
    ("FROM x\nENV a=1 b\n", "Syntax error - can't find = in \"b\". Must be of the form: name=value", 2,
     "line 2: in 'ENV a=b c=d' every word needs '='"),
    ("FROM x\nENV =1\n", "dockerfile parse error line 2: ENV names can not be blank", 2, "use ENV"),
    ("FROM x\nLABEL\n", "dockerfile parse error line 2: LABEL requires at least one argument", 2, "use LABEL"),
    ("FROM x\nARG\n", "dockerfile parse error line 2: ARG requires at least one argument", 2, "use ARG NAME"),
    ("FROM x\nARG =v\n", "dockerfile parse error line 2: ARG names can not be blank", 2, "use ARG NAME"),
    ("FROM x\nCOPY a\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one was "
     "provided. Destination could not be determined.", 2, "use COPY <src>... <dest>"),
    ("FROM x\nADD a\n", "dockerfile parse error line 2: ADD requires at least two arguments, but only one was "
     "provided. Destination could not be determined.", 2, "use ADD"),
    ("FROM x\nCOPY --form=a b c\n", "dockerfile parse error line 2: Unknown flag: form", 2, "did you mean --from?"),
    ("FROM x\nCOPY --link a b\n", "dockerfile parse error line 2: Unknown flag: link", 2,
     "COPY --link needs BuildKit"),
    ("FROM x\nRUN --mount=type=cache,target=/r x\n", "dockerfile parse error line 2: Unknown flag: mount", 2,
     "RUN --mount needs BuildKit"),
    ("FROM x\nENV --foo A=1\n", "dockerfile parse error line 2: Unknown flag: foo", 2, "ENV takes no --flags"),
    ("FROM x\nCOPY --from=a --from=b c d\n", "dockerfile parse error line 2: Duplicate flag specified: from", 2,
     "give --from only once"),
    ("FROM x\nCOPY --chown c d\n", "dockerfile parse error line 2: Missing a value on flag: chown", 2,
     "write --chown=<value>"),
    ("FROM x\nCOPY a <<EOF\nx\nEOF\n", "dockerfile parse error line 2: COPY cannot accept a heredoc as a "
     "destination", 2, "the last argument"),
    ("FROM x\nMAINTAINER\n", "dockerfile parse error line 2: MAINTAINER requires exactly one argument", 2, "use"),
    ("FROM x\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument", 2, "use WORKDIR"),
    ("FROM x\nUSER\n", "dockerfile parse error line 2: USER requires exactly one argument", 2, "use USER"),
    ("FROM x\nSTOPSIGNAL\n", "dockerfile parse error line 2: STOPSIGNAL requires exactly one argument", 2, "use"),
    ("FROM x\nEXPOSE\n", "dockerfile parse error line 2: EXPOSE requires at least one argument", 2, "use EXPOSE"),
    ("FROM x\nVOLUME\n", "dockerfile parse error line 2: VOLUME requires at least one argument", 2, "use VOLUME"),
    ('FROM x\nVOLUME ["/a", " "]\n', "dockerfile parse error line 2: VOLUME specified can not be an empty string",
     2, "use VOLUME"),
    ("FROM x\nONBUILD\n", "dockerfile parse error line 2: ONBUILD requires at least one argument", 2, "use ONBUILD"),
    ("FROM x\nONBUILD ONBUILD RUN x\n", "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` "
     "isn't allowed", 2, ""),
    ("FROM x\nONBUILD FROM y\n", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger", 2, ""),
    ("FROM x\nSHELL /bin/bash -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON "
     "form", 2, 'use SHELL ["executable", "parameters"]'),
    ("FROM x\nSHELL []\n", "dockerfile parse error line 2: SHELL requires at least one argument", 2, "use SHELL"),
    ("FROM x\nSHELL\n", "dockerfile parse error line 2: SHELL requires at least one argument", 2, "use SHELL"),
    ("FROM x\nHEALTHCHECK\n", "dockerfile parse error line 2: HEALTHCHECK requires at least one argument", 2, "use"),
    ("FROM x\nHEALTHCHECK NONE x\n", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments", 2, ""),
    ("FROM x\nHEALTHCHECK CMD\n", "dockerfile parse error line 2: Missing command after HEALTHCHECK CMD", 2, "use"),
    ("FROM x\nHEALTHCHECK RUN x\n", 'dockerfile parse error line 2: Unknown type "RUN" in HEALTHCHECK (try CMD)', 2,
     "use HEALTHCHECK"),
    ("FROM x\nHEALTHCHECK --interval=5 CMD x\n", 'dockerfile parse error line 2: time: missing unit in duration "5"',
     2, "--interval takes a duration"),
    ("FROM x\nHEALTHCHECK --timeout=0s CMD x\n", 'dockerfile parse error line 2: Interval "timeout" cannot be less '
     "than 1ms", 2, "--timeout must be at least 1ms"),
    ("FROM x\nHEALTHCHECK --retries=0 CMD x\n", "dockerfile parse error line 2: --retries must be at least 1 (not 0)",
     2, ""),
    ("FROM x\nHEALTHCHECK --retries=x CMD x\n", 'dockerfile parse error line 2: strconv.ParseInt: parsing "x": '
     "invalid syntax", 2, "--retries takes a whole number"),
    ("FROM x\nHEALTHCHECK --start-interval=1s CMD x\n", "dockerfile parse error line 2: Unknown flag: start-interval",
     2, "HEALTHCHECK --start-interval needs BuildKit"),
    ('FROM x\nCMD ["a", 1]\n', "when using JSON array syntax, arrays must be comprised of strings only", 2,
     'line 2: an exec form must be a JSON array of strings'),
    ("FROM x\nRUN <<EOF\necho hi\n", "unterminated heredoc", 2, "line 2: end the heredoc with a line holding only EOF"),
    ("# escape=x\nFROM x\n", "invalid escape token 'x' does not match ` or \\", 1, "line 1: the escape directive"),
    ("# escape=`\n# escape=\\\nFROM x\n", "only one escape parser directive can be used", 2,
     "line 2: remove the repeated"),
])
def test_errors_carry_dockers_text_line_and_hint(text, message, line, hint):
    err = error_of(text)
    assert isinstance(err, EngineError)
    assert err.message == message
    assert err.line == line
    assert err.hint.startswith(hint)
    assert str(err) == (f"{message} ({err.hint})" if err.hint else message)


def test_empty_dockerfile():
    err = error_of("", filename="Dockerfile.dev")
    assert err.message == "the Dockerfile (Dockerfile.dev) cannot be empty"
    assert err.line is None
    assert "FROM" in err.hint


def test_first_error_wins_in_file_order():
    assert error_of("FROM x\nENV a\nFOO\n").line == 2
    assert error_of("FROM x\nFOO\nENV a\n").message == "ENV must have two arguments"   # parser errors come first


def test_error_spans_a_continued_instruction():
    err = error_of("FROM x\nCOPY \\\n  onlyone\n")
    assert (err.line, err.end_line) == (2, 3)


def test_invalid_json_is_shell_form_for_cmd_but_an_error_for_shell():
    assert only('CMD ["a",]').cmd == '["a",]'
    assert error_of('FROM x\nSHELL ["a",]\n').message.endswith("SHELL requires the arguments to be in JSON form")


# --------------------------------------------------------------------------------------------- misc


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 300 * 10**6),
    ("2us", 2000), ("2\u00b5s", 2000), ("-1s", -(10**9)), ("1h2m3s4ms5us6ns", 3723004005006), (".5s", 5 * 10**8),
])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("1", 'time: missing unit in duration "1"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'), (".s", 'time: invalid duration ".s"'),
])
def test_parse_duration_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


def test_values_are_frozen_and_hashable():
    df = parse(SEED)
    with pytest.raises(AttributeError):
        df.stages[0].instructions[0].pairs = ()
    assert hash(df.stages[0].instructions) == hash(parse(SEED).stages[0].instructions)
    assert isinstance(df, Dockerfile)


def test_raw_view_is_available():
    raw = parse_raw("# syntax=x\nFROM a\nONBUILD COPY --from=b c d\n")
    assert [c.cmd for c in raw.commands] == ["FROM", "ONBUILD"]
    onbuild = raw.commands[1]
    assert (onbuild.sub_cmd, onbuild.sub_flags, onbuild.value) == ("COPY", ("--from=b",), ("c", "d"))
    assert raw_commands("FROM a\n")[0].original == "FROM a"
