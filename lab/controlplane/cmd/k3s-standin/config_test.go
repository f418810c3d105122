package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestKubeconfigModeLikeK3s(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want os.FileMode
	}{
		{`write-kubeconfig-mode: "0644"`, 0o644},
		{`write-kubeconfig-mode: "644"`, 0o644},
		{`write-kubeconfig-mode: 644`, 0o644},  // int 644 -> "644" -> 0644
		{`write-kubeconfig-mode: 420`, 0o420},  // int 420 -> "420" -> 0420
		{`write-kubeconfig-mode: 0644`, 0o420}, // YAML 1.1 octal: int 420 -> 0420 (the pitfall)
		{`{}`, 0o600},
	} {
		raw, err := decodeYAML([]byte(tc.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		cfg, err := resolveConfig(detectFlavour("k3s"), raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if cfg.KubeconfigMode != tc.want {
			t.Errorf("%s: mode %04o, want %04o", tc.yaml, cfg.KubeconfigMode, tc.want)
		}
	}
	raw, _ := decodeYAML([]byte(`write-kubeconfig-mode: "0999"`))
	if _, err := resolveConfig(detectFlavour("k3s"), raw); err == nil {
		t.Error("0999 accepted")
	}
}

func TestConfigFileAndDropins(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(path, "tls-san: [a.example, 127.0.0.2]\nnode-label: [role=gitops]\ndisable: traefik\nnode-name: Node-1\nunknown-key: {x: 1}\n")
	write(path+".d/10-more.yaml", "tls-san+: [b.example]\nnode-ip: 10.0.0.5\n")
	raw, err := loadRawConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := resolveConfig(detectFlavour("/usr/local/bin/k3s"), raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example", "127.0.0.2", "b.example"}; !slices.Equal(cfg.TLSSANs, want) {
		t.Errorf("tls-san %v, want %v", cfg.TLSSANs, want)
	}
	if !cfg.disabled("traefik") || cfg.NodeName != "node-1" || cfg.NodeIPs[0] != "10.0.0.5" {
		t.Errorf("unexpected config %+v", cfg)
	}
	if cfg.DataDir != "/var/lib/rancher/k3s" || cfg.KubeconfigPath != "/etc/rancher/k3s/k3s.yaml" {
		t.Errorf("unexpected k3s defaults %+v", cfg)
	}
	missing, err := loadRawConfig(filepath.Join(dir, "nope.yaml"))
	if err != nil || len(missing) != 0 {
		t.Errorf("missing config: %v %v", missing, err)
	}
}

func TestFlavour(t *testing.T) {
	if f := detectFlavour("/usr/local/bin/rke2"); f.name != "rke2" || f.kubeconfig != "/etc/rancher/rke2/rke2.yaml" {
		t.Errorf("rke2 flavour: %+v", f)
	}
	if f := detectFlavour("k3s-standin"); f.name != "k3s" {
		t.Errorf("default flavour: %+v", f)
	}
}

func TestServerArgs(t *testing.T) {
	cfgPath, flags, err := parseServerArgs(detectFlavour("k3s"), []string{"--config", "/x.yaml", "--tls-san=a", "--tls-san", "b", "--cluster-init"})
	if err != nil || cfgPath != "/x.yaml" {
		t.Fatalf("%v %v", cfgPath, err)
	}
	if got := toStrings(flags["tls-san"]); !slices.Equal(got, []string{"a", "b"}) || flags["cluster-init"] != "true" {
		t.Errorf("flags %v", flags)
	}
}
