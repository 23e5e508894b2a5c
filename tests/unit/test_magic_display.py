"""Result objects, table parsing, live text and the LayerLab settings (kernel_ext.display, kernel_ext.config)."""
from __future__ import annotations

import html.parser
import os

import pytest
from traitlets import TraitError

from engine.format import render_table
from kernel_ext.config import DEFAULT_EPOCH, LayerLab
from kernel_ext.display import BuildResult, LiveText, Result, TableResult, make_result, parse_table

HISTORY = render_table(
    ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
    [["bed5f56d96a4", "6 months ago", '/bin/sh -c #(nop)  CMD ["/hello"]', "0B", ""],
     ["<missing>", "6 months ago", "/bin/sh -c #(nop) COPY file:2c642a973a343f65…", "869B", "a & b"]])


def test_tables_are_cut_at_the_header_columns() -> None:
    headers, rows = parse_table(HISTORY, "IMAGE")
    assert headers == ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
    assert rows[0]["CREATED BY"] == '/bin/sh -c #(nop)  CMD ["/hello"]'  # its double space is kept
    assert rows[1] == {"IMAGE": "<missing>", "CREATED": "6 months ago",
                       "CREATED BY": "/bin/sh -c #(nop) COPY file:2c642a973a343f65…", "SIZE": "869B",
                       "COMMENT": "a & b"}
    assert parse_table("sha256:abc\n", "IMAGE") == ((), ())


class _Cells(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.cells.append(data)


def test_html_tables_escape_their_cells() -> None:
    result = make_result("history", ("history", "hello-world"), 0, HISTORY, "", streamed=False, cell=1)
    assert isinstance(result, TableResult)
    markup = result._repr_html_()
    assert "<missing>" not in markup and "&lt;missing&gt;" in markup
    parser = _Cells()
    parser.feed(markup)
    assert parser.tags.count("tr") == 3 and parser.tags.count("th") == 5
    assert "a & b" in parser.cells and "<missing>" in parser.cells
    assert result.column("SIZE") == ["0B", "869B"]


def test_quiet_output_is_no_table() -> None:
    result = make_result("images", ("images", "-q"), 0, "fecd66b996bd\n", "", streamed=False, cell=1)
    assert result.rows == () and result._repr_html_() == "<pre>fecd66b996bd\n</pre>"


def test_build_results_read_the_build_text() -> None:
    text = ("Step 1/3 : FROM busybox\n ---> fecd66b996bd\nStep 2/3 : RUN true\n ---> Running in 0123456789ab\n"
            "Removing intermediate container 0123456789ab\n ---> 1111111111aa\nStep 3/3 : RUN false\n"
            " ---> Running in 2222222222bb\n")
    failed = make_result("build", ("build", "-"), 1, text, "The command …\n", streamed=True, cell=3)
    assert isinstance(failed, BuildResult)
    assert (failed.image_id, failed.last_image, failed.last_container, failed.tags) == \
        (None, "1111111111aa", "2222222222bb", [])
    done = BuildResult(("build",), 0, text + "Successfully built 3333333333cc\nSuccessfully tagged x:latest\n")
    assert (done.image_id, done.tags) == ("3333333333cc", ["x:latest"])


def test_results_print_dockers_text() -> None:
    r = Result(("tag", "a", "b"), 1, text="", error="Error: No such image: a\n")
    assert str(r) == "" and not r.ok and repr(r) == "<Result 'tag a b': exit code 1>"


class _Sink:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def write(self, text: str) -> int:
        self.log.append(f"{self.name}:{text}")
        return len(text)

    def flush(self) -> None:
        self.log.append(f"{self.name}:flush")


def test_live_text_keeps_and_passes_on_and_orders_stderr_after_stdout() -> None:
    log: list[str] = []
    stdout, stderr = _Sink(log, "out"), _Sink(log, "err")
    out, err = LiveText(stdout), LiveText(stderr, before=stdout)
    out.write("Step 1/2\n")
    err.write("failed\n")
    assert log == ["out:Step 1/2\n", "out:flush", "err:failed\n"]
    assert (out.getvalue(), err.getvalue()) == ("Step 1/2\n", "failed\n")
    quiet = LiveText(None)
    quiet.write("table\n")
    assert quiet.getvalue() == "table\n"


def test_reproducible_clock_only_for_image_making_verbs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    cfg = LayerLab()
    with cfg.clock_for("build"):
        assert os.environ["SOURCE_DATE_EPOCH"] == str(DEFAULT_EPOCH)
    assert "SOURCE_DATE_EPOCH" not in os.environ
    with cfg.clock_for("images"):
        assert "SOURCE_DATE_EPOCH" not in os.environ
    cfg.reproducible = False
    with cfg.clock_for("commit"):
        assert "SOURCE_DATE_EPOCH" not in os.environ
    cfg.reproducible = True
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "42")  # the user's own value wins
    with cfg.clock_for("build"):
        assert os.environ["SOURCE_DATE_EPOCH"] == "42"
    assert os.environ["SOURCE_DATE_EPOCH"] == "42"


def test_settings_are_validated(tmp_path: object) -> None:
    cfg = LayerLab()
    with pytest.raises(TraitError, match="unknown backend 'docker'"):
        cfg.backend = "docker"
    with pytest.raises(TraitError, match="cannot be negative"):
        cfg.source_date_epoch = -1
    cfg.home = "~/store"
    assert cfg.home == os.path.join(os.path.expanduser("~"), "store")
    cfg.home = ""
    assert cfg.home == ""
