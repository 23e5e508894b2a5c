"""``.dockerignore`` parsing and matching against moby/patternmatcher's own test cases and Docker's
documented examples."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.dockerignore import DockerIgnore, DockerIgnoreError, Pattern, clean_path, read_patterns, walk_context


def matches(patterns: list[str], path: str) -> bool:
    return DockerIgnore.from_patterns(patterns).excluded(path)


# moby/patternmatcher TestMatches (single pattern, MatchesOrParentMatches)
PATTERNMATCHER_CASES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True),
    ("**", "/", True), ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True),
    ("**", "dir/file/", True), ("**/", "dir/file/", True), ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True), ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True), ("**/dir", "dir", True),
    ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]


@pytest.mark.parametrize("pattern, text, expected", PATTERNMATCHER_CASES)
def test_patternmatcher_cases(pattern, text, expected):
    ignore = DockerIgnore.from_patterns([pattern])
    # the raw matcher (MatchesOrParentMatches) on the path as given …
    assert ignore.matches(text) is expected
    # … and the walk's incremental variant (MatchesUsingParentResults) agree
    assert _using_parent_results(ignore, text) is expected


def _using_parent_results(ignore: DockerIgnore, path: str) -> bool:
    parent = os.path.dirname(path)
    info: tuple[bool, ...] = ()
    if parent not in ("", "."):
        dirs = parent.split("/")
        for i in range(len(dirs)):
            _, info = ignore.match_with_parents("/".join(dirs[: i + 1]), info)
    return ignore.match_with_parents(path, info)[0]


@pytest.mark.parametrize("patterns, text, expected", [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
])
def test_patternmatcher_multi_pattern_cases(patterns, text, expected):
    ignore = DockerIgnore.from_patterns(patterns)
    assert ignore.excluded(text) is expected
    assert _using_parent_results(ignore, text) is expected


@pytest.mark.parametrize("patterns, path, expected", [
    (["*"], "fileutils.go", True),
    (["*.go"], "fileutils.go", True),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["*.go"], ".", False),
    ([], "/any/path/there", False),
])
def test_exceptions_last_match_wins(patterns, path, expected):
    assert matches(patterns, path) is expected


# Go's filepath.Match cases as patternmatcher runs them (TestMatch); errors are ErrBadPattern
FILEPATH_MATCH_CASES = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", True), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False), ("[\\]a]", "]", True),
    ("[\\-]", "-", True), ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False), ("*x", "xxx", True),
]


@pytest.mark.parametrize("pattern, path, expected", FILEPATH_MATCH_CASES)
def test_filepath_match_cases(pattern, path, expected):
    # patternmatcher's deprecated Matches() checks only one parent level; "a*" vs "ab/c" still matches
    # because the parent "ab" does.
    assert matches([pattern], path) is expected


@pytest.mark.parametrize("pattern", [
    "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(DockerIgnoreError, match="syntax error in pattern"):
        DockerIgnore.from_patterns([pattern])


def test_single_exclamation_is_an_error():
    with pytest.raises(DockerIgnoreError, match='illegal exclusion pattern: "!"'):
        DockerIgnore.from_text("!\n")


@pytest.mark.parametrize("pattern, kind, regex", [
    ("*", "regexp", r"^[^/]*$"), ("file*", "regexp", r"^file[^/]*$"), ("*file", "regexp", r"^[^/]*file$"),
    ("a*/b", "regexp", r"^a[^/]*/b$"), ("**", "suffix", None), ("**/**", "regexp", r"^(.*/)?.*$"),
    ("dir/**", "prefix", None), ("**/dir", "suffix", None), ("**/dir2/*", "regexp", r"^(.*/)?dir2/[^/]*$"),
    ("**/dir2/**", "regexp", r"^(.*/)?dir2/.*$"), ("**file", "suffix", None),
    ("**/file*txt", "regexp", r"^(.*/)?file[^/]*txt$"), ("**/**/*.txt", "regexp", r"^(.*/)?(.*/)?[^/]*\.txt$"),
    ("a[b-d]e", "regexp", r"^a[b-d]e$"), (".*", "regexp", r"^\.[^/]*$"), ("abc.def", "exact", None),
    ("abc?def", "regexp", r"^abc[^/]def$"), ("**/foo/bar", "suffix", None), ("a(b)c/def", "exact", None),
    ("a.|)$(}+{bc", "exact", None), ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact", None),
])
def test_compile_like_patternmatcher(pattern, kind, regex):
    compiled = Pattern.compile(clean_path(pattern))
    assert compiled._kind == kind
    if regex is not None:
        assert compiled._regex.pattern == regex


def test_read_all_like_ignorefile():
    text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    assert read_patterns(text) == ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]


@pytest.mark.parametrize("text, expected", [
    ("\ufeff*.md\r\nbuild\r\n", ["*.md", "build"]),          # BOM and CRLF
    ("  # not a comment\n", ["# not a comment"]),            # only a leading "#" makes a comment
    ("a/../b/./c//d/\n", ["b/c/d"]),                          # filepath.Clean
    ("../outside\n", ["../outside"]),
    ("/\n", ["/"]),
    ("!  spaced \n", ["!spaced"]),
])
def test_read_patterns_normalisation(text, expected):
    assert read_patterns(text) == expected


# Docker's documentation (.dockerignore file section)
DOCS = """\
# comment
*/temp*
*/*/temp*
temp?
"""


@pytest.mark.parametrize("path, expected", [
    ("somedir/temporary.txt", True), ("somedir/temp", True),
    ("somedir/subdir/temporary.txt", True),
    ("tempa", True), ("tempb", True), ("temp", False), ("temporary", False),
    ("a/b/c/temp.txt", False),
])
def test_documented_example(path, expected):
    assert DockerIgnore.from_text(DOCS).excluded(path) is expected


@pytest.mark.parametrize("text, path, expected", [
    ("*.md\n!README.md\n", "README.md", False),
    ("*.md\n!README.md\n", "CHANGELOG.md", True),
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", False),
    ("*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", False),
    ("**/*.go\n", "a/b/c.go", True),
    ("**/*.go\n", "c.go", True),
    ("node_modules\n", "node_modules/x/index.js", True),
    ("node_modules\n", "src/node_modules/x.js", False),
    ("/build\n", "build/out.o", True),
    ("build/\n", "build", True),
    ("./secret\n", "secret", True),
])
def test_documented_rules(text, path, expected):
    assert DockerIgnore.from_text(text).excluded(path) is expected


def test_the_context_root_is_never_excluded():
    assert DockerIgnore.from_text("*\n**\n").excluded(".") is False


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_walk_context_skips_excluded_directories(tmp_path):
    _tree(tmp_path, ["Dockerfile", "index.html", "logs/a.log", "logs/b/c.log", "src/main.c", "src/main.o"])
    ignore = DockerIgnore.from_text("logs\n*.o\n**/*.o\n")
    assert list(walk_context(tmp_path, ignore)) == ["Dockerfile", "index.html", "src", "src/main.c"]


def test_walk_context_enters_a_directory_an_exception_could_reach(tmp_path):
    _tree(tmp_path, ["docs/README.md", "docs/guide.md", "docs/img/a.png", "other/x"])
    ignore = DockerIgnore.from_text("docs\n!docs/README.md\n")
    # "docs" itself is not sent, but its README is
    assert list(walk_context(tmp_path, ignore)) == ["docs/README.md", "other", "other/x"]


def test_walk_context_exception_prefix_rule_is_textual(tmp_path):
    # Docker enters an excluded dir only when an exception pattern *starts with* its path:
    # "!**/keep" does not, so vendor/keep stays out although the pattern would match it.
    _tree(tmp_path, ["vendor/keep", "vendor/drop", "keep"])
    ignore = DockerIgnore.from_text("vendor\n!**/keep\n")
    assert ignore.excluded("vendor/keep") is False
    assert list(walk_context(tmp_path, ignore)) == ["keep"]


def test_walk_context_without_dockerignore_lists_everything(tmp_path):
    _tree(tmp_path, ["b", "a/c", "a/b"])
    os.symlink("a", tmp_path / "link")
    assert list(walk_context(tmp_path)) == ["a", "a/b", "a/c", "b", "link"]


def test_walk_agrees_with_excluded_for_every_file(tmp_path):
    files = ["a.txt", "a.md", "d/a.md", "d/e/f.md", "d/e/g.txt", "x/README.md", "x/y/README.md"]
    _tree(tmp_path, files)
    ignore = DockerIgnore.from_text("*.md\n!x/README.md\nd/e\n")
    walked = set(walk_context(tmp_path, ignore))
    for name in files:
        assert (name in walked) is not ignore.excluded(name), name


def test_from_file_missing_means_nothing_excluded(tmp_path):
    assert DockerIgnore.from_file(tmp_path / ".dockerignore").patterns == ()
