"""The three places that list dependencies must agree: pyproject.toml (pip),
environment.yml (conda) and binder/environment.yml (Binder)."""

import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pyproject_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = project["dependencies"]
    return main + [d for d in project["optional-dependencies"]["test"] if d not in main]


def conda_pip_requirements(path: Path) -> list[str]:
    dependencies = yaml.safe_load(path.read_text())["dependencies"]
    (pip,) = [d["pip"] for d in dependencies if isinstance(d, dict)]
    return pip


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environment_matches_pyproject(env_file):
    assert conda_pip_requirements(ROOT / env_file) == pyproject_requirements()


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environment_brings_java_and_maven(env_file):
    dependencies = yaml.safe_load((ROOT / env_file).read_text())["dependencies"]
    names = {d.split("=")[0] for d in dependencies if isinstance(d, str)}
    assert {"python", "openjdk", "maven", "pip"} <= names


def test_binder_scripts_are_executable_and_start_hands_over():
    for script in ("postBuild", "start"):
        path = ROOT / "binder" / script
        assert path.stat().st_mode & 0o111, f"{path} must be executable"
    assert (ROOT / "binder" / "start").read_text().rstrip().endswith('exec "$@"')
