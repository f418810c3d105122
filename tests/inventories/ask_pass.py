"""The lab site's inventory with ASK_PASS, every host pointed at a closed loopback port.

tests/unit/test_inventory.py runs pyinfra at -vvv --debug on it: the connection attempt is logged
with its arguments, the password among them, and must show up redacted.
"""

from tirosh.inventory import load_groups

_groups = load_groups("lab")
_closed_port = {"ssh_hostname": "127.0.0.1", "ssh_port": 9, "ssh_connect_retries": 0}
# Password login only, as on a site without keys (the lab's key may not exist yet).
management = [
    (name, {**{k: v for k, v in data.items() if k != "ssh_key"}, **_closed_port})
    for name, data in _groups["management"]
]
