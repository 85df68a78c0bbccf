"""``lumo-pkg://``: the cached config source must answer exactly as Hydra's own ``pkg://`` does."""
from __future__ import annotations

import importlib
import os
import time
import zipfile
from pathlib import Path

import pytest
from hydra._internal.core_plugins.importlib_resources_config_source import ImportlibResourcesConfigSource
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError
from omegaconf import OmegaConf

from hydra_plugins.lumo_hydra_plugin.config_source import LumoPackageConfigSource


def sources(package: str) -> tuple[LumoPackageConfigSource, ImportlibResourcesConfigSource]:
    return (LumoPackageConfigSource("t", f"lumo-pkg://{package}"), ImportlibResourcesConfigSource("t", f"pkg://{package}"))


def paths_in(package: str) -> tuple[list[str], list[str]]:
    root = Path(importlib.import_module(package).__file__).parent  # type: ignore[arg-type]
    groups = sorted({"", *(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and p.name != "__pycache__")})
    configs = sorted(str(p.relative_to(root))[:-5] for p in root.rglob("*.yaml"))
    return groups, configs


def test_same_answers_as_pkg_for_the_shipped_configs() -> None:
    ours, pkg = sources("lumo_hydra.conf")
    groups, configs = paths_in("lumo_hydra.conf")
    assert "hydra/callbacks/lumo" in configs and "hydra/callbacks" in groups
    assert ours.available() and ours.available() == pkg.available()
    probes = [*groups, *configs, "nope", "hydra/nope", "hydra/callbacks/nope", "lumo/dataset/digits.yaml"]
    for p in probes:
        assert ours.is_group(p) == pkg.is_group(p), p
        assert ours.is_config(p) == pkg.is_config(p), p
        assert ours.exists(p) == pkg.exists(p), p
    for g in groups:
        for f in (None, ObjectType.GROUP, ObjectType.CONFIG):
            assert ours.list(g, f) == pkg.list(g, f), (g, f)
    for c in configs:
        a, b = ours.load_config(c), pkg.load_config(c)
        assert OmegaConf.to_container(a.config) == OmegaConf.to_container(b.config), c
        assert a.header == b.header, c
        assert a.path == "lumo-pkg://lumo_hydra.conf" and a.provider == "t"
    with pytest.raises(ConfigLoadError):
        ours.load_config("hydra/callbacks/nope")


def test_every_load_is_a_fresh_copy() -> None:
    ours, _ = sources("lumo_hydra.conf")
    first = ours.load_config("hydra/callbacks/lumo")
    first.config.lumo._target_ = "changed"  # Hydra edits what it loads (e.g. pops `defaults`)
    first.header["package"] = "changed"
    again = ours.load_config("hydra/callbacks/lumo")
    assert again.config.lumo._target_ == "lumo_hydra.hydra_callback.LumoCallback"
    assert again.header.get("package") != "changed"


def test_an_edited_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "lumo_cs_edit"
    (pkg / "grp").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    f = pkg / "grp" / "c.yaml"
    f.write_text("a: 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ours, _ = sources("lumo_cs_edit")
    assert ours.load_config("grp/c").config == {"a": 1}
    f.write_text("# @package _global_\na: 2\n")
    t = time.time() + 5
    os.utime(f, (t, t))
    again = ours.load_config("grp/c")
    assert again.config == {"a": 2} and again.header["package"] == "_global_"


def test_a_zipped_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "confs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("lumo_cs_zip/__init__.py", "")
        zf.writestr("lumo_cs_zip/grp/c.yaml", "# @package foo\nb: [1, 2]\n")
    monkeypatch.syspath_prepend(str(z))
    ours, pkg = sources("lumo_cs_zip")
    assert ours.available() and ours.is_group("grp") and ours.is_config("grp/c") and not ours.is_config("grp")
    assert ours.list("grp", None) == pkg.list("grp", None) == ["c"]
    r = ours.load_config("grp/c")
    assert r.config == {"b": [1, 2]} and r.header["package"] == "foo"


def test_a_missing_package_is_unavailable() -> None:
    ours, pkg = sources("lumo_cs_does_not_exist")
    assert ours.available() is False and pkg.available() is False
    assert not ours.is_group("") and not ours.is_config("x")


def test_hydra_uses_it_for_our_configs(tmp_path: Path) -> None:
    """The search-path plugin puts ``lumo-pkg://lumo_hydra.conf`` on every Hydra app's search path."""
    from hydra.test_utils.test_utils import run_python_script

    app = tmp_path / "app.py"
    app.write_text(
        "import hydra\n"
        "from hydra.core.hydra_config import HydraConfig\n"
        "@hydra.main(version_base='1.3', config_path=None)\n"
        "def main(cfg):\n"
        "    print('SOURCES', [(s.schema, s.path) for s in HydraConfig.get().runtime.config_sources])\n"
        "    print('MESSAGE', cfg.lumo_demo.message)\n"
        "main()\n")
    out, _ = run_python_script([str(app), "+lumo=demo", f"hydra.run.dir={tmp_path}/out"])
    assert "('lumo-pkg', 'lumo_hydra.conf')" in out, out
    assert "MESSAGE hello from lumo-hydra" in out


def test_a_package_that_appears_later_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _ = sources("lumo_cs_later")
    assert not ours.available()
    pkg = tmp_path / "lumo_cs_later"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "c.yaml").write_text("a: 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert ours.available() and ours.load_config("c").config == {"a": 1}
