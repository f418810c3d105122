"""The site's Proxmox VMs without a host: PVE's config values, the plan, guest addresses and
the inventory edit. The API side (proxmoxer, tasks, the guest agent) is ``local.proxmox``.

| module | holds |
|---|---|
| ``config`` | PVE's config values: sizes, disks, tags, net0, cloud-init keys |
| ``plan`` | create / update field by field / unchanged, and every refusal, before anything changes |
| ``addresses`` | the VM's address from the guest agent's ``network-get-interfaces`` |
| ``inventory`` | ``ansible_host`` written into inventory.toml with its comments and layout kept |
"""
