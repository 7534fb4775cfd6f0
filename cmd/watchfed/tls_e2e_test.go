package main

import (
	"strings"
	"testing"
	"time"
)

// TestRefusedHandshakeAudited: a client with a certificate of another
// agency's CA is refused at the handshake (the Go client withholds a
// certificate of a CA the server does not name, so the node sees none); the
// node logs the refusal with the peer and the reason, and the operator finds
// it in the audit log. node/auth and node test certificates forced on the
// node: an unknown CA, and a member's CA naming another agency.
func TestRefusedHandshakeAudited(t *testing.T) {
	n := startDevNode(t, t.TempDir(), freeAddr(t))
	other := t.TempDir()
	n.ok("certs", "ca", "--agency", "FR-SBDU", "--dir", other)
	lines := strings.Fields(n.ok("certs", "issue", "--dir", other, "--agency", "FR-SBDU", "--name", "mallory", "--role", "operator"))
	r := n.cli("", []string{"WATCHFED_CLIENT_CERT=" + lines[0], "WATCHFED_CLIENT_KEY=" + lines[1]}, "records", "list")
	if r.code == 0 {
		t.Fatal("a certificate of an unknown CA was served")
	}
	type event struct {
		Action  string `json:"action"`
		Target  string `json:"target"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var found bool
		for _, ev := range decode[[]event](t, n.ok("audit", "list", "-o", "json", "--limit", "1000")) {
			if ev.Action == "tls.refused" && ev.Outcome == "denied" && strings.HasPrefix(ev.Target, "127.0.0.1:") && strings.Contains(ev.Detail, "in no_certificate") {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no tls.refused event in the audit log")
		}
	}
	log := n.log()
	if !strings.Contains(log, `"msg":"TLS handshake refused"`) || !strings.Contains(log, `"reason":"no_certificate"`) || !strings.Contains(log, `"peer":"127.0.0.1:`) {
		t.Fatalf("node log lacks the refusal:\n%s", log)
	}
}

// log is what the node wrote to stderr so far.
func (n *devNode) log() string {
	lw := n.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.String()
}
