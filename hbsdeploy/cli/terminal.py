"""The person at the terminal: warnings, progress, colour and the questions apply asks (the library's hooks)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from hbsdeploy.errors import Problem, UsageError
from hbsdeploy.text import plural

if TYPE_CHECKING:
    from hbsdeploy.load.config import Environment
    from hbsdeploy.plan.build import Progress
    from hbsdeploy.plan.model import Change, Plan

PIPED_CONFIRMATION = "HBSDEPLOY_ALLOW_PIPED_CONFIRMATION"


def use_colour() -> bool:
    """Colour only for a terminal, and never with NO_COLOR set (what --color auto means)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _can_ask() -> bool:
    return sys.stdin.isatty() or bool(os.environ.get(PIPED_CONFIRMATION))


LOG_INTERVAL = 5.0  # seconds between progress lines in a log (no terminal)


class ProgressLine:
    """Progress on stderr, unless -q. On a terminal: one line rewritten in place, once an operation takes a moment.
    Without one (CI logs, pipes): a line every LOG_INTERVAL seconds while it runs, and the final count after."""

    def __init__(self, quiet: bool, what: str, delay: float = 0.5, *, tty: bool | None = None,
                 interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = not quiet
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.what = what
        self.clock = clock
        self.started = self.last_logged = clock()
        self.delay = delay
        self.interval = interval
        self.shown = False
        self.latest: tuple[int, int] | None = None
        self.logged: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        self.latest = (done, total)
        if self.tty:
            if now - self.started >= self.delay:
                click.echo(f"\r{self.what}: {done}/{total}", err=True, nl=False)
                self.shown = True
        elif now - self.last_logged >= self.interval:
            click.echo(f"{self.what}: {done}/{total}", err=True)
            self.last_logged = now
            self.logged = self.latest

    def finish(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False, color=True)  # the caller checked: a terminal
        elif self.logged is not None and self.latest != self.logged and self.latest is not None:
            click.echo(f"{self.what}: {self.latest[0]}/{self.latest[1]}", err=True)


class Terminal:
    """The hooks of plan and apply (hbsdeploy.plan.build.PlanHooks, hbsdeploy.apply.orchestrate.ApplyHooks)."""

    def __init__(self, quiet: bool, colour: bool | None = None, *, plan_to_stderr: bool = False) -> None:
        self.quiet = quiet
        self.colour = use_colour() if colour is None else colour
        self.err = plan_to_stderr  # stdout carries a machine-readable report (apply --format json)

    def warn(self, problems: list[Problem]) -> None:
        """Validation warnings on stderr, unless -q."""
        if not self.quiet:
            for problem in problems:
                click.echo(problem.format(), err=True)

    @contextmanager
    def progress(self, what: str) -> Iterator[Progress]:
        """A progress line on stderr while the work runs, cleared after."""
        line = ProgressLine(self.quiet, what)
        try:
            yield line
        finally:
            line.finish()

    def note(self, message: str) -> None:
        """A note on stderr, unless -q."""
        if not self.quiet:
            click.echo(f"note: {message}", err=True)

    def show_plan(self, plan: Plan) -> None:
        """The plan apply made, as `plan` shows it."""
        from hbsdeploy.plan.formats import FormatOptions, render_plan

        click.echo(render_plan(plan, "text", FormatOptions(colour=self.colour)), nl=False, color=self.colour,
                   err=self.err)

    def show_steps(self, plan: Plan, environment: Environment) -> None:
        """A manual portal's steps, ending with the per-service-type confirmation that follows."""
        from hbsdeploy.plan.formats import FormatOptions, render_plan

        options = FormatOptions.for_environment(environment, during_apply=True)
        click.echo(render_plan(plan, "instructions", options), err=self.err)

    def confirm_apply(self, environment: Environment, plan: Plan) -> bool:
        """`yes`, or a protected environment's name, typed at a terminal."""
        if not _can_ask():
            raise UsageError("no terminal to confirm on; pass --auto-approve, or apply a reviewed plan file")
        changes = plural(len(plan.changes), "change")
        return self._ask(environment, f"to apply {changes}", f"Apply {changes} to {environment.name}?")

    def confirm_record(self, environment: Environment, plan: Plan) -> bool:
        """`yes`, or a protected environment's name, typed at a terminal: `state record` has no --auto-approve."""
        if not _can_ask():
            raise UsageError(f"no terminal to confirm on; `hbsdeploy state record` records steps as done in "
                             f"{environment.name!r} only when a person confirms them at a terminal: run it in one "
                             "(there is no --auto-approve for it)")
        changes = plural(len(plan.changes), "change")
        return self._ask(environment, f"to record {changes} as done",
                         f"Record {changes} as done in {environment.name}?")

    @staticmethod
    def _ask(environment: Environment, protected_question: str, question: str) -> bool:
        if environment.protected:
            click.secho(f"\n{environment.name!r} is a PROTECTED environment.", bold=True, fg="red", err=True)
            answer = click.prompt(f"Type the environment name ({environment.name}) {protected_question}", default="",
                                  show_default=False, err=True)
            return bool(answer == environment.name)
        answer = click.prompt(f"{question} Only 'yes' is accepted", default="", show_default=False, err=True)
        return bool(answer == "yes")

    def change_confirmer(self) -> Callable[[Change], bool]:
        """Ask, per service type of a manual portal, whether it is done in the portal."""
        if not _can_ask():
            raise UsageError("a manual portal needs a person to confirm each step; run apply in a terminal, or record "
                             "steps already done in the portal with `hbsdeploy state record`")

        def confirm(change: Change) -> bool:
            try:
                return click.confirm(f"Done in the portal: {change.partner_id} / {change.service_type}?",
                                     default=False, err=True)
            except click.Abort:  # Ctrl-C or end of input: stop asking, still report what was recorded
                raise KeyboardInterrupt from None

        return confirm
