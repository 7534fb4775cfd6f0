// Package pki makes the development certificate authority and certificates
// that carry a watchfed identity: the agency in the subject's Organization and
// each role in an OrganizationalUnit. Production agencies use their own PKI with
// the same subject layout; this package only spares a newcomer openssl.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Role is what a certificate holder may do.
type Role string

const (
	RoleNode     Role = "node"     // a federation member's node (raft, forwarding)
	RoleOperator Role = "operator" // runs the node: status, peers, audit, snapshots
	RoleAnalyst  Role = "analyst"  // writes and reads records, screens
	RoleConsumer Role = "consumer" // reads the feed of entries (Watch)
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleNode, RoleOperator, RoleAnalyst, RoleConsumer}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want one of node, operator, analyst, consumer)", s)
}

// Identity is who a certificate names.
type Identity struct {
	Agency string
	Name   string
	Roles  []Role
}

// Has reports whether the identity holds role r.
func (id Identity) Has(r Role) bool { return slices.Contains(id.Roles, r) }

// String is the form used in audit records: AGENCY/name.
func (id Identity) String() string { return id.Agency + "/" + id.Name }

// IdentityOf reads the identity from a verified certificate. A certificate
// without exactly one agency or without a known role names nobody.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] == "" {
		return Identity{}, errors.New("certificate subject must name exactly one agency in O")
	}
	id := Identity{Agency: cert.Subject.Organization[0], Name: cert.Subject.CommonName}
	for _, ou := range cert.Subject.OrganizationalUnit {
		r, err := ParseRole(ou)
		if err != nil {
			return Identity{}, fmt.Errorf("certificate subject OU: %w", err)
		}
		if !slices.Contains(id.Roles, r) {
			id.Roles = append(id.Roles, r)
		}
	}
	if len(id.Roles) == 0 {
		return Identity{}, errors.New("certificate subject carries no role in OU")
	}
	if id.Name == "" {
		return Identity{}, errors.New("certificate subject has no CN")
	}
	return id, nil
}

// CA is a certificate authority able to issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA for an agency, valid for ten years.
func NewCA(agency string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: agency + " watchfed CA", Organization: []string{agency}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// IssueRequest describes a certificate to issue.
type IssueRequest struct {
	Agency   string
	Name     string
	Roles    []Role
	Hosts    []string // DNS names and IP addresses, for node certificates
	Validity time.Duration
}

// Issued is a certificate with its key, PEM-encoded.
type Issued struct {
	CertPEM, KeyPEM []byte
}

// Issue signs a certificate for the request. A CA issues only for its own
// agency: a certificate is the agency vouching for one of its people or nodes.
func (ca *CA) Issue(req IssueRequest) (*Issued, error) {
	if len(ca.Cert.Subject.Organization) != 1 || ca.Cert.Subject.Organization[0] != req.Agency {
		return nil, fmt.Errorf("CA of %v cannot issue for agency %q", ca.Cert.Subject.Organization, req.Agency)
	}
	if req.Name == "" {
		return nil, errors.New("name: must not be empty")
	}
	if len(req.Roles) == 0 {
		return nil, errors.New("roles: at least one role is needed")
	}
	if req.Validity == 0 {
		req.Validity = 365 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	ous := make([]string, len(req.Roles))
	for i, r := range req.Roles {
		ous[i] = string(r)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.Name, Organization: []string{req.Agency}, OrganizationalUnit: ous},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(req.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Node certificates serve and dial (raft, forwarding); people's only dial.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// File names of a CA in a directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Save writes the CA into dir (the key readable by the owner only).
func (ca *CA) Save(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeNew(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644)
}

// LoadCA reads a CA saved by Save.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM block", filepath.Join(dir, CAKeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", filepath.Join(dir, CAKeyFile))
	}
	return &CA{Cert: cert, Key: ek}, nil
}

// SaveIssued writes CERT as base.pem and its key as base-key.pem.
func SaveIssued(is *Issued, base string) (certPath, keyPath string, err error) {
	certPath, keyPath = base+".pem", base+"-key.pem"
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return "", "", err
	}
	if err := writeNew(keyPath, is.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(certPath, is.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// ParseCertPEM reads the first certificate of a PEM file.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// writeNew refuses to overwrite: replacing a CA key by accident would orphan
// every certificate it issued.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
