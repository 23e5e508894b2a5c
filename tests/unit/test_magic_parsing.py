"""``(magic, line, cell) → Request`` for every magic (kernel_ext.parsing), and the flags the CLI's parser accepts."""
from __future__ import annotations

import pytest

from engine.cli_parser import UsageError, parse_args
from kernel_ext.parsing import (
    CELL_MAGICS, OWN_MAGICS, VERB_MAGICS, MagicUsageError, Request, canonical_verb, parse_magic,
)

DOCKERFILE = "FROM busybox:latest\nRUN echo $GREETING > /g\n"
SCRIPT = "echo hi > /hi.txt\nls /\n"

LINE_CASES = [
    ("dbuild", "-t static_web web", ("build", "-t", "static_web", "web"), None),
    ("drun", "--rm busybox echo hi", ("run", "--rm", "busybox", "echo", "hi"), None),
    ("drun", "-o r --name c1 busybox ls -o", ("run", "--name", "c1", "busybox", "ls", "-o"), "r"),
    ("drun", "busybox sh -c 'echo a  b'", ("run", "busybox", "sh", "-c", "echo a  b"), None),
    ("dimages", "", ("images",), None),
    ("dimages", "-a -o imgs", ("images", "-a"), "imgs"),
    ("dimages", "--as imgs busybox", ("images", "busybox"), "imgs"),
    ("dimages", "-oimgs", ("images",), "imgs"),
    ("dps", "-a", ("ps", "-a"), None),
    ("dcommit", "-m 'add file' c1 mycommit:v1", ("commit", "-m", "add file", "c1", "mycommit:v1"), None),
    ("ddiff", "c1 -o changes", ("diff", "c1"), "changes"),
    ("dtag", "busybox mybox:1", ("tag", "busybox", "mybox:1"), None),
    ("drmi", "-f mybox:1", ("rmi", "-f", "mybox:1"), None),
    ("drm", "-f c1 c2", ("rm", "-f", "c1", "c2"), None),
    ("dhistory", "--no-trunc busybox", ("history", "--no-trunc", "busybox"), None),
    ("dinspect", "-f '{{json .RootFS}}' busybox", ("inspect", "-f", "{{json .RootFS}}", "busybox"), None),
    ("dlogs", "--tail 2 web", ("logs", "--tail", "2", "web"), None),
    ("dstop", "-t 1 web", ("stop", "-t", "1", "web"), None),
    ("dpull", "127.0.0.1:5000/whoami/static_web", ("pull", "127.0.0.1:5000/whoami/static_web"), None),
    ("dpush", "127.0.0.1:5000/whoami/static_web", ("push", "127.0.0.1:5000/whoami/static_web"), None),
    ("dsearch", "--limit 5 static", ("search", "--limit", "5", "static"), None),
    ("dlogin", "-u student -p s3cret 127.0.0.1:5000", ("login", "-u", "student", "-p", "s3cret", "127.0.0.1:5000"),
     None),
    ("dlogin", "-u student --password-stdin 127.0.0.1:5000",
     ("login", "-u", "student", "--password-stdin", "127.0.0.1:5000"), None),
    ("dlogout", "127.0.0.1:5000", ("logout", "127.0.0.1:5000"), None),
    ("dsave", "-o bb.tar busybox", ("save", "-o", "bb.tar", "busybox"), None),          # -o is Docker's here
    ("dsave", "-o bb.tar busybox --as s", ("save", "-o", "bb.tar", "busybox"), "s"),
    ("dload", "-i bb.tar -o loaded", ("load", "-i", "bb.tar"), "loaded"),
    ("dregistry", "start --port 5000", ("registry", "start", "--port", "5000"), None),
]


@pytest.mark.parametrize("magic,line,argv,var", LINE_CASES, ids=[f"{c[0]}:{c[1]}" for c in LINE_CASES])
def test_line_magics(magic: str, line: str, argv: tuple[str, ...], var: str | None) -> None:
    req = parse_magic(magic, line)
    assert req == Request(magic, argv, canonical_verb(argv), output_var=var)
    assert req.argv[0] == VERB_MAGICS[magic]


@pytest.mark.parametrize("line,argv,ask_user,ask_password", [
    ("127.0.0.1:5000", ("login", "127.0.0.1:5000", "--password-stdin"), True, True),
    ("-u student 127.0.0.1:5000", ("login", "-u", "student", "127.0.0.1:5000", "--password-stdin"), False, True),
    ("--username=student --password=x h:5000", ("login", "--username=student", "--password=x", "h:5000"), False,
     False),
    ("-ustudent -px h:5000", ("login", "-ustudent", "-px", "h:5000"), False, False),
])
def test_dlogin_asks_for_what_is_missing(line: str, argv: tuple[str, ...], ask_user: bool, ask_password: bool) -> None:
    req = parse_magic("dlogin", line)
    assert (req.argv, req.ask_username, req.ask_password) == (argv, ask_user, ask_password)


def test_every_verb_magic_has_a_case() -> None:
    assert {c[0] for c in LINE_CASES} == set(VERB_MAGICS)


# the command lines of verbs this branch has must pass the CLI's own parser unchanged
_KNOWN = {"build", "run", "images", "ps", "commit", "diff", "tag", "rmi", "rm", "history", "inspect", "logs",
          "stop", "save", "load"}


@pytest.mark.parametrize("magic,line,argv,var", [c for c in LINE_CASES if VERB_MAGICS[c[0]] in _KNOWN])
def test_requests_parse_with_the_cli_parser(magic: str, line: str, argv: tuple[str, ...], var: str | None) -> None:
    args = parse_args(parse_magic(magic, line).argv)
    assert args.verb == VERB_MAGICS[magic]


DOCKER_CASES = [
    ("build -t x .", ("build", "-t", "x", "."), "build", None),
    ("image ls", ("image", "ls"), "images", None),
    ("image list -a", ("image", "list", "-a"), "images", None),
    ("container ls -a", ("container", "ls", "-a"), "ps", None),
    ("container rm c1", ("container", "rm", "c1"), "rm", None),
    ("image rm busybox", ("image", "rm", "busybox"), "rmi", None),
    ("image history busybox", ("image", "history", "busybox"), "history", None),
    ("image prune -f", ("image", "prune", "-f"), "image_prune", None),
    ("system check", ("system", "check"), "system_check", None),
    ("-o r images", ("images",), "images", "r"),
    ("--as=r ps -a", ("ps", "-a"), "ps", "r"),
    ("images -o r", ("images",), "images", "r"),
    ("save -o x.tar busybox", ("save", "-o", "x.tar", "busybox"), "save", None),
    ("run --rm busybox ls -o x", ("run", "--rm", "busybox", "ls", "-o", "x"), "run", None),
    ("version", ("version",), "version", None),
]


@pytest.mark.parametrize("line,argv,verb,var", DOCKER_CASES, ids=[c[0] for c in DOCKER_CASES])
def test_docker_magic(line: str, argv: tuple[str, ...], verb: str, var: str | None) -> None:
    req = parse_magic("docker", line)
    assert (req.argv, req.verb, req.output_var) == (argv, verb, var)
    if verb not in ("version",):
        assert parse_args(req.argv).verb == verb


@pytest.mark.parametrize("line,argv,context,var", [
    ("-t hello_docker", ("build", "-t", "hello_docker", "-"), None, None),
    ("--context web -t static_web", ("build", "-t", "static_web", "-f", "-", "web"), "web", None),
    ("-t x --context=ctx --no-cache -o b", ("build", "-t", "x", "--no-cache", "-f", "-", "ctx"), "ctx", "b"),
])
def test_cell_dbuild(line: str, argv: tuple[str, ...], context: str | None, var: str | None) -> None:
    req = parse_magic("dbuild", line, DOCKERFILE)
    assert req == Request("dbuild", argv, "build", cell=DOCKERFILE, stdin=DOCKERFILE.encode(), output_var=var,
                          context=context)
    args = parse_args(req.argv)
    assert args.tag and (args.context == "-" or (args.file == "-" and args.context == context))


@pytest.mark.parametrize("line,argv,var", [
    ("--name c1 busybox", ("run", "-i", "--name", "c1", "busybox"), None),
    ("-o r --rm busybox sh", ("run", "-i", "--rm", "busybox", "sh"), "r"),
])
def test_cell_drun(line: str, argv: tuple[str, ...], var: str | None) -> None:
    req = parse_magic("drun", line, SCRIPT)
    assert req == Request("drun", argv, "run", cell=SCRIPT, stdin=SCRIPT.encode(), output_var=var)
    assert parse_args(req.argv).interactive is True


@pytest.mark.parametrize("magic,line,expected", [
    ("dgraph", "", Request("dgraph", ("graph",), "graph")),
    ("dgraph", "--live -o g", Request("dgraph", ("graph", "--live"), "graph", output_var="g", live=True)),
    ("dexplore", "", Request("dexplore", ("explore",), "explore")),
    ("dexplore", "static_web", Request("dexplore", ("explore", "static_web"), "explore", image="static_web")),
])
def test_own_magics(magic: str, line: str, expected: Request) -> None:
    assert parse_magic(magic, line) == expected


def test_magic_lists() -> None:
    assert set(CELL_MAGICS) == {"dbuild", "drun"}
    assert set(OWN_MAGICS) == {"dgraph", "dexplore"}


@pytest.mark.parametrize("magic,line,cell,message", [
    ("dimages", "-o", None, "-o needs a variable name"),
    ("dimages", "-o 1x", None, "needs a Python variable name"),
    ("dimages", "--as my-var", None, "needs a Python variable name"),
    ("drun", "busybox sh -c 'unbalanced", None, "cannot split the line"),
    ("dbuild", "-f Dockerfile -t x", DOCKERFILE, "leave out -f"),
    ("dbuild", "--context", DOCKERFILE, "--context needs a directory"),
    ("dimages", "", "cell", "is not a cell magic"),
    ("dgraph", "--bogus", None, "takes only --live"),
    ("dexplore", "a b", None, "at most one image"),
    ("dgraph", "", "cell", "is not a cell magic"),
    ("docker", "", None, "needs a command"),
    ("docker", "-o r", None, "needs a command"),
    ("dnothing", "", None, "unknown magic"),
])
def test_magic_usage_errors(magic: str, line: str, cell: str | None, message: str) -> None:
    with pytest.raises(MagicUsageError, match=message) as info:
        parse_magic(magic, line, cell)
    assert info.value.exit_code == 125


def test_docker_flags_are_left_to_the_cli_parser() -> None:
    req = parse_magic("dimages", "--bogus")
    assert req.argv == ("images", "--bogus")
    with pytest.raises(UsageError, match="unknown flag: --bogus"):
        parse_args(req.argv)


@pytest.mark.parametrize("argv,verb", [
    ((), ""), (("images",), "images"), (("image", "ls"), "images"), (("image", "-q"), "image"),
    (("container", "ps"), "ps"), (("container", "diff", "c1"), "diff"), (("image", "weird"), "weird"),
])
def test_canonical_verb(argv: tuple[str, ...], verb: str) -> None:
    assert canonical_verb(argv) == verb
