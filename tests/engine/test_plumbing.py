"""Settings, the plugin registry and Redis keys."""

from __future__ import annotations

import pytest

from engine.config import environment_for_children, load_settings
from engine.errors import DuplicateRegistrationError, UnknownGameError
from engine.game import games
from engine.keys import CampaignKeys
from engine.registry import Registry


def test_settings_come_from_huodong_variables_then_overrides(tmp_path):
    settings = load_settings({"redis_namespace": "x"}, environ={
        "HUODONG_INSTANCE_PATH": str(tmp_path), "HUODONG_DEV_LOGIN": "1", "HUODONG_JOB_RETRY_INTERVALS": "1, 5",
        "HUODONG_SNAPSHOT_CACHE_SECONDS": "0.5", "HUODONG_REDIS_NAMESPACE": "ignored"})
    assert settings.dev_login is True
    assert settings.job_retry_intervals == ("1", "5")
    assert settings.snapshot_cache_seconds == 0.5
    assert settings.redis_namespace == "x"
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'huodong.sqlite3'}"
    assert settings.secret_key == (tmp_path / "secret_key").read_text().strip()  # generated once, kept
    assert load_settings(environ={"HUODONG_INSTANCE_PATH": str(tmp_path)}).secret_key == settings.secret_key


def test_children_get_the_same_settings(tmp_path):
    settings = load_settings({"instance_path": str(tmp_path), "dev_login": True, "plugins": "a,b"}, environ={})
    assert load_settings(environ=environment_for_children(settings)) == settings


def test_an_unknown_setting_is_an_error():
    with pytest.raises(KeyError):
        load_settings({"no_such_setting": 1}, environ={})


def test_the_registry_refuses_duplicates_and_names_what_is_known():
    registry: Registry[int] = Registry("game", UnknownGameError)
    registry.add("a", 1)
    with pytest.raises(DuplicateRegistrationError):
        registry.add("a", 2)
    with pytest.raises(UnknownGameError) as unknown:
        registry.get("b")
    assert unknown.value.details == {"name": "b", "known": ["a"]}
    assert "flash_sale" in games


def test_every_key_of_a_campaign_carries_its_hash_tag():
    keys = CampaignKeys("ns", 42)
    built = [keys.meta, keys.definition, keys.stock_total, keys.stock_taken, keys.holds, keys.outbox,
             keys.user("u"), keys.order("o"), keys.idempotency("u", "any key \n with junk")]
    assert all("{c:42}" in key and key.startswith("ns:") for key in built)
    assert len(set(built)) == len(built)
