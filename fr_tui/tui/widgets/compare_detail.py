"""One row of a comparison in full: the input once, how the two answers differ (the words
that changed, the JSON fields, the cosine similarity of two embeddings), and the two
answers side by side with their changed words highlighted (stacked when narrow: the
screen's -narrow/-wide classes decide).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.widgets import Static

from fr_tui.core.compare import STATE_NAMES, RowDetail, SideAnswer
from fr_tui.core.textdiff import describe_field_change, short_json
from fr_tui.tui.widgets.verdict import badge_style, role_styles

_GLYPHS = {"ok": "✓", "failed": "✗", "missing": "?", "absent": "·"}
_STATE_TEXT = {
    "same": "= same",
    "different": "≠ different",
    "a_not_ok": "✗ A not ok",
    "b_not_ok": "✗ B not ok",
    "neither_ok": "✗ neither ok",
    "only_a": "only in A",
    "only_b": "only in B",
}
_MAX_LISTED = 4


def input_text(request: dict[str, Any] | None) -> str:
    """What was asked, in a line or two: the last user message, an embedding's input,
    else the request body as JSON."""
    if request is None:
        return "(no input line)"
    body = request.get("body")
    if not isinstance(body, dict):
        return short_json(request, 300)
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return " ".join(content.split())
                return short_json(content, 300)
    if "input" in body:
        value = body["input"]
        return value if isinstance(value, str) else short_json(value, 300)
    return short_json(body, 300)


def _side_title(name: str, label: str, side: SideAnswer) -> str:
    bits = [f"{name} · {label}", f"{_GLYPHS[side.outcome]} {side.outcome}"]
    if side.model:
        bits.append(side.model.rsplit("/", 1)[-1])
    if side.finish_reason:
        bits.append(side.finish_reason)
    if side.tokens_in is not None or side.tokens_out is not None:
        bits.append(f"{side.tokens_in or 0}/{side.tokens_out or 0} tok")
    return " · ".join(bits)


def difference_text(detail: RowDetail) -> str:
    """One or two lines on how the two answers differ."""
    a, b = detail.a, detail.b
    if a.outcome == "absent" or b.outcome == "absent":
        return f"Only {'B' if a.outcome == 'absent' else 'A'} has a row with this custom_id."
    if a.outcome != "ok" or b.outcome != "ok":
        if a.outcome != "ok" and b.outcome != "ok":
            return "Neither side answered."
        which, side = ("A", a) if a.outcome != "ok" else ("B", b)
        why = side.error if side.outcome == "failed" else "its result never came back"
        return f"Only {'B' if which == 'A' else 'A'} answered; {which} {side.outcome}: {why}"
    if detail.kind == "embedding":
        similarity = detail.similarity
        same = "the same vectors" if STATE_NAMES[detail.state] == "same" else "different vectors"
        return f"Embeddings: cosine similarity {similarity:.4f} ({same})."
    if detail.kind == "json" and detail.fields is not None:
        if not detail.fields:
            return "= The JSON answers are the same."
        listed = "; ".join(describe_field_change(f) for f in detail.fields[:_MAX_LISTED])
        more = len(detail.fields) - _MAX_LISTED
        extra = f"; {more} more" if more > 0 else ""
        return f"≠ {len(detail.fields)} JSON fields differ: {listed}{extra}"
    words = detail.words
    if words is None or words.same:
        return "= The answers are the same (whitespace aside)."
    changes = len(words.changes)
    common = f"{words.ratio:.0%} of the words in common"
    cut = " (compared as one block past 5,000 words)" if words.truncated else ""
    return f"≠ {changes} change{'s' if changes != 1 else ''} in the words, {common}{cut}."


class CompareDetail(Vertical):
    DEFAULT_CSS = """
    CompareDetail { height: 1fr; }
    CompareDetail #cd-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    CompareDetail #cd-input { height: auto; max-height: 3; padding: 0 1; }
    CompareDetail #cd-diff { height: auto; max-height: 3; padding: 0 1; color: $text-warning; }
    CompareDetail #cd-panes { height: 1fr; layout: vertical; }
    CompareDetail .cd-pane {
        height: 1fr; width: 1fr; padding: 0 1;
        border: round $primary-muted; border-title-color: $text;
    }
    CompareDetail .cd-pane:focus { border: round $accent; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", markup=False, id="cd-title")
        yield Static("", markup=False, id="cd-input")
        yield Static("", markup=False, id="cd-diff")
        with Container(id="cd-panes"):
            for name in ("a", "b"):
                with VerticalScroll(id=f"cd-{name}", classes="cd-pane"):
                    yield Static("", markup=False, id=f"cd-{name}-text")

    def show(self, detail: RowDetail, a_label: str, b_label: str) -> None:
        state = STATE_NAMES[detail.state]
        cid = detail.custom_id or "(no custom_id)"
        self.query_one("#cd-title", Static).update(f"{_STATE_TEXT[state]} · {cid}")
        lines = [f"Input: {input_text(detail.request)}"]
        if detail.request_changes:
            changes = "; ".join(describe_field_change(c) for c in detail.request_changes[:3])
            lines.append(f"B's input differs: {changes}")
        self.query_one("#cd-input", Static).update("\n".join(lines))
        self.query_one("#cd-diff", Static).update(difference_text(detail))
        for name, label, side, shown in (
            ("a", a_label, detail.a, detail.a_shown),
            ("b", b_label, detail.b, detail.b_shown),
        ):
            pane = self.query_one(f"#cd-{name}", VerticalScroll)
            pane.border_title = _side_title(name.upper(), label, side)
            pane.scroll_home(animate=False)
            self.query_one(f"#cd-{name}-text", Static).update(
                self._answer(name, side, shown, detail)
            )

    def _answer(self, name: str, side: SideAnswer, shown: str | None, detail: RowDetail) -> Text:
        roles = role_styles(self.app)
        if side.outcome == "absent":
            return Text(f"{name.upper()} has no row with this custom_id.", style="italic")
        if side.outcome == "missing":
            return Text("No result line: this request never came back.", style="italic")
        if side.outcome == "failed":
            return Text(side.error or "failed", style=roles.get("error", "bold"))
        text = Text(shown or "")
        words = detail.words
        if words is not None:
            spans = words.a_spans if name == "a" else words.b_spans
            style = badge_style(self.app, "error" if name == "a" else "success")
            for start, end in spans:
                text.stylize(style, start, end)
        return text


__all__ = ["CompareDetail", "difference_text", "input_text"]
