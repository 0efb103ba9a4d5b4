"""The agent's config file and profile loader: what they accept, and errors that name
the file and the key (never a traceback, never the secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockyard.agent import AgentError
from stockyard.agent.config import load_config
from stockyard.agent.profile import load_profile, parse_profile, settings, shipped
from tests.support.agent_env import SECRET, profile_text, write_setup


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


GOOD = """
[stockyard]
url = "https://stockyard.example.com/"
connection = 12
secret_env = "AGENT_SECRET"
[agent]
state = "state.db"
[erp]
url = "sqlite:///erp.db"
profile = "generic"
[profile.settings]
price_list = "Trade"
"""


def test_a_good_config_reads_with_paths_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_config(config(tmp_path, GOOD))
    assert loaded.stockyard.url == "https://stockyard.example.com"
    assert loaded.agent.state == tmp_path / "state.db"
    assert loaded.agent.poll_seconds == 60
    assert loaded.erp.read_isolation is None
    snapshot = GOOD.replace("[erp]", '[erp]\nread_isolation = "SNAPSHOT"')
    assert load_config(config(tmp_path, snapshot)).erp.read_isolation == "SNAPSHOT"
    loaded = load_config(config(tmp_path, GOOD))
    assert loaded.profile.settings == {"price_list": "Trade"}
    with pytest.raises(AgentError, match="AGENT_SECRET is not set"):
        loaded.secret()
    monkeypatch.setenv("AGENT_SECRET", SECRET)
    assert loaded.secret() == SECRET


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('url = "https://stockyard.example.com/"', 'url = "http://stockyard.example.com"'),
         r"\[stockyard\] url: must use https \(http only to 127.0.0.1"),
        (('url = "https://stockyard.example.com/"', 'url = "https://u:p@x.example"'),
         r"\[stockyard\] url: must not carry a user or password"),
        (("connection = 12", "connection = 0"), r"\[stockyard\] connection: "),
        (("connection = 12", ""), r"\[stockyard\] connection: missing"),
        (('secret_env = "AGENT_SECRET"', ""), "give exactly one of secret_file and secret_env"),
        (("[agent]", "[agent]\npoll = 5"), r"\[agent\] poll: unknown key"),
        (('profile = "generic"', 'profile = "generic"\nfolder = "x"'), "only one of url"),
        (("[erp]", "[erp]\nurl_env = 'X'"), "only one of url, url_env and folder"),
        (("[erp]", "[erp]\nread_isolation = 'SNAPSHOTS'"), r"\[erp\] read_isolation: "),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_naming_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(AgentError, match=message) as caught:
        load_config(config(tmp_path, GOOD.replace(*change)))
    assert str(tmp_path / "agent.toml") in str(caught.value)


def test_http_is_allowed_to_this_machine_only(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        text = GOOD.replace('"https://stockyard.example.com/"', f'"{url}"')
        assert load_config(config(tmp_path, text)).stockyard.url == url


def test_not_toml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="not valid TOML"):
        load_config(config(tmp_path, "[stockyard\n"))
    with pytest.raises(AgentError, match="cannot read the agent config"):
        load_config(tmp_path / "nope.toml")


def test_a_secret_file_that_is_missing_or_empty(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, GOOD.replace('secret_env = "AGENT_SECRET"',
                                                       'secret_file = "secret"')))  # fmt: skip
    with pytest.raises(AgentError, match="secret_file: cannot read") as caught:
        loaded.secret()
    (tmp_path / "secret").write_text("\n")
    with pytest.raises(AgentError, match="is empty"):
        loaded.secret()
    (tmp_path / "secret").write_text(SECRET)
    assert loaded.secret() == SECRET
    assert SECRET not in str(caught.value)


# ------------------------------------------------------------------------------ profiles


def test_shipped_profiles_are_found_by_name_and_all_load() -> None:
    names = shipped()
    assert {"generic", "generic-csv", "sage200-evolution", "syspro"} <= set(names)
    for name in names:
        assert load_profile(name).name
    with pytest.raises(AgentError, match=r"no shipped profile named 'sage300'.*shipped: generic"):
        load_profile("sage300")


def test_a_profile_by_path_relative_to_the_config(tmp_path: Path) -> None:
    write_setup(tmp_path, "sqlite:///x.db", "http://127.0.0.1:1", 1)
    profile = load_profile("tiny.toml", tmp_path)
    assert profile.name == "tiny-sage"
    assert profile.products is not None and profile.products.page_size == 2
    assert profile.orders is not None and profile.orders.find


def base_profile() -> dict[str, object]:
    return {"name": "x", "products": {"query": "SELECT 1"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"products": {"quer": "SELECT 1"}}, r"query: missing; \[products\] quer: unknown"),
        ({"colour": "red"}, r"\[colour\]: unknown key"),
        ({"products": None, "customers": None}, "give \\[products\\] and/or \\[customers\\]"),
        ({"files": {}}, "a \\[files\\] profile reads CSV files: remove \\[products\\]"),
        ({"products": None, "customers": {"query": "x"}, "stock": {"query": "x"}},
         "attach to \\[products\\]"),
        ({"orders": {"find": "x"}}, "give write"),
        ({"orders": {"write": ["x"]}}, "give find"),
        ({"orders": {"write": ["x"], "find": "y", "command": ["z"]}}, "either command or write"),
        ({"products": {"query": "x", "page_size": 0}}, r"\[products\] page_size"),
    ],
)  # fmt: skip
def test_bad_profiles_are_refused_naming_the_key(change: dict[str, object], message: str) -> None:
    data = {k: v for k, v in {**base_profile(), **change}.items() if v is not None}
    with pytest.raises(AgentError, match=message):
        parse_profile(data, "mine.toml")


def test_settings_are_the_profiles_with_the_configs_over_them() -> None:
    profile = parse_profile({**base_profile(), "settings": {"price_list": "Retail"}}, "p")
    assert settings(profile, {}, "agent.toml") == {"price_list": "Retail"}
    assert settings(profile, {"price_list": "Trade"}, "agent.toml") == {"price_list": "Trade"}
    with pytest.raises(
        AgentError, match=r"price_lst: not a setting of profile x .it has: price_list"
    ):
        settings(profile, {"price_lst": "Trade"}, "agent.toml")


def test_the_test_profile_text_is_a_valid_profile() -> None:
    import tomllib

    for cursor in (False, True):
        parse_profile(tomllib.loads(profile_text(cursor)), "tiny")


def test_the_config_in_docs_agent_md_loads_as_written(tmp_path: Path) -> None:
    """What a merchant copies from docs/agent.md must load: its keys, and its
    [profile.settings] against the profile it names."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "agent.md").read_text()
    section = text.split("## The config file", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config_file = tmp_path / "agent.toml"
    config_file.write_text(block)
    config = load_config(config_file)
    profile = load_profile(config.erp.profile, config_file.parent)
    chosen = settings(profile, dict(config.profile.settings), str(config_file))
    assert set(config.profile.settings) <= set(chosen)
