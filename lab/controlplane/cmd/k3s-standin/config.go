package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// serverConfig is the part of k3s's server configuration that the stand-in honours. Every other
// key of the config file (or flag on the command line) is accepted and ignored.
type serverConfig struct {
	TLSSANs          []string
	NodeIPs          []string
	AdvertiseAddress string
	BindAddress      string
	KubeconfigMode   os.FileMode
	KubeconfigPath   string // logical (container) path; write-kubeconfig / -o
	NodeLabels       []string
	Disable          []string
	NodeName         string
	DataDir          string // logical (container) path
}

// rawConfig maps k3s flag names to values decoded from YAML: string, json.Number, bool, []any.
type rawConfig map[string]any

// loadRawConfig reads the config file and its drop-ins (<file>.d/*.yaml, in lexical order) as
// k3s does: a later file replaces a key, and a key written "name+" appends to a list. A missing
// config file is an empty config.
func loadRawConfig(path string) (rawConfig, error) {
	cfg := rawConfig{}
	files := []string{path}
	dropins, _ := filepath.Glob(path + ".d/*.yaml")
	sort.Strings(dropins)
	files = append(files, dropins...)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m, err := decodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for k, v := range m {
			if base, ok := strings.CutSuffix(k, "+"); ok {
				cfg[base] = append(toList(cfg[base]), toList(v)...)
				continue
			}
			cfg[k] = v
		}
	}
	return cfg, nil
}

// decodeYAML keeps numbers as json.Number so that an integer reaches us exactly as the YAML
// parser produced it (see parseKubeconfigMode for why that matters).
func decodeYAML(data []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	if s := string(bytes.TrimSpace(js)); s == "null" || s == "" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("config is not a mapping of flag names to values: %w", err)
	}
	return m, nil
}

// toString renders a scalar as the flag value k3s would pass on: integers in decimal.
func toString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			parts = append(parts, toString(e))
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(t)
	}
}

// toList accepts a YAML list or a single (comma-separated) string, like k3s's slice flags.
func toList(v any) []any {
	var out []any
	add := func(s string) {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	switch t := v.(type) {
	case nil:
	case []any:
		for _, e := range t {
			add(toString(e))
		}
	default:
		add(toString(t))
	}
	return out
}

func toStrings(v any) []string {
	var out []string
	for _, e := range toList(v) {
		out = append(out, e.(string))
	}
	return out
}

// parseKubeconfigMode parses write-kubeconfig-mode as an octal string, like k3s.
//
// PITFALL, kept on purpose because real k3s behaves the same: the value must be a quoted STRING
// in config.yaml ("0644" or "644"). An unquoted YAML integer is first rendered in decimal and
// only then parsed as octal. `write-kubeconfig-mode: 644` happens to work (644 -> "644" -> 0644),
// but `write-kubeconfig-mode: 0644` is a YAML 1.1 octal literal, i.e. the integer 420, which
// becomes "420" -> 0420 (r---w----), and `420` likewise gives 0420.
func parseKubeconfigMode(v any) (os.FileMode, error) {
	s := toString(v)
	mode, err := strconv.ParseUint(s, 8, 32)
	if err != nil || mode > 0o777 {
		return 0, fmt.Errorf("invalid write-kubeconfig-mode %q: want an octal file mode such as \"0644\"", s)
	}
	return os.FileMode(mode), nil
}

// parseServerArgs splits `server` arguments into the config file path and flag overrides.
// Flags on the command line win over the config file, as in k3s; repeated flags accumulate.
func parseServerArgs(f flavour, args []string) (configPath string, flags rawConfig, err error) {
	configPath = f.configFile
	if env := os.Getenv(strings.ToUpper(f.name) + "_CONFIG_FILE"); env != "" {
		configPath = env
	}
	flags = rawConfig{}
	// Flags that take a value; any other --flag without "=value" is a boolean.
	takesValue := map[string]bool{
		"config": true, "c": true, "tls-san": true, "node-ip": true, "advertise-address": true,
		"bind-address": true, "write-kubeconfig-mode": true, "write-kubeconfig": true, "o": true,
		"node-label": true, "disable": true, "node-name": true, "data-dir": true, "d": true,
		"token": true, "t": true, "server": true, "s": true, "cluster-cidr": true,
		"service-cidr": true, "cluster-dns": true, "cluster-domain": true, "node-taint": true,
		"node-external-ip": true, "flannel-backend": true, "kube-apiserver-arg": true,
		"kube-controller-manager-arg": true, "kubelet-arg": true,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return "", nil, fmt.Errorf("unexpected argument %q", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue {
			if takesValue[name] {
				if i+1 >= len(args) {
					return "", nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				value = args[i]
			} else {
				value = "true"
			}
		}
		switch name {
		case "config", "c":
			configPath = value
			continue
		case "o":
			name = "write-kubeconfig"
		case "d":
			name = "data-dir"
		}
		if prev, ok := flags[name]; ok {
			flags[name] = append(toList(prev), toList(value)...)
		} else {
			flags[name] = value
		}
	}
	return configPath, flags, nil
}

// resolveConfig turns the raw config into the values the stand-in uses, applying k3s defaults.
func resolveConfig(f flavour, raw rawConfig) (*serverConfig, error) {
	c := &serverConfig{
		TLSSANs:          toStrings(raw["tls-san"]),
		NodeIPs:          toStrings(raw["node-ip"]),
		AdvertiseAddress: toString(raw["advertise-address"]),
		BindAddress:      toString(raw["bind-address"]),
		NodeLabels:       toStrings(raw["node-label"]),
		Disable:          toStrings(raw["disable"]),
		NodeName:         toString(raw["node-name"]),
		DataDir:          toString(raw["data-dir"]),
		KubeconfigPath:   toString(raw["write-kubeconfig"]),
		KubeconfigMode:   0o600,
	}
	modeValue, hasMode := raw["write-kubeconfig-mode"]
	if !hasMode {
		if env := os.Getenv(strings.ToUpper(f.name) + "_KUBECONFIG_MODE"); env != "" {
			modeValue, hasMode = env, true
		}
	}
	if hasMode && toString(modeValue) != "" {
		mode, err := parseKubeconfigMode(modeValue)
		if err != nil {
			return nil, err
		}
		c.KubeconfigMode = mode
	}
	if c.BindAddress == "" {
		c.BindAddress = "0.0.0.0"
	}
	if c.DataDir == "" {
		c.DataDir = f.dataDir
	}
	if c.KubeconfigPath == "" {
		c.KubeconfigPath = f.kubeconfig
	}
	if c.NodeName == "" {
		c.NodeName = os.Getenv(strings.ToUpper(f.name) + "_NODE_NAME")
	}
	if c.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node-name not set and hostname unknown: %w", err)
		}
		c.NodeName = host
	}
	// k3s lower-cases the node name: a Node's name must be a DNS subdomain.
	c.NodeName = strings.ToLower(c.NodeName)
	for _, ip := range append(append([]string{}, c.NodeIPs...), c.AdvertiseAddress, c.BindAddress) {
		if ip != "" && net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("invalid IP address %q in config", ip)
		}
	}
	for _, l := range c.NodeLabels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return nil, fmt.Errorf("invalid node-label %q: want key=value", l)
		}
	}
	return c, nil
}

func (c *serverConfig) disabled(name string) bool {
	for _, d := range c.Disable {
		if d == name {
			return true
		}
	}
	return false
}
