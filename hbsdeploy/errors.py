"""Problems found in user input, and the exceptions that carry them to the CLI."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, located in a file: what editors and CI annotate as `path:line:col: error[rule]: message`."""

    path: str
    line: int
    column: int
    severity: Severity = field(compare=False)
    rule: str
    message: str
    json_path: str = field(default="$", compare=False)

    def format(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity.value}[{self.rule}]: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
            "json_path": self.json_path,
        }


# The exit codes of every command (plan --detailed-exitcode exits EXIT_CHANGES when the plan has changes).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


class HbsError(Exception):
    """An error the user can fix; the CLI prints `str(err)` on one line and exits 1, never a traceback."""

    exit_code = EXIT_ERROR


class UsageError(HbsError):
    """The command line itself is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(HbsError):
    """A file the user wrote is wrong: carries every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(p.format() for p in self.problems))
