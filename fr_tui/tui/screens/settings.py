"""Settings: profiles (name, base URL, key source) with "test connection".

A stored key is never put back into a widget: the key field starts empty with the masked
key as its placeholder, and leaving it empty keeps the stored one.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from fr_tui.core.api import normalise_base_url
from fr_tui.core.config import SANDBOX, KeyError_, Profile, mask_key
from fr_tui.core.key_check import check_key
from fr_tui.tui.widgets.app_footer import AppFooter
from fr_tui.tui.widgets.app_header import AppHeader

KEY_SOURCES = [
    ("API key stored in config.toml", "key"),
    ("Environment variable", "env"),
    ("Command that prints the key", "command"),
]


def _source_of(profile: Profile) -> str:
    if profile.api_key_env:
        return "env"
    if profile.api_key_command:
        return "command"
    return "key"


class SettingsScreen(Screen[None]):
    DEFAULT_CSS = """
    SettingsScreen #settings-body { layout: horizontal; height: 1fr; }
    SettingsScreen #profile-pane { width: 28; }
    SettingsScreen #profiles { height: 1fr; }
    SettingsScreen #form { width: 1fr; padding: 0 1; }
    SettingsScreen .field-label { color: $text-muted; height: 1; }
    SettingsScreen Input, SettingsScreen Select { margin-bottom: 1; }
    SettingsScreen #settings-status { height: auto; min-height: 1; }
    SettingsScreen .buttons { height: 1; }
    SettingsScreen .buttons Button { margin-right: 1; }
    SettingsScreen.-narrow #settings-body { layout: vertical; }
    SettingsScreen.-narrow #profile-pane { width: 1fr; height: 5; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", tooltip="Save this profile", id="settings-save"),
        Binding(
            "ctrl+t", "test", "Test", tooltip="Test the connection and key", id="settings-test"
        ),
        Binding("ctrl+n", "new_profile", "New profile", id="settings-new"),
        Binding("escape", "close", "Back", id="settings-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="settings-body"):
            with Vertical(id="profile-pane"):
                yield Static("Profiles (enter: make active)", classes="pane-title")
                yield OptionList(markup=False, id="profiles")
            with VerticalScroll(id="form"):
                yield Static("Name", classes="field-label")
                yield Input(compact=True, id="profile-name")
                yield Static("Base URL (the part before /v1, or 'sandbox')", classes="field-label")
                yield Input(compact=True, id="profile-base-url")
                yield Static("Key source", classes="field-label")
                yield Select(KEY_SOURCES, allow_blank=False, compact=True, id="key-source")
                yield Static("Key", classes="field-label", id="key-label")
                yield Input(compact=True, password=True, id="key-value")
                yield Static("", markup=False, id="settings-status")
                with Horizontal(classes="buttons"):
                    yield Button("Save", id="settings-save", variant="primary", compact=True)
                    yield Button("Test connection", id="settings-test", compact=True)
                    yield Button("Make active", id="settings-activate", compact=True)
                with Horizontal(classes="buttons"):
                    yield Button("New", id="settings-new", compact=True)
                    yield Button("Delete", id="settings-delete", variant="error", compact=True)
        yield AppFooter()

    def crumbs(self, previous: object) -> list[str]:
        return ["Settings"]

    def on_mount(self) -> None:
        app: Any = self.app
        self._fill_list(app.profile.name)
        self.query_one("#profiles", OptionList).focus()

    def _fill_list(self, select: str | None) -> None:
        app: Any = self.app
        options = self.query_one("#profiles", OptionList)
        options.clear_options()
        names = list(app.config.profiles)
        for name in names:
            active = "● " if name == app.profile.name else "  "
            options.add_option(Option(f"{active}{name}", id=name))
        if select in names:
            options.highlighted = names.index(select)
            self._load(select)

    @on(OptionList.OptionHighlighted, "#profiles")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.selected:
            self._load(event.option.id)

    @on(OptionList.OptionSelected, "#profiles")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._activate(event.option.id)

    def _load(self, name: str) -> None:
        app: Any = self.app
        profile = app.config.profiles[name]
        self.selected = name
        self.query_one("#profile-name", Input).value = name
        self.query_one("#profile-base-url", Input).value = profile.base_url
        source = _source_of(profile)
        self.query_one("#key-source", Select).value = source
        self._show_key_field(profile, source)
        missing = profile.key_missing()
        self._status(f"✖ This profile has {missing}." if missing else "", error=bool(missing))

    def _show_key_field(self, profile: Profile | None, source: str) -> None:
        key_input = self.query_one("#key-value", Input)
        label = self.query_one("#key-label", Static)
        key_input.value = ""
        if source == "key":
            label.update("API key (leave empty to keep the stored one)")
            key_input.password = True
            stored = profile.api_key if profile else None
            key_input.placeholder = (
                "not needed: the sandbox has its own key"
                if profile is not None and profile.is_sandbox
                else f"stored: {mask_key(stored)}"
                if stored
                else "none stored yet: paste a key here"
            )
        elif source == "env":
            label.update("Environment variable holding the key")
            key_input.password = False
            key_input.value = (profile.api_key_env if profile else None) or "FASTROUTER_API_KEY"
        else:
            label.update("Command that prints the key (e.g. pass show fastrouter)")
            key_input.password = False
            key_input.value = (profile.api_key_command if profile else None) or ""

    @on(Select.Changed, "#key-source")
    def _source_changed(self, event: Select.Changed) -> None:
        app: Any = self.app
        profile = app.config.profiles.get(self.selected or "")
        if profile is not None and _source_of(profile) == event.value:
            self._show_key_field(profile, str(event.value))
        else:
            self._show_key_field(None, str(event.value))

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#settings-status", Static)
        status.update(text)
        status.set_class(error, "error-text")

    def _form_profile(self) -> Profile | None:
        """A Profile from the form (stored key kept when the key field is empty)."""
        app: Any = self.app
        name = self.query_one("#profile-name", Input).value.strip()
        base = self.query_one("#profile-base-url", Input).value.strip()
        source = str(self.query_one("#key-source", Select).value)
        value = self.query_one("#key-value", Input).value.strip()
        if not name or any(c.isspace() for c in name):
            self._status("A profile needs a name without spaces.", error=True)
            return None
        if base != SANDBOX:
            base = normalise_base_url(base)
            if not base.startswith(("http://", "https://")):
                self._status("The base URL must start with http:// or https://", error=True)
                return None
        old = app.config.profiles.get(self.selected or "")
        profile = Profile(name=name, base_url=base)
        if old is not None:
            profile.max_rows, profile.max_bytes = old.max_rows, old.max_bytes
        if source == "key":
            profile.api_key = value or (old.api_key if old else None)
        elif source == "env":
            profile.api_key_env = value or None
        else:
            profile.api_key_command = value or None
        return profile

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#settings-save")
    def action_save(self) -> None:
        app: Any = self.app
        profile = self._form_profile()
        if profile is None:
            return
        profiles = app.config.profiles
        if self.selected and self.selected != profile.name:
            if profile.name in profiles:
                self._status(f"A profile named {profile.name!r} exists already.", error=True)
                return
            profiles.pop(self.selected, None)
            if app.config.active_profile == self.selected:
                app.config.active_profile = profile.name
        profiles[profile.name] = profile
        app.save_config()
        was_active = app.profile.name in (self.selected, profile.name)
        self.selected = profile.name
        if was_active:
            app.set_profile(profile.name, save=False)
        self._fill_list(profile.name)
        self._status(f"✔ Saved profile {profile.name!r}.")

    @on(Button.Pressed, "#settings-test")
    def action_test(self) -> None:
        profile = self._form_profile()
        if profile is None:
            return
        self._status("Testing the connection…")
        self._test(profile)

    @work(exclusive=True, group="settings-test", exit_on_error=False)
    async def _test(self, profile: Profile) -> None:
        app: Any = self.app
        if profile.is_sandbox:
            base = app._ensure_sandbox().base_url
        else:
            base = profile.base_url
        try:
            key = await asyncio.to_thread(profile.resolve_key)
        except KeyError_ as exc:
            self._status(f"✖ {exc}", error=True)
            return
        if not key:
            self._status("✖ No key: this key source gives nothing.", error=True)
            return
        works, message = await check_key(base, key)
        self._status(("✔ " if works else "✖ ") + message, error=not works)

    @on(Button.Pressed, "#settings-activate")
    def _activate_pressed(self) -> None:
        if self.selected:
            self._activate(self.selected)

    def _activate(self, name: str) -> None:
        app: Any = self.app
        app.set_profile(name)
        self._fill_list(name)

    @on(Button.Pressed, "#settings-new")
    def action_new_profile(self) -> None:
        app: Any = self.app
        n = 1
        while f"profile{n}" in app.config.profiles:
            n += 1
        self.selected = None
        self.query_one("#profile-name", Input).value = f"profile{n}"
        self.query_one("#profile-base-url", Input).value = "https://api.fastrouter.ai"
        self.query_one("#key-source", Select).value = "key"
        self._show_key_field(None, "key")
        self._status("New profile: fill it in, then Save (ctrl+s).")
        self.query_one("#profile-name", Input).focus()

    @on(Button.Pressed, "#settings-delete")
    def _delete(self) -> None:
        app: Any = self.app
        name = self.selected
        if not name or name in ("default", SANDBOX):
            self._status("The default and sandbox profiles cannot be deleted.", error=True)
            return
        if name == app.profile.name:
            self._status("Switch to another profile before deleting this one.", error=True)
            return
        from fr_tui.tui.modals.confirm import ConfirmModal

        def done(yes: bool | None) -> None:
            if yes:
                app.config.profiles.pop(name, None)
                app.save_config()
                self._fill_list(app.profile.name)
                self._status(f"Deleted profile {name!r}.")

        self.app.push_screen(ConfirmModal("Delete profile", f"Delete {name!r}?", "Delete"), done)

    def action_close(self) -> None:
        self.dismiss(None)
