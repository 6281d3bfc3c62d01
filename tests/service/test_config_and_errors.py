"""Settings from the environment, and the error model's field paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings, get_settings
from service.errors import field_path, from_validation_error
from service.schemas.requests import EMBED_ADAPTER


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("UNIHPR_BUNDLE_PATH", "/srv/bundle")
    monkeypatch.setenv("UNIHPR_API_KEYS", "k1, k2,")
    monkeypatch.setenv("UNIHPR_ADMIN_KEY", "root")
    monkeypatch.setenv("UNIHPR_MAX_BATCH", "7")
    monkeypatch.setenv("UNIHPR_CORS_ORIGINS", "https://a.example,https://b.example")
    s = Settings()
    assert s.bundle_path == Path("/srv/bundle") and s.api_keys == ["k1", "k2"] and s.admin_key == "root"
    assert s.max_batch == 7 and s.cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("UNIHPR_MAX_BATCH", "0")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(("name", "value"), [("UNIHPR_API_KEYS", " , "), ("UNIHPR_API_KEYS", ","),
                                             ("UNIHPR_ADMIN_KEY", "   ")])
def test_a_key_setting_that_parses_to_no_key_stops_start_up(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="nothing|blank"):
        Settings()
    from service.cli import main

    assert main(["--port", "0"]) == 2  # unihpr-serve refuses to start, with the reason on stderr


def test_defaults_are_open_and_get_settings_is_cached(monkeypatch):
    for name in ("UNIHPR_API_KEYS", "UNIHPR_ADMIN_KEY", "UNIHPR_BUNDLE_PATH"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert not s.api_keys and s.admin_key is None and s.bundle_path == Path("bundles/default") and s.ort_threads == 1
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()


@pytest.mark.parametrize("loc,path", [
    (("inputs", 0, "pose2d", "keypoints", 3), "inputs[0].keypoints[3]"),
    (("query", "embedding", "embedding", 2), "query.embedding[2]"),
    (("image", "image_b64"), "image_b64"),
    (("filters", "include", "colour"), "filters.include.colour"),
    ((), None),
])
def test_field_paths(loc, path):
    assert field_path(loc) == path


def test_validation_errors_map_to_codes():
    with pytest.raises(ValidationError) as info:
        EMBED_ADAPTER.validate_python({"inputs": [{"modality": "pose2d", "keypoints": [[1, 2]], "layout": "x"}]})
    err = from_validation_error(info.value)
    assert (err.code, err.status_code, err.field) == ("unknown_layout", 422, "inputs[0].layout")
