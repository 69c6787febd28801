"""The import arrows between the top-level packages, checked on the source itself.

service      <- pipelines, benchmarks (the image carries service/ alone)
environments <- infra, pipelines      (the contract depends on nothing of ours)
infra        -> environments only     (the Pulumi program stands alone)
"""

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "environments", "infra", "pipelines", "benchmarks")
MAY_IMPORT = {
    "service": set[str](),
    "environments": set[str](),
    "infra": {"environments"},
    "pipelines": {"environments", "service"},
    "benchmarks": {"environments", "service", "pipelines"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Our other top-level packages that each module of `package` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        ours = (names & set(PACKAGES)) - {package}
        if ours:
            found[str(path.relative_to(ROOT))] = ours
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_it_may(package: str) -> None:
    wrong = {
        module: sorted(imported - MAY_IMPORT[package])
        for module, imported in imported_packages(package).items()
        if imported - MAY_IMPORT[package]
    }
    assert not wrong, f"{package} may import only {sorted(MAY_IMPORT[package])}: {wrong}"


def test_the_image_holds_the_service_alone() -> None:
    """It copies service/ and the lock, and the build context admits nothing else of ours."""
    dockerfile = (ROOT / "service" / "Dockerfile").read_text(encoding="utf-8").splitlines()
    copied = {
        line.split()[1] for line in dockerfile if line.startswith("COPY ") and "--from" not in line
    }
    assert {c for c in copied if c.rstrip("/") in PACKAGES} == {"service/"}
    admitted = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    assert admitted & set(PACKAGES) == {"service"}


def test_the_image_s_own_dependencies_leave_scikit_learn_out() -> None:
    """A compiled model is served without scikit-learn or skops: the service's dependency set
    holds neither, and the group the image adds for an uncompiled model holds both."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]}
    assert not names & {"scikit-learn", "skops", "scipy"}
    assert {"treelite", "numpy"} <= names
    group = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0]
             for d in project["dependency-groups"]["pipeline-serving"]}  # fmt: skip
    assert group == {"scikit-learn", "skops"}
    dockerfile = (ROOT / "service" / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.count('${SCORING_GROUP:+--group "$SCORING_GROUP"}') == 2
