"""The Files screen's folder tree: folders and JSONL files, or every file on request.
Its root reads as the folder's path (`~/data/evals`) or `fr-tui samples`, never a bare
folder icon."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from rich.text import TextType
from textual.binding import Binding, BindingType
from textual.widgets import DirectoryTree
from textual.widgets._directory_tree import DirEntry
from textual.widgets._tree import TreeNode

from fr_tui.core.paths import SAMPLES_DIR, short_path

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


def has_jsonl(folder: Path) -> bool:
    """Whether `folder` holds a JSONL file (at its top level; unreadable: no)."""
    try:
        return any(p.suffix.lower() in JSONL_SUFFIXES and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def sandbox_start(cwd: Path) -> Path:
    """Where the sandbox opens without a PATH: the current folder when it has JSONL files
    to try, else the shipped samples (the Files screen says which it is)."""
    return cwd if has_jsonl(cwd) else SAMPLES_DIR


ROOT_LABEL_MAX = 30  # the tree pane is 32 wide: a long path keeps its end


def root_label(folder: Path) -> str:
    """`fr-tui samples`, or the folder's path ending (`…/evals/2025`)."""
    if folder.expanduser().resolve() == SAMPLES_DIR:
        return "fr-tui samples"
    text = short_path(folder)
    return text if len(text) <= ROOT_LABEL_MAX else "…" + text[-(ROOT_LABEL_MAX - 1) :]


class JsonlTree(DirectoryTree):
    """Folders and JSONL files; `show_all` shows every (non-hidden) file."""

    HELP_NAME = "tree"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        # (own action names: help lists an action once, and the preview has top/bottom)
        Binding("g", "first_entry", "Top", show=False),
        Binding("G", "last_entry", "Bottom", show=False),
    ]

    show_all = False

    def action_first_entry(self) -> None:
        self.action_scroll_home()

    def action_last_entry(self) -> None:
        self.action_scroll_end()

    def on_mount(self) -> None:
        if getattr(self.screen, "focus_tree_when_mounted", False):
            self.focus()

    def reset_node(
        self, node: TreeNode[DirEntry], label: TextType, data: DirEntry | None = None
    ) -> DirectoryTree:
        if node is self.root and data is not None:
            label = root_label(data.path)  # `.` would read as nothing at all
        return super().reset_node(node, label, data)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                is_dir = path.is_dir()
            except OSError:
                continue
            if is_dir or self.show_all or path.suffix.lower() in JSONL_SUFFIXES:
                out.append(path)
        return out
