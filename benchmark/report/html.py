"""The static HTML report: ``index.html`` (every table, sortable and filterable, figures) and one
page per cell group (params, provenance, curves, errors). No server, no network: one stylesheet
(``style.css``, written beside ``index.html``), the JS inline, links relative, so the folder opens
from disk and can be copied anywhere."""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

from benchmark.report.captions import na_reasons, seeds_line
from benchmark.report.markdown import PACKAGES_LEAD, UNCONVERGED_LEAD, Figures, dated, notes, units_line
from benchmark.report.records import Cell, Results, Section
from benchmark.report.tables import LEGEND, Table, fmt_number, group_page, nan_word, role, scale, table_marks, value_text

CSS = """
:root{--fg:#1d2228;--mut:#5b6570;--bd:#d5dae0;--bg:#fff;--hd:#f3f5f8;--ok:#fff;--part:#fff4d6;--fail:#fde2e1;--na:#eef0f2;--acc:#2456a6}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{padding:18px 28px 8px;border-bottom:1px solid var(--bd);background:var(--hd)}h1{margin:0 0 4px;font-size:22px}
h2{margin:28px 0 6px;font-size:19px;border-bottom:2px solid var(--bd);padding-bottom:4px}h3{margin:22px 0 2px;font-size:15px}
main{padding:0 28px 40px}.meta,.dataset{color:var(--mut);margin:2px 0 8px}.dataset{font-size:12.5px}
.note{border-left:4px solid #c9a227;background:#fffaf0;padding:6px 10px;margin:8px 0}.note.warn{border-color:#d0473d;background:#fff3f2}
#controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:10px 0 6px}#controls input{width:260px;padding:4px 6px}
#controls a{color:var(--acc)}nav#toc{padding:8px 28px;border-bottom:1px solid var(--bd);font-size:13px}nav#toc a{margin-right:12px;color:var(--acc)}
table{border-collapse:collapse;margin:6px 0 4px;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--bd);padding:3px 8px;white-space:nowrap}td{text-align:right}
thead th{background:var(--hd)}.sortable thead th{cursor:pointer;user-select:none;position:relative;padding-right:18px}
.sortable thead th::after{content:"\\2195";position:absolute;right:4px;color:#9aa3ad;font-size:11px}
.sortable thead th[aria-sort=ascending]::after{content:"\\25B2";color:var(--fg)}.sortable thead th[aria-sort=descending]::after{content:"\\25BC";color:var(--fg)}
tbody th{text-align:left;font-weight:600;background:#fafbfc}td a{color:inherit;text-decoration:none;display:block}td a:hover{text-decoration:underline}
td.partial{background:var(--part)}td.failed{background:var(--fail);color:#9b1c14}td.na,td.missing{background:var(--na);color:var(--mut)}td.nan{color:var(--mut)}
td.summary{font-weight:700}p.seeds{font-size:12.5px;color:var(--mut);margin:0 0 2px}
sup.fn{font-size:10px;color:var(--acc);margin-left:1px}p.fn{font-size:12.5px;color:var(--mut);margin:2px 0}.hidden{display:none!important}.empty{color:var(--mut);font-style:italic}
figure{margin:10px 0;display:inline-block;vertical-align:top}figure img{max-width:100%;border:1px solid var(--bd)}figcaption{font-size:12px;color:var(--mut)}
details{margin:6px 0}pre{background:#f6f8fa;border:1px solid var(--bd);padding:8px;overflow:auto;font-size:12px;max-height:420px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600}.b-ok{background:#dff3e4;color:#1c6b34}
.b-failed{background:var(--fail);color:#9b1c14}.b-na{background:var(--na);color:var(--mut)}.kv td{text-align:left}.kv th{text-align:left;background:#fafbfc}
.seed{border:1px solid var(--bd);border-radius:6px;padding:8px 14px;margin:12px 0}svg text{font:11px system-ui,sans-serif;fill:#333}
"""

JS = """
(function(){
function cellKey(td,num){if(!td)return null;if(num){var v=td.getAttribute('data-v');return v===null||v===''?null:parseFloat(v);}return td.textContent.trim().toLowerCase();}
function sortBy(th){
  var table=th.closest('table'),tbody=table.tBodies[0],idx=Array.prototype.indexOf.call(th.parentNode.children,th);
  var num=th.getAttribute('data-type')==='num',dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
  Array.prototype.forEach.call(th.parentNode.children,function(h){h.removeAttribute('aria-sort');});th.setAttribute('aria-sort',dir);
  var rows=Array.prototype.slice.call(tbody.rows),sgn=dir==='ascending'?1:-1;
  rows.sort(function(a,b){var x=cellKey(a.cells[idx],num),y=cellKey(b.cells[idx],num);
    if(x===null&&y===null)return a.getAttribute('data-i')-b.getAttribute('data-i');if(x===null)return 1;if(y===null)return -1;
    var c=num?x-y:x.localeCompare(y);return c!==0?sgn*c:a.getAttribute('data-i')-b.getAttribute('data-i');});
  rows.forEach(function(r){tbody.appendChild(r);});
}
function applyFilter(){
  var terms=document.getElementById('filter').value.toLowerCase().split(',').map(function(t){return t.trim();}).filter(Boolean);
  var sec=document.getElementById('section').value,kind=document.getElementById('kind').value;
  document.querySelectorAll('section.sec').forEach(function(s){s.classList.toggle('hidden',!!sec&&s.id!==sec);});
  document.querySelectorAll('div.tbl').forEach(function(d){
    d.classList.toggle('hidden',!!kind&&d.getAttribute('data-kind')!==kind);var shown=0;
    d.querySelectorAll('tbody tr').forEach(function(r){var label=r.cells[0].textContent.toLowerCase();
      var ok=!terms.length||terms.some(function(t){return label.indexOf(t)>=0;});r.classList.toggle('hidden',!ok);if(ok)shown++;});
    var e=d.querySelector('.empty');if(e)e.classList.toggle('hidden',shown>0);});
}
document.querySelectorAll('table.sortable thead th').forEach(function(th){th.addEventListener('click',function(){sortBy(th);});});
['filter','section','kind'].forEach(function(id){var el=document.getElementById(id);if(el)el.addEventListener('input',applyFilter);});
var m=/[#&]filter=([^&]*)/.exec(location.hash);if(m){var v=m[1];try{v=decodeURIComponent(v);}catch(e){}document.getElementById('filter').value=v;applyFilter();}
window.uebench={sortBy:sortBy,applyFilter:applyFilter};
})();
"""

KINDS = {"by-defense": "attacks × victims (per defense)", "by-victim": "attacks × defenses (per victim)", "best-defense": "best defense", "metric": "other metrics"}


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


STYLESHEET = "style.css"  # the report's one stylesheet (CSS), linked by every page


def page(title: str, body: str, *, root: str = "", script: bool = False) -> str:
    """A page of the report; ``root`` is the relative path from it to the report's folder."""
    js = f"<script>{JS}</script>" if script else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{esc(title)}</title><link rel="stylesheet" href="{esc(root)}{STYLESHEET}"></head><body>{body}{js}</body></html>\n'
    )


def _tooltip(v: Any, unit: str) -> str:
    parts = []
    for seed, x, status in v.seeds:
        parts.append(f"seed {seed}: " + (fmt_number(x, unit) if x is not None else status))
    if v.note:
        parts.append(f"({v.note})")
    if v.status == "n/a":
        parts.append(f"n/a: {v.reason or 'no reason recorded'}")
    parts += [e.splitlines()[0][:200] for e in v.errors[:3]]
    return "; ".join(parts)


def table_html(t: Table) -> str:
    """A table as sortable HTML, with its seed count (:func:`seeds_line`) above and the reasons of
    its ``n/a`` cells below, each cell carrying its reason's number and, in its title, the text."""
    modal = t.modal_n
    reasons = na_reasons(t)
    index = {r: i for i, (r, _) in enumerate(reasons, 1)}
    head = [f'<th data-type="text" scope="col">{esc(t.row_name)}</th>']
    head += [f'<th data-type="num" scope="col">{esc(c)}</th>' for c in t.columns]
    body = []
    for i, r in enumerate(t.rows):
        tds = [f"<th scope=\"row\">{esc(r.label)}</th>"]
        for col, v in zip(t.columns, r.values):
            rl = role(t, col)
            text = esc(value_text(v, t.unit, modal, role=rl, nan=nan_word(t.metric)))
            if v.status == "n/a":
                i = index[v.reason or "no reason recorded"]
                text += f'<sup class="fn">{i}</sup>'  # (no link: the cell links its page already)
            cls = v.status.replace("/", "") + (" summary" if rl == "worst" else "")
            dv = f' data-v="{v.mean:.6g}"' if v.mean is not None else ""
            tip = esc(_tooltip(v, t.unit))
            inner = f'<a href="{esc(v.href)}" title="{tip}">{text}</a>' if v.href else f'<span title="{tip}">{text}</span>'
            tds.append(f'<td class="{cls}"{dv}>{inner}</td>')
        body.append(f'<tr data-i="{i}">' + "".join(tds) + "</tr>")
    unit = t.display_unit
    caption = f"{esc(t.metric)}{' in ' + esc(unit) if unit else ''}" + (f". {esc(seeds)}" if (seeds := seeds_line(t)) else "")
    notes = "".join(
        f'<p class="fn" id="na-{esc(t.id)}-{i}"><sup>{i}</sup> n/a ({n} {"cell" if n == 1 else "cells"}): {esc(reason)}</p>'
        for i, (reason, n) in enumerate(reasons, 1)
    )
    if t.packages:
        notes += f'<p class="fn packages">{esc(PACKAGES_LEAD)}: ' + "; ".join(CODE_SPAN.sub(r"<code>\1</code>", esc(p)) for p in t.packages) + "</p>"
    return (
        f'<p class="seeds">{caption}</p>'
        f'<table class="sortable" id="t-{esc(t.id)}"><caption class="hidden">{caption}</caption><thead><tr>{"".join(head)}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table><p class="empty hidden">No row matches the filter.</p>{notes}'
    )


def _figures_html(items: list[tuple[str, str]]) -> str:
    # each links to its PNG at full size (a wide heatmap is scaled down to the page's width)
    return "".join(f'<figure><a href="{esc(p)}"><img src="{esc(p)}" alt="{esc(a)}" loading="lazy"></a><figcaption>{esc(a)}</figcaption></figure>'
                   for a, p in items)


def index_html(results: Results, tables: dict[str, list[Table]], figures: Figures, exports: list[tuple[str, str]]) -> str:
    counts = results.status_counts
    out = ['<header><h1>uebench report</h1>']
    out.append(
        f'<p class="meta">Generated by <code>bench report</code> from <code>{esc(results.source)}</code>, '
        f"{esc(dated(results))}: {results.n_records} cells ({counts.get('failed', 0)} failed, "
        f"{counts.get('n/a', 0)} n/a). Do not edit by hand.</p>"
    )
    out.extend(_note_blocks(results))
    out.append(f"<p>{esc(units_line(results)).replace('**Worst**', '<b>Worst</b>').replace('`', '')}</p>")
    out.append(f"<details><summary>Legend of the marks</summary><p>{esc(LEGEND)}</p></details>")
    opts = "".join(f'<option value="{esc(s.id)}">{esc(s.dataset)} / {esc(s.profile)}</option>' for s in results.sections)
    kinds = "".join(f'<option value="{k}">{esc(v)}</option>' for k, v in KINDS.items())
    links = " · ".join(f'<a href="{esc(p)}">{esc(n)}</a>' for n, p in exports)
    out.append(
        '<div id="controls"><label>Filter rows <input id="filter" type="search" placeholder="e.g. em, tap (comma = or)"></label>'
        f'<label>Section <select id="section"><option value="">all</option>{opts}</select></label>'
        f'<label>Tables <select id="kind"><option value="">all</option>{kinds}</select></label><span>Download: {links}</span></div></header>'
    )
    toc = []
    body = ["<main>"]
    if not results.sections:
        body.append("<p>" + CODE_SPAN.sub(r"<code>\1</code>", esc(results.empty or "No finished cells yet.")) + "</p>")
    for sec in results.sections:
        toc.append(f'<a href="#{esc(sec.id)}">{esc(sec.dataset)} / {esc(sec.profile)}</a>')
        body.append(f'<section class="sec" id="{esc(sec.id)}"><h2>{esc(sec.dataset)} — profile <code>{esc(sec.profile)}</code></h2>')
        if len(sec.environments) > 1:
            body.append(f'<p class="note warn">This section mixes {len(sec.environments)} numeric environments (see the top of the page).</p>')
        for t in tables[sec.id]:
            title = esc(t.title).replace("`", "")
            marks = ' <span class="meta">(marks: see the legend)</span>' if table_marks(t) else ""
            body.append(
                f'<div class="tbl" id="{esc(t.id)}" data-kind="{t.kind}"><h3>{title}{marks}</h3>'
                f'<p class="dataset">Dataset: {esc(sec.description)}</p>{table_html(t)}{_figures_html(figures.get(t.id, []))}</div>'
            )
        sec_figs = figures.get(sec.id, [])
        if sec_figs:
            body.append(f"<h3>Figures</h3>{_figures_html(sec_figs)}")
        fails = [c for c in sec.cells if c.status == "failed"]
        if fails:
            body.append(f"<h3>Failures ({len(fails)} cells)</h3><ul>")
            for c in sorted(fails, key=lambda c: (c.attack, c.victim, c.defense, str(c.seed))):
                err = (c.error or "no error recorded").strip().splitlines()[0][:300]
                href = group_page(c.section, c.attack, c.victim, c.defense)
                body.append(f'<li><a href="{esc(href)}">{esc(c.attack)} × {esc(c.victim)} × {esc(c.defense)} (seed {esc(c.seed)})</a>: <code>{esc(err)}</code></li>')
            body.append("</ul>")
        body.append("</section>")
    if results.superseded:
        body.append(f'<h2 id="superseded">Superseded records ({len(results.superseded)})</h2><p>Made by older versions of plugins that have newer records; not in any table.</p><ul>')
        for c in results.superseded[:500]:
            r = c.record
            vers = ", ".join(f"{s.get('name')} v{s.get('version')}" for s in (r.get("attack_spec"), r.get("victim_spec"), r.get("defense_spec")) if isinstance(s, dict))
            body.append(f"<li>{esc(c.attack)} × {esc(c.victim)} × {esc(c.defense)} (seed {esc(c.seed)}; {esc(vers)}) <code>{esc(c.key)}</code></li>")
        body.append("</ul>")
    body.append("</main>")
    nav = f'<nav id="toc">{"".join(toc)}</nav>' if toc else ""
    return page("uebench report", "".join(out) + nav + "".join(body), script=True)


CODE_SPAN = re.compile(r"`([^`]*)`")


def _note_blocks(results: Results) -> list[str]:
    out = []
    lines = notes(results, esc=str)
    block: list[str] = []
    for line in lines + [""]:
        if line.startswith(">"):
            block.append(line.lstrip("> ").strip())
            continue
        if block:
            text = "<br>".join(CODE_SPAN.sub(r"<code>\1</code>", esc(b)).replace("**", "") for b in block if b)
            warn = " warn" if "Mixed" in text or UNCONVERGED_LEAD.rstrip(".") in text else ""
            out.append(f'<div class="note{warn}">{text}</div>')
            block = []
        if line.strip():  # a plain note (why cells are n/a): a paragraph, its code spans as code
            out.append('<p class="note">' + CODE_SPAN.sub(r"<code>\1</code>", esc(line)) + "</p>")
    return out


# ----------------------------------------------------------------------------- cell group pages


def svg_chart(series: list[tuple[str, list[float], list[float | None]]], ylabel: str, width: int = 520, height: int = 220) -> str:
    """A small inline SVG line chart (no library, no network); a ``None`` or non-finite y is a gap."""
    pts = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1, y0 = y0 + 1, y0 - 1
    L, R, T, B = 48, 120, 10, 28
    sx = lambda x: L + (x - x0) / (x1 - x0) * (width - L - R)
    sy = lambda y: T + (1 - (y - y0) / (y1 - y0)) * (height - T - B)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    g = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{esc(ylabel)}">']
    g.append(f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#ccc"/>')
    for y in (y0, (y0 + y1) / 2, y1):
        g.append(f'<text x="{L - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in sorted({x0, x1}):
        g.append(f'<text x="{sx(x):.1f}" y="{height - 12}" text-anchor="middle">{x:g}</text>')
    g.append(f'<text x="{(L + width - R) / 2:.0f}" y="{height - 1}" text-anchor="middle">epoch</text>')
    g.append(f'<text x="12" y="{T + 8}" transform="rotate(-90 12 {T + 8})" text-anchor="end">{esc(ylabel)}</text>')
    for i, (label, xs, ys) in enumerate(series):
        c = colors[i % len(colors)]
        xy = [(sx(x), sy(y)) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        g.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in xy)}"/>')
        if len(xy) < 30:  # few epochs: show the points (one point draws no line)
            g += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{c}"/>' for a, b in xy]
        g.append(f'<text x="{width - R + 6}" y="{T + 12 + 14 * i}" style="fill:{c}">{esc(label[:22])}</text>')
    g.append("</svg>")
    return "".join(g)


def _curves_html(cells: list[Cell]) -> str:
    acc: list[tuple[str, list[float], list[float | None]]] = []
    loss: list[tuple[str, list[float], list[float | None]]] = []
    for c in cells:
        phases: dict[str, list[dict[str, Any]]] = {}
        for e in c.record.get("curves") or []:
            if isinstance(e, dict) and isinstance(e.get("epoch"), (int, float)):
                phases.setdefault(str(e.get("phase", "train")), []).append(e)
        for ph, es in phases.items():
            xs = [float(e["epoch"]) for e in es]
            a = [100 * e["accuracy"] if isinstance(e.get("accuracy"), (int, float)) else None for e in es]
            lo = [e["loss"] if isinstance(e.get("loss"), (int, float)) else None for e in es]
            if any(v is not None for v in a):
                acc.append((f"seed {c.seed} {ph}", xs, a))
            if any(v is not None for v in lo):
                loss.append((f"seed {c.seed} {ph}", xs, lo))
    charts = [svg_chart(acc, "train accuracy %"), svg_chart(loss, "train loss")]
    charts = [c for c in charts if c]
    return "<h2>Training curves</h2>" + "".join(charts) if charts else "<h2>Training curves</h2><p>No curves recorded.</p>"


def _kv(d: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)}</code></td></tr>" for k, v in d.items())
    return f'<table class="kv">{rows}</table>'


def group_html(results: Results, sec: Section, cells: list[Cell]) -> str:
    c0 = cells[0]
    title = f"{c0.attack} × {c0.victim} × {c0.defense}"
    out = [f'<header><p><a href="../index.html#{esc(sec.id)}">← all tables</a></p><h1>{esc(title)}</h1>']
    out.append(f'<p class="meta">{esc(sec.dataset)}, profile <code>{esc(sec.profile)}</code> · {len(cells)} cells</p>')
    out.append(f'<p class="dataset">Dataset: {esc(sec.description)}</p></header><main>')
    keys = sorted({k for c in cells for k in c.metrics}, key=lambda k: (k != "accuracy", k))
    cells = sorted(cells, key=lambda c: (c.seed is None, c.seed if c.seed is not None else 0))
    if keys:
        head = "".join(f"<th>seed {esc(c.seed)}</th>" for c in cells)
        rows = []
        for k in keys:
            factor, unit = scale(results.unit(k))
            tds = []
            for c in cells:
                v = c.metrics.get(k)
                tds.append("<td>" + ("–" if v is None else "NaN" if math.isnan(v) else esc(fmt_number(v * factor, results.unit(k)))) + "</td>")
            rows.append(f"<tr><th>{esc(k)}{' (' + esc(unit) + ')' if unit else ''}</th>{''.join(tds)}</tr>")
        out.append(f"<h2>Metrics</h2><table class=\"kv\"><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    out.append(_curves_html(cells))
    for c in cells:
        r = c.record
        badge = {"ok": "b-ok", "failed": "b-failed"}.get(c.status, "b-na")
        out.append(f'<div class="seed" id="seed-{esc(c.seed)}"><h2>Seed {esc(c.seed)} <span class="badge {badge}">{esc(c.status)}</span></h2>')
        if c.error:
            out.append(f"<h3>Error</h3><pre>{esc(c.error)}</pre>")
            if r.get("traceback"):
                out.append(f"<details><summary>traceback</summary><pre>{esc(r['traceback'])}</pre></details>")
        facts = {"key": c.key, "started": r.get("started"), "wall_s": r.get("wall_s"), "matrix": r.get("matrix"),
                 "environment (what differs from other cells)": c.env or None}
        out.append(_kv({k: v for k, v in facts.items() if v is not None}))
        for name in ("attack_spec", "victim_spec", "defense_spec"):
            spec = r.get(name)
            if isinstance(spec, dict):
                out.append(f"<h3>{esc(name.split('_')[0])}: {esc(spec.get('name'))} v{esc(spec.get('version'))}</h3>{_kv(spec.get('params') or {})}")
        if isinstance(r.get("poison_meta"), dict) and r["poison_meta"]:
            out.append(f"<h3>poison</h3>{_kv(r['poison_meta'])}")
        if isinstance(r.get("numerics"), dict):
            out.append(f"<h3>numerics</h3>{_kv(r['numerics'])}")
        if isinstance(r.get("provenance"), dict):
            out.append(f"<h3>provenance</h3>{_kv(r['provenance'])}")
        if isinstance(r.get("plugin_packages"), dict) and r["plugin_packages"]:
            out.append(f"<h3>third-party packages</h3>{_kv(r['plugin_packages'])}")
        if r.get("metric_specs"):
            out.append("<h3>metrics asked for</h3>" + "".join(f"<p><code>{esc(m.get('name'))} v{esc(m.get('version'))}</code></p>{_kv(m.get('params') or {})}" for m in r["metric_specs"] if isinstance(m, dict)))
        out.append("</div>")
    out.append("</main>")
    return page(f"{title} — uebench", "".join(out), root="../")
