"""Helpers shared by the benchmarks: example repositories of any size, and whole-process timing."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HBSDEPLOY = [sys.executable, "-m", "hbsdeploy"]

SANDBOX_AND_QA = "  sandbox:\n  qa:\n    service_types:\n      authorization:\n" \
    "        service_url: https://oicp-qa.partner{index}.example.com\n"

PARTNER = """\
name: Bench Partner {index}
role: cpo
operator_id: "{operator_id}"
environments:
{environments}service_types:
  authorization:
    online_request: true
    broadcast_request: false
    service_url: https://oicp.partner{index}.example.com
    client_certification: true
  reservation:
    online_request: true
    service_url: https://oicp.partner{index}.example.com/reservation
    client_certification: true
"""


def partner_text(index: int, environments: str = SANDBOX_AND_QA) -> str:
    """A CPO partner file with Authorization and Reservation; `environments` is the indented block under
    `environments:` (it may use {index})."""
    return PARTNER.format(index=index, operator_id=operator_id(index), environments=environments.format(index=index))


def operator_id(index: int) -> str:
    """A distinct valid OperatorID per index: DE*A00 ... (36^3 of them)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    a, rest = divmod(index, 36 * 36)
    b, c = divmod(rest, 36)
    return f"DE*{alphabet[a % 36]}{alphabet[b]}{alphabet[c]}"


def make_repository(folder: Path, partners: int) -> Path:
    """A repository with the project's config and templates and `partners` generated partner files."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "partners").mkdir(parents=True)
    shutil.copy(REPO / "hbsdeploy.yaml", folder / "hbsdeploy.yaml")
    shutil.copytree(REPO / "templates", folder / "templates")
    for index in range(partners):
        text = partner_text(index)
        (folder / "partners" / f"partner-{index:05d}.yaml").write_text(text)
    return folder


def median_seconds(command: Sequence[str], runs: int, cwd: Path | None = None) -> float:
    """Median wall time of whole-process runs (output discarded; a failing run aborts the benchmark)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> str:
    """The machine a benchmark ran on, for the figures in docs/performance.md."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}")
