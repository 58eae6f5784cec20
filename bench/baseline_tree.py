"""Make a copy of this checkout with some files as a git revision has them, to benchmark before against after.

    .venv/bin/python bench/baseline_tree.py /tmp/baseline            # the collector files as committed
    .venv/bin/python bench/collector_throughput.py --baseline-code /tmp/baseline

Only `git show` is run: the checkout and its repository are left as they are.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTOR_FILES = [
    "collectors/runner.py",
    "collectors/storage.py",
    "collectors/evaluate.py",
    "collectors/schedule.py",
    "collectors/tasks.py",
]
SKIP = shutil.ignore_patterns(".venv", ".git", "var", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules")


def make_tree(target: Path, ref: str, paths: list[str]) -> None:
    """Copy the checkout to `target` (replacing it), then write `paths` as they are at `ref`."""
    if target.resolve() == ROOT:
        raise SystemExit("the baseline tree must be somewhere else than the checkout")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT, target, ignore=SKIP)
    for path in paths:
        content = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout
        (target / path).write_bytes(content)
        print(f"{path} as of {ref}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--ref", default="HEAD", help="git revision the files come from (default HEAD)")
    parser.add_argument("paths", nargs="*", default=COLLECTOR_FILES, help="files to take from the revision")
    args = parser.parse_args(argv)
    make_tree(args.target, args.ref, args.paths)
    print(f"baseline tree at {args.target}", file=sys.stderr)


if __name__ == "__main__":
    main()
