"""Tests for engine.format: docker-cli 20.10 text output, byte for byte.

The table tests rebuild every docker table of the recorded transcripts
(``docker-20.10-transcripts.md``) from row *data* (IDs, ages, byte sizes, argv,
ports) and compare with the blocks parsed out of that file.  Other expected
values come from the Go sources' own test tables (docker/cli v20.10.24
``displayutils_test.go`` / ``container_test.go``, Go ``text/tabwriter`` tests).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.format import (
    GO_ZERO_TIME,
    ago,
    container_command,
    docker_inspect_time,
    ellipsis,
    format_ports,
    go_quote,
    history_created_by,
    human_duration,
    human_size,
    port_mapping,
    ps_command,
    render_table,
    rfc3339,
    status_created,
    status_exited,
    status_restarting,
    status_up,
    tabwrite,
    truncate_id,
)

# ---------------------------------------------------------------------------
# Transcript access

_TRANSCRIPT_NAME = "docker-20.10-transcripts.md"
_CANDIDATES = [
    Path(os.environ.get("LAYERLAB_TRANSCRIPTS", "/nonexistent")),
    Path(__file__).resolve().parents[2] / "docs" / "reference" / _TRANSCRIPT_NAME,
    Path(__file__).resolve().parents[1] / "data" / _TRANSCRIPT_NAME,
    Path("/work/shared/reference") / _TRANSCRIPT_NAME,
]


@dataclass(frozen=True)
class Block:
    """One ``$ command`` of the transcripts and the output lines that follow it."""

    section: str
    command: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The output as the CLI wrote it (every line newline-terminated)."""
        return "".join(line + "\n" for line in self.lines)


def parse_transcripts(text: str) -> list[Block]:
    """Split the markdown into (section, ``$ command``, output lines) blocks."""
    blocks: list[Block] = []
    section = ""
    in_fence = False
    command: str | None = None
    output: list[str] = []

    def close() -> None:
        if command is not None:
            blocks.append(Block(section, command, tuple(output)))

    for line in text.split("\n"):
        if not in_fence and line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("```"):
            if in_fence:
                close()
                command, output = None, []
            in_fence = not in_fence
        elif in_fence and line.startswith("$ "):
            close()
            command, output = line[2:], []
        elif in_fence and command is not None:
            output.append(line)
    return blocks


@pytest.fixture(scope="module")
def transcript_text() -> str:
    """The raw transcript file (skips the table tests when it is not available)."""
    for path in _CANDIDATES:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.skip(f"{_TRANSCRIPT_NAME} not found (set LAYERLAB_TRANSCRIPTS)")


@pytest.fixture(scope="module")
def blocks(transcript_text: str) -> list[Block]:
    """All command blocks of the transcripts."""
    return parse_transcripts(transcript_text)


@pytest.fixture(scope="module")
def full_ids(transcript_text: str) -> dict[str, str]:
    """Full ``sha256:<64hex>``/64-hex IDs seen anywhere in the transcripts, by short ID."""
    ids = {}
    for hexid in re.findall(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])", transcript_text):
        ids.setdefault(hexid[:12], hexid)
    return ids


def get_block(blocks: list[Block], section: str, command: str, index: int = 0) -> Block:
    """The ``index``-th block of ``section`` whose command is exactly ``command``."""
    found = [b for b in blocks if b.section == section and b.command == command]
    assert len(found) > index, f"no block {command!r} #{index} in section {section!r}"
    return found[index]


# ---------------------------------------------------------------------------
# Row builders: data in, docker cells out

NOW = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)


def before(seconds: float) -> datetime:
    """A moment ``seconds`` before NOW (fractions chosen away from rounding edges)."""
    return NOW - timedelta(seconds=seconds)


def image_id(full_ids: dict[str, str], short: str) -> str:
    """A full image/container ID for a short one (zero-padded when the transcript never shows it)."""
    return "sha256:" + full_ids.get(short, short.ljust(64, "0"))


IMAGE_HEADERS = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
DIGEST_HEADERS = ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
HISTORY_HEADERS = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
PS_HEADERS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]

BUSYBOX_SIZE = 1_990_500  # any size in [1.985 MB, 1.995 MB) prints as 1.99MB


def image_rows(full_ids: dict[str, str], spec: list[tuple[str, str, str, float]]) -> list[list[str]]:
    """``docker images`` rows from (repo, tag, short id, age in seconds)."""
    return [[repo, tag, truncate_id(image_id(full_ids, short)),
             ago(before(age), NOW), human_size(BUSYBOX_SIZE)]
            for repo, tag, short, age in spec]


def ps_row(full_ids: dict[str, str], short: str, image: str, argv: list[str], created_age: float,
           status: str, ports: list, name: str) -> list[str]:
    """One ``docker ps`` row."""
    return [truncate_id(full_ids.get(short, short.ljust(64, "0"))), image, ps_command(argv),
            ago(before(created_age), NOW), status, format_ports(ports), name]


def no_trunc_history(block: Block) -> list[tuple[str, str]]:
    """(full id, created_by) pairs of the ``docker history --no-trunc`` block."""
    pairs = []
    for line in block.lines:
        ident, created_by, _size = line.split(" | ")
        pairs.append((ident, created_by))
    return pairs


def history_rows(entries: list[tuple[str, float, str, int, str]]) -> list[list[str]]:
    """``docker history`` rows from (id or <missing>, age, created_by, size, comment)."""
    return [[truncate_id(ident), ago(before(age), NOW), history_created_by(created_by),
             human_size(size), comment] for ident, age, created_by, size, comment in entries]


# ---------------------------------------------------------------------------
# Every docker table of the transcripts


#: Every docker table block of the transcripts, each rebuilt by one of the tests below.
COVERED_TABLES = {
    ("images-history", "docker images"),
    ("images-history", "docker images -a"),
    ("images-history", "docker history static_web"),
    ("commit", "docker ps -a"),
    ("commit", "docker images"),
    ("commit", "docker history mycommit:v1"),
    ("rmi-pull", "docker images --digests"),
    ("rmi-pull", "docker history 127.0.0.1:5000/whoami/static_web:latest  (after pull)"),
    ("fail", "docker ps -a"),
    ("fail", "docker images -a"),
    ("ports", "docker ps"),
}


def test_every_docker_table_of_the_transcripts_is_covered(blocks: list[Block]) -> None:
    tables = [b for b in blocks if b.command.startswith("docker ") and b.lines
              and b.lines[0].split()[:1] in (["REPOSITORY"], ["IMAGE"], ["CONTAINER"])]
    assert len(tables) == 12  # 5 images, 3 history, 4 ps (two ps -a in "fail")
    assert {(b.section, b.command) for b in tables} == COVERED_TABLES


def test_images_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = image_rows(full_ids, [
        ("<none>", "<none>", "d75312f4e6c4", 3.2),
        ("static_web", "latest", "f7d90c2085b6", 3.2),
        ("busybox", "latest", "fa21a25a0cd0", 7.2),
    ])
    assert render_table(IMAGE_HEADERS, rows) == get_block(blocks, "images-history", "docker images").text


def test_images_all_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = image_rows(full_ids, [
        ("<none>", "<none>", "d75312f4e6c4", 3.2),
        ("<none>", "<none>", "bcbc51f2c000", 3.2),
        ("static_web", "latest", "f7d90c2085b6", 3.2),
        ("<none>", "<none>", "a6c011cb34b9", 4.2),
        ("<none>", "<none>", "12679d831755", 4.2),
        ("<none>", "<none>", "27c4a53fc664", 4.2),
        ("<none>", "<none>", "46c12910cdff", 4.2),
        ("busybox", "latest", "fa21a25a0cd0", 7.2),
    ])
    expected = get_block(blocks, "images-history", "docker images -a").text
    assert render_table(IMAGE_HEADERS, rows) == expected


def test_images_after_commit_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = image_rows(full_ids, [
        ("mycommit", "v1", "c19dd16badf0", 0.2),
        ("<none>", "<none>", "c9c576adc6eb", 0.2),
        ("<none>", "<none>", "d75312f4e6c4", 8.2),
        ("static_web", "latest", "f7d90c2085b6", 8.2),
        ("busybox", "latest", "fa21a25a0cd0", 12.2),
    ])
    assert render_table(IMAGE_HEADERS, rows) == get_block(blocks, "commit", "docker images").text


def test_images_all_after_failure_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = image_rows(full_ids, [
        ("<none>", "<none>", "52e32dc12edb", 0.2),
        ("<none>", "<none>", "c9c576adc6eb", 20.2),
        ("127.0.0.1:5000/whoami/mycommit", "v1", "c19dd16badf0", 20.2),
        ("mycommit", "v1", "c19dd16badf0", 20.2),
        ("127.0.0.1:5000/whoami/static_web", "latest", "f7d90c2085b6", 28.2),
        ("busybox", "latest", "fa21a25a0cd0", 32.2),
    ])
    assert render_table(IMAGE_HEADERS, rows) == get_block(blocks, "fail", "docker images -a").text


def test_images_digests_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    mycommit_digest = "sha256:dd4f420b07020d49047d8544784df1853bcbb8523c252385af7e06af401b87e8"
    static_digest = "sha256:6fcd955410fd547402f110d426968b13ef916c335a6300c268723892d81e711d"
    spec = [
        ("<none>", "<none>", None, "c9c576adc6eb", 15.2),
        ("127.0.0.1:5000/whoami/mycommit", "v1", mycommit_digest, "c19dd16badf0", 15.2),
        ("mycommit", "v1", None, "c19dd16badf0", 15.2),
        ("127.0.0.1:5000/whoami/static_web", "latest", static_digest, "f7d90c2085b6", 23.2),
        ("busybox", "latest", None, "fa21a25a0cd0", 27.2),
    ]
    rows = [[repo, tag, digest or "<none>", truncate_id(image_id(full_ids, short)),
             ago(before(age), NOW), human_size(BUSYBOX_SIZE)]
            for repo, tag, digest, short, age in spec]
    expected = get_block(blocks, "rmi-pull", "docker images --digests").text
    assert render_table(DIGEST_HEADERS, rows) == expected


def _static_web_history(blocks: list[Block]) -> list[tuple[str, str]]:
    return no_trunc_history(get_block(
        blocks, "images-history", "docker history --no-trunc static_web (CREATED BY column)"))


def test_history_table(blocks: list[Block]) -> None:
    pairs = _static_web_history(blocks)
    ages = [3.2, 3.2, 4.2, 4.2, 4.2, 7.2]
    sizes = [0, 29, 6, 0, 0, BUSYBOX_SIZE]
    comments = ["", "", "", "", "", "Imported from -"]
    rows = history_rows([(ident, age, created_by, size, comment) for (ident, created_by), age, size,
                         comment in zip(pairs, ages, sizes, comments)])
    expected = get_block(blocks, "images-history", "docker history static_web").text
    assert render_table(HISTORY_HEADERS, rows) == expected
    assert "0B        \n" in expected  # the padded SIZE cell before an empty COMMENT


def test_history_after_pull_table(blocks: list[Block]) -> None:
    pairs = _static_web_history(blocks)
    ages = [23.2, 23.2, 24.2, 24.2, 24.2, 27.2]
    sizes = [0, 29, 6, 0, 0, BUSYBOX_SIZE]
    comments = ["", "", "", "", "", "Imported from -"]
    entries = [(ident if i == 0 else "<missing>", age, created_by, size, comment)
               for i, ((ident, created_by), age, size, comment)
               in enumerate(zip(pairs, ages, sizes, comments))]
    expected = get_block(blocks, "rmi-pull",
                         "docker history 127.0.0.1:5000/whoami/static_web:latest  (after pull)").text
    assert render_table(HISTORY_HEADERS, history_rows(entries)) == expected


def test_history_of_commit_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    entries = [
        (image_id(full_ids, "c19dd16badf0"), 0.2, "sh -c echo committed > /committed.txt", 10,
         "add committed.txt"),
        (image_id(full_ids, "fa21a25a0cd0"), 12.2, "", BUSYBOX_SIZE, "Imported from -"),
    ]
    expected = get_block(blocks, "commit", "docker history mycommit:v1").text
    assert render_table(HISTORY_HEADERS, history_rows(entries)) == expected


def test_history_no_trunc_created_by_is_untouched(blocks: list[Block]) -> None:
    for _ident, created_by in _static_web_history(blocks):
        assert history_created_by(created_by, no_trunc=True) == created_by


WEB1_ARGV = ["sh", "-c", "echo committed > /committed.txt"]


def test_ps_after_commit_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = [ps_row(full_ids, "9410576a7058", "busybox", WEB1_ARGV, 0.2,
                   status_exited(0, before(0.1), NOW), [], "web1")]
    assert render_table(PS_HEADERS, rows) == get_block(blocks, "commit", "docker ps -a").text


def test_ps_after_failed_build_tables(blocks: list[Block], full_ids: dict[str, str]) -> None:
    failed_argv = ["/bin/sh", "-c", "false"]
    first = [
        ps_row(full_ids, "19fab02d9fc3", "52e32dc12edb", failed_argv, 0.2,
               status_exited(1, before(0.1), NOW), [], "amazing_merkle"),
        ps_row(full_ids, "9410576a7058", "busybox", WEB1_ARGV, 20.2,
               status_exited(0, before(20.1), NOW), [], "web1"),
    ]
    second = [
        ps_row(full_ids, "19fab02d9fc3", "52e32dc12edb", failed_argv, 4.2,
               status_exited(1, before(0.1), NOW), [], "amazing_merkle"),
        ps_row(full_ids, "9410576a7058", "busybox", WEB1_ARGV, 24.2,
               status_exited(0, before(23.9), NOW), [], "web1"),
    ]
    assert render_table(PS_HEADERS, first) == get_block(blocks, "fail", "docker ps -a", 0).text
    assert render_table(PS_HEADERS, second) == get_block(blocks, "fail", "docker ps -a", 1).text


def test_ps_with_published_port_table(blocks: list[Block], full_ids: dict[str, str]) -> None:
    rows = [ps_row(full_ids, "841ba3d72d38", "busybox", ["httpd", "-f", "-p", "80"], 0.2,
                   status_up(before(0.1), NOW), [("127.0.0.1", 8080, 80, "tcp")], "web")]
    assert render_table(PS_HEADERS, rows) == get_block(blocks, "ports", "docker ps").text


def test_docker_port_lines(blocks: list[Block]) -> None:
    assert get_block(blocks, "ports", "docker port web").text == (
        port_mapping(80, "tcp", "127.0.0.1", 8080) + "\n")
    random_port = [b for b in blocks if b.section == "ports" and b.command.startswith("docker run -d -P")]
    assert random_port[0].text == (port_mapping(80, "tcp", "0.0.0.0", 32768) + "\n"
                                   + port_mapping(80, "tcp", "::", 32768) + "\n")


# ---------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize("size, expected", [
    (0, "0B"), (1, "1B"), (29, "29B"), (999, "999B"), (1000, "1kB"), (1001, "1kB"),
    (1125, "1.12kB"),          # exact tie, rounded half to even like Go
    (1135, "1.14kB"),
    (10_000, "10kB"), (99_999, "100kB"), (999_499, "999kB"),
    (999_500, "1e+03kB"), (999_999, "1e+03kB"),  # Go's %.3g really prints this
    (1_000_000, "1MB"), (1_234_567, "1.23MB"), (1_990_000, "1.99MB"), (2_138_112, "2.14MB"),
    (10_000_000, "10MB"), (123_456_789, "123MB"), (5 * 10**9, "5GB"), (10**12, "1TB"),
    (10**15, "1PB"), (10**18, "1EB"), (10**21, "1ZB"), (10**24, "1YB"), (10**27, "1e+03YB"),
    (-5, "-5B"), (-5000, "-5e+03B"),
    (2.5, "2.5B"), (float("inf"), "+InfYB"), (float("nan"), "NaNB"),
])
def test_human_size(size: float, expected: str) -> None:
    assert human_size(size) == expected


def test_human_size_precision_4_is_units_human_size() -> None:
    assert human_size(1_234_567, 4) == "1.235MB"
    assert human_size(2_746_000, 4) == "2.746MB"


# ---------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize("seconds, expected", [
    (-5, "Less than a second"), (0, "Less than a second"), (0.999999999, "Less than a second"),
    (1, "1 second"), (1.9, "1 second"), (2, "2 seconds"), (59.99, "59 seconds"),
    (60, "About a minute"), (119.9, "About a minute"), (120, "2 minutes"),
    (59 * 60 + 59, "59 minutes"),
    (3600, "About an hour"), (89 * 60 + 59, "About an hour"), (90 * 60, "2 hours"),
    (47 * 3600 + 29 * 60, "47 hours"), (47.5 * 3600, "2 days"), (13 * 86400, "13 days"),
    (14 * 86400 - 1801, "13 days"), (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"),
    (60 * 86400, "2 months"), (729 * 86400, "24 months"), (730 * 86400, "2 years"),
    (3 * 365 * 86400 + 1, "3 years"),
])
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_human_duration_accepts_timedelta() -> None:
    assert human_duration(timedelta(minutes=5, seconds=30)) == "5 minutes"
    assert human_duration(timedelta(microseconds=999_999)) == "Less than a second"


def test_ago_floors_created_to_the_second_like_the_api() -> None:
    now = datetime(2024, 1, 1, 0, 0, 1, 100000, tzinfo=timezone.utc)
    # created 0.9 s earlier, but the API reports it as 00:00:00 -> 1.1 s
    assert ago(now - timedelta(seconds=0.9), now) == "1 second ago"
    assert ago(datetime(2024, 1, 1, 0, 0, 1, tzinfo=timezone.utc), now) == "Less than a second ago"
    assert ago(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() - 3600 * 3, now) == "3 hours ago"
    assert ago(datetime(2023, 12, 31, 23, 58), now.replace(tzinfo=None)) == "2 minutes ago"


def test_container_statuses() -> None:
    now = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    assert status_created() == "Created"
    assert status_up(now - timedelta(seconds=0.5), now) == "Up Less than a second"
    assert status_up(now - timedelta(seconds=5), now) == "Up 5 seconds"
    assert status_up(now - timedelta(hours=2), now, paused=True) == "Up 2 hours (Paused)"
    assert status_up(now - timedelta(seconds=1), now, health="starting") == "Up 1 second (health: starting)"
    assert status_up(now - timedelta(minutes=1), now, health="healthy") == "Up About a minute (healthy)"
    assert status_exited(0, now - timedelta(seconds=3), now) == "Exited (0) 3 seconds ago"
    assert status_exited(137, now - timedelta(days=3), now) == "Exited (137) 3 days ago"
    assert status_restarting(1, now - timedelta(seconds=10), now) == "Restarting (1) 10 seconds ago"


# ---------------------------------------------------------------------------
# Times


def test_docker_inspect_time() -> None:
    assert docker_inspect_time(datetime(2024, 1, 1, tzinfo=timezone.utc)) == "2024-01-01T00:00:00Z"
    assert docker_inspect_time(datetime(2024, 1, 1)) == "2024-01-01T00:00:00Z"
    assert docker_inspect_time(datetime(2024, 1, 1, 0, 0, 0, 120000)) == "2024-01-01T00:00:00.12Z"
    assert docker_inspect_time(1_704_067_200_123_456_789) == "2024-01-01T00:00:00.123456789Z"
    assert docker_inspect_time(1_704_067_200_100_000_000) == "2024-01-01T00:00:00.1Z"
    assert docker_inspect_time(datetime(1, 1, 1)) == GO_ZERO_TIME == "0001-01-01T00:00:00Z"
    plus2 = timezone(timedelta(hours=2))
    assert docker_inspect_time(datetime(2024, 1, 1, 3, 4, 5, 6, tzinfo=plus2)) == (
        "2024-01-01T03:04:05.000006+02:00")
    minus = timezone(-timedelta(hours=5, minutes=30))
    assert rfc3339(datetime(2024, 6, 1, 8, 0, 0, 999999, tzinfo=minus)) == "2024-06-01T08:00:00-05:30"


# ---------------------------------------------------------------------------
# IDs, ellipsis, quoting, commands


@pytest.mark.parametrize("ident, expected", [
    ("sha256:f7d90c2085b63f337ca342b9173094640ccdc577bec8e3f16b9d3269270d9ff4", "f7d90c2085b6"),
    ("f7d90c2085b63f337ca342b9173094640ccdc577bec8e3f16b9d3269270d9ff4", "f7d90c2085b6"),
    ("f7d90c2085b6", "f7d90c2085b6"), ("abc", "abc"), ("<missing>", "<missing>"),
    ("sha512:0123456789abcdef", "0123456789ab"),
])
def test_truncate_id(ident: str, expected: str) -> None:
    assert truncate_id(ident) == expected


@pytest.mark.parametrize("source, width, expected", [
    # docker/cli v20.10.24 cli/command/formatter/displayutils_test.go
    ("t🐳ststring", 0, ""), ("t🐳ststring", 1, "t"), ("t🐳ststring", 2, "t…"),
    ("t🐳ststring", 6, "t🐳st…"), ("t🐳ststring", 20, "t🐳ststring"),
    ("你好世界teststring", 0, ""), ("你好世界teststring", 1, "你"), ("你好世界teststring", 3, "你…"),
    ("你好世界teststring", 6, "你好…"), ("你好世界teststring", 20, "你好世界teststring"),
    # ASCII fast path and Go's quirk of returning the whole string
    ("abcdef", 6, "abcdef"), ("abcdefg", 6, "abcde…"), ("", 1, ""), ("你好世界", 2, "你好世界"),
    ("éèàù", 3, "éè…"),
])
def test_ellipsis(source: str, width: int, expected: str) -> None:
    assert ellipsis(source, width) == expected


@pytest.mark.parametrize("text, expected", [
    ("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'),
    ("tab\there\nnl", '"tab\\there\\nnl"'), ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
    ("a\u00a0b", '"a\\u00a0b"'), ("\u200b", '"\\u200b"'), ("\U000e0001", '"\\U000e0001"'),
    ("…é🐳", '"…é🐳"'), ("\a\b\f\r\v", '"\\a\\b\\f\\r\\v"'),
    (b"\xff".decode("utf-8", "surrogateescape"), '"\\xff"'),
])
def test_go_quote(text: str, expected: str) -> None:
    assert go_quote(text) == expected


def test_container_command_quotes_args_with_spaces_only() -> None:
    assert container_command(["sh", "-c", "echo committed > /committed.txt"]) == (
        "sh -c 'echo committed > /committed.txt'")
    assert container_command(["httpd", "-f", "-p", "80"]) == "httpd -f -p 80"
    assert container_command(["/bin/sh"]) == "/bin/sh"
    assert container_command(["echo", "", "it's"]) == "echo  it's"
    assert container_command([]) == ""


def test_ps_command() -> None:
    assert ps_command(["sh", "-c", "echo committed > /committed.txt"]) == '"sh -c \'echo committ…"'
    assert ps_command(["/bin/sh", "-c", "false"]) == '"/bin/sh -c false"'
    assert ps_command(["sh", "-c", "echo committed > /committed.txt"], no_trunc=True) == (
        '"sh -c \'echo committed > /committed.txt\'"')
    assert ps_command(["echo", 'say "x"']) == '"echo \'say \\"x\\"\'"'


def test_history_created_by() -> None:
    created_by = '/bin/sh -c #(nop)  CMD ["cat" "/var/www/html/index.html"]'
    assert history_created_by(created_by) == '/bin/sh -c #(nop)  CMD ["cat" "/var/www/html…'
    assert len(history_created_by(created_by)) == 45
    assert history_created_by("a\tb") == "a b"
    assert history_created_by("x" * 45) == "x" * 45
    assert history_created_by("x\ty" * 30, no_trunc=True) == "x y" * 30


# ---------------------------------------------------------------------------
# Tabwriter


@pytest.mark.parametrize("minwidth, padding, padchar, src, expected", [
    # Go src/text/tabwriter/tabwriter_test.go cases with flags 0 and a non-tab padchar
    (8, 1, ".", "", ""),
    (8, 1, ".", "\n\n\n", "\n\n\n"),
    (8, 1, ".", "a\nb\nc", "a\nb\nc"),
    (8, 1, ".", "\t", ""),
    (8, 1, ".", "*\t*", "*.......*"),
    (8, 1, ".", "*\t*\n", "*.......*\n"),
    (8, 1, ".", "*\t*\t", "*.......*"),
    (8, 1, ".", "\t\n", "........\n"),
    (8, 1, ".", "a) foo", "a) foo"),
    (8, 1, " ", "b) foo\tbar", "b) foo  bar"),
    (8, 1, ".", "c) foo\tbar\t", "c) foo..bar"),
    (8, 1, ".", "d) foo\tbar\n", "d) foo..bar\n"),
    (8, 1, ".", "e) foo\tbar\t\n", "e) foo..bar.....\n"),
    (8, 1, "*", "Hello, world!\n", "Hello, world!\n"),
    (1, 0, ".", "1\t2\t3\t4\n11\t222\t3333\t44444\n", "1.2..3...4\n11222333344444\n"),
    (1, 0, ".", "1\t2\t3\t4\f11\t222\t3333\t44444\n", "1234\n11222333344444\n"),
    (5, 0, ".", "1\t2\t3\t4\n", "1....2....3....4\n"),
    (5, 0, ".", "1\t2\t3\t4\t\n", "1....2....3....4....\n"),
    (8, 1, ".", "本\tb\tc\naa\t本本本\tcccc\tddddd\naaa\tbbbb\n",
     "本.......b.......c\naa......本本本.....cccc....ddddd\naaa.....bbbb\n"),
    (2, 0, " ", "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n", "a  b  c\naa bbbcccc\naaabbbb\n"),
    (8, 1, "_", "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
     "a_______b_______c\naa______bbb_____cccc\naaa_____bbbb\n"),
    (4, 1, "-",
     "4444\t日本語\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
     "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
     "4444------日本語-22--1---333\n999999999-22\n7---------22\n------------------88888888\n\n"
     "666666-666666-666666----4444\n1------1------999999999-0000000000\n"),
    (4, 3, ".",
     "4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
     "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
     "4444........333...22...1...333\n999999999...22\n7...........22\n....................88888888\n\n"
     "666666...666666...666666......4444\n1........1........999999999...0000000000\n"),
    (4, 0, ".", "a\t\tb", "a.......b"),
])
def test_tabwrite_matches_go(minwidth: int, padding: int, padchar: str, src: str, expected: str) -> None:
    assert tabwrite(src, minwidth=minwidth, padding=padding, padchar=padchar) == expected


def test_render_table_docker_settings() -> None:
    out = render_table(["A", "LONGER HEADER", "LAST"], [["x", "y", ""], ["wide-cell-value", "", "z"]])
    assert out == ("A                 LONGER HEADER   LAST\n"
                   "x                 y               \n"
                   "wide-cell-value                   z\n")
    assert render_table(["REPOSITORY", "TAG"], []) == "REPOSITORY   TAG\n"


def test_tabwrite_rejects_tab_padding() -> None:
    with pytest.raises(ValueError):
        tabwrite("a\tb", padchar="\t")


# ---------------------------------------------------------------------------
# Ports


def _p(ip: str, public: int, private: int, proto: str) -> tuple[str, int, int, str]:
    return (ip, public, private, proto)


@pytest.mark.parametrize("ports, expected", [
    # docker/cli v20.10.24 cli/command/formatter/container_test.go TestDisplayablePorts
    ([_p("", 0, 9988, "tcp")], "9988/tcp"),
    ([_p("", 0, 9988, "udp")], "9988/udp"),
    ([_p("0.0.0.0", 0, 9988, "tcp")], "0.0.0.0:0->9988/tcp"),
    ([_p("", 8899, 9988, "tcp")], "9988/tcp"),
    ([_p("4.3.2.1", 8899, 9988, "tcp")], "4.3.2.1:8899->9988/tcp"),
    ([_p("4.3.2.1", 9988, 9988, "tcp")], "4.3.2.1:9988->9988/tcp"),
    ([_p("", 0, 9988, "udp"), _p("", 0, 9988, "udp")], "9988/udp, 9988/udp"),
    ([_p("1.2.3.4", 9998, 9998, "udp"), _p("1.2.3.4", 9999, 9999, "udp")],
     "1.2.3.4:9998-9999->9998-9999/udp"),
    ([_p("1.2.3.4", 8887, 9998, "udp"), _p("1.2.3.4", 8888, 9999, "udp")],
     "1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp"),
    ([_p("", 0, 9998, "udp"), _p("", 0, 9999, "udp")], "9998-9999/udp"),
    ([_p("1.2.3.4", 7766, 6677, "tcp"), _p("", 8899, 9988, "udp")], "9988/udp, 1.2.3.4:7766->6677/tcp"),
    ([_p("1.2.3.4", 8899, 9988, "udp"), _p("1.2.3.4", 8899, 9988, "tcp"), _p("4.3.2.1", 3322, 2233, "tcp")],
     "4.3.2.1:3322->2233/tcp, 1.2.3.4:8899->9988/tcp, 1.2.3.4:8899->9988/udp"),
    ([_p("", 8899, 9988, "udp"), _p("1.2.3.4", 7766, 6677, "tcp"), _p("4.3.2.1", 3322, 2233, "tcp")],
     "9988/udp, 4.3.2.1:3322->2233/tcp, 1.2.3.4:7766->6677/tcp"),
    ([_p("", 0, 80, "tcp"), _p("", 0, 1024, "tcp"), _p("", 0, 80, "udp"), _p("", 0, 1024, "udp"),
      _p("1.1.1.1", 80, 1024, "tcp"), _p("1.1.1.1", 80, 1024, "udp"),
      _p("1.1.1.1", 1024, 80, "tcp"), _p("1.1.1.1", 1024, 80, "udp"),
      _p("2.1.1.1", 80, 1024, "tcp"), _p("2.1.1.1", 80, 1024, "udp"),
      _p("2.1.1.1", 1024, 80, "tcp"), _p("2.1.1.1", 1024, 80, "udp"), _p("", 0, 12345, "sctp")],
     "80/tcp, 80/udp, 1024/tcp, 1024/udp, 12345/sctp, 1.1.1.1:1024->80/tcp, 1.1.1.1:1024->80/udp, "
     "2.1.1.1:1024->80/tcp, 2.1.1.1:1024->80/udp, 1.1.1.1:80->1024/tcp, 1.1.1.1:80->1024/udp, "
     "2.1.1.1:80->1024/tcp, 2.1.1.1:80->1024/udp"),
    # LayerLab cases: the transcript's bindings, IPv4 + IPv6 wildcard, None for "not published"
    ([_p("127.0.0.1", 8080, 80, "tcp")], "127.0.0.1:8080->80/tcp"),
    ([_p("::", 32768, 80, "tcp"), _p("0.0.0.0", 32768, 80, "tcp")], "0.0.0.0:32768->80/tcp, :::32768->80/tcp"),
    ([(None, None, 80, "tcp"), (None, None, 81, "tcp"), (None, None, 83, "tcp")], "80-81/tcp, 83/tcp"),
    ([], ""),
])
def test_format_ports(ports: list, expected: str) -> None:
    assert format_ports(ports) == expected
