package node

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/watchfed/watchfed/node/pki"
)

// DevAgency is the agency id of a `watchfed node --dev` node.
const DevAgency = "DEV"

// ClientEnv is what a client needs to reach a node: the values of
// WATCHFED_ADDR, WATCHFED_CACERT, WATCHFED_CLIENT_CERT and WATCHFED_CLIENT_KEY.
type ClientEnv struct {
	Addr, CACert, ClientCert, ClientKey string
}

// Exports renders the env as shell export lines.
func (e ClientEnv) Exports() string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	return fmt.Sprintf("export WATCHFED_ADDR=%s\nexport WATCHFED_CACERT=%s\nexport WATCHFED_CLIENT_CERT=%s\nexport WATCHFED_CLIENT_KEY=%s\n",
		q(e.Addr), q(e.CACert), q(e.ClientCert), q(e.ClientKey))
}

// EnsureDevCerts makes, on first use, a CA for agency under dir/certs, a node
// certificate for the listen host and a client certificate holding the
// analyst and operator roles. Later calls reuse them. It fills cfg.TLS and
// returns the client's environment, also written to dir/env.
func EnsureDevCerts(cfg *Config) (ClientEnv, error) {
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "certs"))
	if err != nil {
		return ClientEnv{}, err
	}
	ca, err := pki.LoadCA(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = pki.NewCA(cfg.Agency); err == nil {
			err = ca.Save(dir)
		}
	}
	if err != nil {
		return ClientEnv{}, fmt.Errorf("development CA: %w", err)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return ClientEnv{}, fmt.Errorf("listen: %w", err)
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if host != "" && host != "0.0.0.0" && host != "::" {
		hosts = append(hosts, host)
	}
	// Partners dial the advertised name (a container's service name, say).
	if adv, _, err := net.SplitHostPort(cfg.Advertise); err == nil && adv != "" && !slices.Contains(hosts, adv) {
		hosts = append(hosts, adv)
	}
	issue := func(base, name string, roles []pki.Role, hosts []string) (string, string, error) {
		cert, key := filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem")
		if _, err := os.Stat(cert); err == nil {
			return cert, key, nil
		}
		is, err := ca.Issue(pki.IssueRequest{Agency: cfg.Agency, Name: name, Roles: roles, Hosts: hosts})
		if err != nil {
			return "", "", err
		}
		return pki.SaveIssued(is, filepath.Join(dir, base))
	}
	nodeCert, nodeKey, err := issue("node", "node", []pki.Role{pki.RoleNode}, hosts)
	if err != nil {
		return ClientEnv{}, fmt.Errorf("node certificate: %w", err)
	}
	cliCert, cliKey, err := issue("client", "dev-user", []pki.Role{pki.RoleAnalyst, pki.RoleOperator}, nil)
	if err != nil {
		return ClientEnv{}, fmt.Errorf("client certificate: %w", err)
	}
	cfg.TLS = TLS{CACert: filepath.Join(dir, pki.CACertFile), Cert: nodeCert, Key: nodeKey}
	env := ClientEnv{Addr: cfg.Listen, CACert: cfg.TLS.CACert, ClientCert: cliCert, ClientKey: cliKey}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "env"), []byte(env.Exports()), 0o600); err != nil {
		return ClientEnv{}, fmt.Errorf("write env file: %w", err)
	}
	return env, nil
}
