package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// Like k3s, leaf certificates are renewed on start when they expire within 90 days.
	leafRenewBefore = 90 * 24 * time.Hour
)

// certAuthority is a CA certificate and its key, as read from or written to <tls>/<name>.crt/.key.
type certAuthority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// leafSpec describes a leaf certificate signed by a CA.
type leafSpec struct {
	name   string // file name without .crt/.key
	cn     string
	orgs   []string
	usage  x509.ExtKeyUsage
	dns    []string
	ips    []net.IP
	addSAN bool // serving certificate: keep every SAN it already has (k3s never removes SANs)
}

// writeFileAtomic writes data to path through a temporary file in the same directory and a
// rename, so a reader never sees half a file; the mode is applied to the final file explicitly.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func newECKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: unsupported private key", path)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported private key type %T", path, k)
	}
	return signer, nil
}

func readCert(path string) (*x509.Certificate, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, data, nil
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func sameKey(cert *x509.Certificate, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(cert.PublicKey)
}

// loadOrCreateCA keeps an existing CA (a CA is never rotated on start) or creates a 10-year
// ECDSA P-256 one, with a CN in k3s's style (k3s-server-ca@<unix time>).
func loadOrCreateCA(dir, name, cnPrefix string) (*certAuthority, error) {
	certPath := filepath.Join(dir, name+".crt")
	keyPath := filepath.Join(dir, name+".key")
	cert, certPEM, certErr := readCert(certPath)
	key, keyErr := readKey(keyPath)
	if certErr == nil && keyErr == nil && sameKey(cert, key) {
		return &certAuthority{cert: cert, key: key, certPEM: certPEM}, nil
	}
	if _, err := os.Stat(certPath); err == nil {
		logf("%s is unreadable or does not match its key; creating a new CA", certPath)
	}
	ecKey, err := newECKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", cnPrefix, now.Unix())},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(caValidity).UTC(),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		return nil, err
	}
	cert, _ = x509.ParseCertificate(der)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKey(ecKey)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o600); err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: ecKey, certPEM: certPEM}, nil
}

// ensureServiceKey creates the key kube-apiserver signs service-account tokens with (and
// verifies them with); it is kept across restarts so that issued tokens stay valid.
func ensureServiceKey(path string) error {
	if _, err := readKey(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		logf("%v; creating a new service-account key", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, keyPEM, 0o600)
}

func containsIP(ips []net.IP, ip net.IP) bool {
	return slices.ContainsFunc(ips, ip.Equal)
}

// ensureLeaf keeps <dir>/<name>.crt if it is still right, else (re)issues it from ca. "Right"
// means: signed by ca, matching its key, not expiring within 90 days, the wanted subject, and
// (serving certificates) every wanted SAN present. The key is reused when readable.
func ensureLeaf(dir string, ca *certAuthority, spec leafSpec) error {
	certPath := filepath.Join(dir, spec.name+".crt")
	keyPath := filepath.Join(dir, spec.name+".key")
	wantDNS := dedupe(spec.dns)
	wantIPs := dedupeIPs(spec.ips)

	cert, _, certErr := readCert(certPath)
	key, keyErr := readKey(keyPath)
	reason := ""
	switch {
	case certErr != nil || keyErr != nil:
		reason = "missing"
	case !sameKey(cert, key):
		reason = "does not match its key"
	case cert.CheckSignatureFrom(ca.cert) != nil:
		reason = "not signed by the current CA"
	case time.Until(cert.NotAfter) < leafRenewBefore:
		reason = "expiring"
	case cert.Subject.CommonName != spec.cn || !slices.Equal(cert.Subject.Organization, spec.orgs):
		reason = "subject changed"
	default:
		for _, d := range wantDNS {
			if !slices.Contains(cert.DNSNames, d) {
				reason = "SAN " + d + " missing"
			}
		}
		for _, ip := range wantIPs {
			if !containsIP(cert.IPAddresses, ip) {
				reason = "SAN " + ip.String() + " missing"
			}
		}
	}
	if reason == "" {
		return nil
	}
	if spec.addSAN && cert != nil {
		// k3s only ever adds SANs to the serving certificate: keep what it had.
		wantDNS = dedupe(append(append([]string{}, cert.DNSNames...), wantDNS...))
		wantIPs = dedupeIPs(append(append([]net.IP{}, cert.IPAddresses...), wantIPs...))
	}
	if keyErr != nil {
		ecKey, err := newECKey()
		if err != nil {
			return err
		}
		key = ecKey
		keyPEM, err := encodeKey(ecKey)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
			return err
		}
	}
	serial, err := serialNumber()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.cn, Organization: spec.orgs},
		NotBefore:    now.Add(-time.Hour).UTC(),
		NotAfter:     now.Add(leafValidity).UTC(),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{spec.usage},
		DNSNames:     wantDNS,
		IPAddresses:  wantIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	logf("issued %s (%s)", certPath, reason)
	return writeFileAtomic(certPath, certPEM, 0o600)
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func dedupeIPs(in []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range in {
		if ip != nil && !containsIP(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

// hostIPv4s lists the global-unicast IPv4 addresses of the machine's interfaces.
func hostIPv4s() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := ipnet.IP.To4(); ip4 != nil && ip4.IsGlobalUnicast() {
			out = append(out, ip4)
		}
	}
	return out
}

func splitSANs(sans []string) (dns []string, ips []net.IP) {
	for _, s := range sans {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, strings.ToLower(s))
		}
	}
	return dns, ips
}
