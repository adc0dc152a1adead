"""The static site builder (make html): notebook links become page links, widgets become static HTML of their
saved state, the index lists the notebooks in lecture order, and broken links are found."""
from __future__ import annotations

import base64
import re

import nbformat

from lecturekit.course import site


def test_links_to_notebooks_become_links_to_pages():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "[a](04_reinforce.ipynb), [b](../exercises/ex02_reinforce.ipynb#part-2), [web](https://x.org/n.ipynb), "
        '<a href="05_baselines_variance.ipynb">c</a>, `file.ipynb` in code')])
    site.rewrite_links(nb)
    assert nb.cells[0].source == (
        "[a](04_reinforce.html), [b](../exercises/ex02_reinforce.html#part-2), [web](https://x.org/n.ipynb), "
        '<a href="05_baselines_variance.html">c</a>, `file.ipynb` in code')


def _state(model, state, **extra):
    return {"model_name": model, "model_module": "@jupyter-widgets/controls", "state": state, **extra}


def test_widgets_become_their_final_state():
    png = base64.b64encode(b"\x89PNG fake").decode()
    state = {
        "box": _state("VBoxModel", {"children": ["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_p", "IPY_MODEL_h",
                                                 "IPY_MODEL_i", "IPY_MODEL_o", "IPY_MODEL_b"]}),
        "s": _state("FloatSliderModel", {"description": "lr", "value": 0.01}),
        "d": _state("DropdownModel", {"description": "baseline", "index": 1, "_options_labels": ["none", "value"]}),
        "p": _state("IntProgressModel", {"description": "steps", "value": 30, "max": 100}),
        "h": _state("HTMLModel", {"value": "done (<b>target</b> reached)"}),
        "i": _state("ImageModel", {"format": "png"}, buffers=[{"path": ["value"], "data": png,
                                                                "encoding": "base64"}]),
        "o": _state("OutputModel", {"outputs": [{"output_type": "stream", "name": "stdout", "text": "x < 1\n"}]}),
        "b": _state("ButtonModel", {"description": "Train"}),
    }
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("demo")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "VBox(...)", site.WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}})]
    nb.metadata["widgets"] = {site.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    assert site.staticize_widgets(nb) == 1
    assert "widgets" not in nb.metadata  # no widget manager (and no network) needed to view the page
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    for piece in ("lr = 0.01", "baseline = value", '<progress max="100" value="30">', "done (<b>target</b> reached)",
                  f"data:image/png;base64,{png}", "x &lt; 1", "<button disabled>Train</button>"):
        assert piece in html, piece


def test_title_and_blurb():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# 04 · REINFORCE\n\nThe *vanilla* policy gradient, see [notebook 03](03_x.ipynb). More text.")])
    assert site.title_and_blurb(nb) == ("04 · REINFORCE", "The vanilla policy gradient, see notebook 03.")


def test_build_without_execution_index_and_links(tmp_path):
    res = site.build(tmp_path, names=["00", "01", "ex00"], run=False, log=lambda m: None)
    index = (tmp_path / "index.html").read_text()
    assert index.index("notebooks/00_course_map.html") < index.index("notebooks/01_policy_based_learning.html")
    assert "exercises/ex00_discounted_returns.html" in index
    page = (tmp_path / "notebooks" / "00_course_map.html").read_text()
    assert 'href="01_policy_based_learning.html"' in page and ".ipynb)" not in page
    # the course map links every notebook; only 00 and 01 were built here
    assert "notebooks/00_course_map.html -> 01_policy_based_learning.html" not in res["broken_links"]
    assert "notebooks/00_course_map.html -> 04_reinforce.html" in res["broken_links"]
    assert res["errors"] == {}


def test_the_site_carries_its_own_mathjax_and_no_cdn(tmp_path):
    res = site.build(tmp_path, names=["03"], run=False, log=lambda m: None)
    assert res["mathjax"] and (tmp_path / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (tmp_path / "_static" / "mathjax" / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").is_dir()
    page = (tmp_path / "notebooks" / "03_policy_gradient_theorem.html").read_text()
    assert f'src="../_static/mathjax/MathJax.js?config={site.MATHJAX_CONFIG}"' in page
    assert not re.findall(r'<(?:script|link)[^>]*(?:src|href)="(?:https?:)?//', page)  # nothing from a CDN
    assert "cdnjs" not in page and "$$" in page  # the TeX is left for MathJax to typeset in the browser
