"""Rich text as a neutral message (issue 10 §6): a title, sections of lines (bold / highlighted spans), lists and
small tables — rendered per channel: WeCom markdown within 2,048 bytes a message (split at section boundaries),
console HTML (every byte of data escaped), and plain text where neither is available.

Manager digests, plan summaries and customer-health alerts are written once as ``RichText`` and shown well on every
channel. Data (customer names, what a rep typed) never becomes markup: WeCom markdown has no escape syntax, so its
markup characters in data are replaced by their full-width forms (``*`` → ``＊``), and HTML is escaped.

WeCom's app ``markdown`` supports headings, ``**bold**``, links, inline code, ``>`` quotes and
``<font color="info|comment|warning">`` (https://developer.work.weixin.qq.com/document/path/90236 #markdown消息);
lists and tables are not part of it, so they render as ``·`` lines and ``label：value`` quote lines.
"""

from __future__ import annotations

import html
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cards.wecom import MARKDOWN_MAX_BYTES

Tone = Literal["plain", "good", "warn", "muted"]
_FONT = {"good": "info", "warn": "warning", "muted": "comment"}
# WeCom markdown markup characters, as full-width look-alikes in data (there is no escape syntax).
_MD_DATA = str.maketrans({"*": "＊", "`": "｀", "<": "＜", ">": "＞", "[": "［", "]": "］", "#": "＃", "_": "＿"})
_CONTINUED = "（续）"


class Span(BaseModel):
    """A run of text; ``bold`` and ``tone`` are hints a channel renders as it can."""

    model_config = ConfigDict(frozen=True)

    text: str
    bold: bool = False
    tone: Tone = "plain"


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)

    spans: tuple[Span, ...]
    bullet: bool = False

    @classmethod
    def of(cls, *parts: str | Span, bullet: bool = False) -> Line:
        return cls(spans=tuple(p if isinstance(p, Span) else Span(text=p) for p in parts), bullet=bullet)


class Table(BaseModel):
    model_config = ConfigDict(frozen=True)

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = ()


class Section(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str = ""
    lines: tuple[Line, ...] = ()
    table: Table | None = None


class RichText(BaseModel):
    """A formatted message: what digests and summaries are written as."""

    model_config = ConfigDict(frozen=True)

    title: str
    sections: tuple[Section, ...] = Field(default=())


# ---- plain text -------------------------------------------------------------------------------------------------


def _plain_line(line: Line) -> str:
    text = "".join(s.text for s in line.spans)
    return f"· {text}" if line.bullet else text


def _plain_table(table: Table) -> list[str]:
    out = [" | ".join(table.header)] if table.header else []
    for row in table.rows:
        pairs = [f"{h}：{v}" for h, v in zip(table.header, row, strict=False)] if table.header else list(row)
        out.append("，".join(pairs) if table.header else " | ".join(pairs))
    return out[1:] if table.header else out


def section_plain(section: Section) -> str:
    lines = [f"【{section.title}】"] if section.title else []
    lines += [_plain_line(line) for line in section.lines]
    if section.table is not None:
        lines += _plain_table(section.table)
    return "\n".join(lines)


def to_plain(rich: RichText) -> str:
    """Plain text: a channel without formatting (or a fallback) shows this."""
    return "\n\n".join([rich.title, *(section_plain(s) for s in rich.sections)]).strip()


# ---- WeCom markdown ---------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return " ".join(text.translate(_MD_DATA).split())


def _md_span(span: Span) -> str:
    text = _md(span.text)
    if not text:
        return " " if span.text[:1].isspace() else ""
    if span.bold:
        text = f"**{text}**"
    if span.tone in _FONT:
        text = f'<font color="{_FONT[span.tone]}">{text}</font>'
    # The space between two spans ("完成 " + bold "4") stays outside the markup.
    before = " " if span.text[:1].isspace() else ""
    after = " " if span.text[-1:].isspace() else ""
    return before + text + after


def _md_section(section: Section) -> list[str]:
    lines = [f"### {_md(section.title)}"] if section.title else []
    for line in section.lines:
        body = "".join(_md_span(s) for s in line.spans).strip()
        lines.append(f"· {body}" if line.bullet else body)
    if section.table is not None:
        header = [_md(h) for h in section.table.header]
        for row in section.table.rows:
            cells = [_md(c) for c in row]
            if header:
                lines.append("> " + "，".join(f"{h}：{c}" for h, c in zip(header, cells, strict=False)))
            else:
                lines.append("> " + " | ".join(cells))
    return lines


def _fits(lines: list[str], limit: int) -> bool:
    return len("\n".join(lines).encode()) <= limit


def to_wecom_markdown(rich: RichText, limit_bytes: int = MARKDOWN_MAX_BYTES) -> list[str]:
    """WeCom markdown messages of at most ``limit_bytes`` each: whole sections per message where they fit, a
    section too long for one message cut between its lines (each continuation headed "（续）"), a single line too
    long cut at the limit."""
    head = f"## {_md(rich.title)}"
    parts: list[list[str]] = [[head]]
    for section in rich.sections:
        lines = _md_section(section)
        current = parts[-1]
        if _fits([*current, "", *lines], limit_bytes):
            current += ["", *lines]
            continue
        if _fits(lines, limit_bytes) and len(current) > 1:
            parts.append(list(lines))
            continue
        # Too long for one message: line by line, continuing under the section's title.
        title = lines[0] + _CONTINUED if section.title else _CONTINUED
        for line in lines:
            line = _cut_bytes(line, limit_bytes - len(title.encode()) - 1)
            if not _fits([*parts[-1], line], limit_bytes):
                parts.append([title])
            parts[-1].append(line)
    return ["\n".join(p).strip() for p in parts if "".join(p).strip()]


def _cut_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: max(0, limit - 3)].decode(errors="ignore") + "…"


# ---- console HTML -----------------------------------------------------------------------------------------------


def _html_span(span: Span) -> str:
    text = html.escape(span.text)
    if span.bold:
        text = f"<strong>{text}</strong>"
    if span.tone != "plain":
        text = f'<span class="tone-{span.tone}">{text}</span>'
    return text


def to_html(rich: RichText) -> str:
    """An HTML fragment for the console (no scripts, no attributes from data: every text is escaped)."""
    out = [f"<h3>{html.escape(rich.title)}</h3>"]
    for section in rich.sections:
        out.append("<section>")
        if section.title:
            out.append(f"<h4>{html.escape(section.title)}</h4>")
        in_list = False
        for line in section.lines:
            body = "".join(_html_span(s) for s in line.spans)
            if line.bullet and not in_list:
                out.append("<ul>")
            elif not line.bullet and in_list:
                out.append("</ul>")
            in_list = line.bullet
            out.append(f"<li>{body}</li>" if line.bullet else f"<p>{body}</p>")
        if in_list:
            out.append("</ul>")
        if section.table is not None:
            table = section.table
            head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        out.append("</section>")
    return "".join(out)
