"""MkDocs hook: the site serves the repository's Markdown at the paths it has in the repository.

The documentation is the Markdown that GitHub shows (README.md, config/README.md,
benchmarks/README.md, resources/README.md, docs/*.md), and those files link to each other with
relative repository paths (`docs/store.md`, `../README.md#outputs`). MkDocs only reads pages under
`docs_dir` (docs/), so by itself it would put docs/store.md at `store.md` and not see README.md at
all. This hook gives every file its repository path in the site instead:

- each file under docs/ keeps its `docs/` prefix (docs/store.md stays `docs/store.md`);
- each `nav` entry outside docs/ (README.md, config/README.md, ...) is read from the repository
  root; README.md pages become their folder's index page, as on GitHub;
- a non-Markdown repository file that a page links to (e.g. `parzc/predictors/fusion.py`) is copied
  into the site as is, so that link works too.

So every relative link that works on GitHub resolves in the site without rewriting, and MkDocs's
own link and anchor checks (`mkdocs build --strict`) validate them. A link to a Markdown file that
is not in `nav` stays unresolved and fails the strict build: add the file to `nav`. So does a link
to a folder (GitHub lists its files; the site has no page for it): link a file in it instead.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import unquote

from mkdocs.structure.files import File, Files

# Inline links and images `[text](target "title")`, and reference definitions `[id]: target`.
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?[^)]*\)|^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _nav_paths(nav) -> list[str]:
    """Every page path named in `nav` (nested sections, titled or untitled entries)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_paths(value)]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_paths(item)]
    return []


def _repo_pages(config) -> list[str]:
    root, docs = _root(config), Path(config.docs_dir).resolve()
    pages = []
    for path in _nav_paths(config.nav or []):
        if _SCHEME.match(path) or not path.endswith(".md"):
            continue  # external link in nav
        if not (root / path).resolve().is_relative_to(docs):
            pages.append(path)
    return pages


def on_files(files: Files, config) -> Files:
    root, docs = _root(config), Path(config.docs_dir).resolve()
    prefix = docs.relative_to(root).as_posix()
    site, urls = config.site_dir, config.use_directory_urls
    out = Files([])
    for file in files:
        src = Path(file.abs_src_path).resolve() if file.abs_src_path else None
        if src is not None and src.is_relative_to(docs):
            uri = f"{prefix}/{file.src_uri}"
            out.append(File(uri, str(root), site, urls, inclusion=file.inclusion))
        else:  # theme and plugin files
            out.append(file)
    for uri in _repo_pages(config):
        if not (root / uri).is_file():
            raise FileNotFoundError(f"nav names {uri}, which is not a file in the repository")
        out.append(File(uri, str(root), site, urls))

    for page in list(out.documentation_pages(inclusion=lambda _: True)):
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in _LINK.finditer(text):
            target = unquote((match.group(1) or match.group(2)).split("#")[0].split("?")[0])
            if not target or target.startswith("/") or _SCHEME.match(target):
                continue
            uri = posixpath.normpath(posixpath.join(posixpath.dirname(page.src_uri), target))
            if uri.startswith("../") or uri.endswith(".md") or out.get_file_from_path(uri):
                continue  # outside the repository, a page (MkDocs checks it), or already there
            if (root / uri).is_file():
                out.append(File(uri, str(root), site, urls))
    return out


def on_serve(server, config, builder):
    """`mkdocs serve` reloads on edits of the repository pages too, not only of docs/."""
    root = _root(config)
    for uri in _repo_pages(config):
        server.watch(str(root / uri))
    return server
