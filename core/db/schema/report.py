"""What the schema check found: problems, their severity, the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ERROR = "error"
WARNING = "warning"
NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Problem:
    severity: str
    check: str
    object: str
    message: str
    fix: str = ""


@dataclass
class Report:
    vendor: str
    problems: list[Problem] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def as_dict(self) -> dict:
        return {
            "database": self.vendor,
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "duration_ms": round(self.duration_ms, 1),
            "problems": [asdict(p) for p in self.problems],
        }
