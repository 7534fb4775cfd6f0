package pki

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
)

// FuzzIdentityOf: whatever certificate bytes arrive, parsing them gives an
// identity with one agency, a name and only known roles, or an error.
func FuzzIdentityOf(f *testing.F) {
	ca, err := NewCA("DE-BAFA")
	if err != nil {
		f.Fatal(err)
	}
	for _, req := range []IssueRequest{
		{Agency: "DE-BAFA", Name: "node", Roles: []Role{RoleNode}, Hosts: []string{"de-bafa", "127.0.0.1"}},
		{Agency: "DE-BAFA", Name: "alice", Roles: []Role{RoleAnalyst, RoleOperator}},
	} {
		is, err := ca.Issue(req)
		if err != nil {
			f.Fatal(err)
		}
		blk, _ := pem.Decode(is.CertPEM)
		f.Add(blk.Bytes)
	}
	f.Add(ca.Cert.Raw)
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := IdentityOf(cert)
		if err != nil {
			return
		}
		if id.Agency == "" || id.Name == "" || len(id.Roles) == 0 {
			t.Fatalf("incomplete identity accepted: %+v", id)
		}
		for i, r := range id.Roles {
			if !slices.Contains(Roles, r) {
				t.Fatalf("unknown role %q accepted", r)
			}
			if slices.Contains(id.Roles[:i], r) {
				t.Fatalf("duplicate roles: %v", id.Roles)
			}
		}
	})
}

// FuzzParseCertPEM: PEM from a file or a registry entry never panics.
func FuzzParseCertPEM(f *testing.F) {
	ca, _ := NewCA("FR-SBDU")
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := ParseCertPEM(data); err == nil && c == nil {
			t.Fatal("nil certificate without error")
		}
	})
}
