"""Config files that are not YAML mappings: one ConfigError line naming the file (dingo_gw.config)."""

from pathlib import Path

import pytest

from dingo_gw.config import read_yaml
from dingo_gw.errors import ConfigError


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02binary\xff", "not UTF-8 text"),
    (b"domain: \x00\n", "binary file"),
    (b"a: \xe9t\xe9\n", "not UTF-8 text"),
    (b"- 1\n- 2\n", "top level must be a mapping, got list"),
    (b"[" * 5000, "config error in"),
    (b"a: [1, 2\n", "malformed YAML"),
])
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as e:
        read_yaml(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_unreadable_and_non_file_configs(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml")
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # chmod 000 does not stop root
    with pytest.raises(ConfigError, match=r"cannot read config .*secret.yaml: Permission denied"):
        read_yaml(path)
