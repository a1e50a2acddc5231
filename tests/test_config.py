"""config.toml: profiles, key sources, atomic 0600 writes, broken files."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from fr_tui.core.config import Config, Profile, load_config, mask_key, save_config
from fr_tui.core.paths import get_paths


def test_paths_follow_fr_tui_home(fr_home: Path) -> None:
    paths = get_paths()
    assert paths.config_file == fr_home / "config" / "config.toml"
    assert paths.results_for("sandbox", "fr_batch-1/../x").parent.parent == paths.results_dir


def test_results_folders_are_per_server_and_older_ones_are_still_found(fr_home: Path) -> None:
    paths = get_paths()
    assert paths.results_for("https://api.example.com", "b1") == (
        paths.results_dir / "api.example.com" / "b1"
    )
    assert paths.results_for("http://127.0.0.1:8787", "b1").parent.name == "http_127.0.0.1_8787"
    assert paths.results_for("sandbox", "b1") == paths.results_dir / "sandbox" / "b1"
    legacy = paths.results_dir / "b1"  # where fr-tui kept them before
    legacy.mkdir(parents=True)
    (legacy / "output.jsonl").write_text("{}\n")
    # a record whose files were downloaded there is still read from there
    old_files = [str(legacy / "output.jsonl"), None]
    assert paths.results_for("https://api.example.com", "b1", old_files) == legacy
    # another server's batch with that id is not
    assert paths.results_for("sandbox", "b1") == paths.results_dir / "sandbox" / "b1"
    assert paths.results_for("", "b1") == legacy  # a record of no known server


def test_xdg_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FR_TUI_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    paths = get_paths()
    assert paths.config_dir == tmp_path / "c" / "fr-tui"
    assert paths.data_dir == tmp_path / "d" / "fr-tui"


def test_round_trip_with_0600(fr_home: Path) -> None:
    config = Config()
    config.profiles["work"] = Profile(
        "work", base_url="https://example.test/v1", api_key_env="WORK_KEY"
    )
    config.active_profile = "work"
    path = save_config(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_config()
    assert loaded.active_profile == "work"
    assert loaded.profile().base_url == "https://example.test"
    assert loaded.warnings == []


def test_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTROUTER_API_KEY", "sk-from-env")
    monkeypatch.setenv("WORK_KEY", "sk-work")
    assert Profile("a").resolve_key() == "sk-from-env"
    assert Profile("b", api_key_env="WORK_KEY").resolve_key() == "sk-work"
    assert Profile("c", api_key="sk-inline").resolve_key() == "sk-inline"
    command = f"{sys.executable} -c \"print('sk-from-command')\""
    assert Profile("d", api_key_command=command).resolve_key() == "sk-from-command"
    assert "sk-inline" not in repr(Profile("c", api_key="sk-inline"))
    assert mask_key("sk-v1-abcdef0123456789") == "sk-v1…89"


def test_broken_file_reports_its_line_and_is_kept(fr_home: Path) -> None:
    path = get_paths().ensure().config_file
    path.write_text('active_profile = "default"\npoll_interval = = 3\n')
    config = load_config()
    assert config.broken and any("line 2" in w for w in config.warnings)
    save_config(config)
    assert list(path.parent.glob("config.toml.broken-*"))  # the user's text is not lost


def test_wrong_types_fall_back_with_a_warning(fr_home: Path) -> None:
    path = get_paths().ensure().config_file
    path.write_text('poll_interval = "fast"\nactive_profile = "nope"\n')
    path.chmod(0o600)
    config = load_config()
    assert config.poll_interval == 10.0 and config.active_profile == "default"
    assert len(config.warnings) == 2


def test_world_readable_file_warns(fr_home: Path) -> None:
    path = save_config(Config())
    path.chmod(0o644)
    assert any("chmod 600" in w for w in load_config().warnings)


def test_pasted_keys_are_cleaned_or_refused_clearly() -> None:
    from fr_tui.core.config import KeyError_

    assert Profile("a", api_key="  sk-v1-abc\n").resolve_key() == "sk-v1-abc"
    with pytest.raises(KeyError_, match="cannot be sent") as info:
        Profile("b", api_key="sk-v1-TOP\xa0SECRET").resolve_key()
    assert "SECRET" not in str(info.value)


def test_one_origin_per_server_however_its_url_is_written() -> None:
    from fr_tui.core.config import origin_for

    same = [
        "https://api.fastrouter.ai",
        "https://API.FastRouter.ai/",
        "https://api.fastrouter.ai:443/v1",
        "HTTPS://api.fastrouter.ai",
    ]
    assert {origin_for(url) for url in same} == {"https://api.fastrouter.ai"}
    assert origin_for("http://Proxy.Example:80/Team/v1") == "http://proxy.example/Team"
    assert origin_for("http://127.0.0.1:8787") == "http://127.0.0.1:8787"
    assert origin_for("https://x.example:8443") == "https://x.example:8443"
    assert origin_for("sandbox") == origin_for("", sandbox=True) == "sandbox"


def test_a_client_and_a_profile_agree_on_the_origin() -> None:
    from fr_tui.core.api import BatchClient
    from fr_tui.core.config import profile_for_origin

    config = Config()
    config.profiles["work"] = Profile("work", base_url="https://API.Example.com:443")
    client = BatchClient("https://api.example.com/v1", "sk-x")
    assert client.origin == "https://api.example.com"
    assert profile_for_origin(config, client.origin, None) is config.profiles["work"]
