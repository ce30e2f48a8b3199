"""`hbsdeploy validate` against `check-jsonschema` on the same generated partner files, whole-process wall time.

Both commands are run as whole processes with the same interpreter (`python -m ...`), alternately, several times
each, and compared by median: start-up is part of what a pre-commit hook costs. Then the peak RSS of one
`hbsdeploy validate` over 10,000 files is read with getrusage(RUSAGE_CHILDREN) in a fresh wrapper process, so that
nothing else run here counts.

Targets (issue 2): at least 2x faster than check-jsonschema on one file, 5x on 1,000 files, under 200 MB for 10,000.

    python bench/bench_validate.py [--runs 7] [--sizes 1 1000] [--memory-files 10000] [--memory-check-jsonschema]

Needs check-jsonschema (`pip install -e '.[bench]'`). Offline: the schema is a local file, and check-jsonschema
reads its metaschemas from its own package.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, make_repository  # noqa: E402

SCHEMA = REPO / "schemas" / "partner.schema.json"
TARGET_RATIO = {1: 2.0, 1000: 5.0}
TARGET_PEAK_MB = 200.0

# Runs the command given as arguments and prints the peak RSS of its process tree in KiB (Linux reports KiB).
_PEAK_RSS = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _environment(pycache: Path) -> dict[str, str]:
    """This checkout first on PYTHONPATH, so that the benchmark measures it even when hbsdeploy is not installed;
    byte-code cached (in a temporary folder) as an installed package has it, even where PYTHONDONTWRITEBYTECODE is
    set: recompiling hbsdeploy's modules on every run would measure the compiler, not validate."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def hbsdeploy_command(files: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "hbsdeploy", "validate", *files]


def check_jsonschema_command(files: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), *files]


def _run(command: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[2]} failed on valid files (exit {done.returncode}):\n{done.stdout[-2000:]}")
    return elapsed


def compare(commands: dict[str, list[str]], runs: int, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Median wall seconds of each command, run alternately after one warm-up run each (byte-code caches)."""
    for command in commands.values():
        _run(command, cwd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(_run(command, cwd, env))
    return {name: statistics.median(values) for name, values in times.items()}


def peak_rss_mb(command: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one run of `command`, measured in a fresh wrapper process."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, *command], cwd=cwd, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    elapsed = time.perf_counter() - started
    if out[0] != "0":
        raise SystemExit(f"{command[2]} failed on valid files (exit {out[0]})")
    return int(out[1]) / 1024, elapsed


def _version(module: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", f"import importlib.metadata as m; print(m.version({module!r}))"],
                          capture_output=True, text=True, env=env)
    return done.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command per size (default 7)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 1000], help="partner files (default 1 1000)")
    parser.add_argument("--memory-files", type=int, default=10_000, help="partner files for peak RSS (default 10000)")
    parser.add_argument("--memory-check-jsonschema", action="store_true",
                        help="also measure check-jsonschema's peak RSS on those files (slow)")
    args = parser.parse_args()
    if importlib.util.find_spec("check_jsonschema") is None:
        raise SystemExit("check-jsonschema is not installed: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    env = _environment(tmp / "pycache")
    print(f"machine: {machine()}")
    print(f"check-jsonschema {_version('check-jsonschema', env)}, PyYAML {_version('PyYAML', env)}; "
          f"median of {args.runs} runs each, run alternately\n")
    print(f"{'partner files':>13}  {'hbsdeploy validate':>18}  {'check-jsonschema':>16}  {'ratio':>6}  target")
    missed = []
    for size in args.sizes:
        repo = make_repository(tmp / f"repo-{size}", size)
        files = sorted(f"partners/{p.name}" for p in (repo / "partners").iterdir())
        medians = compare({"hbsdeploy": hbsdeploy_command(files),
                           "check-jsonschema": check_jsonschema_command(files)}, args.runs, repo, env)
        ratio = medians["check-jsonschema"] / medians["hbsdeploy"]
        target = TARGET_RATIO.get(size)
        verdict = "" if target is None else f">= {target:g}x " + ("ok" if ratio >= target else "MISSED")
        if target is not None and ratio < target:
            missed.append(f"{size} files: {ratio:.1f}x < {target:g}x")
        print(f"{size:>13,}  {medians['hbsdeploy']:>16.3f} s  {medians['check-jsonschema']:>14.3f} s  "
              f"{ratio:>5.1f}x  {verdict}")
    repo = make_repository(tmp / f"repo-{args.memory_files}", args.memory_files)
    files = sorted(f"partners/{p.name}" for p in (repo / "partners").iterdir())
    peak, seconds = peak_rss_mb(hbsdeploy_command(files), repo, env)
    verdict = "ok" if peak < TARGET_PEAK_MB else "MISSED"
    if peak >= TARGET_PEAK_MB:
        missed.append(f"peak RSS {peak:.0f} MB >= {TARGET_PEAK_MB:g} MB")
    print(f"\npeak RSS, hbsdeploy validate, {args.memory_files:,} files: {peak:.0f} MB in {seconds:.2f} s "
          f"(target < {TARGET_PEAK_MB:g} MB: {verdict})")
    if args.memory_check_jsonschema:
        peak, seconds = peak_rss_mb(check_jsonschema_command(files), repo, env)
        print(f"peak RSS, check-jsonschema, {args.memory_files:,} files: {peak:.0f} MB in {seconds:.2f} s")
    if missed:
        print("\ntargets missed: " + "; ".join(missed))
        sys.exit(1)


if __name__ == "__main__":
    main()
