"""What every audit check returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class CheckResult:
    check: str  # short name, e.g. "exact-duplicates"
    status: Status
    finding: str  # one line a person reads first
    fix: str = ""  # what to do about it ("" when status is pass)
    rows: list[Any] = field(default_factory=list)  # 1-based input lines; groups as lists
    details: dict[str, Any] = field(default_factory=dict)  # numbers behind the finding

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "finding": self.finding,
                "fix": self.fix, "rows": self.rows, "details": self.details}
