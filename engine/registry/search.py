"""A row of ``docker search``: what Docker Hub's ``/v1/search`` answers for one repository."""
from __future__ import annotations

from ..values import value


@value
class SearchResult:
    """One repository found by ``/v1/search`` (the hub's answer, the client's table row)."""

    name: str
    description: str
    star_count: int
    is_official: bool
    is_automated: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "star_count": self.star_count,
                "is_official": self.is_official, "is_automated": self.is_automated, "is_trusted": False}

    @classmethod
    def from_dict(cls, r: dict) -> "SearchResult":
        """From a registry's JSON, which is untrusted: every field coerced to its type."""
        return cls(str(r.get("name", "")), str(r.get("description") or ""), int(r.get("star_count") or 0),
                   bool(r.get("is_official")), bool(r.get("is_automated")))
