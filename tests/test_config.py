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
    with pytest.raises(ValueError, match="is not a profile; how to fix"):
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
    with pytest.raises(Exception, match="is not a backend; how to fix"):
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


def test_doctor_flags_a_missing_local_model(monkeypatch):
    from personalab.cli import main
    from personalab.doctor import local_model_check

    monkeypatch.setenv("PERSONALAB_LOCAL_MODEL", "/nonexistent/model")
    check = local_model_check()
    assert not check.ok and "PERSONALAB_LOCAL_MODEL='/nonexistent/model' does not exist" in check.value
    monkeypatch.delenv("PERSONALAB_LOCAL_MODEL")
    assert local_model_check().ok
    monkeypatch.setenv("PERSONALAB_PROFILE", "bogus")
    assert main(["doctor"]) == 2


def test_bad_profile_is_one_line_on_the_command_line(monkeypatch, capsys):
    from personalab.cli import main

    monkeypatch.setenv("PERSONALAB_PROFILE", "bogus")
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PERSONALAB_PROFILE='bogus'" in err and "Traceback" not in err


def test_bad_setting_shows_one_line_in_a_notebook(monkeypatch):
    """IPython renders ``_render_traceback_`` instead of a traceback: the setup cell shows one clear line."""
    from personalab.errors import SettingError
    from personalab.notebook import setup

    monkeypatch.setenv("PERSONALAB_PROFILE", "bogus")
    with pytest.raises(SettingError) as err:
        setup(quiet=True)
    assert err.value._render_traceback_() == [f"SettingError: {err.value}"]
    assert "how to fix" in str(err.value)
