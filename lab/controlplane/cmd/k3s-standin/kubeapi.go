package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// apiClient talks to kube-apiserver over plain net/http with the admin client certificate.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string, caPEM []byte, certFile, keyFile string) (*apiClient, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no CA certificate to verify kube-apiserver with")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		Proxy:           nil, // loopback only: never through an HTTP(S)_PROXY from the environment
	}
	return &apiClient{base: base, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (c *apiClient) do(method, path, contentType string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "k3s-standin")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// expect performs a request and fails unless the status is one of ok.
func (c *apiClient) expect(method, path, contentType string, body any, ok ...int) (int, error) {
	status, data, err := c.do(method, path, contentType, body)
	if err != nil {
		return status, err
	}
	for _, s := range ok {
		if status == s {
			return status, nil
		}
	}
	return status, fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, strings.TrimSpace(string(data)))
}

const mergePatch = "application/merge-patch+json"

// ensureObject creates the object at collection/name, or merge-patches it when it exists.
// Merge patches add and update map keys but never remove any: labels set by an earlier start
// survive, as they do with k3s.
func (c *apiClient) ensureObject(collection, name string, obj, patch any) error {
	status, err := c.expect(http.MethodGet, collection+"/"+url.PathEscape(name), "", nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		_, err = c.expect(http.MethodPost, collection, "application/json", obj, http.StatusCreated, http.StatusOK)
		return err
	}
	_, err = c.expect(http.MethodPatch, collection+"/"+url.PathEscape(name), mergePatch, patch, http.StatusOK)
	return err
}

// nodeLabels are the labels the kubelet and k3s put on a server node, then node-label entries.
func nodeLabels(f flavour, cfg *serverConfig) map[string]string {
	labels := map[string]string{
		"kubernetes.io/hostname":                cfg.NodeName,
		"kubernetes.io/os":                      "linux",
		"kubernetes.io/arch":                    runtime.GOARCH,
		"beta.kubernetes.io/os":                 "linux",
		"beta.kubernetes.io/arch":               runtime.GOARCH,
		"node.kubernetes.io/instance-type":      f.name,
		"node-role.kubernetes.io/control-plane": "true",
		"node-role.kubernetes.io/master":        "true",
	}
	if f.name == "rke2" {
		labels["node-role.kubernetes.io/etcd"] = "true"
	}
	for _, l := range cfg.NodeLabels {
		k, v, _ := strings.Cut(l, "=")
		labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return labels
}

func osImage() string {
	data, err := os.ReadFile(hostPath("/etc/os-release"))
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return "Linux"
}

// ensureNode registers the Node object a k3s server's kubelet would register. No kubelet runs,
// so its status carries addresses and node info but NO conditions: nothing reports Ready, and
// kube-controller-manager's node lifecycle controller eventually marks it Unknown and taints it.
// ensureNode labels the Node; withStatus (no kubelet runs) also creates it and writes the status
// a kubelet would.
func (c *apiClient) ensureNode(f flavour, cfg *serverConfig, nodeIP string, withStatus bool) error {
	labels := nodeLabels(f, cfg)
	node := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata":   map[string]any{"name": cfg.NodeName, "labels": labels},
	}
	patch := map[string]any{"metadata": map[string]any{"labels": labels}}
	if err := c.ensureObject("/api/v1/nodes", cfg.NodeName, node, patch); err != nil {
		return err
	}
	if !withStatus {
		return nil
	}
	addresses := []map[string]string{}
	if nodeIP != "" {
		addresses = append(addresses, map[string]string{"type": "InternalIP", "address": nodeIP})
	}
	addresses = append(addresses, map[string]string{"type": "Hostname", "address": cfg.NodeName})
	status := map[string]any{"status": map[string]any{
		"addresses": addresses,
		"nodeInfo": map[string]any{
			"kubeletVersion":  f.version,
			"operatingSystem": "linux",
			"architecture":    runtime.GOARCH,
			"osImage":         osImage(),
		},
	}}
	_, err := c.expect(http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(cfg.NodeName)+"/status", mergePatch, status, http.StatusOK)
	return err
}

const ingressClasses = "/apis/networking.k8s.io/v1/ingressclasses"

// ensureTraefikIngressClass stands in for k3s's packaged Traefik: only its IngressClass (no
// controller runs). A disabled addon is uninstalled, as k3s does.
func (c *apiClient) ensureTraefikIngressClass(cfg *serverConfig) error {
	if cfg.disabled("traefik") {
		status, err := c.expect(http.MethodDelete, ingressClasses+"/traefik", "", nil, http.StatusOK, http.StatusAccepted, http.StatusNotFound)
		if err == nil && status != http.StatusNotFound {
			logf("traefik is disabled: deleted IngressClass traefik")
		}
		return err
	}
	annotations := map[string]string{"ingressclass.kubernetes.io/is-default-class": "true"}
	obj := map[string]any{
		"apiVersion": "networking.k8s.io/v1",
		"kind":       "IngressClass",
		"metadata":   map[string]any{"name": "traefik", "annotations": annotations},
		"spec":       map[string]any{"controller": "traefik.io/ingress-controller"},
	}
	patch := map[string]any{"metadata": map[string]any{"annotations": annotations}}
	return c.ensureObject(ingressClasses, "traefik", obj, patch)
}

// kubeconfigWithData renders a kubeconfig exactly as k3s writes k3s.yaml: one cluster, one
// user and one context, all named "default", credentials embedded. Keys are in the order
// client-go writes them (alphabetical).
func kubeconfigWithData(server string, caPEM, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return []byte(fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(caPEM), server, b64(certPEM), b64(keyPEM)))
}

// kubeconfigWithFiles renders a kubeconfig referring to certificate files, like k3s's
// <data-dir>/server/cred/*.kubeconfig.
func kubeconfigWithFiles(server, caFile, certFile, keyFile string) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return []byte(fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority: %s
    server: %s
  name: local
contexts:
- context:
    cluster: local
    namespace: default
    user: user
  name: Default
current-context: Default
kind: Config
preferences: {}
users:
- name: user
  user:
    client-certificate: %s
    client-key: %s
`, q(caFile), server, q(certFile), q(keyFile)))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
