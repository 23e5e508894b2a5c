"""Docker-cli 20.10 compatible text formatting: sizes, durations, IDs, tables, ports, times.

Every function here is pure (no I/O, no engine imports) and mirrors one piece of
docker-cli / moby / go-units behaviour, so that LayerLab prints byte for byte what
``docker`` 20.10 prints.  Sources (tags ``v20.10.24`` of docker/cli and moby/moby,
``v0.4.0`` of docker/go-units, Go's ``text/tabwriter`` and ``strconv``):

* ``human_size``          go-units ``size.go`` ``HumanSizeWithPrecision`` (``%.*g`` + decimal unit)
* ``human_duration``      go-units ``duration.go`` ``HumanDuration``
* ``ago``                 cli ``formatter/image.go`` ``CreatedSince`` / ``container.go`` ``RunningFor``
                          / ``image/formatter_history.go`` ``CreatedSince``
* ``status_*``            moby ``container/state.go`` ``State.String``
* ``truncate_id``         moby ``pkg/stringid`` ``TruncateID``
* ``ellipsis``            cli ``formatter/displayutils.go`` ``Ellipsis``
* ``container_command``   moby ``container/view.go`` (the ``Command`` field of ``docker ps``)
* ``ps_command``          cli ``formatter/container.go`` ``Command`` (Ellipsis 20 + ``strconv.Quote``)
* ``history_created_by``  cli ``image/formatter_history.go`` ``CreatedBy`` (tabs -> space, Ellipsis 45)
* ``tabwrite`` /
  ``render_table``        cli ``formatter/formatter.go`` ``postFormat``:
                          ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``
* ``format_ports``        cli ``formatter/container.go`` ``DisplayablePorts``
* ``port_mapping``        cli ``container/port.go`` (``docker port`` lines)
* ``docker_inspect_time`` Go ``time.RFC3339Nano`` (what ``docker inspect`` JSON carries)
"""
from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from .values import value

__all__ = [
    "DECIMAL_UNITS",
    "GO_ZERO_TIME",
    "human_size",
    "human_duration",
    "ago",
    "status_created",
    "status_up",
    "status_restarting",
    "status_exited",
    "truncate_id",
    "ellipsis",
    "go_quote",
    "container_command",
    "ps_command",
    "history_created_by",
    "tabwrite",
    "render_table",
    "format_ports",
    "port_mapping",
    "docker_inspect_time",
    "rfc3339",
]

# ---------------------------------------------------------------------------
# Sizes

#: go-units ``decimapAbbrs`` (sic), base 1000.
DECIMAL_UNITS: tuple[str, ...] = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _go_g(value: float, precision: int) -> str:
    """Format ``value`` like Go's ``fmt.Sprintf("%.*g", precision, value)``.

    For finite numbers Python's ``%g`` agrees with Go's: both round the exact
    binary value half-to-even, switch to exponent form when ``exp < -4 or
    exp >= precision``, strip trailing zeros and print at least two exponent
    digits (``1e+03``).  Only the spelling of the non-finite values differs.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "%.*g" % (max(precision, 1), value)


def human_size(size: int | float, precision: int = 3) -> str:
    """Docker's image/history SIZE column: ``units.HumanSizeWithPrecision(size, 3)``.

    Divides by 1000 while ``size >= 1000`` (at most up to ``YB``) and prints the
    result with ``%.3g``: ``0 -> "0B"``, ``1000 -> "1kB"``, ``1990000 -> "1.99MB"``,
    ``999999 -> "1e+03kB"`` (Go's ``%g`` really does print that).
    ``precision=4`` gives ``units.HumanSize``.
    """
    value = float(size)
    unit = 0
    while value >= 1000.0 and unit < len(DECIMAL_UNITS) - 1:
        value = value / 1000.0
        unit += 1
    return _go_g(value, precision) + DECIMAL_UNITS[unit]


# ---------------------------------------------------------------------------
# Durations and times

_NS_PER_SECOND = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_SECOND
_NS_PER_HOUR = 60 * _NS_PER_MINUTE


def _to_nanoseconds(duration: float | timedelta) -> int:
    """A duration as whole nanoseconds (Go's ``time.Duration``)."""
    if isinstance(duration, timedelta):
        seconds = duration.days * 86400 + duration.seconds
        return seconds * _NS_PER_SECOND + duration.microseconds * 1000
    return int(round(duration * _NS_PER_SECOND))


def _go_div(a: int, b: int) -> int:
    """Go integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _duration_float(ns: int, unit: int) -> float:
    """Go's ``Duration.Seconds/Minutes/Hours``: whole units plus the float remainder."""
    whole = _go_div(ns, unit)
    rest = ns - whole * unit
    return float(whole) + float(rest) / float(unit)


def human_duration(duration: float | timedelta) -> str:
    """go-units ``HumanDuration`` for a duration in seconds (or a ``timedelta``).

    Thresholds (``int()`` truncates, hours are rounded half up):
    < 1 s "Less than a second"; 1 s "1 second"; < 60 s "N seconds";
    1 min "About a minute"; < 60 min "N minutes"; round(h) == 1 "About an hour";
    < 48 h "N hours"; < 14 days "N days"; < 60 days "N weeks" (h/24/7);
    < 730 days "N months" (h/24/30); else "N years" (trunc(h)/24/365).
    Negative durations give "Less than a second".
    """
    ns = _to_nanoseconds(duration)
    seconds = int(_duration_float(ns, _NS_PER_SECOND))
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(_duration_float(ns, _NS_PER_MINUTE))
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(_duration_float(ns, _NS_PER_HOUR) + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(_duration_float(ns, _NS_PER_HOUR)) // 24 // 365} years"


def _aware(dt: datetime) -> datetime:
    """Treat a naive datetime as UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _now(now: datetime | None) -> datetime:
    """``now`` made timezone-aware, defaulting to the current UTC time."""
    return datetime.now(timezone.utc) if now is None else _aware(now)


def _floor_to_second(dt: datetime) -> datetime:
    """``time.Unix(t.Unix(), 0)``: drop the sub-second part (floor on the epoch axis)."""
    return _aware(dt).replace(microsecond=0)


def ago(created: datetime | int | float, now: datetime | None = None) -> str:
    """The CREATED column of ``docker images``/``ps``/``history``: ``HumanDuration(now - created) + " ago"``.

    The Engine API hands the CLI ``Created`` as whole Unix seconds, so ``created``
    is floored to the second first (a datetime, or Unix seconds as int/float);
    ``now`` keeps its fraction, exactly as the CLI's ``time.Now()``.
    """
    if isinstance(created, datetime):
        base = _floor_to_second(created)
    else:
        base = datetime.fromtimestamp(math.floor(created), timezone.utc)
    return human_duration(_now(now) - base) + " ago"


def status_created() -> str:
    """STATUS of a container that was never started."""
    return "Created"


def status_up(started: datetime, now: datetime | None = None, *,
              paused: bool = False, health: str | None = None) -> str:
    """STATUS of a running container: ``Up 5 seconds``, ``Up 2 hours (Paused)``, ``Up 1 second (healthy)``.

    ``health`` is the health status (``"starting"`` prints as ``health: starting``);
    paused wins over health, as in moby.  The start time is not truncated.
    """
    text = "Up " + human_duration(_now(now) - _aware(started))
    if paused:
        return text + " (Paused)"
    if health is not None:
        return f"{text} ({'health: starting' if health == 'starting' else health})"
    return text


def status_restarting(code: int, finished: datetime, now: datetime | None = None) -> str:
    """STATUS of a restarting container: ``Restarting (1) 3 seconds ago``."""
    return f"Restarting ({code}) {human_duration(_now(now) - _aware(finished))} ago"


def status_exited(code: int, finished: datetime, now: datetime | None = None) -> str:
    """STATUS of a stopped container: ``Exited (0) 3 seconds ago``."""
    return f"Exited ({code}) {human_duration(_now(now) - _aware(finished))} ago"


#: Go's zero ``time.Time`` as ``docker inspect`` prints it (e.g. ``FinishedAt`` of a new container).
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def _zone_suffix(dt: datetime) -> str:
    """Go's ``Z07:00``: ``Z`` for a zero offset, else ``+hh:mm`` / ``-hh:mm`` (seconds dropped)."""
    offset = dt.utcoffset() or timedelta(0)
    seconds = offset.days * 86400 + offset.seconds
    if seconds == 0:
        return "Z"
    minutes = _go_div(seconds, 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _go_clock(dt: datetime) -> str:
    """``2006-01-02T15:04:05`` with a zero-padded four-digit year."""
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
            f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")


def docker_inspect_time(dt: datetime | int) -> str:
    """Go ``time.RFC3339Nano`` (``2006-01-02T15:04:05.999999999Z07:00``).

    ``dt`` is a datetime (naive = UTC) or Unix time in integer nanoseconds (UTC).
    The fraction is printed without trailing zeros and dropped when zero:
    ``2024-01-01T00:00:00Z``, ``2024-01-01T00:00:00.123456789Z``.
    """
    if isinstance(dt, int):
        seconds, nanos = divmod(dt, _NS_PER_SECOND)
        moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    else:
        moment = _aware(dt)
        nanos = moment.microsecond * 1000
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return _go_clock(moment) + fraction + _zone_suffix(moment)


def rfc3339(dt: datetime) -> str:
    """Go ``time.RFC3339`` (whole seconds), as in ``docker history --human=false``."""
    moment = _aware(dt)
    return _go_clock(moment) + _zone_suffix(moment)


# ---------------------------------------------------------------------------
# IDs and strings


def truncate_id(id: str) -> str:
    """moby ``stringid.TruncateID``: drop everything up to the first ``:``, keep 12 chars."""
    _, sep, rest = id.partition(":")
    return (rest if sep else id)[:12]


def _char_width(ch: str) -> int:
    """cli ``charWidth``: 2 for East Asian Wide/Fullwidth, else 1."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, max_display_width: int) -> str:
    """docker-cli ``formatter.Ellipsis``: cut ``s`` to a display width, ending in ``…``.

    Pure ASCII: keep ``n-1`` chars plus ``…`` when longer than ``n``.  Otherwise
    wide (East Asian W/F) characters count 2.  ``n <= 0`` gives ``""``; ``n == 1``
    gives the first character without ``…``.  Like Go, a string whose first
    character alone is wider than ``n-1`` is returned whole.
    """
    if max_display_width <= 0:
        return ""
    if max_display_width == 1:
        return s[:1]
    if s.isascii():
        if len(s) <= max_display_width:
            return s
        return s[: max_display_width - 1] + "…"
    display: list[int] = []
    total = 0
    for ch in s:
        total += _char_width(ch)
        display.append(total)
    if total <= max_display_width:
        return s
    limit = max_display_width - 1
    for i in range(len(display) - 1):
        if display[i] <= limit < display[i + 1]:
            return s[: i + 1] + "…"
    return s


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_escape_rune(ch: str) -> str:
    """Go ``strconv`` escape for one non-printable rune."""
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte smuggled in by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:  # not a valid rune: Go prints U+FFFD
        return "\\ufffd"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(s: str) -> str:
    """Go ``strconv.Quote``: double quotes, ``\\"``/``\\\\`` escaped, non-printables escaped.

    Go's ``unicode.IsPrint`` (letters, marks, numbers, punctuation, symbols and
    ASCII space) is the same class as Python's ``str.isprintable``.
    """
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_go_escape_rune(ch))
    out.append('"')
    return "".join(out)


def container_command(argv: Sequence[str]) -> str:
    """The daemon's ``Command`` string for ``docker ps``: path, then args.

    Arguments containing a space are wrapped in single quotes (nothing else is
    escaped): ``["sh", "-c", "echo hi > /f"]`` -> ``sh -c 'echo hi > /f'``.
    """
    if not argv:
        return ""
    path, args = argv[0], argv[1:]
    if not args:
        return path
    return path + " " + " ".join(f"'{a}'" if " " in a else a for a in args)


def ps_command(argv: Sequence[str], no_trunc: bool = False) -> str:
    """The COMMAND column of ``docker ps``: ``"sh -c 'echo committ…"``.

    ``container_command`` cut with ``ellipsis(…, 20)`` (unless ``no_trunc``),
    then quoted with Go's ``strconv.Quote``.
    """
    command = container_command(argv)
    if not no_trunc:
        command = ellipsis(command, 20)
    return go_quote(command)


def history_created_by(created_by: str, no_trunc: bool = False) -> str:
    """The CREATED BY column of ``docker history``: tabs become spaces, cut at 45."""
    text = created_by.replace("\t", " ")
    return text if no_trunc else ellipsis(text, 45)


# ---------------------------------------------------------------------------
# Tables (Go text/tabwriter with docker-cli's settings)


@value
class _Cell:
    """One tabwriter cell: its text and its width in runes."""

    text: str

    @property
    def width(self) -> int:
        """Go's tabwriter counts runes, not display columns."""
        return len(self.text)


def _split_cells(line: str) -> list[_Cell]:
    """Cells of one terminated line: every tab/vtab ends a cell, the line break ends the last."""
    return [_Cell(part) for part in line.replace("\v", "\t").split("\t")]


def _parse_lines(section: str) -> list[list[_Cell]]:
    """Lines of cells; the text after the last newline forms the (unterminated) last line.

    As in Go, an empty trailing cell of that last line is never terminated, so it
    does not exist.
    """
    *complete, tail = section.split("\n")
    lines = [_split_cells(line) for line in complete]
    last = _split_cells(tail)
    if last and last[-1].text == "":
        last.pop()
    lines.append(last)
    return lines


@value(frozen=False)
class _TabFormatter:
    """Go's ``tabwriter.Writer.format``/``writeLines`` for left-aligned, space-padded output."""

    lines: list[list[_Cell]]
    minwidth: int
    padding: int
    padchar: str

    def run(self) -> str:
        """Format all lines."""
        out: list[str] = []
        self._format(out, [], 0, len(self.lines))
        return "".join(out)

    def _write_lines(self, out: list[str], widths: list[int], line0: int, line1: int) -> None:
        """Emit lines ``[line0, line1)``; cells in a known column are padded to its width."""
        for i in range(line0, line1):
            for j, cell in enumerate(self.lines[i]):
                out.append(cell.text)
                if j < len(widths):
                    out.append(self.padchar * (widths[j] - cell.width))
            if i + 1 != len(self.lines):
                out.append("\n")

    def _format(self, out: list[str], widths: list[int], line0: int, line1: int) -> None:
        """Recursive column-block layout (elastic tabstops), as in Go."""
        column = len(widths)
        this = line0
        while this < line1:
            if column < len(self.lines[this]) - 1:
                self._write_lines(out, widths, line0, this)
                line0 = this
                width = self.minwidth
                while this < line1 and column < len(self.lines[this]) - 1:
                    width = max(width, self.lines[this][column].width + self.padding)
                    this += 1
                self._format(out, widths + [width], line0, this)
                line0 = this
            this += 1
        self._write_lines(out, widths, line0, line1)


def tabwrite(text: str, minwidth: int = 10, padding: int = 3, padchar: str = " ") -> str:
    """Run ``text`` through Go's ``text/tabwriter`` (flags 0, non-tab ``padchar``).

    Defaults are docker-cli's ``NewWriter(out, 10, 1, 3, ' ', 0)``.  Tab-terminated
    cells of contiguous lines form a column padded to ``max(minwidth, widest +
    padding)``; the last cell of a line is never padded; ``\\f`` ends every
    column (it is output as a newline).  Widths are counted in code points.
    """
    if len(padchar) != 1 or padchar == "\t":
        raise ValueError("padchar must be a single non-tab character")
    sections = text.split("\f")
    parts = [
        _TabFormatter(_parse_lines(sec + ("\n" if k < len(sections) - 1 else "")),
                      minwidth, padding, padchar).run()
        for k, sec in enumerate(sections)
    ]
    return "".join(parts)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A docker-cli table: header line and one line per row, each ending in ``\\n``.

    The cells are joined with tabs exactly as the CLI's ``table`` templates do and
    laid out by ``tabwrite``.  The result includes the final newline, so write it
    with ``sys.stdout.write`` (or ``print(..., end="")``).
    """
    text = "\t".join(headers) + "\n" + "".join("\t".join(row) + "\n" for row in rows)
    return tabwrite(text)


# ---------------------------------------------------------------------------
# Ports

PortTuple = tuple[str | None, int | None, int, str]
"""``(host_ip, host_port, container_port, proto)``; ``host_ip`` empty/None = exposed only."""


def _form_group(key: str, start: int, last: int) -> str:
    """cli ``formGroup``: ``80/tcp``, ``80-81/tcp`` or ``1.2.3.4:80-81->80-81/tcp``."""
    parts = key.split("/")
    ip, proto = ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{proto}"


def format_ports(ports: Iterable[PortTuple]) -> str:
    """The PORTS column of ``docker ps`` (docker-cli 20.10 ``DisplayablePorts``).

    Ports are sorted by (container port, host IP, host port, proto).  Exposed-only
    ports and ports published to the *same* host port are grouped into ranges of
    consecutive ports per (IP, proto) and come first, in order of first
    appearance (a group broken by a gap is emitted as soon as it breaks); other
    mappings follow as ``IP:HOST->PORT/proto``.  20.10 does not bracket IPv6
    addresses: ``0.0.0.0:32768->80/tcp, :::32768->80/tcp``.  A host port given
    without a host IP is ignored, as in Docker.
    """
    norm = sorted(((ip or "", host or 0, int(cport), proto) for ip, host, cport, proto in ports),
                  key=lambda p: (p[2], p[0], p[1], p[3]))
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for ip, host, current, proto in norm:
        key = proto
        if ip:
            if host != current:
                mappings.append(f"{ip}:{host}->{current}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
            continue
        if current == (group[1] + 1) & 0xFFFF:
            group[1] = current
            continue
        result.append(_form_group(key, group[0], group[1]))
        groups[key] = [current, current]
    result.extend(_form_group(key, *groups[key]) for key in order)
    return ", ".join(result + mappings)


def port_mapping(container_port: int, proto: str, host_ip: str, host_port: int | str) -> str:
    """One line of ``docker port CONTAINER`` (20.10): ``80/tcp -> 0.0.0.0:32768``, ``80/tcp -> :::32768``."""
    return f"{container_port}/{proto} -> {host_ip}:{host_port}"
