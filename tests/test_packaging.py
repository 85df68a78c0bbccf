"""Packaging: the wheel ships our config groups and Hydra plugin, and works in a fresh virtual environment."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

APP = """
import hydra
from omegaconf import OmegaConf

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print("MESSAGE=" + cfg.lumo_demo.message)

main()
"""


def test_import_is_light() -> None:
    code = (
        "import sys, lumo_hydra; "
        "heavy = [m for m in ('torch', 'pandas', 'git', 'hydra', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"import lumo_hydra imported heavy modules: {out.strip()}"


def test_cli_version_and_help() -> None:
    from lumo_hydra import __version__

    for cmd in ([sys.executable, "-m", "lumo_hydra"], ["lumo-hydra"]):
        r = subprocess.run([*cmd, "--version"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"lumo-hydra {__version__}"
        r = subprocess.run([*cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "usage: lumo-hydra" in r.stdout
    r = subprocess.run([sys.executable, "-m", "lumo_hydra", "--no-such-flag"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unrecognized arguments" in r.stderr


def test_config_group_found_in_editable_install(tmp_path: Path) -> None:
    from hydra.test_utils.test_utils import run_python_script

    (tmp_path / "app.py").write_text(APP)
    out, _ = run_python_script([str(tmp_path / "app.py"), "+lumo=demo", f"hydra.run.dir={tmp_path}/out"])
    assert "MESSAGE=hello from lumo-hydra" in out


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel, install it into a new venv (dependencies from the package index), and compose
    a config from our group there, with the search-path plugin found through the installed package."""
    import shutil

    src = tmp_path / "src"  # build from a copy: nothing is written into the checkout
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
        check=True, capture_output=True, text=True,
    )
    wheels = list(dist.glob("lumo_hydra-*.whl"))
    assert len(wheels) == 1, wheels
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "lumo_hydra/conf/lumo/demo.yaml" in names
    assert "lumo_hydra/py.typed" in names
    assert "hydra_plugins/lumo_hydra_plugin/searchpath.py" in names
    assert "hydra_plugins/lumo_hydra_plugin/config_source.py" in names
    assert not any(n.startswith("hydra_plugins/__init__") for n in names), "hydra_plugins must be a namespace package"
    # every module of the library ships (setup.cfg lists the packages one by one)
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "lumo_hydra").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources - set(names) == set(), "modules missing from the wheel (add their package to setup.cfg)"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheels[0])],
        capture_output=True, text=True, env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    app = tmp_path / "app.py"
    app.write_text(APP)
    r = subprocess.run(
        [str(py), "-Werror", str(app), "+lumo=demo", f"hydra.run.dir={tmp_path}/out"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MESSAGE=hello from lumo-hydra" in r.stdout
    # The package in the venv is the installed one, not this checkout.
    r = subprocess.run([str(py), "-c", "import lumo_hydra; print(lumo_hydra.__file__)"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert str(env_dir) in r.stdout, r.stdout + r.stderr
