import pytest

from engine.errors import InvalidReference
from engine.reference import parse


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("whoami/static_web", "docker.io/whoami/static_web:latest", "whoami/static_web:latest"),
    ("127.0.0.1:5000/whoami/static_web:latest", "127.0.0.1:5000/whoami/static_web:latest",
     "127.0.0.1:5000/whoami/static_web:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b/c:v1.2-rc_3", "localhost:5000/a/b/c:v1.2-rc_3", "localhost:5000/a/b/c:v1.2-rc_3"),
    ("example.com/x@sha256:" + "ab" * 32, "example.com/x@sha256:" + "ab" * 32, "example.com/x@sha256:" + "ab" * 32),
    ("a__b--c.d", "docker.io/library/a__b--c.d:latest", "a__b--c.d:latest"),
])
def test_parse_normalizes_like_docker(text, full, familiar):
    ref = parse(text)
    assert ref.string == full
    assert ref.familiar == familiar


@pytest.mark.parametrize("text, message", [
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("user/App", "invalid reference format: repository name must be lowercase"),
    ("", "invalid reference format"),
    ("bad name", "invalid reference format"),
    ("a:b:c", "invalid reference format"),
    ("-lead", "invalid reference format"),
    ("trail-", "invalid reference format"),
    ("x:" + "t" * 129, "invalid reference format"),
    ("../etc", "invalid reference format"),
    ("a" * 256, "invalid reference format: repository name must not be more than 255 characters"),
])
def test_invalid_references_get_dockers_message(text, message):
    with pytest.raises(InvalidReference) as e:
        parse(text)
    assert str(e.value) == message


def test_uppercase_first_component_is_a_domain():
    # distribution/reference: an upper-case first component is a host name, so this is valid
    assert parse("Registry/app").domain == "Registry"
