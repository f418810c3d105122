"""The lab: booted Debian hosts and a real Kubernetes control plane, built locally for tests.

See lab/README.md. Nothing here is used against a real site.
"""
