"""hbsdeploy's schema subset against jsonschema-rs, side by side in one run: import time, compile time, time per
document (valid and invalid partner and config files), whether the errors carry what hbsdeploy's messages need, and
whether `pattern` follows ECMA 262 on tricky strings.

    python bench/bench_schema_engines.py [--runs 9] [--repeat 200]

- Import time: a fresh interpreter per run imports the engine (`hbsdeploy.load.schemasubset`, `jsonschema_rs`; and
  `jsonschema`, the fallback, for scale), minus an interpreter that imports nothing; median of --runs.
- Per document: every document checked --repeat times in one process, after compiling once; "check" is the yes/no
  answer, "errors" the full list of errors (what `hbsdeploy validate` asks for: valid files take the yes/no path).
- Error details: each jsonschema-rs error is turned, with the best thin adapter we could write (keyword from the
  error kind, `$ref` steps dropped from the evaluation path, the failing schema node looked up), into the shape
  hbsdeploy.load.schemacheck reads, and the problems it yields on each schema-level corpus file
  (tests/data/validate/invalid/schema-*.yaml) are compared with the subset's, which the corpus pins.
- Patterns: ECMA 262 in Unicode mode, as check-jsonschema runs it through `regress`, is the reference.

Needs jsonschema-rs and regress (`pip install jsonschema-rs regress`; regress comes with check-jsonschema).
Offline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import TARGET_RATIO, _environment, check_jsonschema_command, compare  # noqa: E402
from common import REPO, machine, make_repository  # noqa: E402
from rs_engine import RsError  # noqa: E402

sys.path.insert(0, str(REPO))
from hbsdeploy.load import schemacheck  # noqa: E402
from hbsdeploy.load.ecmaregex import ecma_pattern  # noqa: E402
from hbsdeploy.load.resources import load_schema  # noqa: E402
from hbsdeploy.load.schemasubset import SubsetValidator  # noqa: E402
from hbsdeploy.load.yamlload import Document, load_yaml, parse_yaml  # noqa: E402

DATA = REPO / "tests" / "data" / "validate"
INVALID_CONFIGS = [
    "version: 1\npartners_dir: 5\nenvironments: {}\n",
    "version: 1\nenvironments:\n  Sandbox:\n    portal: local\n",
    "version: 1\nenvironments:\n  qa:\n    portal: https://portal.example\n    verify_tls: 'yes'\n    colour: red\n",
    "version: 2\n",
]
# Tricky strings for `pattern`, where Python's `re` and ECMA 262 disagree.
PATTERNS = [(r"^\d+$", "\u0663"), (r"[^\s]", "\x1c"), (r"^\s$", "\ufeff"), (r"^\s$", "\u00a0"), (r"^\s$", "\x85"),
            (r"^.$", "\r"), (r"^.$", "\u2028"), (r"^a$", "a\n"), (r"^\w$", "\u00e9"), (r"\b\u00e9", " \u00e9"),
            (r"^[\S]$", "\u3000"), (r"^\W$", "\u00e9")]


# What `hbsdeploy validate` imports besides the schema engine: an engine's real cost is what it adds to these.
VALIDATE_IMPORTS_BUT_SCHEMA = "click, yaml, hbsdeploy.errors, hbsdeploy.load.yamlload, hbsdeploy.cli.main"


def import_seconds(module: str, runs: int, before: str = "") -> float:
    """Median time to import `module`, measured inside fresh interpreters that have imported `before` first."""
    first = f"import {before}; " if before else ""
    code = (f"{first}import time; started = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - started)")
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                                                  capture_output=True, text=True).stdout) for _ in range(runs))


def per_call(function: Callable[[Any], object], documents: list[Any], repeat: int) -> float:
    """Mean seconds of one call of `function` on one document."""
    started = time.perf_counter()
    for _ in range(repeat):
        for document in documents:
            function(document)
    return (time.perf_counter() - started) / (repeat * len(documents))


def problems(document: Document, errors: Iterable[Any], root: dict[str, Any]) -> list[str]:
    return sorted(p.format() for error in errors for p in schemacheck._problems(document, error, root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per import timing (default 9)")
    parser.add_argument("--repeat", type=int, default=200, help="passes over the documents (default 200)")
    parser.add_argument("--whole-runs", type=int, default=7, help="runs of each whole `hbsdeploy validate` (default 7)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 1000], help="partner files (default 1 1000)")
    args = parser.parse_args()
    import jsonschema_rs
    import regress

    print(f"machine: {machine()}")
    print(f"jsonschema-rs {jsonschema_rs.__version__ if hasattr(jsonschema_rs, '__version__') else _version()}\n")
    print(f"import time (in a fresh interpreter, median of {args.runs})")
    subset_import = import_seconds("hbsdeploy.load.schemasubset", args.runs)
    rs_import = import_seconds("jsonschema_rs", args.runs)
    jsonschema_import = import_seconds("jsonschema", args.runs)
    print(f"  subset        {subset_import * 1000:7.1f} ms")
    print(f"  jsonschema-rs {rs_import * 1000:7.1f} ms   ({_ratio(rs_import, subset_import)} the subset's)")
    print(f"  jsonschema    {jsonschema_import * 1000:7.1f} ms   (the fallback, for scale)")
    subset_extra = import_seconds("hbsdeploy.load.schemasubset", args.runs, VALIDATE_IMPORTS_BUT_SCHEMA)
    rs_extra = import_seconds("jsonschema_rs", args.runs, VALIDATE_IMPORTS_BUT_SCHEMA)
    print("  on top of everything else `hbsdeploy validate` imports:")
    print(f"  subset        {subset_extra * 1000:7.1f} ms")
    print(f"  jsonschema-rs {rs_extra * 1000:7.1f} ms   (+{(rs_extra - subset_extra) * 1000:.1f} ms per run)\n")

    sets = {
        "partner": ([load_yaml(p).data for p in [*sorted((DATA / "valid").glob("*.yaml")),
                                                 *sorted((REPO / "partners").glob("*.yaml"))]],
                    [load_yaml(p).data for p in sorted((DATA / "invalid").glob("schema-*.yaml"))]),
        "config": ([load_yaml(p).data for p in [REPO / "hbsdeploy.yaml", DATA / "hbsdeploy.yaml"]],
                   [parse_yaml(text, f"bad-{i}.yaml").data for i, text in enumerate(INVALID_CONFIGS)]),
    }
    print(f"{'schema':8} {'documents':>17}  {'compile':>9}  {'check':>17}  {'all errors':>17}  {'rs / subset':>12}")
    for name, (valid, invalid) in sets.items():
        schema = load_schema(name)
        started = time.perf_counter()
        subset = SubsetValidator(schema)
        subset_compile = time.perf_counter() - started
        started = time.perf_counter()
        rs = jsonschema_rs.validator_for(schema)
        rs_compile = time.perf_counter() - started
        for label, documents in (("valid", valid), ("invalid", invalid)):
            assert all(subset.is_valid(d) == rs.is_valid(d) == (label == "valid") for d in documents), name
            timings = {
                "subset": (subset_compile, per_call(subset.is_valid, documents, args.repeat),
                           per_call(lambda d, v=subset: list(v.iter_errors(d)), documents, args.repeat)),
                "rs": (rs_compile, per_call(rs.is_valid, documents, args.repeat),
                       per_call(lambda d, v=rs: list(v.iter_errors(d)), documents, args.repeat)),
            }
            for engine, (compiled, checked, listed) in timings.items():
                ratio = (f"{_ratio(timings['rs'][1], timings['subset'][1])} / "
                         f"{_ratio(timings['rs'][2], timings['subset'][2])}") if engine == "rs" else ""
                print(f"{name:8} {len(documents):>3} {label:7} {engine:6} {compiled * 1e3:7.2f} ms  "
                      f"{checked * 1e6:12.1f} us  {listed * 1e6:12.1f} us  {ratio:>12}")
    print()
    root = load_schema("partner")
    subset, rs = SubsetValidator(root), jsonschema_rs.validator_for(root)
    files = sorted((DATA / "invalid").glob("schema-*.yaml"))
    same = 0
    differing: list[str] = []
    for path in files:
        document = load_yaml(path)
        ours = problems(document, subset.iter_errors(document.data), root)
        theirs = problems(document, (RsError(e, root) for e in rs.iter_errors(document.data)), root)
        if ours == theirs:
            same += 1
        else:
            differing.append(f"{path.name}: {sorted(set(ours) ^ set(theirs))[:2]}")
    print(f"error details: jsonschema-rs through an adapter gives the corpus's problems on {same} of {len(files)} "
          "schema-level files")
    for line in differing:
        print(f"  differs: {line[:220]}")
    print()
    agree = {"subset": 0, "jsonschema-rs": 0}
    for pattern, text in PATTERNS:
        expected = bool(regress.Regex(pattern, flags="u").find(text))
        agree["subset"] += (ecma_pattern(pattern).search(text) is not None) == expected
        agree["jsonschema-rs"] += jsonschema_rs.is_valid({"pattern": pattern}, text) == expected
    print(f"patterns agreeing with ECMA 262 (regress, u flag) on {len(PATTERNS)} tricky cases: "
          + ", ".join(f"{engine} {count}" for engine, count in agree.items()) + "\n")
    if args.sizes:
        whole_process(args.sizes, args.whole_runs)


# `hbsdeploy validate` as `python -m hbsdeploy` runs it, with the schema engine of the subset or jsonschema-rs.
_SUBSET_VALIDATE = "from hbsdeploy.cli.main import main; main()"
_RS_VALIDATE = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import rs_engine; "
                "rs_engine.install(); from hbsdeploy.cli.main import main; main()")


def whole_process(sizes: list[int], runs: int) -> None:
    """Whole `hbsdeploy validate` processes with either engine and check-jsonschema, alternately, median wall time."""
    print(f"whole process on generated partner files, median of {runs}, run alternately")
    print(f"{'files':>6}  {'subset':>9}  {'rs':>9}  {'check-jsonschema':>16}  {'subset ratio':>12}  {'rs ratio':>8}  "
          "target")
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        env = _environment(Path(tmp) / "pycache")
        for size in sizes:
            repo = make_repository(Path(tmp) / f"repo-{size}", size)
            files = sorted(f"partners/{p.name}" for p in (repo / "partners").iterdir())
            medians = compare({"subset": [sys.executable, "-c", _SUBSET_VALIDATE, "validate", *files],
                               "rs": [sys.executable, "-c", _RS_VALIDATE, "validate", *files],
                               "peer": check_jsonschema_command(files)}, runs, repo, env)
            target = TARGET_RATIO.get(size)
            print(f"{size:>6,}  {medians['subset']:>7.3f} s  {medians['rs']:>7.3f} s  {medians['peer']:>14.3f} s  "
                  f"{medians['peer'] / medians['subset']:>11.1f}x  {medians['peer'] / medians['rs']:>7.1f}x  "
                  + (f">= {target:g}x" if target else ""))


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("jsonschema-rs")


def _ratio(one: float, two: float) -> str:
    return f"{one / two:.1f}x" if two else "n/a"


if __name__ == "__main__":
    main()
