"""The shell of Pivot's HTML pages: one self-contained file (inline CSS and JS, images as data
URIs, no network), collapsible sections and a search box that filters rows, cards and nodes.

Imports of Pivot: nothing.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence

__all__ = ["Section", "badge", "escape", "page", "table"]


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclasses.dataclass(frozen=True)
class Section:
    """A collapsible part of a page; `count` is shown next to the title."""

    id: str
    title: str
    body: str
    count: str = ""
    open: bool = True


def badge(text: str, kind: str) -> str:
    """A small coloured label; `kind` is a status (ran, failed, stale, ...) styled in the CSS."""
    return f'<span class="badge b-{escape(kind)}">{escape(text)}</span>'


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: Sequence[int] = ()
) -> str:
    """A table whose cells are already HTML; each row is searchable. `numeric`: right-aligned
    columns."""
    head = "".join(
        f'<th class="{"num" if i in numeric else ""}">{escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        '<tr class="searchable">'
        + "".join(
            f'<td class="{"num" if i in numeric else ""}">{cell}</td>' for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


_CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --accent:#3b5bdb; --ran:#2f9e44; --restored:#1098ad; --skipped:#868e96; --failed:#e03131;
  --blocked:#f08c00; --interrupted:#ae3ec9; --stale:#f59f00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#1b2a4a; color:#fff; padding:18px 28px 14px; }
header h1 { margin:0 0 6px; font-size:20px; font-weight:600; letter-spacing:.2px; }
header h1 small { font-weight:400; opacity:.7; font-size:14px; margin-left:8px; }
header .meta { display:flex; flex-wrap:wrap; gap:6px 22px; font-size:13px; opacity:.92; }
header .meta b { font-weight:600; opacity:.75; margin-right:4px; }
.toolbar { position:sticky; top:0; z-index:5; display:flex; gap:12px; align-items:center;
  padding:10px 28px; background:rgba(245,247,250,.96); border-bottom:1px solid var(--line); }
.toolbar input { flex:0 1 360px; padding:7px 11px; border:1px solid #cbd2d9; border-radius:6px;
  font:inherit; }
.toolbar button { padding:6px 10px; border:1px solid #cbd2d9; border-radius:6px; background:#fff;
  font:inherit; cursor:pointer; }
.toolbar .hint { color:var(--muted); font-size:12px; }
main { padding:16px 28px 40px; max-width:1400px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:4px 0 16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 16px;
  min-width:120px; }
.card .n { font-size:22px; font-weight:600; } .card .l { color:var(--muted); font-size:12px; }
details.section { background:var(--card); border:1px solid var(--line); border-radius:8px;
  margin:0 0 14px; }
details.section > summary { cursor:pointer; padding:11px 16px; font-size:16px; font-weight:600;
  list-style:none; border-bottom:1px solid transparent; }
details.section[open] > summary { border-bottom-color:var(--line); }
details.section > summary::-webkit-details-marker { display:none; }
details.section > summary::before { content:"▶"; display:inline-block; width:12px;
  margin-right:8px; font-size:10px; line-height:12px; text-align:center; vertical-align:2px;
  color:var(--muted); transition:transform .15s; }
details.section[open] > summary::before { transform:rotate(90deg); }
details.section > summary .count { color:var(--muted); font-weight:400; font-size:13px;
  margin-left:8px; }
.body { padding:12px 16px 16px; }
.scroll { overflow:auto; max-height:640px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { position:sticky; top:0; background:#f8f9fb; font-weight:600; color:#3e4c59; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.changed td { background:#fff9db; }
code, pre, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
pre { background:#1e1e2e; color:#f1f3f5; padding:10px 12px; border-radius:6px; overflow:auto;
  max-height:360px; margin:6px 0 0; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; color:#fff;
  background:var(--skipped); white-space:nowrap; }
.b-ran { background:var(--ran); } .b-restored { background:var(--restored); }
.b-failed { background:var(--failed); } .b-blocked { background:var(--blocked); }
.b-interrupted { background:var(--interrupted); } .b-stale { background:var(--stale); }
.b-new { background:var(--accent); } .b-changed { background:var(--stale); }
.b-unchanged, .b-skipped, .b-none { background:var(--skipped); }
.up { color:var(--ran); } .down { color:var(--failed); } .muted { color:var(--muted); }
ul.reasons { margin:0; padding-left:16px; } ul.reasons li { margin:0; }
.plots { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:14px; }
.plot { border:1px solid var(--line); border-radius:8px; padding:10px 12px; background:#fff; }
.plot h3 { margin:0 0 6px; font-size:14px; } .plot h3 span { color:var(--muted); font-weight:400; }
.versions { display:flex; gap:10px; flex-wrap:wrap; }
.versions figure { margin:0; flex:1 1 200px; }
.versions figcaption { color:var(--muted); font-size:12px; margin-bottom:4px; }
.versions img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
svg text { font-family:system-ui,sans-serif; }
.dag { overflow:auto; max-height:560px; border:1px solid var(--line); border-radius:6px;
  background:#fcfcfd; }
.dag .node rect { stroke-width:1.5; }
.dag .node.dim { opacity:.15; }
.legend { display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted); margin:0 0 8px; }
.legend i { display:inline-block; width:11px; height:11px; border-radius:3px; margin-right:5px;
  vertical-align:-1px; }
table.confusion { width:auto; } table.confusion td { min-width:44px; text-align:center; }
table.confusion th { position:static; }
.hidden { display:none !important; }
.empty { color:var(--muted); font-style:italic; }
"""

_JS = """
(function () {
  var box = document.getElementById('search');
  var items = Array.prototype.slice.call(document.querySelectorAll('.searchable'));
  var sections = Array.prototype.slice.call(document.querySelectorAll('details.section'));
  function apply() {
    var q = box.value.trim().toLowerCase();
    items.forEach(function (el) {
      var text = (el.getAttribute('data-search') || el.textContent).toLowerCase();
      var hit = !q || text.indexOf(q) !== -1;
      if (el.tagName.toLowerCase() === 'g') { el.classList.toggle('dim', !hit); }
      else { el.classList.toggle('hidden', !hit); }
    });
    if (q) { sections.forEach(function (s) { s.open = true; }); }
  }
  box.addEventListener('input', apply);
  document.getElementById('expand').addEventListener('click', function () {
    sections.forEach(function (s) { s.open = true; });
  });
  document.getElementById('collapse').addEventListener('click', function () {
    sections.forEach(function (s) { s.open = false; });
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === '/' && document.activeElement !== box) { e.preventDefault(); box.focus(); }
  });
})();
"""


def page(
    title: str,
    subtitle: str,
    meta: Sequence[tuple[str, str]],
    intro: str,
    sections: Sequence[Section],
) -> str:
    """A whole HTML document: header (title, meta items), toolbar with search, sections."""
    meta_html = "".join(f"<span><b>{escape(k)}</b>{escape(v)}</span>" for k, v in meta)
    parts = []
    for section in sections:
        count = f'<span class="count">{escape(section.count)}</span>' if section.count else ""
        parts.append(
            f'<details class="section" id="{escape(section.id)}"{" open" if section.open else ""}>'
            f"<summary>{escape(section.title)}{count}</summary>"
            f'<div class="body">{section.body}</div></details>'
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}<small>{escape(subtitle)}</small></h1>"
        f'<div class="meta">{meta_html}</div></header>'
        '<div class="toolbar"><input id="search" type="search" '
        'placeholder="Filter: stage, metric, param, file…  ( / )" aria-label="Search">'
        '<button id="expand" type="button">Expand all</button>'
        '<button id="collapse" type="button">Collapse all</button>'
        '<span class="hint">Generated by Pivot; this file needs no network.</span></div>'
        f"<main>{intro}{''.join(parts)}</main><script>{_JS}</script></body></html>\n"
    )
