"""The site's HTML: one page shell, the static files beside the pages, relative links.

Every page of the site opens from the files on disk (``file://``), with no server and no
network: Bokeh's JavaScript and the site's own script and style sheet are copied once into
``<plot_dir>/static/`` (:func:`install_static`) and every page names them by a relative
path.  Pages are written atomically (:func:`write_page`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

import bokeh
from bokeh.core.templates import MACROS, ROOT_DIV
from bokeh.document import Document
from bokeh.embed.bundle import Script, bundle_for_objs_and_resources
from bokeh.embed.elements import script_for_render_items
from bokeh.embed.util import RenderItem
from bokeh.model import Model
from bokeh.resources import Resources
from bokeh.util.serialization import make_globally_unique_css_safe_id, make_globally_unique_id

from hstlc.fs import atomic_path

#: The folder of the static files, under the site's root.
STATIC = "static"
#: The site's own files shipped in the package (``hstlc/plots/static/``).
PACKAGE_STATIC = Path(__file__).with_name("static")
#: Bokeh's parts the pages use: the core (plots, tools, hover) and the widgets (``Div``).
BOKEH_COMPONENTS = ("bokeh", "bokeh-widgets")
#: Their file names in ``static/``, versioned so that an upgrade never mixes releases.
BOKEH_FILES = tuple(f"{name}-{bokeh.__version__}.min.js" for name in BOKEH_COMPONENTS)
BOKEH_JS = BOKEH_FILES[0]

escape = html.escape


def bokeh_sources() -> list[Path]:
    """The installed Bokeh's minified JavaScript of :data:`BOKEH_COMPONENTS`, in order."""
    files = Resources(mode="absolute", minified=True,
                      components=list(BOKEH_COMPONENTS)).js_files  # type: ignore[arg-type]
    return [Path(source) for source in files]


def static_files() -> dict[str, Path]:
    """``name in static/ -> source file``: Bokeh's scripts and the package's own files."""
    files = dict(zip(BOKEH_FILES, bokeh_sources(), strict=True))
    files.update({path.name: path for path in sorted(PACKAGE_STATIC.iterdir())
                  if path.is_file() and not path.name.startswith(".")})
    return files


def install_static(site: Path) -> list[Path]:
    """Copy the static files into ``site/static/`` where missing or different; the copied
    paths (none when every file is up to date)."""
    copied = []
    for name, source in static_files().items():
        final = Path(site) / STATIC / name
        if final.exists() and _digest(final) == _digest(source):
            continue
        with atomic_path(final) as temporary:
            shutil.copyfile(source, temporary)
        copied.append(final)
    return copied


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def link(page: Path, target: Path) -> str:
    """The URL of ``target`` relative to the folder of ``page`` (both absolute paths).

    Examples
    --------
    >>> link(Path("/h/plots/targets/GJ-436.html"), Path("/h/outputs/GJ 436/a_curve.fits"))
    '../../outputs/GJ%20436/a_curve.fits'
    """
    target = Path(target)
    folder = _relative_folder(str(target.parent), str(Path(page).parent))
    return quote(target.name if folder == "." else f"{folder}/{target.name}")


@functools.lru_cache(maxsize=65536)
def _relative_folder(folder: str, start: str) -> str:
    """``folder`` relative to ``start`` (POSIX), once per pair: a site's links go between
    a few thousand folders, and ``os.path.relpath`` costs more than the rest of a link."""
    return Path(os.path.relpath(folder, start)).as_posix()


def page(title: str, body: str, *, path: Path, site: Path, bokeh: bool = False,
         scripts: Sequence[str] = (), head: str = "") -> str:
    """A whole HTML document for the page at ``path`` in the site rooted at ``site``.

    Parameters
    ----------
    title : str
        The page's title (escaped here).
    body : str
        The body's HTML, as it is.
    path, site : Path
        Where the page is written, and the site's root (for the relative links to
        ``static/`` and to the index).
    bokeh : bool
        Load Bokeh's script (pages with interactive plots).
    scripts : sequence of str
        Further script file names in ``static/`` (or URLs relative to the page), loaded
        after Bokeh, in order.
    head : str
        Extra HTML for the head (a page's own ``<script>`` data, say).
    """
    static = Path(site) / STATIC
    sources = ([link(path, static / name) for name in BOKEH_FILES] if bokeh else []) + [
        link(path, static / name) if "/" not in name else name for name in scripts]
    tags = "\n".join(f'<script src="{escape(source)}"></script>' for source in sources)
    index = link(path, Path(site) / "index.html")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{escape(link(path, static / "site.css"))}">
{tags}
{head}
</head>
<body>
<nav class="site"><a href="{escape(index)}">hstlc</a></nav>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>
"""


def embed(models: Sequence[Model]) -> tuple[str, list[str]]:
    """``bokeh.embed.components(models)`` for models in no document yet, without its checks.

    The script and the divs are ``components``' own (the same templates and calls), but
    Bokeh's document validation and its search for Python callbacks are not run: they walk
    every model again and cost a third of a lightcurve page.  Tests validate the layouts.

    Parameters
    ----------
    models : sequence of bokeh Model
        The roots to embed, each in no document yet (they are put in a new one).

    Returns
    -------
    script : str
        The ``<script>`` element that draws them.
    divs : list of str
        One ``<div>`` per model, in order.
    """
    document = Document()
    for model in models:
        document.add_root(model)
    docid = make_globally_unique_id()
    item = RenderItem(docid=docid,
                      roots={model: make_globally_unique_css_safe_id() for model in models})
    docs_json = {docid: document.to_json(deferred=False)}
    bundle = bundle_for_objs_and_resources(None, None)
    bundle.add(Script(script_for_render_items(docs_json, [item])))
    return bundle.scripts(tag=True), [ROOT_DIV.render(root=root, macros=MACROS)
                                      for root in item.roots]


def write_page(path: Path, document: str) -> Path:
    """Write ``document`` to ``path`` atomically (UTF-8)."""
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(document, encoding="utf-8")
    return Path(path)


def table(headings: Sequence[str], rows: Iterable[Sequence[str]], *, css: str = "") -> str:
    """A plain HTML table; the cells are HTML as they are (escape text before)."""
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{escape(css)}"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>'


__all__ = ["BOKEH_FILES", "BOKEH_JS", "STATIC", "embed", "escape", "install_static", "link", "page",
           "static_files", "table", "write_page"]
