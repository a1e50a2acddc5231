"""The Files screen's folder tree: folders and JSONL files, or every file on request."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.widgets import DirectoryTree

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class JsonlTree(DirectoryTree):
    """Folders and JSONL files; `show_all` shows every (non-hidden) file."""

    show_all = False

    def on_mount(self) -> None:
        if getattr(self.screen, "focus_tree_when_mounted", False):
            self.focus()

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
