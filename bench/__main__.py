"""`make bench`: every benchmark section in its own fresh process, then bench/results.md + .json.

    python -m bench [SECTION ...] [--quick]

A section is a module bench/<name>.py with `run(quick: bool = False) -> dict` (raising its
BenchError when it cannot measure) and `markdown(result: dict) -> list[str]`. Sections not named
keep their last results, so one section can be re-measured alone. --quick (a smoke run: small
sizes, one repetition) writes bench/results.quick.md and .json instead, never the real results.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.generation import package_version

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = (
    "generation",
    "parse_cost",
    "promotion",
    "fence",
    "sqltest",
    "local_run",
)  # report order
CHILD = "--run-section"  # the fresh process that runs one section


def available() -> list[str]:
    return [name for name in SECTIONS if importlib.util.find_spec(f"bench.{name}") is not None]


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def run_child(name: str, quick: bool, out: Path) -> int:
    """Inside the fresh process: run one section and write its result as JSON to `out`."""
    module = importlib.import_module(f"bench.{name}")
    try:
        result = module.run(quick=quick)
    except Exception as error:  # each section has its own BenchError; all mean "not measured"
        if type(error).__name__ != "BenchError":
            raise
        print(f"bench.{name}: {error}", file=sys.stderr)
        return 1
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def run_section(name: str, quick: bool) -> dict[str, Any]:
    """One section in a fresh Python process; its result with how long and large the run was."""
    with tempfile.TemporaryDirectory(prefix=f"mwaa-elt-bench-{name}-") as scratch:
        out = Path(scratch) / "result.json"
        commit = _commit()  # before: others may commit while a long section runs
        command = [sys.executable, "-m", "bench", CHILD, name, "--out", str(out)]
        started = time.perf_counter()
        process = subprocess.Popen([*command, *(["--quick"] if quick else [])], cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0 or not out.is_file():
            return {"error": f"bench.{name} exited with {process.returncode}; see its output"}
        return {
            "result": json.loads(out.read_text()),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "section_wall_s": round(time.perf_counter() - started, 1),
            "section_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }


def _section_lines(name: str, entry: dict[str, Any]) -> list[str]:
    if "error" in entry:
        return [f"## {name}", "", f"Not measured: {entry['error']}."]
    try:
        lines = importlib.import_module(f"bench.{name}").markdown(entry["result"])
    except (ImportError, KeyError, TypeError, ValueError) as error:
        return [f"## {name}", "", f"Stored result does not fit the current report ({error!r})."]
    note = f"Measured {entry['measured_at']} at commit {entry['commit']}."
    return [*lines, "", note]


def write_report(report: dict[str, Any], md: Path) -> None:
    machine = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"`python -m bench{' --quick' if report['quick'] else ''}` (`make bench`): "
        f"{machine['cores']} cores, {machine['memory_gb']} GB, {machine['platform']}, "
        f"Python {machine['python']}; mwaa-elt {report['versions']['mwaa-elt']}. Each section "
        "ran in its own fresh process; sections list their own versions.",
    ]
    for name in SECTIONS:
        if name in report["sections"]:
            lines += ["", *_section_lines(name, report["sections"][name])]
    md.write_text("\n".join(lines) + "\n")


def _memory_gb() -> float:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=", ".join(available()))
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument(CHILD, dest="child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.quick, args.out)

    present = available()
    unknown = [name for name in args.sections if name not in present]
    if unknown:
        parser.error(f"no section {', '.join(unknown)}; sections: {', '.join(present)}")
    chosen = args.sections or present
    stem = "results.quick" if args.quick else "results"
    json_path, md_path = HERE / f"{stem}.json", HERE / f"{stem}.md"
    sections: dict[str, Any] = {}
    if json_path.is_file():
        try:
            sections = dict(json.loads(json_path.read_text()).get("sections", {}))
        except (ValueError, AttributeError, TypeError):
            sections = {}
    failed = []
    for name in chosen:
        print(f"bench: {name}…", file=sys.stderr)
        sections[name] = run_section(name, args.quick)
        if "error" in sections[name]:
            failed.append(name)
    report = {
        "quick": args.quick,
        "machine": {
            "cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "memory_gb": _memory_gb(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {"mwaa-elt": package_version("mwaa-elt")},
        "sections": {name: sections[name] for name in SECTIONS if name in sections},
    }
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    write_report(report, md_path)
    print(md_path.read_text())
    if failed:
        print(f"bench: not measured: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
