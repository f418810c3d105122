"""k3s_config checked as k3s reads it, property-tested against a model of k3s's parser.

The model below restates k3s's ``pkg/configfilearg.readConfigFile`` (one trailing ``+`` removed,
``-`` for one-letter keys and ``--`` otherwise, ``--key=value``) and Go's ``flag`` package
(one or two dashes, a third is "bad flag syntax", the name ends at ``=``), plus the one-letter
aliases of the server and agent flags. Whatever spelling a key has, the checks must see the
flag k3s would see.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tirosh import strict_yaml
from tirosh.k3s_config import ALIASES, SECRET_FLAGS, check_k3s_config, flag_name, normalise

FILE = "sites/lab/k3s/vars.yml"


# --------------------------------------------------------------------------- the model of k3s


def k3s_argument(key: str, value: str = "v") -> str:
    """readConfigFile: the argument k3s puts on its command line for one config key."""
    name = key.removesuffix("+")  # strings.TrimSuffix: one "+"
    prefix = "-" if len(name) == 1 else "--"
    return f"{prefix}{name}={value}"


def go_flag(argument: str) -> str | None:
    """Go's flag.FlagSet.parseOne: the flag name, or None for "bad flag syntax"."""
    if len(argument) < 2 or argument[0] != "-":
        return None
    minuses = 2 if argument[1] == "-" else 1
    name = argument[minuses:]
    if not name or name[0] in "-=":
        return None
    return name.split("=", 1)[0]


def k3s_flag(key: str) -> str | None:
    name = go_flag(k3s_argument(key))
    return None if name is None else ALIASES.get(name, name)


NAMES = [*ALIASES, *ALIASES.values(), *SECRET_FLAGS, "tls-san", "disable", "node-label", "x"]
keys = st.builds(
    lambda dashes, name, eq, plus: f"{dashes}{name}{eq}{plus}",
    st.sampled_from(["", "", "-", "--", "---"]),
    st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=8)),
    st.sampled_from(["", "", "=x"]),
    st.sampled_from(["", "", "+", "++"]),
)


@settings(max_examples=600)
@given(keys)
def test_every_key_is_read_as_the_flag_k3s_sees(key: str) -> None:
    flags = normalise({key: "value"})
    model = k3s_flag(key)
    if model is not None and model == key.removesuffix("+") and flags.values:
        assert list(flags.values) == [model]
    if model is not None and flags.values:
        assert flag_name(key) == model
    if model is None:
        # k3s would stop on "bad flag syntax": never accepted silently.
        assert flags.problems and not flags.values


@settings(max_examples=600)
@given(keys)
def test_no_spelling_of_a_secret_flag_passes(key: str) -> None:
    flags = normalise({key: "s3cr3t-value"})
    model = k3s_flag(key)
    if (model is not None and model.lower() in SECRET_FLAGS) or flag_name(key) in SECRET_FLAGS:
        assert flags.values == {}
        assert flags.problems and "secret" in flags.problems[0][1]


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "token+",
        "t",
        "t+",
        "--token",
        "-t",
        "token=abc",
        "TOKEN",
        "agent-token+",
        "cluster-secret",
        "etcd-s3-secret-key+",
        "etcd-s3-access-key",
        "etcd-s3-session-token",
        "vpn-auth",
    ],
)
def test_secret_flags_in_any_spelling(key: str) -> None:
    lines = check_k3s_config({key: "s3cr3t"}, FILE)
    assert len(lines) == 1 and lines[0].startswith(f"{FILE}: k3s_config.{key}: ")
    assert "secrets do not belong in site files" in lines[0]
    assert "s3cr3t" not in lines[0]


def _generated_key() -> str:
    """A private key made for this run (PEM), so none is stored in the repository."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


GENERATED_KEY = _generated_key()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("datastore-endpoint", "postgres://k3s:hunter2@db:5432/k3s"),
        ("datastore-endpoint", "mysql://k3s:hunter2@tcp(db:3306)/k3s"),
        ("datastore-endpoint+", "k3s:hunter2@tcp(db:3306)/k3s"),
        ("datastore-endpoint", "postgres://db:5432/k3s?password=hunter2"),
        ("server", "https://admin:hunter2@k3s.lab.example:6443"),
        ("s", "https://admin@k3s.lab.example:6443"),
        ("etcd-s3-proxy", "http://user:hunter2@proxy:3128"),
        ("kube-apiserver-arg", ["oidc-issuer-url=https://u:hunter2@idp.example"]),
        ("kube-apiserver-arg+", ["a=b", "oidc-client-secret=hunter2"]),
        ("kubelet-arg", ["password=hunter2"]),
        ("vpn-auth-file", "name=tailscale,joinKey=hunter2"),
        ("node-label", ["TOKEN=hunter2"]),
        ("kube-apiserver-arg", GENERATED_KEY),
    ],
)
def test_credentials_inside_values_are_refused(key: str, value: Any) -> None:
    lines = check_k3s_config({key: value}, FILE)
    assert len(lines) == 1 and lines[0].startswith(f"{FILE}: k3s_config.{key}")
    assert "hunter2" not in lines[0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("datastore-endpoint", "postgres://db:5432/k3s"),
        (
            "kube-apiserver-arg",
            ["token-auth-file=/etc/k3s/tokens.csv", "enable-bootstrap-token-auth=true"],
        ),
        ("kubelet-arg", ["authentication-token-webhook=true"]),
        ("token-file", "/etc/rancher/k3s/token"),
        ("agent-token-file", "/etc/rancher/k3s/agent-token"),
        ("node-taint", ["dedicated=gitops:NoSchedule"]),
        ("server", "https://k3s.lab.example:6443"),
    ],
)
def test_ordinary_values_pass(key: str, value: Any) -> None:
    assert check_k3s_config({key: value}, FILE) == []


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"some-flag": {"nested": 1}}, "some-flag", "not a mapping"),
        ({"tls-san": [{"a": 1}]}, "tls-san[0]", "not a mapping"),
        ({"tls-san": [["a"]]}, "tls-san[0]", "not a list of lists"),
        ({"disable": None}, "disable", "has no value"),
        ({"tls-san": ["a", None]}, "tls-san[1]", "has no value"),
        ({"tls-san": "a", "tls-san+": "b"}, "tls-san+", "is the flag tls-san again"),
        ({"node-ip": "10.0.0.1", "i": "10.0.0.2"}, "i", "is the flag node-ip again"),
        ({"--tls-san": "a"}, "--tls-san", "without dashes"),
        ({"tls san": "a"}, "tls san", "not a k3s flag name"),
        ({"tls-\u0455an": "a"}, "tls-\u0455an", "not a k3s flag name"),
        ({1: "a"}, "1", "must be strings"),
        ({"write-kubeconfig-mode": 420}, "write-kubeconfig-mode", "quoted octal"),
        ({"write-kubeconfig-mode+": "0644"}, "write-kubeconfig-mode+", None),
        ({"write-kubeconfig-mode": "\u0660\u0666\u0664\u0664"}, "write-kubeconfig-mode", "octal"),
    ],
)
def test_shapes_k3s_cannot_take(config: dict[Any, Any], key: str, message: str | None) -> None:
    lines = check_k3s_config(config, FILE)
    if message is None:
        assert lines == []
        return
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{FILE}: k3s_config.{key}: ") and message in lines[0]


def test_the_flags_are_given_by_the_names_k3s_uses() -> None:
    flags = normalise({"tls-san+": ["a"], "i": "10.0.0.1", "disable": "traefik"})
    assert flags.values == {"tls-san": ["a"], "node-ip": "10.0.0.1", "disable": "traefik"}
    assert flags.written_as == {"tls-san": "tls-san+", "node-ip": "i", "disable": "disable"}


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(st.dictionaries(st.one_of(keys, st.integers(), st.booleans()), values, max_size=6))
def test_any_k3s_config_gives_lines_never_an_exception(config: dict[Any, Any]) -> None:
    lines = check_k3s_config(config, FILE)
    assert all(line.startswith(f"{FILE}: k3s_config") for line in lines)
    # Whatever is accepted is something k3s takes: scalars or lists of scalars, one key a flag.
    flags = normalise(config)
    for value in flags.values.values():
        for item in value if isinstance(value, list) else [value]:
            assert isinstance(item, str | int | float | bool)


# --------------------------------------------------------------------------- strict YAML


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k3s_config:\n  token-file: a\n  token-file: b\n", "duplicate key 'token-file'"),
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key 'a' (first at line 1"),
        ("a: &x [1]\nb: *x\n", "anchors (&name) are not allowed"),
        ("a: *x\n", "aliases"),
        ("base: {a: 1}\nk: {<<: {b: 2}}\n", "merge keys (<<) are not allowed"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32 levels"),
        ("a: [\n", "invalid YAML at line 2"),
        ("a: !!python/object:os.system {}\n", "invalid YAML"),
    ],
)
def test_strict_yaml_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        strict_yaml.load(text)
    assert message in str(info.value)


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    # Expanded, it would be 9**10 strings; the anchor is refused while the events are read.
    with pytest.raises(ValueError, match="line 1, column 5: anchors"):
        strict_yaml.load("\n".join(lines))


def test_strict_yaml_reads_plain_yaml_like_the_safe_loader() -> None:
    text = "a: 1\nb: [x, 'y', \"0644\"]\nc: {d: null, e: 2024-01-01}\n"
    assert strict_yaml.load(text) == yaml.safe_load(text)
