// Command k3s-standin is a LAB TEST DOUBLE of the k3s (and rke2) binary alone. It is built and
// installed only inside the tirosh-infra lab (systemd-nspawn containers), where the real k3s
// binary cannot be downloaded; it is never installed outside the lab.
//
// The deploy installs it exactly like real k3s (/usr/local/bin/k3s, checked by sha256, run by a
// Type=notify systemd unit as `k3s server`). It behaves like k3s where the deploy and the tests
// can observe it: `k3s --version`, `k3s kubectl`, the config file, the kubeconfig it writes, the
// certificates and their SANs, and a real Kubernetes API served by real components (kine,
// kube-apiserver, kube-controller-manager) that the lab bind-mounts into the container at
// /opt/tirosh-lab/bin.
//
// Where the lab bind-mounts the node binaries (/opt/tirosh-lab/node: the argocd host), it is
// also a node like a k3s server (node.go): Debian's containerd and runc, kubelet,
// kube-scheduler, kube-proxy, a bridge CNI, and the packaged CoreDNS and Traefik. Elsewhere
// (rke2-gpu) NO KUBELET RUNS and Pods NEVER start: they stay Pending; only the Node object and
// the IngressClass k3s's Traefik would create exist.
//
// Flavour: when invoked as "rke2" (filepath.Base(os.Args[0])) it stands in for rke2 instead,
// with rke2's paths and version string.
//
// Testing outside a container: TIROSH_LAB_ROOT is prefixed to every filesystem path the program
// uses, and TIROSH_LAB_PORT_BASE moves the ports (apiserver = base, kine = base+1,
// kube-controller-manager = base+2).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Set at link time: go build -ldflags "-X main.version=v1.37.2+k3s1 -X main.rke2Version=v1.37.2+rke2r1".
var (
	version     = "v1.37.2+k3s1"
	rke2Version = "v1.37.2+rke2r1"
)

// binDir is where the lab bind-mounts kine, kube-apiserver, kube-controller-manager and kubectl.
const binDir = "/opt/tirosh-lab/bin"

// flavour holds what differs between the k3s and the rke2 stand-ins.
type flavour struct {
	name       string // "k3s" or "rke2"
	version    string
	configFile string
	dataDir    string
	kubeconfig string
}

func detectFlavour(argv0 string) flavour {
	if filepath.Base(argv0) == "rke2" {
		return flavour{
			name:       "rke2",
			version:    rke2Version,
			configFile: "/etc/rancher/rke2/config.yaml",
			dataDir:    "/var/lib/rancher/rke2",
			kubeconfig: "/etc/rancher/rke2/rke2.yaml",
		}
	}
	return flavour{
		name:       "k3s",
		version:    version,
		configFile: "/etc/rancher/k3s/config.yaml",
		dataDir:    "/var/lib/rancher/k3s",
		kubeconfig: "/etc/rancher/k3s/k3s.yaml",
	}
}

// hostPath maps an absolute path of the (container's) filesystem to the real one: the lab's
// tests set TIROSH_LAB_ROOT so that nothing under /etc or /var of the build machine is touched.
func hostPath(p string) string {
	root := os.Getenv("TIROSH_LAB_ROOT")
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

func usage(f flavour) string {
	return fmt.Sprintf(`%[1]s %[2]s (tirosh-lab-standin): a lab test double of the %[1]s binary

Usage:
  %[1]s server [--config FILE] [--FLAG=VALUE ...]   run the control plane (and the node, where the lab provides one)
  %[1]s kubectl [ARGS...]                           run kubectl against %[3]s
  %[1]s --version | -v | version                    print the version
`, f.name, f.version, f.kubeconfig)
}

func main() {
	f := detectFlavour(os.Args[0])
	args := os.Args[1:]
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage(f))
		os.Exit(2)
	}
	switch args[0] {
	case "--version", "-v", "version":
		printVersion(f)
	case "kubectl":
		os.Exit(runKubectl(f, args[1:]))
	case "server":
		os.Exit(runServer(f, args[1:]))
	case "help", "--help", "-h":
		fmt.Print(usage(f))
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown command %q\n\n%s", f.name, args[0], usage(f))
		os.Exit(2)
	}
}

// printVersion prints the same two lines as real k3s; the commit in parentheses says what this is.
func printVersion(f flavour) {
	fmt.Printf("%s version %s (tirosh-lab-standin)\n", f.name, f.version)
	fmt.Printf("go version %s\n", runtime.Version())
}

// runKubectl replaces this process with the lab's kubectl, like `k3s kubectl` does: KUBECONFIG
// defaults to the kubeconfig the server writes. The exit code passes through since it is an exec.
func runKubectl(f flavour, args []string) int {
	kubectl := hostPath(filepath.Join(binDir, "kubectl"))
	env := os.Environ()
	if os.Getenv("KUBECONFIG") == "" {
		env = append(env, "KUBECONFIG="+hostPath(f.kubeconfig))
	}
	argv := append([]string{"kubectl"}, args...)
	err := syscall.Exec(kubectl, argv, env)
	fmt.Fprintf(os.Stderr, "%s kubectl: exec %s: %v\n", f.name, kubectl, err)
	return 1
}

func logf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(os.Stderr, "k3s-standin: "+strings.TrimRight(msg, "\n"))
}
