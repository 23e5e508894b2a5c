"""One root error type for the engine; subclasses carry their payload."""
from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose.

    ``exit_code`` is what a Docker-compatible CLI exits with for this error.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class InvalidReference(EngineError):
    """A string is not a valid image reference."""


class NotFound(EngineError):
    """An image, container, layer or blob does not exist."""


class ImageNotFound(NotFound):
    """``Error: No such image: <ref>``."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")
        self.ref = ref


class Conflict(EngineError):
    """An operation conflicts with the store's state (tag in use, container using an image)."""


class StoreError(EngineError):
    """The store is corrupt or cannot be written."""


class DigestMismatch(StoreError):
    """Content does not match the digest it claims."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class UnsafeArchive(EngineError):
    """A tar archive contains an entry that would escape or damage the target.

    ``member`` names the offending entry.
    """

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"refusing unsafe archive entry {member!r}: {reason}")
        self.member = member
        self.reason = reason


class ArchiveError(EngineError):
    """A tar or image archive is malformed."""


class BuildError(EngineError):
    """A Dockerfile build failed; ``log`` holds the build output so far."""

    def __init__(self, message: str, *, log: str = "", exit_code: int = 1) -> None:
        super().__init__(message, exit_code=exit_code)
        self.log = log


class ContainerError(EngineError):
    """A container could not be created, started or managed."""

    def __init__(self, message: str, *, exit_code: int = 125) -> None:
        super().__init__(message, exit_code=exit_code)


class RegistryError(EngineError):
    """A registry refused or failed a request; ``status`` is the HTTP status (0 when none)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
