package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	serviceCIDR     = "10.43.0.0/16"
	serviceIP       = "10.43.0.1" // first address of serviceCIDR: the "kubernetes" Service
	saIssuer        = "https://kubernetes.default.svc.cluster.local"
	stopGrace       = 10 * time.Second
	kineTimeout     = 60 * time.Second
	readyzTimeout   = 120 * time.Second
	objectsTimeout  = 60 * time.Second
	kcmReadyTimeout = 60 * time.Second
)

type ports struct{ api, kine, kcm int }

// lab ports: 6443/2379/10257 as in k3s, or base/base+1/base+2 with TIROSH_LAB_PORT_BASE.
func labPorts() (ports, error) {
	s := os.Getenv("TIROSH_LAB_PORT_BASE")
	if s == "" {
		return ports{api: 6443, kine: 2379, kcm: 10257}, nil
	}
	base, err := strconv.Atoi(s)
	if err != nil || base < 1 || base > 65533 {
		return ports{}, fmt.Errorf("invalid TIROSH_LAB_PORT_BASE %q", s)
	}
	return ports{api: base, kine: base + 1, kcm: base + 2}, nil
}

// stopped says why a wait ended early.
type stopped struct {
	signal os.Signal // SIGTERM/SIGINT received
	child  *child    // a component exited
}

func (s *stopped) Error() string {
	if s.signal != nil {
		return "received " + s.signal.String()
	}
	return fmt.Sprintf("%s exited unexpectedly: %v", s.child.name, s.child.err)
}

type server struct {
	f    flavour
	cfg  *serverConfig
	p    ports
	sup  *supervisor
	sigs chan os.Signal
}

// waitFor polls cond until it returns true, the timeout passes, a signal arrives or a
// component exits. lastErr (the most recent error from cond) is included on timeout.
func (s *server) waitFor(what string, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %v", timeout, what, lastErr)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case sig := <-s.sigs:
			return &stopped{signal: sig}
		case c := <-s.sup.exited:
			return &stopped{child: c}
		case <-tick.C:
		}
	}
}

func runServer(f flavour, args []string) int {
	configPath, flags, err := parseServerArgs(f, args)
	if err != nil {
		logf("%v", err)
		fmt.Fprint(os.Stderr, usage(f))
		return 2
	}
	raw, err := loadRawConfig(hostPath(configPath))
	if err != nil {
		logf("reading config: %v", err)
		return 1
	}
	listKeys := map[string]bool{"tls-san": true, "node-ip": true, "node-label": true, "disable": true}
	for k, v := range flags {
		if listKeys[k] {
			raw[k] = append(toList(raw[k]), toList(v)...)
		} else {
			raw[k] = v
		}
	}
	cfg, err := resolveConfig(f, raw)
	if err != nil {
		logf("config %s: %v", configPath, err)
		return 1
	}
	p, err := labPorts()
	if err != nil {
		logf("%v", err)
		return 1
	}
	s := &server{f: f, cfg: cfg, p: p, sup: newSupervisor(), sigs: make(chan os.Signal, 2)}
	// Registered before any component starts so that a stop request is never lost.
	signal.Notify(s.sigs, syscall.SIGTERM, syscall.SIGINT)
	code := s.run()
	return code
}

func (s *server) run() int {
	f, cfg, p := s.f, s.cfg, s.p
	node := nodeEnabled(f)
	if node {
		logf("%s %s (tirosh-lab-standin): lab test double; this host is a node (containerd, kubelet)", f.name, f.version)
	} else {
		logf("%s %s (tirosh-lab-standin): lab test double, API only: no kubelet (Pods never start)", f.name, f.version)
	}

	dataDir := hostPath(cfg.DataDir)
	serverDir := filepath.Join(dataDir, "server")
	tlsDir := filepath.Join(serverDir, "tls")
	dbDir := filepath.Join(serverDir, "db")
	credDir := filepath.Join(serverDir, "cred")
	bin := func(name string) string { return hostPath(filepath.Join(binDir, name)) }
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	for _, d := range []string{serverDir, tlsDir, dbDir, credDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			logf("%v", err)
			return 1
		}
		_ = os.Chmod(d, 0o700)
	}
	if f.name == "rke2" {
		// rke2 users find kubectl in <data-dir>/bin; point it at the lab's kubectl.
		linkKubectl(filepath.Join(dataDir, "bin"), bin("kubectl"))
	}

	// Addresses.
	hostIPs := hostIPv4s()
	var nodeIP string
	for _, ip := range cfg.NodeIPs {
		if net.ParseIP(ip).To4() != nil {
			nodeIP = ip
			break
		}
	}
	if nodeIP == "" && len(cfg.NodeIPs) > 0 {
		nodeIP = cfg.NodeIPs[0]
	}
	if nodeIP == "" && len(hostIPs) > 0 {
		nodeIP = hostIPs[0].String()
	}
	advertise := cfg.AdvertiseAddress
	if advertise == "" {
		advertise = nodeIP
	}
	if advertise == "" {
		advertise = "127.0.0.1"
	}
	if nodeIP == "" {
		nodeIP = advertise
	}

	// Certificates.
	serverCA, err := loadOrCreateCA(tlsDir, "server-ca", f.name+"-server-ca")
	if err != nil {
		logf("server CA: %v", err)
		return 1
	}
	clientCA, err := loadOrCreateCA(tlsDir, "client-ca", f.name+"-client-ca")
	if err != nil {
		logf("client CA: %v", err)
		return 1
	}
	// The front-proxy CA, as in k3s: kube-apiserver publishes it in the
	// extension-apiserver-authentication ConfigMap, which kube-controller-manager (and any
	// aggregated API server) expects to find complete.
	requestHeaderCA, err := loadOrCreateCA(tlsDir, "request-header-ca", f.name+"-request-header-ca")
	if err != nil {
		logf("request-header CA: %v", err)
		return 1
	}
	serviceKey := filepath.Join(tlsDir, "service.key")
	if err := ensureServiceKey(serviceKey); err != nil {
		logf("service-account key: %v", err)
		return 1
	}
	hostname, _ := os.Hostname()
	sanDNS, sanIPs := splitSANs(cfg.TLSSANs)
	dns := append([]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", strings.ToLower(hostname), cfg.NodeName}, sanDNS...)
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(serviceIP)}
	for _, ip := range append(append([]string{}, cfg.NodeIPs...), advertise, nodeIP) {
		if parsed := net.ParseIP(ip); parsed != nil {
			ips = append(ips, parsed)
		}
	}
	ips = append(append(ips, hostIPs...), sanIPs...)
	leaves := []struct {
		ca   *certAuthority
		spec leafSpec
	}{
		{serverCA, leafSpec{name: "serving-kube-apiserver", cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth,
			dns: dns, ips: ips, addSAN: true}},
		{clientCA, leafSpec{name: "client-admin", cn: "system:admin", orgs: []string{"system:masters"},
			usage: x509.ExtKeyUsageClientAuth}},
		// The lab runs kube-controller-manager with --use-service-account-credentials=false, so
		// every controller acts with this one identity. The system:kube-controller-manager role
		// alone cannot delete arbitrary resources (namespace deletion, garbage collection), so
		// the lab certificate also carries O=system:masters. Acceptable for a lab test double;
		// real k3s gives each controller its own service account instead.
		{clientCA, leafSpec{name: "client-controller", cn: "system:kube-controller-manager",
			orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth}},
		{requestHeaderCA, leafSpec{name: "client-auth-proxy", cn: "system:auth-proxy",
			usage: x509.ExtKeyUsageClientAuth}},
	}
	if node {
		// The node's identities, as k3s issues them: the Node authorizer and the bootstrap
		// RBAC bindings of system:kube-proxy and system:kube-scheduler grant what each needs.
		leaves = append(leaves, []struct {
			ca   *certAuthority
			spec leafSpec
		}{
			{clientCA, leafSpec{name: "client-kubelet", cn: "system:node:" + cfg.NodeName,
				orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth}},
			{clientCA, leafSpec{name: "client-kube-proxy", cn: "system:kube-proxy",
				usage: x509.ExtKeyUsageClientAuth}},
			{clientCA, leafSpec{name: "client-scheduler", cn: "system:kube-scheduler",
				usage: x509.ExtKeyUsageClientAuth}},
		}...)
	}
	for _, l := range leaves {
		if err := ensureLeaf(tlsDir, l.ca, l.spec); err != nil {
			logf("certificate %s: %v", l.spec.name, err)
			return 1
		}
	}
	tlsFile := func(name string) string { return filepath.Join(tlsDir, name) }

	// Kubeconfigs of our own and kube-controller-manager's, referring to the files above.
	apiURL := fmt.Sprintf("https://127.0.0.1:%d", p.api)
	adminKubeconfig := filepath.Join(credDir, "admin.kubeconfig")
	controllerKubeconfig := filepath.Join(credDir, "controller.kubeconfig")
	users := map[string]string{adminKubeconfig: "client-admin", controllerKubeconfig: "client-controller"}
	nodeKubeconfigs := map[string]string{}
	if node {
		for name, user := range map[string]string{"kubelet": "client-kubelet", "kube-proxy": "client-kube-proxy", "scheduler": "client-scheduler"} {
			path := filepath.Join(credDir, name+".kubeconfig")
			nodeKubeconfigs[name] = path
			users[path] = user
		}
	}
	for path, user := range users {
		data := kubeconfigWithFiles(apiURL, tlsFile("server-ca.crt"), tlsFile(user+".crt"), tlsFile(user+".key"))
		if err := writeFileAtomic(path, data, 0o600); err != nil {
			logf("%v", err)
			return 1
		}
	}

	// From here on components run: every failure path stops them.
	fail := func(format string, a ...any) int {
		logf(format, a...)
		s.sup.stop(stopGrace)
		return 1
	}
	handle := func(err error) int {
		var st *stopped
		if errors.As(err, &st) && st.signal != nil {
			logf("%v: shutting down", st)
			s.sup.stop(stopGrace)
			return 0
		}
		return fail("%v", err)
	}

	// 1. kine: etcd API over SQLite, on loopback only (no metrics listener).
	kineAddr := fmt.Sprintf("127.0.0.1:%d", p.kine)
	endpoint := "sqlite://" + filepath.Join(dbDir, "state.db") + "?_journal=WAL&cache=shared&_busy_timeout=30000&_txlock=immediate"
	if err := s.sup.start("kine", bin("kine"), []string{
		"--listen-address", kineAddr,
		"--endpoint", endpoint,
		"--metrics-bind-address", "0",
	}); err != nil {
		return fail("%v", err)
	}
	if err := s.waitFor("kine on "+kineAddr, kineTimeout, func() (bool, error) {
		conn, err := net.DialTimeout("tcp", kineAddr, time.Second)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	}); err != nil {
		return handle(err)
	}

	// 2. kube-apiserver.
	apiArgs := []string{
		"--etcd-servers=http://" + kineAddr,
		"--storage-backend=etcd3",
		"--bind-address=" + cfg.BindAddress,
		fmt.Sprintf("--secure-port=%d", p.api),
		"--advertise-address=" + advertise,
		"--tls-cert-file=" + tlsFile("serving-kube-apiserver.crt"),
		"--tls-private-key-file=" + tlsFile("serving-kube-apiserver.key"),
		"--client-ca-file=" + tlsFile("client-ca.crt"),
		"--service-account-issuer=" + saIssuer,
		"--service-account-key-file=" + serviceKey,
		"--service-account-signing-key-file=" + serviceKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--requestheader-client-ca-file=" + tlsFile("request-header-ca.crt"),
		"--requestheader-allowed-names=system:auth-proxy",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + tlsFile("client-auth-proxy.crt"),
		"--proxy-client-key-file=" + tlsFile("client-auth-proxy.key"),
		// kubectl logs, exec and port-forward: the API server calls the kubelet as an admin.
		"--kubelet-client-certificate=" + tlsFile("client-admin.crt"),
		"--kubelet-client-key=" + tlsFile("client-admin.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	if ip := net.ParseIP(advertise); ip != nil && ip.IsLoopback() {
		// The endpoint reconciler refuses a loopback address for the "kubernetes" Service's
		// endpoints; a machine without any other address gets that Service without endpoints.
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=none")
	}
	if err := s.sup.start("kube-apiserver", bin("kube-apiserver"), apiArgs); err != nil {
		return fail("%v", err)
	}
	api, err := newAPIClient(apiURL, serverCA.certPEM, tlsFile("client-admin.crt"), tlsFile("client-admin.key"))
	if err != nil {
		return fail("API client: %v", err)
	}
	if err := s.waitFor("kube-apiserver "+apiURL+"/readyz", readyzTimeout, func() (bool, error) {
		status, body, err := api.do(http.MethodGet, "/readyz", "", nil)
		if err != nil {
			return false, err
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("HTTP %d: %s", status, failedChecks(string(body)))
		}
		return true, nil
	}); err != nil {
		var st *stopped
		if !errors.As(err, &st) {
			return fail("kube-apiserver did not become ready: %v", err)
		}
		return handle(err)
	}
	logf("kube-apiserver is ready on %s", apiURL)

	// 3. kube-controller-manager: fills service-account token Secrets, publishes
	// kube-root-ca.crt, creates default ServiceAccounts, deletes namespaces, collects garbage.
	if err := s.sup.start("kube-controller-manager", bin("kube-controller-manager"), []string{
		"--kubeconfig=" + controllerKubeconfig,
		"--authentication-kubeconfig=" + controllerKubeconfig,
		"--authorization-kubeconfig=" + controllerKubeconfig,
		"--service-account-private-key-file=" + serviceKey,
		"--root-ca-file=" + tlsFile("server-ca.crt"),
		"--cluster-signing-cert-file=" + tlsFile("client-ca.crt"),
		"--cluster-signing-key-file=" + tlsFile("client-ca.key"),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--controllers=*",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", p.kcm),
		"--profiling=false",
		// Its default is on the machine's /usr (created if missing); keep it under the lab root.
		"--flex-volume-plugin-dir=" + hostPath("/usr/libexec/kubernetes/kubelet-plugins/volume/exec"),
	}); err != nil {
		return fail("%v", err)
	}

	// 4. The kubeconfig users get, exactly as k3s writes it; the mode is re-applied each start.
	kubeconfig := hostPath(cfg.KubeconfigPath)
	if err := writeUserKubeconfig(kubeconfig, cfg.KubeconfigMode, apiURL, serverCA.certPEM,
		tlsFile("client-admin.crt"), tlsFile("client-admin.key")); err != nil {
		return fail("writing kubeconfig %s: %v", kubeconfig, err)
	}
	logf("wrote kubeconfig %s (mode %04o)", kubeconfig, cfg.KubeconfigMode)

	// 5. A node: containerd, kube-scheduler, kubelet, kube-proxy; the kubelet registers the
	// Node, which must become Ready.
	nodes := newNodeDirs(dataDir)
	if node {
		if err := s.startNode(nodes, nodeIP, tlsFile, nodeKubeconfigs); err != nil {
			var st *stopped
			if errors.As(err, &st) {
				return handle(err)
			}
			return fail("node: %v", err)
		}
		if err := s.waitNodeReady(api); err != nil {
			return handle(err)
		}
		logf("node %s is Ready", cfg.NodeName)
	}

	// 6. What k3s itself puts in the API: the Node's labels (the Node itself when no kubelet
	// runs), Traefik's IngressClass and the packaged addons.
	if err := s.waitFor("Node and addon objects", objectsTimeout, func() (bool, error) {
		if err := api.ensureNode(f, cfg, nodeIP, !node); err != nil {
			return false, err
		}
		if f.name == "k3s" {
			if err := api.ensureTraefikIngressClass(cfg); err != nil {
				return false, err
			}
		}
		return true, nil
	}); err != nil {
		return handle(err)
	}
	labels := nodeLabels(f, cfg)
	var shown []string
	for _, k := range sortedKeys(labels) {
		shown = append(shown, k+"="+labels[k])
	}
	logf("node %s labelled %s", cfg.NodeName, strings.Join(shown, ","))
	if node {
		if err := s.applyAddons(nodes, adminKubeconfig, nodeIP); err != nil {
			return fail("addons: %v", err)
		}
	}

	// 7. kube-controller-manager healthy: token Secrets and kube-root-ca.crt follow shortly.
	kcmClient := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		Proxy: nil,
		// Its serving certificate is self-signed in memory; this is a loopback health probe.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	kcmURL := fmt.Sprintf("https://127.0.0.1:%d/healthz", p.kcm)
	if err := s.waitFor("kube-controller-manager "+kcmURL, kcmReadyTimeout, func() (bool, error) {
		resp, err := kcmClient.Get(kcmURL)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("HTTP %d", resp.StatusCode)
	}); err != nil {
		var st *stopped
		if errors.As(err, &st) {
			return handle(err)
		}
		logf("warning: %v", err)
	}

	// 8. Tell systemd (Type=notify) that we are up.
	if err := sdNotify("READY=1"); err != nil {
		logf("warning: sd_notify: %v", err)
	}
	logf("%s is running", f.name)

	// 9. Supervise until stopped.
	select {
	case sig := <-s.sigs:
		logf("received %v: shutting down", sig)
		_ = sdNotify("STOPPING=1")
		s.sup.stop(stopGrace)
		return 0
	case c := <-s.sup.exited:
		return fail("%s exited unexpectedly (%v): stopping the other components", c.name, c.err)
	}
}

// writeUserKubeconfig writes the k3s.yaml kubeconfig atomically with the configured mode.
func writeUserKubeconfig(path string, mode os.FileMode, apiURL string, caPEM []byte, certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, kubeconfigWithData(apiURL, caPEM, certPEM, keyPEM), mode)
}

func linkKubectl(dir, target string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("warning: %v", err)
		return
	}
	link := filepath.Join(dir, "kubectl")
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return
	}
	_ = os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		logf("warning: %v", err)
	}
}

// sdNotify sends a state to systemd's notification socket, if there is one. An abstract socket
// is written "@name" in NOTIFY_SOCKET; Go's net package maps a leading '@' to the abstract
// namespace (leading NUL byte) itself.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// failedChecks picks the failing checks ("[-]name failed: ...") out of a verbose /readyz body.
func failedChecks(body string) string {
	var failed []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, strings.TrimSpace(line))
		}
	}
	if len(failed) == 0 {
		return strings.TrimSpace(body)
	}
	return strings.Join(failed, "; ")
}
