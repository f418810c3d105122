"""A plan-only inventory: a real site's hosts on pyinfra's @fake connector.

`FAKE_SITE=tirosh-home pyinfra tests/inventories/fake.py deploy.py --dry --json` plans the real
site's deploy without any connection: the site's addresses are never contacted.
"""

import os

from tirosh.inventory import load_groups

_FAKE = {"fake_responses": {"uname -m": "x86_64"}, "fake_delay": 0, "fake_delay_jitter": 0}


def _fake(hosts: list[tuple[str, dict[str, object]]]) -> list[tuple[str, dict[str, object]]]:
    return [
        (f"@fake/{alias}", {**{k: v for k, v in data.items() if not k.startswith("ssh_")}, **_FAKE})
        for alias, data in hosts
    ]


_groups = load_groups(os.environ.get("FAKE_SITE", "tirosh-home"))
management = _fake(_groups["management"])
rke2 = _fake(_groups["rke2"])
