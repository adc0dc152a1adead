"""The course as a static web site: every lecture notebook executed and rendered with its plots, an index page in
lecture order, and links between notebooks that work.  `make html` runs

    python -m lecturekit.course.site [--out site] [--jobs 2] [--no-execute] [NAME ...]

NAME selects notebooks by the start of their file name (`00`, `04_reinforce`); by default all of notebooks/ are
executed and exercises/ rendered as they are (stubs, no outputs; solutions stay out of the site).  Widgets become
static HTML with the state they ended in (the live demo's final curve, a slider's value and the figure it drew), and
MathJax 2.7 is copied into the site from the pip package `jupyter-server-mathjax` (a dependency of the course), so
the site needs no network to build or view, and no CDN.
Exit status 1 if a notebook raised during execution (the page is still written, errors shown).
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the pages use of MathJax 2.7: TeX input, HTML-CSS output with the STIX-Web fonts (the ones the package ships)
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config", "extensions", "jax/input/TeX", "jax/output/HTML-CSS",
                 "jax/element", "fonts/HTML-CSS/STIX-Web/woff", "localization/en")
MATHJAX_SKIP = ("a11y",)  # the accessibility explorer's 3.7 MB of speech rules, loaded only from MathJax's menu
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# a relative Markdown link to a notebook: ](04_reinforce.ipynb) or ](../exercises/ex02.ipynb#part-2)
NOTEBOOK_LINK = re.compile(r"(\]\((?![a-zA-Z][\w+.-]*:)[^)\s]*?)\.ipynb((?:#[^)\s]*)?\))")
HREF_LINK = re.compile(r'(href=["\'](?![a-zA-Z][\w+.-]*:)[^"\'#]*?)\.ipynb(["\'#])')

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.course_mathjax_url -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
</script>
{{ mathjax(resources.course_mathjax_url) }}
{%- endif -%}
{%- endblock html_head_js_mathjax -%}
{% block extra_css %}<style>
.lk-nav { font-family: system-ui, sans-serif; padding: 8px 16px; border-bottom: 1px solid #ddd; display: flex;
          gap: 24px; background: #f7f7f7; position: sticky; top: 0; z-index: 10; }
.lk-nav a { text-decoration: none; }
details.lk-hidden > summary { cursor: pointer; color: #666; font-size: 90%; margin: 4px 0 4px 64px; }
.lk-w-row { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
.lk-w-col { display: flex; flex-direction: column; gap: 4px; align-items: flex-start; }
.lk-knob { font-family: monospace; background: #eef; padding: 1px 6px; border-radius: 3px; }
.lk-static-note { color: #888; font-size: 85%; font-style: italic; }
</style>{% endblock extra_css %}
{%- block body_header -%}{{ super() }}
<nav class="lk-nav">{{ resources.course_nav }}</nav>
{%- endblock body_header -%}
{% block input_group -%}
{%- if cell.metadata.get('jupyter', {}).get('source_hidden') -%}
<details class="lk-hidden"><summary>set-up code (folded in the notebook)</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock input_group %}
"""


# -- notebooks in ---------------------------------------------------------------------------------------------
def sources(folder: str, names: list[str] | None = None) -> list[Path]:
    """The percent-format sources of a folder in lecture order, optionally only those starting with a NAME."""
    files = sorted(p for p in (ROOT / folder).glob("*.py") if not p.name.startswith("_"))
    if names:
        files = [p for p in files if any(p.stem.startswith(n) for n in names)]
    return files


def load(py: Path):
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def execute(py: Path, timeout: int = 900) -> tuple[str, list[str], float]:
    """Run one notebook in a fresh kernel; (notebook as JSON, errors as 'cell N: Name: message', seconds)."""
    import subprocess

    import nbformat
    from nbclient import NotebookClient

    nb = load(py)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True, store_widget_state=True,
                            resources={"metadata": {"path": str(py.parent)}})
    client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines; cell output comes through the notebook
    errors = [f"cell {i}: {o.get('ename')}: {ANSI.sub('', str(o.get('evalue', '')))[:200]}"
              for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return nbformat.writes(nb), errors, time.perf_counter() - t0


# -- widgets as static HTML ---------------------------------------------------------------------------------------
def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _outputs_html(outputs: list) -> str:
    parts = []
    for o in outputs:
        data = o.get("data", {})
        if o.get("output_type") == "stream":
            parts.append(f"<pre>{html.escape(ANSI.sub('', ''.join(o.get('text', ''))))}</pre>")
        elif o.get("output_type") == "error":
            parts.append(f"<pre>{html.escape(ANSI.sub('', chr(10).join(o.get('traceback', []))))}</pre>")
        elif "image/png" in data:
            parts.append(f'<img src="data:image/png;base64,{"".join(data["image/png"]).strip()}">')
        elif "text/html" in data:
            parts.append("".join(data["text/html"]))
        elif "text/plain" in data:
            parts.append(f"<pre>{html.escape(''.join(data['text/plain']))}</pre>")
    return "".join(parts)


def widget_html(model_id: str, state: dict, depth: int = 0) -> str:
    """A widget and its children as static HTML, from a notebook's saved widget state."""
    m = state.get(model_id.replace("IPY_MODEL_", ""))
    if m is None or depth > 20:
        return ""
    name, s = m.get("model_name", ""), m.get("state", {})
    desc = html.escape(s.get("description") or "")
    kids = "".join(widget_html(c, state, depth + 1) for c in s.get("children", []))
    if name in ("VBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel", "StackModel"):
        return f'<div class="lk-w-col">{kids}</div>'
    if name == "HBoxModel":
        return f'<div class="lk-w-row">{kids}</div>'
    if name == "ImageModel":
        buf = next((b["data"] for b in m.get("buffers", []) if b.get("path") == ["value"]), None)
        if buf is None:
            return ""
        fmt = s.get("format", "png")
        width = state.get(str(s.get("layout", "")).replace("IPY_MODEL_", ""), {}).get("state", {}).get("width")
        style = f' style="width:{html.escape(width)}"' if width else ""
        return f'<img src="data:image/{fmt};base64,{buf}"{style}>'
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{desc + ' ' if desc else ''}{s.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<div>{html.escape(str(s.get('value', '')))}</div>"
    if name in ("IntProgressModel", "FloatProgressModel"):
        return (f'<div>{desc} <progress max="{s.get("max", 100)}" value="{s.get("value", 0)}"></progress> '
                f'{_fmt(s.get("value", 0))} / {_fmt(s.get("max", 100))}</div>')
    if name == "OutputModel":
        return f"<div>{_outputs_html(s.get('outputs', []))}</div>"
    if name == "ButtonModel":
        return f"<button disabled>{desc}</button>"
    if "_options_labels" in s:  # Dropdown, ToggleButtons, RadioButtons, SelectionSlider
        labels, idx = s.get("_options_labels", []), s.get("index")
        value = labels[idx] if isinstance(idx, int) and 0 <= idx < len(labels) else ""
        return f'<span class="lk-knob">{desc} = {html.escape(str(value))}</span>'
    if "value" in s:  # sliders, text boxes, checkboxes
        return f'<span class="lk-knob">{desc} = {_fmt(s["value"])}</span>'
    return ""


def staticize_widgets(nb) -> int:
    """Replace every widget output by static HTML of its saved state and drop the state; returns how many."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if WIDGET_VIEW in data:
                body = widget_html(data[WIDGET_VIEW].get("model_id", ""), state)
                note = '<div class="lk-static-note">(interactive in JupyterLab; here as it was left)</div>'
                o["data"] = {"text/html": f'<div class="lk-static-widget">{body}{note}</div>' if body else note}
                count += 1
    nb.metadata.pop("widgets", None)
    return count


# -- links, pages, index ------------------------------------------------------------------------------------------
def rewrite_links(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = HREF_LINK.sub(r"\1.html\2", NOTEBOOK_LINK.sub(r"\1.html\2", cell.source))


def title_and_blurb(nb) -> tuple[str, str]:
    """The first Markdown heading, and the first sentence of the paragraph after it (Markdown links dropped)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if lines and lines[0].startswith("#"):
            title = lines[0].lstrip("#").strip()
            para = " ".join(ln.strip() for ln in lines[1:] if ln.strip() and not ln.startswith(("#", "|", "$$")))
            para = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", para).replace("**", "").replace("`", "")
            para = re.sub(r"(?<!\w)\*([^*]+)\*(?!\w)", r"\1", para)
            first = re.split(r"(?<=[.!?])\s", para, maxsplit=1)[0] if para else ""
            return title, first
    return "", ""


def render(nb, nav: str, mathjax_url: str | None) -> str:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[DictLoader({"course.html.j2": TEMPLATE})], template_file="course.html.j2")
    body, _ = exporter.from_notebook_node(nb, resources={"course_nav": nav, "course_mathjax_url": mathjax_url})
    return body


def mathjax_source() -> Path | None:
    """MathJax 2.7 as the `jupyter-server-mathjax` package ships it (None if that is not installed)."""
    try:
        from importlib.resources import files

        src = Path(str(files("jupyter_server_mathjax") / "static"))
    except (ImportError, TypeError):
        return None
    return src if (src / "MathJax.js").is_file() else None


def copy_mathjax(out: Path) -> bool:
    """Copy the parts of MathJax the pages use to out/_static/mathjax; False if MathJax is not installed."""
    src = mathjax_source()
    if src is None:
        return False
    dest = out / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*MATHJAX_SKIP))
        elif (src / part).exists():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dest / part)
    return True


def _nav(prev: tuple | None, nxt: tuple | None, up: str) -> str:
    items = [f'<a href="{up}index.html">&#8962; course index</a>']
    if prev:
        items.append(f'<a href="{prev[0]}">&larr; {html.escape(prev[1])}</a>')
    if nxt:
        items.append(f'<a href="{nxt[0]}">{html.escape(nxt[1])} &rarr;</a>')
    return " ".join(items)


def index_html(lectures: list[dict], exercises: list[dict], built: str, math: bool) -> str:
    def rows(items):
        out = []
        for it in items:
            warn = (f' <span class="err">({len(it["errors"])} cell(s) raised while building)</span>'
                    if it.get("errors") else "")
            secs = f' <span class="secs">{it["seconds"]:.0f} s</span>' if it.get("seconds") else ""
            out.append(f'<li><a href="{it["href"]}">{html.escape(it["title"])}</a>{secs}{warn}'
                       f'<div class="blurb">{html.escape(it["blurb"])}</div></li>')
        return "\n".join(out)

    note = ("" if math else "<p class='secs'>(MathJax, the pip package jupyter-server-mathjax, was not installed "
                             "when this was built: formulas show as TeX.)</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Policy gradients: the course</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 860px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
li {{ margin: 0.5em 0; }} .blurb {{ color: #555; font-size: 92%; }} .secs {{ color: #999; font-size: 85%; }}
.err {{ color: #b00; }}
</style></head><body>
<h1>Policy gradients: the course</h1>
<p>The lecture's notebooks in order, executed with all their outputs: read them here, or open the same notebooks in
JupyterLab (<code>make lab</code>) to run them, move the sliders and retrain the demos. Times are how long each
notebook took to execute when this site was built.</p>
{note}
<h2>Lecture notebooks</h2>
<ol start="0" id="lectures">
{rows(lectures)}
</ol>
<h2>Exercises</h2>
<p>Open these in JupyterLab to solve them: each function has a check cell that says what is wrong with your answer.
Here they are shown as handed out.</p>
<ul id="exercises">
{rows(exercises)}
</ul>
<p class="secs">Built {html.escape(built)}.</p>
</body></html>
"""


def broken_links(out: Path) -> list[str]:
    """Relative links in the site's pages whose target file does not exist."""
    bad = []
    for page in out.rglob("*.html"):
        if "_static" in page.parts:
            continue
        for href in re.findall(r'href="([^"#?]+)[^"]*"', page.read_text(errors="replace")):
            if re.match(r"[a-zA-Z][\w+.-]*:", href) or href.startswith("/"):
                continue
            if not (page.parent / href).exists():
                bad.append(f"{page.relative_to(out)} -> {href}")
    return sorted(set(bad))


def build(out: Path, names: list[str] | None = None, jobs: int = 2, run: bool = True, timeout: int = 900,
          log=print) -> dict:
    """Write the site to `out`; returns {'pages', 'errors', 'broken_links', 'mathjax'}."""
    import nbformat

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    math = copy_mathjax(out)
    lectures, exercises = sources("notebooks", names), sources("exercises", names)
    executed: dict[Path, tuple] = {}
    if run and lectures:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {py: pool.submit(execute, py, timeout) for py in lectures}
            for py, fut in futures.items():
                executed[py] = fut.result()
                log(f"  executed {py.name} in {executed[py][2]:.0f} s"
                    + (f" ({len(executed[py][1])} error(s))" if executed[py][1] else ""))
    pages, all_errors = {"notebooks": [], "exercises": []}, {}
    for folder, files in (("notebooks", lectures), ("exercises", exercises)):
        items = []
        nbs = []
        for py in files:
            if py in executed:
                text, errors, secs = executed[py]
                nb = nbformat.reads(text, as_version=4)
            else:
                nb, errors, secs = load(py), [], 0.0
            title, blurb = title_and_blurb(nb)
            items.append({"href": f"{folder}/{py.stem}.html", "title": title or py.stem, "blurb": blurb,
                          "errors": errors, "seconds": secs, "stem": py.stem})
            nbs.append(nb)
            if errors:
                all_errors[f"{folder}/{py.name}"] = errors
        (out / folder).mkdir(exist_ok=True)
        for k, (it, nb) in enumerate(zip(items, nbs)):
            staticize_widgets(nb)
            rewrite_links(nb)
            prev = (f"{items[k - 1]['stem']}.html", items[k - 1]["title"]) if k > 0 else None
            nxt = (f"{items[k + 1]['stem']}.html", items[k + 1]["title"]) if k + 1 < len(items) else None
            mj = f"../_static/mathjax/MathJax.js?config={MATHJAX_CONFIG}" if math else None
            (out / folder / f"{it['stem']}.html").write_text(render(nb, _nav(prev, nxt, "../"), mj))
        pages[folder] = items
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / "index.html").write_text(index_html(pages["notebooks"], pages["exercises"], built, math))
    (out / "build.json").write_text(json.dumps({"built": built, "errors": all_errors, "mathjax": math,
                                                "seconds": {it["stem"]: round(it["seconds"], 1)
                                                            for it in pages["notebooks"]}}, indent=1))
    return {"pages": sum(len(v) for v in pages.values()), "errors": all_errors, "broken_links": broken_links(out),
            "mathjax": math}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lecturekit.course.site", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="only notebooks whose file name starts with one of these")
    p.add_argument("--out", default=str(ROOT / "site"), help="output folder (default site/)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at the same time")
    p.add_argument("--no-execute", action="store_true", help="render the notebooks as they are, without running")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    res = build(Path(args.out), args.names or None, args.jobs, not args.no_execute, args.timeout, log)
    for page, errs in res["errors"].items():
        log(f"error: {page} raised while executing:\n    " + "\n    ".join(errs))
    for link in res["broken_links"]:
        log(f"warning: broken link {link}")
    if not res["mathjax"]:
        log("note: MathJax not found (pip install jupyter-server-mathjax==0.2.6): formulas will show as TeX")
    index = Path(args.out).resolve() / "index.html"
    log(f"wrote {res['pages']} pages in {time.perf_counter() - t0:.0f} s: file://{index}")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
