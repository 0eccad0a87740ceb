"""A tiny document model, written as Markdown and as HTML: headings, paragraphs, lists,
tables, code and figures, with every string escaped for its target.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Code(NamedTuple):
    """Text shown as code."""

    text: str


class Bold(NamedTuple):
    """Text shown in bold."""

    text: str


class Link(NamedTuple):
    """A link: its text and where it leads (a file beside the report)."""

    text: str
    href: str


Inline = str | Code | Bold | Link


def _md_text(s: str) -> str:
    """Text with Markdown's markup characters escaped."""
    out = s.replace("\\", "\\\\")
    for ch in "<>*[]`|":
        out = out.replace(ch, "\\" + ch)
    return out


def _longest_tick_run(s: str) -> int:
    """The longest run of backticks in ``s`` (0 for none)."""
    return max((len(m) for m in re.findall(r"`+", s)), default=0)


def _md_inline(parts: Sequence[Inline]) -> str:
    """Inline parts as Markdown."""
    out = []
    for p in parts:
        if isinstance(p, Code):
            tick = "`" * (_longest_tick_run(p.text) + 1)  # no run inside can close it
            pad = " " if p.text.startswith("`") or p.text.endswith("`") else ""
            out.append(f"{tick}{pad}{p.text.replace('|', '¦')}{pad}{tick}")
        elif isinstance(p, Bold):
            core = p.text.strip()
            lead = p.text[: len(p.text) - len(p.text.lstrip())]
            trail = p.text[len(p.text.rstrip()) :]
            out.append(f"{lead}**{_md_text(core)}**{trail}")
        elif isinstance(p, Link):
            out.append(f"[{_md_text(p.text)}]({p.href})")
        else:
            out.append(_md_text(p))
    return "".join(out)


def _html_inline(parts: Sequence[Inline]) -> str:
    """Inline parts as HTML."""
    out = []
    for p in parts:
        if isinstance(p, Code):
            out.append(f"<code>{html.escape(p.text)}</code>")
        elif isinstance(p, Bold):
            out.append(f"<strong>{html.escape(p.text)}</strong>")
        elif isinstance(p, Link):
            out.append(f'<a href="{html.escape(p.href, quote=True)}">{html.escape(p.text)}</a>')
        else:
            out.append(html.escape(p))
    return "".join(out)


def _parts(x: Inline | Sequence[Inline]) -> list[Inline]:
    """One inline part or several, as a list."""
    return [x] if isinstance(x, str | Code | Bold | Link) else list(x)


@dataclass
class Doc:
    """Blocks of a report: headings, paragraphs, lists, tables, code, figures."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        """A heading (``level`` 1: a section, in the table of contents with ``anchor``)."""
        self.blocks.append(("h", (level, text, anchor)))

    def p(self, *parts: Inline) -> None:
        """A paragraph of text, code, bold text and links."""
        self.blocks.append(("p", list(parts)))

    def items(self, rows: Sequence[Inline | Sequence[Inline]]) -> None:
        """A list, one item per row."""
        self.blocks.append(("ul", [_parts(r) for r in rows]))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Inline]]) -> None:
        """A table: its header cells and rows of cells."""
        self.blocks.append(("table", (list(headers), [[_parts(c) for c in r] for r in rows])))

    def code(self, text: str) -> None:
        """A block of code (or any text shown as it is)."""
        self.blocks.append(("code", text))

    def figure(self, stem: str, caption: str, *, formats: Sequence[str] = ("png", "svg")) -> None:
        """``stem``: path of the figure without suffix, relative to the report folder;
        ``formats``: the files written of it. The PNG is shown (the SVG where there is no
        PNG), and the SVG is linked beside it where there is both."""
        shown = "png" if "png" in formats else "svg"
        linked = "svg" in formats and shown == "png"
        self.blocks.append(("figure", (stem, caption, shown, linked)))

    def markdown(self) -> str:
        """The document as Markdown, every text escaped."""
        out = [f"# {_md_text(self.title)}", ""]
        for kind, b in self.blocks:
            if kind == "h":
                level, text, _ = b
                out += ["#" * (level + 1) + " " + _md_text(text), ""]
            elif kind == "p":
                out += [_md_inline(b), ""]
            elif kind == "ul":
                out += [f"- {_md_inline(r)}" for r in b] + [""]
            elif kind == "table":
                headers, rows = b
                out.append("| " + " | ".join(_md_text(h) for h in headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += [
                    "| " + " | ".join(_md_inline(c).replace("\n", " ") for c in r) + " |"
                    for r in rows
                ]
                out.append("")
            elif kind == "code":
                fence = "`" * max(3, _longest_tick_run(b) + 1)  # no line inside closes it
                out += [fence, b.rstrip("\n"), fence, ""]
            elif kind == "figure":
                stem, caption, shown, linked = b
                out += [
                    f"![{_md_text(caption)}]({stem}.{shown})",
                    "",
                    f"*{_md_text(caption)}*" + (f" ([SVG]({stem}.svg))" if linked else ""),
                    "",
                ]
        return "\n".join(out)

    def html(self) -> str:
        """The document as one HTML page that opens from disk, every text escaped."""
        body = []
        toc = []
        for kind, b in self.blocks:
            if kind == "h":
                level, text, anchor = b
                tag = f"h{level + 1}"
                aid = f' id="{html.escape(anchor, quote=True)}"' if anchor else ""
                body.append(f"<{tag}{aid}>{html.escape(text)}</{tag}>")
                if anchor and level == 1:
                    toc.append(
                        f'<li><a href="#{html.escape(anchor, quote=True)}">'
                        f"{html.escape(text)}</a></li>"
                    )
            elif kind == "p":
                body.append(f"<p>{_html_inline(b)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_html_inline(r)}</li>" for r in b) + "</ul>")
            elif kind == "table":
                headers, rows = b
                head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
                trs = "".join(
                    "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in r) + "</tr>"
                    for r in rows
                )
                body.append(
                    f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                    f"<tbody>{trs}</tbody></table></div>"
                )
            elif kind == "code":
                body.append(f"<pre><code>{html.escape(b)}</code></pre>")
            elif kind == "figure":
                stem, caption, shown, linked = b
                src = html.escape(f"{stem}.{shown}", quote=True)
                svg = html.escape(f"{stem}.svg", quote=True)
                cap = html.escape(caption)
                img = f'<img src="{src}" alt="{cap}">'
                body.append(
                    f'<figure><a href="{svg}">{img}</a>'
                    f'<figcaption>{cap} (<a href="{svg}">SVG</a>)</figcaption></figure>'
                    if linked
                    else f"<figure>{img}<figcaption>{cap}</figcaption></figure>"
                )
        nav = f"<nav><ul>{''.join(toc)}</ul></nav>" if toc else ""
        title = html.escape(self.title)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{nav}\n" + "\n".join(body) + "\n</body>\n</html>\n"
        )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}
.scroll{overflow-x:auto}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
code{background:#f3f3f3;padding:0 .2em}figure{margin:1em 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#555}
nav ul{columns:2;font-size:.92em}
""".replace("\n", "")
