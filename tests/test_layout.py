"""The layout keeps one direction: core first, each app downstream of it, the project package wiring them.

Walks every module's imports (top-level and inside functions) with ast, so a tie hidden in a local
import counts as much as one at the top.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "aistatus"
APPS = [
    *("monitoring", "collectors", "anomalies", "publishing", "statuspage", "alerts", "subscriptions", "demo"),
    *("accounts", "audit"),
]

# What each app may not import (beyond the project package, which no app imports but for the Celery app).
FORBIDDEN = {
    "monitoring": {"collectors", "anomalies", "publishing", "statuspage", "alerts", "subscriptions", "demo"}
    | {"accounts", "audit"},
    "collectors": {"anomalies", "publishing", "statuspage", "alerts", "subscriptions", "demo", "accounts", "audit"},
    # Anomaly detection reads stored evidence; the read side and alerts show and send its records.
    "anomalies": {"publishing", "statuspage", "alerts", "subscriptions", "demo", "accounts", "audit"},
    "publishing": {"statuspage", "alerts", "subscriptions", "demo", "accounts", "audit"},
    "statuspage": {"alerts", "subscriptions", "demo", "accounts", "audit"},
    "alerts": {"publishing", "statuspage", "subscriptions", "demo", "accounts", "audit"},
    # Visitors' subscriptions build on the core and on alerts' delivery; nothing imports them.
    "subscriptions": {"collectors", "publishing", "statuspage", "demo", "accounts", "audit"},
    "demo": {"anomalies", "publishing", "statuspage", "alerts", "subscriptions", "accounts", "audit"},
    # Operators' accounts (roles, two-factor sign-in) build on the core alone.
    "accounts": {"collectors", "anomalies", "publishing", "statuspage", "alerts", "subscriptions", "demo", "audit"},
    # The audit trail listens to every app; nothing imports it.
    "audit": {"publishing", "statuspage", "subscriptions", "demo"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def modules_of(app: str) -> list[Path]:
    return [p for p in sorted((ROOT / app).rglob("*.py")) if "migrations" not in p.parts]


def test_every_app_of_the_project_is_checked():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps == set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_nothing_downstream_of_it_nor_the_project_package(app):
    offending = []
    for path in modules_of(app):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in FORBIDDEN[app] or (top == PROJECT and not name.startswith(f"{PROJECT}.celery")):
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offending == []


def test_the_core_knows_probe_kinds_only_through_the_registry_collectors_fill_in():
    assert not any("collectors" in name for name in imported_modules(ROOT / "monitoring" / "models.py"))


def test_stored_evidence_is_readable_without_probing_code():
    names = imported_modules(ROOT / "collectors" / "models.py")
    assert not {n for n in names if n.startswith(("collectors.probes", "collectors.runner", "aiohttp"))}


def test_the_walk_sees_imports_inside_functions():
    module = ROOT / "monitoring" / "_layout_probe.py"
    module.write_text("def f():\n    from alerts.models import Channel\n")
    try:
        assert "alerts.models" in imported_modules(module)
    finally:
        module.unlink()


def test_the_readme_layout_names_every_package():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for package in [PROJECT, *APPS]:
        assert f"{package}/" in layout, f"README's layout drawing does not name {package}/"
