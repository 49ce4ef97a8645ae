"""`python -m devtools.mutation [TARGET ...] [--python-only | --sql-lua-only]` (scripts/mutation).

For each target (devtools/mutation/targets.py; all by default): mutmut mutates its modules, in a
work folder of its own under .mutation/ (mutmut copies the code there and runs the target's
tests against each mutant, with only the tests that reach the mutated function), and the score
is read from mutmut's results. Then each hand-written SQL or Lua mutant is applied, one at a
time, to a copy of the code, and its tests must fail. Prints a table per target and the
survivors (`mutmut show NAME` in the target's folder shows one), and exits 1 if a target
scores under 90% or a hand-written mutant survives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from devtools.mutation.targets import MUTANTS, TARGETS, Mutant, Target
from devtools.servers import throwaway_postgres, throwaway_redis

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".mutation"
SOURCES = ("shared", "app_cart", "app_product")
ALSO = ("devtools", "sql", "tests")
TARGET_SCORE = 90.0
# Lines mutmut leaves alone: SQL in strings (its mutants, upper or lower case keywords and
# names, are equivalent or caught by PostgreSQL; the hand-written mutants below cover the SQL's
# meaning), and log calls (their text is for people; no behaviour hangs on it).
NOT_MUTATED = [
    r'^\s*f?"\s*[(]?\s*((SELECT|INSERT|UPDATE|DELETE|WITH|FROM|WHERE|AND|OR|ORDER|GROUP|VALUES'
    r"|RETURNING|JOIN|LEFT|UNION|ON CONFLICT|SET|LIMIT)\b|[)])",
    r"^\s*log\.(debug|info|warning|error|exception|critical)\(",
]
# mutmut's exit codes (mutmut/stats.py): a failing test kills, so does a timeout.
KILLED = {1, 3, 36, -24, 24, 152, 255}


def _workdir(name: str, config: str) -> Path:
    """A folder where `ROOT`'s code is reachable (symlinks: mutmut and copytree follow them) and
    pyproject.toml carries `config` as its [tool.mutmut] section."""
    folder = WORK / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name_ in (*SOURCES, *ALSO):
        (folder / name_).symlink_to(ROOT / name_)
    (folder / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n" + config)
    return folder


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def run_mutmut(name: str, target: Target) -> tuple[Counter[str], list[str]]:
    """mutmut over `target`: counts by outcome, and the surviving mutants' names."""
    config = "\n".join(
        [
            "[tool.mutmut]",
            f"source_paths = {_toml_list(SOURCES)}",
            f"only_mutate = {_toml_list(target.modules)}",
            f"also_copy = {_toml_list(['devtools/', 'sql/'])}",
            f"pytest_add_cli_args_test_selection = {_toml_list(target.tests)}",
            # Without the unraisable-exception plugin: mutmut runs pytest in its own process,
            # and a connection a deliberately failed test leaves behind would turn its
            # forced-fail check into a crash of the whole run.
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:unraisableexception", "-q"]',
            # A mutant that hangs a test (a loop that never ends, a wait never woken) is killed
            # by the timeout: 3 times the tests' own time plus 5 s, not mutmut's 15 times, or
            # the integration targets' timeouts alone would take hours.
            "timeout_multiplier = 3.0",
            "timeout_constant = 5.0",
            f"do_not_mutate_patterns = {_toml_list(NOT_MUTATED)}",
            "",
        ]
    )
    folder = _workdir(name, config)
    log = WORK / f"{name}.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run"],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    counts: Counter[str] = Counter()
    survivors = []
    for meta in (folder / "mutants").rglob("*.py.meta"):
        for mutant, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            outcome = "killed" if code in KILLED else "survived" if code == 0 else f"other ({code})"
            counts[outcome] += 1
            if outcome != "killed":
                survivors.append(f"{mutant}: {outcome}")
    return counts, sorted(survivors)


def run_handwritten(mutant: Mutant) -> bool:
    """Apply `mutant` to a copy of the code and run its tests; True if they failed (killed)."""
    folder = WORK / "handwritten"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in (*SOURCES, "devtools", "sql", "tests"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    path = folder / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"mutation: {mutant.name!r}: {mutant.old!r} is not in {mutant.path} exactly once")
    path.write_text(text.replace(mutant.old, mutant.new))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
        cwd=folder,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode != 0


def main(argv: list[str] | None = None) -> int:
    # One PostgreSQL and one Redis for every mutant's test run (each test makes its own
    # databases and key prefixes): starting them per run would be most of the time.
    with throwaway_postgres() as postgres, throwaway_redis() as redis:
        os.environ["STOREFRONT_TEST_POSTGRES_PORT"] = str(postgres.port)
        os.environ["STOREFRONT_TEST_REDIS_PORT"] = str(redis.port)
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"of {', '.join(TARGETS)} (default: all)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--python-only", action="store_true", help="mutmut only")
    only.add_argument("--sql-lua-only", action="store_true", help="the hand-written mutants only")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    failed = False
    if not args.sql_lua_only:
        for name in args.targets or list(TARGETS):
            counts, survivors = run_mutmut(name, TARGETS[name])
            total = sum(counts.values())
            score = 100.0 * counts["killed"] / total if total else 0.0
            failed |= score < TARGET_SCORE
            print(f"{name}: {counts['killed']} / {total} killed ({score:.1f}%)", flush=True)
            for survivor in survivors:
                print(f"  {survivor}")
    if not args.python_only:
        killed = 0
        for mutant in MUTANTS:
            if run_handwritten(mutant):
                killed += 1
            else:
                failed = True
                print(f"  SURVIVED: {mutant.name} ({mutant.path})")
        print(f"SQL and Lua: {killed} / {len(MUTANTS)} hand-written mutants killed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
