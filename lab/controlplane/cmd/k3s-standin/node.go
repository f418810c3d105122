package main

// The node half of k3s: containerd, kubelet, kube-scheduler, kube-proxy, a bridge CNI, and the
// packaged CoreDNS and Traefik. It runs only when the lab bind-mounted the node binaries
// (the argocd host); elsewhere (rke2-gpu) the stand-in stays API-only.

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// nodeBinDir holds kubelet, kube-scheduler, kube-proxy and pause on a host that runs Pods.
const nodeBinDir = "/opt/tirosh-lab/node"

const (
	clusterCIDR      = "10.42.0.0/16"
	podCIDR          = "10.42.0.0/24" // the single node's share of clusterCIDR, as k3s assigns it
	clusterDNS       = "10.43.0.10"
	containerdSocket = "/run/k3s/containerd/containerd.sock"
	// k3s's own sandbox image name; the lab builds it from the pause program.
	sandboxImage      = "docker.io/rancher/mirrored-pause:3.6"
	containerdTimeout = 60 * time.Second
	nodeReadyTimeout  = 180 * time.Second
	registriesYAML    = "/etc/rancher/k3s/registries.yaml"
	// The lab provisions its registry mirror and its DNS names here, outside k3s's own
	// directory, so that a fresh host has no /etc/rancher/k3s until the deploy creates it.
	labRegistriesYAML  = "/etc/tirosh-lab/registries.yaml"
	labHosts           = "/etc/tirosh-lab/hosts"
	kubeletHealthzPort = 10248
)

//go:embed manifests/coredns.yaml
var corednsManifest string

//go:embed manifests/traefik.yaml
var traefikManifest string

// nodeEnabled: the lab bind-mounts the node binaries only into hosts meant to run Pods.
func nodeEnabled(f flavour) bool {
	if f.name != "k3s" {
		return false
	}
	_, err := os.Stat(hostPath(filepath.Join(nodeBinDir, "kubelet")))
	return err == nil
}

// nodeDirs are the k3s agent paths under the data dir.
type nodeDirs struct {
	agent, containerd, containerdConf, certsD, cni, images, kubelet, manifests string
}

func newNodeDirs(dataDir string) nodeDirs {
	agent := filepath.Join(dataDir, "agent")
	return nodeDirs{
		agent:          agent,
		containerd:     filepath.Join(agent, "containerd"),
		containerdConf: filepath.Join(agent, "etc", "containerd"),
		certsD:         filepath.Join(agent, "etc", "containerd", "certs.d"),
		cni:            filepath.Join(agent, "etc", "cni", "net.d"),
		images:         filepath.Join(agent, "images"),
		kubelet:        filepath.Join(agent, "kubelet"),
		manifests:      filepath.Join(dataDir, "server", "manifests"),
	}
}

// prepareHost makes an nspawn container fit for runc and kubelet. See lab/README.md, "Pods
// inside the nspawn hosts": nspawn mounts the v1 cgroup controllers read-only, and kubelet
// insists on host-wide sysctls that the lab must not change on the machine.
func prepareHost() error {
	if err := run("mount", "-o", "remount,rw", "/sys/fs/cgroup"); err != nil {
		return err
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join("/sys/fs/cgroup", e.Name())
		if e.Name() == "unified" || !isMountpoint(dir) {
			continue
		}
		// A plain remount,rw fails with "busy" on memory; a bind remount does not.
		if err := run("mount", "-o", "remount,bind,rw", dir); err != nil {
			return err
		}
	}
	// kubelet writes these when they differ (container_manager_linux.go setupKernelTunables);
	// /proc/sys stays read-only, so the values it wants are bind-mounted over the entries.
	wanted := map[string]string{
		"vm/overcommit_memory":      "1",
		"vm/panic_on_oom":           "0",
		"kernel/panic":              "10",
		"kernel/panic_on_oops":      "1",
		"kernel/keys/root_maxkeys":  "1000000",
		"kernel/keys/root_maxbytes": "25000000",
	}
	keys := make([]string, 0, len(wanted))
	for k := range wanted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		entry := filepath.Join("/proc/sys", key)
		current, err := os.ReadFile(entry)
		if err != nil || strings.TrimSpace(string(current)) == wanted[key] {
			continue
		}
		shadow := filepath.Join("/run/k3s/sysctl", strings.ReplaceAll(key, "/", "."))
		if err := os.MkdirAll(filepath.Dir(shadow), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(shadow, []byte(wanted[key]+"\n"), 0o444); err != nil {
			return err
		}
		if err := run("mount", "--bind", "-o", "ro", shadow, entry); err != nil {
			return err
		}
	}
	// Per network namespace: the host's own, never the machine's.
	for entry, value := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":                 "1",
		"/proc/sys/net/bridge/bridge-nf-call-iptables":  "1",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile(entry, []byte(value), 0o644); err != nil {
			logf("warning: %s: %v", entry, err)
		}
	}
	return nil
}

func isMountpoint(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// containerdConfig is the configuration k3s generates for its containerd, for containerd 1.6.
func containerdConfig(d nodeDirs) string {
	return fmt.Sprintf(`version = 2
root = %q
state = "/run/k3s/containerd"

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  enable_selinux = false
  # The machine's root bounding set lacks CAP_SYS_RESOURCE: without this, runc fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, d.containerd, containerdSocket, sandboxImage, d.cni, d.certsD)
}

// writeRegistryHosts reads registries.yaml's mirrors as k3s does (the lab's file when k3s's is
// absent) and writes containerd's hosts.toml for each registry: pulls go to the mirror
// endpoints first, then to the registry itself.
func writeRegistryHosts(d nodeDirs) error {
	data, err := os.ReadFile(hostPath(registriesYAML))
	if errors.Is(err, os.ErrNotExist) {
		data, err = os.ReadFile(hostPath(labRegistriesYAML))
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var cfg struct {
		Mirrors map[string]struct {
			Endpoint []string `json:"endpoint"`
		} `json:"mirrors"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", registriesYAML, err)
	}
	for registry, mirror := range cfg.Mirrors {
		server := "https://" + registry
		if registry == "docker.io" {
			server = "https://registry-1.docker.io"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "server = %q\n", server)
		for _, endpoint := range mirror.Endpoint {
			// An http:// endpoint is plain HTTP: containerd takes the scheme from the URL.
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", endpoint)
		}
		dir := filepath.Join(d.certsD, registry)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, "hosts.toml"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cniConfig: a bridge with masquerade and host-local addresses, plus portmap (hostPort).
func cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "cbr0",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR)
}

// kubeletConfig: cgroupfs and cgroup v1, since this machine's cgroup v2 has no controllers.
func kubeletConfig(d nodeDirs, clientCA string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [%s]
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
staticPodPath: %q
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
`, containerdSocket, clientCA, clusterDNS, kubeletHealthzPort, filepath.Join(d.agent, "pod-manifests"))
}

// startNode brings up the runtime and the node components, after the API server is ready.
func (s *server) startNode(d nodeDirs, nodeIP string, tlsFile func(string) string, kubeconfigs map[string]string) error {
	bin := func(name string) string { return hostPath(filepath.Join(nodeBinDir, name)) }
	if err := prepareHost(); err != nil {
		return fmt.Errorf("preparing the host for Pods: %w", err)
	}
	for _, dir := range []string{d.containerd, d.containerdConf, d.certsD, d.cni, d.kubelet, filepath.Join(d.agent, "pod-manifests")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	conf := filepath.Join(d.containerdConf, "config.toml")
	if err := writeFileAtomic(conf, []byte(containerdConfig(d)), 0o644); err != nil {
		return err
	}
	if err := writeRegistryHosts(d); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(d.cni, "10-bridge.conflist"), []byte(cniConfig()), 0o644); err != nil {
		return err
	}
	if err := s.sup.start("containerd", "/usr/bin/containerd", []string{"--config", conf}); err != nil {
		return err
	}
	if err := s.waitFor("containerd on "+containerdSocket, containerdTimeout, func() (bool, error) {
		conn, err := net.DialTimeout("unix", containerdSocket, time.Second)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	}); err != nil {
		return err
	}
	importImages(d)

	kubeletConf := filepath.Join(d.kubelet, "config.yaml")
	if err := writeFileAtomic(kubeletConf, []byte(kubeletConfig(d, tlsFile("client-ca.crt"))), 0o644); err != nil {
		return err
	}
	if err := s.sup.start("kube-scheduler", bin("kube-scheduler"), []string{
		"--kubeconfig=" + kubeconfigs["scheduler"],
		"--authentication-kubeconfig=" + kubeconfigs["scheduler"],
		"--authorization-kubeconfig=" + kubeconfigs["scheduler"],
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--profiling=false",
	}); err != nil {
		return err
	}
	if err := s.sup.start("kubelet", bin("kubelet"), []string{
		"--config=" + kubeletConf,
		"--kubeconfig=" + kubeconfigs["kubelet"],
		"--hostname-override=" + s.cfg.NodeName,
		"--node-ip=" + nodeIP,
		"--cert-dir=" + filepath.Join(d.kubelet, "pki"),
	}); err != nil {
		return err
	}
	return s.sup.start("kube-proxy", bin("kube-proxy"), []string{
		"--kubeconfig=" + kubeconfigs["kube-proxy"],
		"--hostname-override=" + s.cfg.NodeName,
		"--cluster-cidr=" + clusterCIDR,
		"--proxy-mode=iptables",
		// conntrack limits are host-wide sysctls: leave the machine's alone.
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
	})
}

// importImages loads the air-gap image archives into containerd's k8s.io namespace, as k3s does
// with <data-dir>/agent/images/*.tar at every start.
func importImages(d nodeDirs) {
	archives, _ := filepath.Glob(filepath.Join(d.images, "*.tar"))
	sort.Strings(archives)
	for _, archive := range archives {
		started := time.Now()
		if err := run("ctr", "--address", containerdSocket, "-n", "k8s.io", "images", "import", archive); err != nil {
			logf("warning: importing %s: %v", archive, err)
			continue
		}
		logf("imported images from %s in %s", archive, time.Since(started).Round(time.Millisecond))
	}
}

// nodeReady waits for the kubelet to register the Node and report it Ready.
func (s *server) waitNodeReady(api *apiClient) error {
	return s.waitFor("node "+s.cfg.NodeName+" Ready", nodeReadyTimeout, func() (bool, error) {
		status, body, err := api.do(http.MethodGet, "/api/v1/nodes/"+url.PathEscape(s.cfg.NodeName), "", nil)
		if err != nil {
			return false, err
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("HTTP %d", status)
		}
		var node struct {
			Status struct {
				Conditions []struct{ Type, Status, Message string } `json:"conditions"`
			} `json:"status"`
		}
		if err := yaml.Unmarshal(body, &node); err != nil {
			return false, err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == "Ready" {
				if c.Status == "True" {
					return true, nil
				}
				return false, errors.New(c.Message)
			}
		}
		return false, errors.New("no Ready condition yet")
	})
}

// applyAddons writes the packaged manifests to <data-dir>/server/manifests and applies them,
// and removes a disabled one (its file and its objects), as k3s's deploy controller does.
func (s *server) applyAddons(d nodeDirs, adminKubeconfig, nodeIP string) error {
	if err := os.MkdirAll(d.manifests, 0o755); err != nil {
		return err
	}
	addons := []struct{ name, manifest string }{
		{"coredns", corednsManifest},
		{"traefik", traefikManifest},
	}
	kubectl := hostPath(filepath.Join(binDir, "kubectl"))
	for _, a := range addons {
		path := filepath.Join(d.manifests, a.name+".yaml")
		if s.cfg.disabled(a.name) {
			if _, err := os.Stat(path); err == nil {
				if err := run(kubectl, "--kubeconfig", adminKubeconfig, "delete", "--ignore-not-found", "-f", path); err != nil {
					return err
				}
				logf("%s is disabled: deleted its objects", a.name)
			}
			_ = os.Remove(path)
			continue
		}
		manifest := strings.ReplaceAll(a.manifest, "%NODE_HOSTS%", nodeHosts(nodeIP, s.cfg.NodeName))
		if err := writeFileAtomic(path, []byte(manifest), 0o600); err != nil {
			return err
		}
		if err := run(kubectl, "--kubeconfig", adminKubeconfig, "apply", "--server-side", "--force-conflicts",
			"--field-manager=k3s-deploy", "-f", path); err != nil {
			return err
		}
		logf("applied addon %s", a.name)
	}
	return nil
}

// nodeHosts is CoreDNS's NodeHosts: the node itself, and the lab's own names from
// labHosts (written by the lab: the site's DNS for the edge host).
func nodeHosts(nodeIP, nodeName string) string {
	lines := []string{nodeIP + " " + nodeName}
	if data, err := os.ReadFile(hostPath(labHosts)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) != "" {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
	}
	return strings.Join(lines, "\n    ")
}
