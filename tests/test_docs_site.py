"""The documentation site (mkdocs.yml): nav and API references resolve, and it builds strictly."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MKDOCS_YML = ROOT / "mkdocs.yml"


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml without constructing its `!!python/...` tags (the toc slugify function)."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _config() -> dict:
    return yaml.load(MKDOCS_YML.read_text(), Loader=_Loader)


def _nav_paths(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_paths(value)]
    return [p for item in nav for p in _nav_paths(item)]


def test_nav_names_every_docs_page_and_only_existing_files():
    nav = _nav_paths(_config()["nav"])
    assert len(nav) == len(set(nav)), "a page is in nav twice"
    missing = [p for p in nav if not (ROOT / p).is_file()]
    assert not missing, f"nav names files that do not exist: {missing}"
    docs_pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert docs_pages - set(nav) == set(), "Markdown under docs/ that is not in mkdocs.yml's nav"
    for page in ("README.md", "config/README.md", "benchmarks/README.md", "docs/store.md"):
        assert page in nav


def test_api_references_name_existing_objects():
    refs = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        refs += re.findall(r"^:::\s*([\w.]+)", page.read_text(), flags=re.M)
    assert "parzc.stages" in refs and "parzc.store.Store" in refs
    for ref in refs:
        module_name, _, attr = ref.rpartition(".")
        try:  # a module itself (parzc.stages), else an object in its module
            importlib.import_module(ref)
            continue
        except ModuleNotFoundError:
            pass
        module = importlib.import_module(module_name)
        assert hasattr(module, attr), f"::: {ref}: {module_name} has no {attr}"


def test_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(
            module, reason=f"{module} is not installed: pip install -e '.[docs]' builds the site"
        )
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS_YML)]
    proc = subprocess.run(
        [*cmd, "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Pages keep their repository paths, so GitHub's relative links work in the site.
    for page in ("index.html", "config/index.html", "docs/store/index.html"):
        assert (site / page).is_file(), page
    assert 'href="docs/store/"' in (site / "index.html").read_text()
    assert 'id="parzc.stages.extract"' in (site / "docs/api/stages/index.html").read_text()
