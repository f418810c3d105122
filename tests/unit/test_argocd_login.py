"""tirosh.argocd_login: the CLI's login words, their meaning for REST, environment overrides."""

from __future__ import annotations

import pytest

from tirosh.argocd_login import LoginArgsError, Settings, parse_login_args, settings

PROFILE = "sites/x/profile.toml"


def test_every_documented_word_is_understood() -> None:
    words = parse_login_args(
        "--plaintext --insecure --skip-test-tls --grpc-web --prompts-enabled --username ops", "t"
    )
    assert words == {
        "plaintext": True,
        "insecure": True,
        "skip_test_tls": True,
        "grpc_web": True,
        "prompts_enabled": True,
        "username": "ops",
    }


def test_username_with_equals_sign() -> None:
    assert parse_login_args("--username=ci-bot", "t") == {"username": "ci-bot"}


@pytest.mark.parametrize("text", ["--username", "--username --insecure", "--username="])
def test_username_needs_a_name(text: str) -> None:
    with pytest.raises(LoginArgsError, match=r"--username needs a name"):
        parse_login_args(text, "ARGOCD_LOGIN_ARGS")


def test_unknown_word_is_named_with_its_source() -> None:
    with pytest.raises(LoginArgsError) as error:
        parse_login_args("--grpc-web --auth-token abc", "ARGOCD_LOGIN_ARGS")
    assert str(error.value).startswith("ARGOCD_LOGIN_ARGS: unknown word '--auth-token'")


def test_profile_values_are_the_default_https_with_verification() -> None:
    result = settings("gitops.example", "--grpc-web", False, {}, PROFILE)
    assert result == Settings(server="gitops.example")
    assert result.url() == "https://gitops.example"


def test_environment_overrides_server_words_and_port_forward() -> None:
    env = {
        "ARGOCD_SERVER": "127.0.0.1:8080",
        "ARGOCD_LOGIN_ARGS": "--plaintext --username ops",
        "ARGOCD_AUTO_PORT_FORWARD": "true",
    }
    result = settings("gitops.example", "--grpc-web", False, env, PROFILE)
    assert (result.server, result.plaintext, result.username, result.auto_port_forward) == (
        "127.0.0.1:8080",
        True,
        "ops",
        True,
    )
    assert result.url() == "http://127.0.0.1:8080"
    assert result.url("127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_an_empty_login_args_variable_clears_the_profiles_words() -> None:
    result = settings("s", "--plaintext", False, {"ARGOCD_LOGIN_ARGS": ""}, PROFILE)
    assert result.plaintext is False


def test_a_bad_profile_word_names_the_profile_key() -> None:
    with pytest.raises(LoginArgsError, match=r"^sites/x/profile.toml: argocd.login_args: unknown"):
        settings("s", "--core", False, {}, PROFILE)


@pytest.mark.parametrize("server", ["https://gitops.example", "a b", "host/path", " "])
def test_server_must_be_host_or_host_port(server: str) -> None:
    with pytest.raises(LoginArgsError, match=r"^ARGOCD_SERVER: give HOST or HOST:PORT"):
        settings("s", "", False, {"ARGOCD_SERVER": server}, PROFILE)


def test_auto_port_forward_variable_must_be_a_boolean() -> None:
    with pytest.raises(LoginArgsError, match=r"ARGOCD_AUTO_PORT_FORWARD: must be true or false"):
        settings("s", "", False, {"ARGOCD_AUTO_PORT_FORWARD": "sometimes"}, PROFILE)
