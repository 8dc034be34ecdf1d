"""The demo's report: ``index.html`` (self-contained: inline style, no script, images by
relative path), ``report.md`` with the same content, and ``metrics.json``."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from prohmr.demo.steps import Section

__all__ = ["metric_rows", "write_html", "write_markdown", "write_metrics"]

_GROUPS = {
    "prohmr": "ProHMR",
    "fitting": "keypoint fitting",
    "multiview": "multi-view",
    "proskeleton": "ProSkeleton",
    "pose_prior": "pose prior",
    "time": "runtime",
}
#: Key parts that only change the wording.
_WORDS = {"ground_truth": "of the true body"}
_QUANTITIES = {
    "mpjpe": ("MPJPE", "mm"),
    "pa_mpjpe": ("PA-MPJPE", "mm"),
    "reprojection_px": ("2D error", "px"),
    "body_pose_spread": ("views' body-pose disagreement", ""),
}

#: Decimals shown per unit (unitless values get 3).
_DIGITS = {"mm": 1, "px": 2, "s": 1}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.thumbs img { width: 128px; margin: 2px; image-rendering: pixelated; }
.summary { background: #f7f7f7; padding: 0.6em 1em; border-left: 4px solid #4a7; }
.note { background: #fff4e0; padding: 0.5em 1em; border-left: 4px solid #e90; }
"""


def _describe(key: str) -> tuple[str, str, str]:
    """``(group, quantity, unit)`` of a metric key such as ``fitting.pa_mpjpe.after``."""
    parts = key.split(".")
    group = _GROUPS.get(parts[0], parts[0])
    if parts[0] == "time":
        return group, parts[1].removesuffix("_s").replace("_", " "), "s"
    words = []
    unit = ""
    for part in parts[1:]:
        if part in _QUANTITIES:
            name, unit = _QUANTITIES[part]
            words.append(name)
        elif part in _WORDS:
            words.append(_WORDS[part])
        elif part.startswith("min_of_"):
            words.append(f"min-of-{part.removeprefix('min_of_')}")
        else:
            words.append(part.replace("_", " "))
    return group, " ".join(words), unit


def metric_rows(metrics: Mapping[str, float]) -> list[list[str]]:
    """The metrics as table rows (header first): step, quantity, value with its unit."""
    rows = [["step", "quantity", "value"]]
    for key, value in metrics.items():
        group, quantity, unit = _describe(key)
        digits = _DIGITS.get(unit, 3)
        rows.append([group, quantity, f"{value:.{digits}f} {unit}".strip()])
    return rows


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _html_table(rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows[1:]
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def write_html(
    path: Path,
    title: str,
    summary: Sequence[str],
    facts: Sequence[str],
    notes: Sequence[str],
    metric_table: Sequence[Sequence[str]],
    sections: Sequence[Section],
) -> Path:
    """Write the HTML report; images are referenced relative to ``path``'s folder.

    Arguments:
        path: the ``.html`` file.
        title: page title.
        summary: the summary lines.
        facts: lines about the run (models, seed, timing).
        notes: warnings to highlight (e.g. missing mocap data).
        metric_table: rows of the metrics table (header first).
        sections: the report's sections, in order.
    """
    root = path.parent
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<div class="summary">' + "<br>".join(html.escape(line) for line in summary) + "</div>",
    ]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    parts.append("<ul>" + "".join(f"<li>{html.escape(fact)}</li>" for fact in facts) + "</ul>")
    parts.append('<h2 id="metrics">Metrics</h2>' + _html_table(metric_table))
    parts.append("<p>Sections: " + " · ".join(
        f'<a href="#{section.anchor}">{html.escape(section.title)}</a>' for section in sections
    ) + "</p>")
    for section in sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
        parts += [f"<p>{html.escape(text)}</p>" for text in section.paragraphs]
        if section.table:
            parts.append(_html_table(section.table))
        figures = [(p, c) for p, c in section.figures if p.parent.name != "images"]
        thumbs = [(p, c) for p, c in section.figures if p.parent.name == "images"]
        for figure, caption in figures:
            source = html.escape(_relative(figure, root))
            parts.append(
                f'<figure><img src="{source}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        if thumbs:
            parts.append('<p class="thumbs">' + "".join(
                f'<img src="{html.escape(_relative(p, root))}" alt="{html.escape(c)}" '
                f'title="{html.escape(c)}">' for p, c in thumbs
            ) + "</p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def _markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines + [""]


def write_markdown(
    path: Path,
    title: str,
    summary: Sequence[str],
    facts: Sequence[str],
    notes: Sequence[str],
    metric_table: Sequence[Sequence[str]],
    sections: Sequence[Section],
) -> Path:
    """Write the same report as Markdown (arguments as :func:`write_html`)."""
    root = path.parent
    lines = [f"# {title}", ""] + [f"    {line}" for line in summary] + [""]
    lines += [f"> **Note:** {note}" for note in notes] + ([""] if notes else [])
    lines += [f"- {fact}" for fact in facts] + ["", "## Metrics", ""]
    lines += _markdown_table(metric_table)
    for section in sections:
        lines += [f"## {section.title}", ""]
        for text in section.paragraphs:
            lines += [text, ""]
        if section.table:
            lines += _markdown_table(section.table)
        for figure, caption in section.figures:
            lines += [f"![{caption}]({_relative(figure, root)})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_metrics(path: Path, metrics: Mapping[str, float], facts: Mapping[str, object]) -> Path:
    """Write ``{"metrics": {...}, "run": {...}}`` as JSON (a non-finite value as null)."""
    values = {key: value if math.isfinite(value) else None for key, value in metrics.items()}
    path.write_text(
        json.dumps({"metrics": values, "run": dict(facts)}, indent=2) + "\n", encoding="utf-8"
    )
    return path
