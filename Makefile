# Thin wrappers over the pyinfra deploy and the tirosh modules, with the target names operators
# already use. Run `make help` for the list.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Values typed on the make line (and the variables below read from the environment) reach the
# tools exactly as typed: make would expand `$9` or `$(shell ...)` inside them wherever they are
# used or exported, so each becomes a simple variable holding its unexpanded text, and is
# exported, so the tools read it from their environment. None of them is placed in a recipe's
# shell text, except the checked names and paths below. Names make itself gives a meaning
# (SHELL, MAKE, ...) and this file's own helpers (APPLY, `_...`, `.…`) cannot be set there.
_TAKES := SITE VENV HOST PYINFRA_FLAGS ARGOCD_WAIT YES KUBERNETES_SECRET APP CASCADE \
	ACCOUNT GROUP EXPIRES TOKEN_FILE TOKEN_STDOUT TOKEN_ID ACTION RESOURCE OBJECT
_MAKE_OWN := MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL
_FIXED := SHELL MAKE MAKESHELL MAKEFILE_LIST MAKECMDGOALS CURDIR APPLY
_made_line = $(filter-out $(_MAKE_OWN),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
_refused := $(filter $(_FIXED) .% _%,$(_made_line))
ifneq ($(_refused),)
$(error $(firstword $(_refused)) cannot be set on the make line: the Makefile defines it)
endif
$(foreach v,$(sort $(_made_line) $(foreach v,$(_TAKES),$(if $(filter environment,$(origin $(v))),$(v)))),$(eval override $(v) := $$(value $(v)))$(eval export $(v)))

SITE ?= tirosh-home
# SITE names a folder of sites/ and reaches shell commands and paths: refuse anything but the
# characters the site loader allows, before any recipe (or `$(...)` inside the value) can run.
_SITE_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z \
	A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 . _ -
_strip = $(if $(1),$(call _strip,$(wordlist 2,$(words $(1)),$(1)),$(subst $(firstword $(1)),,$(2))),$(2))
ifneq ($(call _strip,$(_SITE_CHARS),$(value SITE))$(filter .% _% -%,$(value SITE)),)
$(error SITE must name a folder of sites/: letters, digits, '.', '_' or '-', starting with a letter or digit)
endif
ifeq ($(value SITE),)
$(error SITE is empty: name a folder of sites/, e.g. make k3s/status SITE=lab)
endif
VENV ?= .venv
PY := $(VENV)/bin/python
PYINFRA := $(VENV)/bin/pyinfra
KUBECTL := $(VENV)/bin/kubectl
INVENTORY := inventories/$(SITE).py
HOST ?= argocd
# Extra pyinfra flags, e.g. PYINFRA_FLAGS="--dry --diff" or "-v".
PYINFRA_FLAGS ?=
# Without --dry, apply without the interactive confirmation prompt.
APPLY := $(PYINFRA) -y $(PYINFRA_FLAGS) $(INVENTORY)

# The paths and flags that are part of the recipes' command lines: refused unless every
# character is one the shell takes literally (no quotes, `$`, globs, `;`, `~`, line breaks).
# No `:` or `%`: VENV names a rule's target, where they mean a rule and a pattern.
_PATH_CHARS := $(_SITE_CHARS) / + @ ,
_blank := $(subst x,,x x)
# Non-empty when $(1) is, blanks and line breaks included ($(if) would strip them).
_literal = $(subst x$(1),,x)
# A leading @, + or - would be read by make as a recipe prefix (+ even runs under make -n).
_check_chars = $(if $(call _literal,$(call _strip,$(_PATH_CHARS),$(value $(1))))$(filter @% +% -%,$(value \
	$(1))),$(error $(1) may hold only letters, digits and . _ - / + @ , and must not start \
	with @, + or - (it is part of a command line)))
$(foreach v,VENV PY PYINFRA KUBECTL INVENTORY,$(call _check_chars,$(v)))
ifneq ($(call _strip,$(_PATH_CHARS) = :,$(subst $(_blank),,$(value PYINFRA_FLAGS))),)
$(error PYINFRA_FLAGS may hold only letters, digits, spaces and . _ - / + @ , = : (it is part of a command line))
endif

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

.PHONY: help deps prereqs
help: ## this list
	@grep -hE '^[a-zA-Z0-9/_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

deps: $(VENV)/.installed ## create .venv with the pinned requirements

prereqs: ## install the lab's Debian packages when root, or say in one line what to run
	@bash lab/prerequisites.sh

# --- site -------------------------------------------------------------------------------------
.PHONY: site/validate site/inventory/render
site/validate: deps ## validate every file of sites/$(SITE) (no connection)
	$(PY) -m tirosh.site validate $(SITE)

site/inventory/render: deps ## print the resolved hosts and data of sites/$(SITE)
	$(PY) -m tirosh.site render $(SITE)

# --- the whole deploy -------------------------------------------------------------------------
.PHONY: deploy plan diff
deploy: deps ## converge the site: k3s, kubeconfigs, Argo CD
	$(APPLY) deploy.py

plan: deps ## what `deploy` would change (--dry)
	$(PYINFRA) $(PYINFRA_FLAGS) $(INVENTORY) deploy.py --dry

diff: deps ## what `deploy` would change, with file diffs (--dry --diff)
	$(PYINFRA) $(PYINFRA_FLAGS) $(INVENTORY) deploy.py --dry --diff

# --- k3s --------------------------------------------------------------------------------------
.PHONY: k3s/install k3s/status k3s/config k3s/kubeconfig k3s/kubeconfig/merge k3s/kubeconfig/export
k3s/install: deps ## install or upgrade k3s on the management VM
	$(APPLY) deploys/k3s.py

k3s/status: deps ## k3s service state, version, node, API (on the VM and from here)
	$(PYINFRA) -y $(INVENTORY) --limit management exec --sudo -- \
		'systemctl is-active k3s && systemctl is-enabled k3s && k3s --version | head -1 \
		&& k3s kubectl get nodes -o wide && k3s kubectl get --raw /readyz && echo'
	$(KUBECTL) --kubeconfig "$$($(PY) -m tirosh.site get $(SITE) kubeconfig)" \
		--context "$$($(PY) -m tirosh.site get $(SITE) argocd_context)" get --raw /readyz && echo

k3s/config: deps ## print /etc/rancher/k3s/config.yaml as it is on the VM
	$(PYINFRA) -y $(INVENTORY) --limit management exec --sudo -- cat /etc/rancher/k3s/config.yaml

k3s/kubeconfig: deps ## write ~/.kube/$(SITE).yml (mode 0600) from the VM's k3s.yaml
	$(APPLY) --limit management --data kubeconfig_merge=false deploys/kubeconfig.py

k3s/kubeconfig/merge: deps ## merge the k3s context into ~/.kube/config (backup first)
	$(APPLY) --limit management deploys/kubeconfig.py

k3s/kubeconfig/export: deps ## print `export KUBECONFIG=...` for eval "$$(make -s k3s/kubeconfig/export)"
	@$(PY) -m tirosh.site export $(SITE)

.PHONY: rke2/kubeconfig/merge
rke2/kubeconfig/merge: deps ## merge the workload cluster's context into ~/.kube/config
	@$(PY) -m tirosh.site require-rke2 $(SITE)
	$(APPLY) --limit rke2 deploys/kubeconfig.py

# --- Argo CD ----------------------------------------------------------------------------------
.PHONY: argocd/install argocd/status argocd/port-forward
# Seconds argocd/install waits for the rollout; default: argocd_rollout_timeout of the site.
ARGOCD_WAIT ?=
export ARGOCD_WAIT
argocd/install: deps ## install or upgrade Argo CD, then wait for the rollout and report
	$(APPLY) --limit management deploys/argocd.py
	$(PY) -m local argocd/status $(SITE) --wait "$${ARGOCD_WAIT:-$$($(PY) -m tirosh.site get $(SITE) argocd.rollout_timeout)}"

argocd/status: deps ## Argo CD health; non-zero with a summary when not healthy
	$(PY) -m local argocd/status $(SITE)

argocd/port-forward: deps ## svc/argocd-server on 127.0.0.1:8080 (foreground)
	$(PY) -m local argocd/port-forward $(SITE)

# --- Proxmox VMs -----------------------------------------------------------------------------
# sites/$(SITE)/vms.tfvars on the PVE API of profile.toml [proxmox]; the API token's secret from
# PROXMOX_TOKEN_SECRET only. RESTART=true allows shutting down and starting a running VM for a
# change that needs it; DRY=true shows the inventory diff without writing. Both become fixed
# flags: no make-line value reaches a recipe's shell text.
.PHONY: proxmox/vms/plan proxmox/vms/apply proxmox/vms/inventory
RESTART ?=
DRY ?=
proxmox/vms/plan: deps ## per VM: create / update (field by field) / unchanged, or refused; changes nothing
	@$(PY) -m local proxmox/vms/plan $(SITE) $(if $(filter true yes 1,$(value RESTART)),--restart)

proxmox/vms/apply: deps ## clone, configure, grow, start the declared VMs; show their addresses
	@$(PY) -m local proxmox/vms/apply $(SITE) $(if $(filter true yes 1,$(value RESTART)),--restart)

proxmox/vms/inventory: deps ## write the guest agents' addresses into inventory.toml (diff, backup)
	@$(PY) -m local proxmox/vms/inventory $(SITE) $(if $(filter true yes 1,$(value DRY)),--dry)

# --- lab --------------------------------------------------------------------------------------
.PHONY: lab-up lab-down lab-ssh lab-status demo
lab-up: deps prereqs ## boot the lab hosts (builds what is missing; needs root)
	$(PY) -m lab up

lab-down: deps ## stop the lab and remove every container, mount and link it left
	$(PY) -m lab down

lab-ssh: deps ## shell on a lab host: make lab-ssh HOST=argocd
	$(PY) -m lab ssh "$${HOST-argocd}"

lab-status: deps ## which lab hosts are running
	$(PY) -m lab status

demo: deps prereqs ## bring the lab up (building what is missing, with progress), deploy to it, say what next
	$(PY) -m lab up
	$(PYINFRA) -y inventories/lab.py deploy.py
	$(MAKE) --no-print-directory SITE=lab demo/report

.PHONY: demo/report
demo/report:
	@echo "--- Argo CD: the rollout of every workload, then its health"
	@$(PY) -m local argocd/status lab --wait 600
	@echo
	@$(PY) -m lab.welcome

# --- checks -----------------------------------------------------------------------------------
.PHONY: verify test lint
verify: deps ## testinfra checks of the site's management VM over SSH (reads only)
	$(PY) -m pytest -q -p no:cacheprovider verify --site $(SITE)

test: deps ## the test suite (lab tests need root; under CI=true they never skip)
	@bash lab/prerequisites.sh || [ "$${CI:-}" != true ]
	@# What the lab tests boot, built first where they can run: a cold machine's debootstraps
	@# and Go builds overlap there, and a failed build stops before any test.
	@if [ "$$(id -u)" = 0 ] && bash lab/prerequisites.sh --check 2>/dev/null; then $(PY) -m lab build; fi
	$(PY) -m pytest

lint: deps ## ruff, mypy and the import contracts (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy tirosh local facts operations lab deploys deploy.py tests bench verify
	for f in inventories/*.py; do $(VENV)/bin/mypy "$$f" || exit 1; done
	$(VENV)/bin/lint-imports --no-cache

# --- local phase ------------------------------------------------------------------------------
# From the operator's machine, through the Argo CD REST API and the kube contexts (local/).
# Credentials: ARGOCD_AUTH_TOKEN, ARGOCD_PASSWORD, else argocd-initial-admin-secret over SSH,
# else a prompt (--prompts-enabled). Secret values come from the environment or .env only.
.PHONY: argocd/password argocd/password/update argocd/cluster/add argocd/cluster/rotate \
	argocd/repo/add argocd/repo/list kubernetes/secret/plan kubernetes/secret/apply \
	argocd/doctor local/phase local/plan argocd/app/list argocd/app/sync argocd/app/delete
# --yes for argocd/password/update: delete argocd-initial-admin-secret without asking.
YES ?=
# The Secret's name reaches the command through the environment, never the shell line.
KUBERNETES_SECRET ?=
export KUBERNETES_SECRET
argocd/password: deps ## print the initial admin password (argocd-initial-admin-secret, over SSH)
	@$(PY) -m local argocd/password $(SITE)

argocd/password/update: deps ## change the admin password (typed twice, or ARGOCD_NEW_PASSWORD)
	@$(PY) -m local argocd/password/update $(SITE) $(if $(filter true yes 1,$(YES)),--yes)

argocd/cluster/add: deps ## register the workload cluster(s) with a ServiceAccount token
	@$(PY) -m local argocd/cluster/add $(SITE)

argocd/cluster/rotate: deps ## replace the workload cluster's token and re-register it
	@$(PY) -m local argocd/cluster/rotate $(SITE)

argocd/repo/add: deps ## register sites/$(SITE)/argocd/repositories.toml in Argo CD
	@$(PY) -m local argocd/repo/add $(SITE)

argocd/repo/list: deps ## repositories and templates in Argo CD, with connection state
	@$(PY) -m local argocd/repo/list $(SITE)

kubernetes/secret/plan: deps ## create/update/unchanged per Secret and key (KUBERNETES_SECRET=name)
	@$(PY) -m local kubernetes/secret/plan $(SITE)

kubernetes/secret/apply: deps ## server-side apply the site's Secrets (KUBERNETES_SECRET=name)
	@$(PY) -m local kubernetes/secret/apply $(SITE)

# APP names the application (through the environment, never the shell line); CASCADE=true
# makes argocd/app/delete remove its resources too.
APP ?=
CASCADE ?=
argocd/app/list: deps ## sync, health, revision deployed vs branch head of every application
	@$(PY) -m local argocd/app/list $(SITE)

argocd/app/sync: deps ## sync APP=<name> and wait for Argo CD's result (the manual gate)
	@$(PY) -m local argocd/app/sync $(SITE)

argocd/app/delete: deps ## delete APP=<name> (asks, or YES=true); not cascading unless CASCADE=true
	@$(PY) -m local argocd/app/delete $(SITE) $(if $(filter true yes 1,$(YES)),--yes) $(if $(filter true yes 1,$(CASCADE)),--cascade)

argocd/doctor: deps ## troubleshooting checks in one screen; non-zero when one fails
	@$(PY) -m local argocd/doctor $(SITE)

local/phase: deps ## the deploy's local phase alone: clusters, repositories, Secrets
	@$(PY) -m local local/phase $(SITE)

local/plan: deps ## what the local phase would change (--dry)
	@$(PY) -m local local/phase $(SITE) --dry

# --- access (sites/$(SITE)/argocd/access.toml): tokens and what a subject may do --------------
.PHONY: argocd/account/token argocd/account/tokens argocd/account/token/revoke argocd/access/check
# Reach the commands through the environment only (never a recipe's shell text).
ACCOUNT ?=
GROUP ?=
EXPIRES ?=
TOKEN_FILE ?=
TOKEN_STDOUT ?=
TOKEN_ID ?=
ACTION ?=
RESOURCE ?=
OBJECT ?=
export ACCOUNT GROUP EXPIRES TOKEN_FILE TOKEN_STDOUT TOKEN_ID ACTION RESOURCE OBJECT
argocd/account/token: deps ## an API token for ACCOUNT (EXPIRES=24h) to TOKEN_FILE (0600) or TOKEN_STDOUT=yes
	@$(PY) -m local argocd/account/token $(SITE)

argocd/account/tokens: deps ## the API tokens of the site's accounts, with their expiry (ACCOUNT for one)
	@$(PY) -m local argocd/account/tokens $(SITE)

argocd/account/token/revoke: deps ## revoke TOKEN_ID of ACCOUNT
	@$(PY) -m local argocd/account/token/revoke $(SITE)

argocd/access/check: deps ## what ACCOUNT or GROUP may do (ACTION RESOURCE OBJECT): declared policy and Argo CD
	@$(PY) -m local argocd/access/check $(SITE)
