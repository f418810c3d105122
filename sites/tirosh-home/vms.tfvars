# tirosh-home's Proxmox VMs: `make proxmox/vms/plan SITE=tirosh-home`, then
# `make proxmox/vms/apply SITE=tirosh-home`. Each VM is a full clone of a cloud-init template.
# Only literal values: no var.x, functions or ${...}. Checked by `make site/validate`.
vms = [
  {
    # The management VM of the runbook: k3s and Argo CD (inventory.toml [vms.argocd]).
    name      = "argocd"
    vm_id     = 210
    tags      = ["gitops", "k3s"]
    cpu_cores = 4
    memory_mb = 8192
    disk = {
      datastore_id = "local-lvm"
      size_gb      = 40
    }
    user_account = {
      username            = "tirosh"
      ssh_public_key_file = "~/.ssh/id_ed25519.pub"
    }

    # What creating the VM needs beyond the runbook's table:
    # node_name = "pve"            # default: [proxmox] node of profile.toml
    clone     = { vm_id = 9000 }   # the Debian cloud-init template (full clone)
    network   = { bridge = "vmbr0" }
    ip_config = { ipv4 = { address = "dhcp" } }
  },
]
