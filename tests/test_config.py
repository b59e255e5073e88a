import pytest

from personalab import backends, config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("PERSONALAB_PROFILE", "OPENAI_BASE_URL", "OPENAI_API_KEY", "PERSONALAB_BACKEND", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PERSONALAB_FORCE_CPU", "1")
    config.cuda_available.cache_clear()
    yield
    config.cuda_available.cache_clear()


def test_cpu_default_uses_local_backend():
    p = config.detect()
    assert (p.name, p.cuda, p.api_key, p.backend) == ("cpu", False, False, "local")


def test_override_and_bad_override(monkeypatch):
    monkeypatch.setenv("PERSONALAB_PROFILE", "gpu")
    assert config.detect().name == "gpu" and config.detect().overridden
    monkeypatch.setenv("PERSONALAB_PROFILE", "tpu")
    with pytest.raises(ValueError, match="not one of"):
        config.detect()


def test_key_is_used_off_cpu_only_and_base_url_wins(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    assert config.detect().backend == "local"
    monkeypatch.setenv("PERSONALAB_PROFILE", "colab-gpu")
    assert config.detect().backend == "openai"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert config.detect().backend == "remote"


def test_colab_detected(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-x")
    assert config.detect().colab


def test_backend_override_validated(monkeypatch):
    monkeypatch.setenv("PERSONALAB_BACKEND", "magic")
    with pytest.raises(Exception, match="not one of"):
        backends.active_backend()


def test_openai_backend_without_key_says_how_to_fix(monkeypatch):
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        backends.client("openai")


def test_remote_backend_needs_model_name_or_listing(monkeypatch):
    monkeypatch.setenv("PERSONALAB_MODEL", "served-name")
    assert backends.default_model("remote") == "served-name"
    assert backends.default_model("openai") == "served-name"
    monkeypatch.delenv("PERSONALAB_MODEL")
    assert backends.default_model("openai") == backends.DEFAULT_OPENAI_MODEL
