"""Pages the kit writes for a browser show what a submission holds inertly: nothing from it runs or loads.

A feedback page (``nbgrader generate_feedback``, through :class:`FeedbackExporter`) shows a student's
outputs and markdown, which the student's code wrote. Before nbconvert's template renders them:

- every rich output is reduced to what a static page can show inertly: HTML sanitised by nh3 (an
  allowlist of text, table and image tags; no script, style, iframe, object, embed, form, meta, base or
  link; no event handler or style attribute; images only from ``data:image/...``; links only to
  ``http(s):``, ``mailto:`` or a ``#`` anchor), SVG as an ``<img>`` of a ``data:`` URI (a browser runs no
  script and loads nothing from an SVG shown as an image), PNG, JPEG, LaTeX and plain text as
  nbconvert escapes them; JavaScript, widgets and any other type are dropped for their text/plain;
- markdown (cells, nbgrader comments, ``text/markdown`` outputs) is rendered as nbconvert renders it,
  then sanitised the same way (raw HTML and attachments included); raw cells are sanitised;
- MathJax is not loaded (it is a script from a CDN): TeX shows as written;
- the page carries a Content-Security-Policy (:data:`CSP`) as the first element of its ``<head>``: no
  script at all, no object, frame, form target or base URL, no load from anywhere but ``data:`` images.

The class report (``report.py``) carries the same policy; everything in it is escaped text.
"""
from __future__ import annotations

import base64
import html
import re

import nh3
from jinja2 import DictLoader, pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import InvalidNotebook
from traitlets import default

from autograder.feedback.cells import CSS

# No script, object, frame, worker, form submission or base URL; nothing loaded from anywhere but the
# page itself and data: images; inline styles only (the page's own CSS; a submission's styles are
# removed by the sanitiser, and CSS can load nothing under this policy).
CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; child-src 'none'; "
       "worker-src 'none'; connect-src 'none'; font-src 'none'; media-src 'none'; manifest-src 'none'; "
       "img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}     # image maps carry links the filter below does not see
ATTRIBUTES = {**{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
              "*": {"class", "id", "title", "lang", "dir"}}
IMAGE_TYPES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/svg+xml;", "data:image/webp;")
LINK_PREFIXES = ("http://", "https://", "mailto:", "#")


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """Images only from data: URIs of image types; links only out (http, mailto) or within the page."""
    if name == "src":
        return value if tag == "img" and value.strip().lower().startswith(IMAGE_TYPES) else None
    if name in ("href", "cite"):
        return value if tag == "a" and name == "href" and value.strip().lower().startswith(LINK_PREFIXES) else None
    return value


def clean_html(text: str) -> str:
    """`text` (HTML a submission made) with nothing left that runs, loads or submits."""
    return nh3.clean(str(text), tags=TAGS, clean_content_tags={"script", "style", "template", "noscript"},
                     attributes=ATTRIBUTES, attribute_filter=_keep_attribute,
                     url_schemes={"http", "https", "mailto", "data"}, strip_comments=True)


def with_csp(page: str) -> str:
    """`page` with the policy as the first element of its <head>; ValueError for a page without one."""
    match = re.search(r"<head(\s[^>]*)?>", page, re.IGNORECASE)
    if match is None:
        raise ValueError("a page without <head>: the kit writes no page without its Content-Security-Policy")
    return page[:match.end()] + "\n" + CSP_META + page[match.end():]


# --- outputs -----------------------------------------------------------------------------------------

SHOWN_AS_IS = ("text/plain", "text/latex", "image/png", "image/jpeg", "text/markdown")  # nbconvert escapes these
GRADE_ID = re.compile(r"[^A-Za-z0-9_.-]")


def inert_data(data: dict) -> dict:
    """An output's data reduced to types a static page shows inertly (see the module's docstring)."""
    kept = {mime: value for mime, value in data.items() if mime in SHOWN_AS_IS and isinstance(value, str)}
    if isinstance(data.get("text/html"), str):
        kept["text/html"] = clean_html(data["text/html"])
    elif isinstance(data.get("image/svg+xml"), str):
        encoded = base64.b64encode(data["image/svg+xml"].encode("utf-8")).decode("ascii")
        kept["text/html"] = f'<img src="data:image/svg+xml;base64,{encoded}" alt="an SVG image">'
    dropped = sorted(set(data) - set(kept) - {"text/html", "image/svg+xml"})
    if dropped and not kept:
        kept["text/plain"] = f"[{', '.join(dropped)} output: not shown on this page]"
    return kept


ALT_CHARACTERS = 500
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_NOTE = "(an interactive widget: not shown on this page)"


def progress_text(states, model_id) -> str | None:
    """A tqdm progress bar's text at its last saved state: its box holds a label, a progress bar and a label."""
    def state(ref):
        model = states.get(str(ref).removeprefix("IPY_MODEL_")) if isinstance(states, dict) else None
        return model.get("state", {}) if isinstance(model, dict) and isinstance(model.get("state"), dict) else {}

    children = state(model_id).get("children")
    if not (isinstance(children, list) and len(children) == 3):
        return None
    left, bar, right = map(state, children)
    value, total = bar.get("value"), bar.get("max")
    texts = [left.get("value"), right.get("value")]
    if not (all(isinstance(t, str) for t in texts) and isinstance(value, (int, float)) and
            isinstance(total, (int, float)) and total > 0):
        return None
    filled = max(0, min(10, round(10 * value / total)))
    left_text, right_text = (html.unescape(t).replace("\u2007", " ") for t in texts)
    bar_text = "█" * filled + " " * (10 - filled)
    return f"{left_text[:200]}|{bar_text}|{right_text[:200]}"


def widgets_as_text(nb) -> None:
    """Each widget output of `nb` as text (in place), and the widgets' saved state removed.

    A widget output's own text/plain is stale (a progress bar's says "0%": it is written when the bar first
    shows): a progress bar is rebuilt from the last state the run saved in the notebook's metadata
    ("epochs: 100%|██████████| 5/5 [...]"); any other widget is named as one, without a stale value.
    """
    widgets = nb.metadata.pop("widgets", None)
    saved = widgets.get(WIDGET_STATE, {}) if isinstance(widgets, dict) else {}
    states = saved.get("state", {}) if isinstance(saved, dict) else {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data")
            if isinstance(data, dict) and WIDGET_VIEW in data:
                view = data.pop(WIDGET_VIEW)
                model_id = view.get("model_id") if isinstance(view, dict) else None
                data.clear()
                data["text/plain"] = progress_text(states, model_id) or WIDGET_NOTE


def inert_metadata(metadata) -> dict:
    """Only the width and height of images, as numbers, and their alternative text, as text (the template
    escapes it); nothing else (an `isolated` HTML output would become an iframe)."""
    kept = {}
    if not isinstance(metadata, dict):
        return kept
    if isinstance(metadata.get("alt"), str):
        kept["alt"] = metadata["alt"][:ALT_CHARACTERS]
    for mime in ("image/png", "image/jpeg"):
        sizes = metadata.get(mime)
        if isinstance(sizes, dict):
            kept[mime] = {k: v for k, v in sizes.items() if k in ("width", "height")
                          and isinstance(v, (int, float)) and not isinstance(v, bool)}
            if isinstance(sizes.get("alt"), str):
                kept[mime]["alt"] = sizes["alt"][:ALT_CHARACTERS]
    return kept


def make_inert(nb) -> None:
    """Every output, raw cell and nbgrader id of `nb` made safe to render into a page (in place)."""
    widgets_as_text(nb)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and "grade_id" in meta:  # written unescaped into links and anchors
            meta["grade_id"] = GRADE_ID.sub("_", str(meta["grade_id"]))
        if cell.get("cell_type") == "raw":
            cell.source = clean_html(cell.get("source", ""))
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") in ("display_data", "execute_result"):
                output["data"] = inert_data(output.get("data") if isinstance(output.get("data"), dict) else {})
                output["metadata"] = inert_metadata(output.get("metadata"))


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter for nbgrader's feedback template, writing pages where a submission is inert.

    Its steps run after every configured preprocessor, so no list in a configuration can skip them.
    """

    @default("extra_loaders")
    def _no_mathjax(self):
        """nbgrader's template calls mathjax(), a script from a CDN: here it writes nothing."""
        return [DictLoader({"mathjax.html.j2": "{%- macro mathjax(url='') -%}{%- endmacro -%}"})]

    def _preprocess(self, nb, resources):
        nb, resources = super()._preprocess(nb, resources)
        make_inert(nb)
        grading = resources.get("nbgrader")
        if isinstance(grading, dict) and "notebook" in grading:  # a file name, written unescaped as the title
            grading["notebook"] = html.escape(str(grading["notebook"]))
        resources.setdefault("inlining", {}).setdefault("css", []).append(CSS)
        return nb, resources

    @pass_context  # as nbconvert's: it reads the cell's attachments from the template's context
    def markdown2html(self, context, source):
        try:
            return clean_html(super().markdown2html(context, source))
        except InvalidNotebook as exc:  # e.g. an attachment the cell names but lacks: its text, not a failed page
            return f"<p><em>{html.escape(str(exc))}</em></p><pre>{html.escape(str(source))}</pre>"

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return with_csp(output), resources
