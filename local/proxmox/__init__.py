"""The site's Proxmox VMs through the PVE API (proxmoxer, API-token auth, verified TLS).

``python -m local.proxmox plan|apply|inventory SITE`` (``make proxmox/vms/plan``,
``proxmox/vms/apply``, ``proxmox/vms/inventory``). The decisions are ``tirosh.proxmox``'s;
here are the requests.

| module | does |
|---|---|
| ``connection`` | the client: token from ``PROXMOX_TOKEN_SECRET``, CA or fingerprint pin, one-line errors |
| ``observe`` | what the plan needs, GET requests only |
| ``tasks`` | waiting for a task by UPID within a bound; its log on failure |
| ``apply`` | clone, config, cloud-init, disk growth, start (never a delete) |
| ``agent`` | the guest agent's address, with a bounded wait |
| ``inventory_file`` | ``ansible_host`` into inventory.toml: diff, backup, atomic write |
| ``commands`` | plan, apply, inventory as functions; ``__main__`` is the thin CLI |
"""
