package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledPeerShownUnreachable: a member killed with kill -9 is shown by
// peers list as unreachable with its last known applied index, a lag that
// grows with the writes it misses and the time of the last contact, and
// /metrics says the same per peer; /readyz stays 200 while a quorum is left.
func TestKilledPeerShownUnreachable(t *testing.T) {
	dir := t.TempDir()
	n := &devNode{t: t}
	if r := n.cli("", nil, "testnet", "up", "--nodes", "3", "--dir", dir, "--detach"); r.code != 0 {
		t.Fatalf("testnet up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { n.cli("", nil, "testnet", "down", "--dir", dir) })

	// DE-BAFA serves /metrics: set in its node.yaml, the node restarted.
	metrics := freeAddr(t)
	cfgPath := filepath.Join(dir, "DE-BAFA", "node.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(cfg, []byte("\nmetrics_listen: "+metrics+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := n.cli("", nil, "testnet", "restart", "--dir", dir, "DE-BAFA"); r.code != 0 {
		t.Fatalf("testnet restart: exit %d: %s", r.code, r.stderr)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type peer struct {
		ID           string `json:"id"`
		Reachable    bool   `json:"reachable"`
		AppliedIndex uint64 `json:"applied_index"`
		Lag          uint64 `json:"lag"`
		LastContact  string `json:"last_contact"`
	}
	peersOf := func() map[string]peer {
		r := as(t, dir, "DE-BAFA", "peers", "list", "-o", "json")
		m := map[string]peer{}
		if r.code == 0 {
			for _, p := range decode[[]peer](t, r.stdout) {
				m[p.ID] = p
			}
		}
		return m
	}
	var before peer
	eventually(t, "NL-CDIU reachable at lag 0", 60*time.Second, func() (bool, string) {
		before = peersOf()["NL-CDIU"]
		return before.Reachable && before.Lag == 0 && before.AppliedIndex > 0, before.ID
	})

	pid := pidOf(t, dir, "NL-CDIU")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	eventually(t, "NL-CDIU's process gone", 60*time.Second, func() (bool, string) { return !alive(pid), "" })
	for i := range 3 {
		if r := as(t, dir, "DE-BAFA", "designations", "add", "--schema", "organization", "--name", "Acme "+strconv.Itoa(i),
			"--program", "X", "--marking", "GREEN"); r.code != 0 {
			t.Fatalf("write with NL down: exit %d: %s", r.code, r.stderr)
		}
	}
	var nl peer
	eventually(t, "peers list shows NL-CDIU unreachable, its last applied index and a lag", 60*time.Second, func() (bool, string) {
		nl = peersOf()["NL-CDIU"]
		return !nl.Reachable && nl.AppliedIndex >= before.AppliedIndex && nl.Lag >= 3 && nl.LastContact != "", strconv.Quote(nl.ID)
	})
	contact, err := time.Parse(time.RFC3339Nano, nl.LastContact)
	if err != nil || contact.After(killedAt) {
		t.Errorf("last contact %q (%v): want a time before the kill at %s", nl.LastContact, err, killedAt.Format(time.RFC3339Nano))
	}
	t.Logf("NL-CDIU after kill -9: %+v", nl)
	if table := as(t, dir, "DE-BAFA", "peers", "list").stdout; !regexp.MustCompile(`NL-CDIU.*false`).MatchString(table) {
		t.Errorf("peers list table:\n%s", table)
	}

	eventually(t, "/metrics: NL-CDIU unreachable with a lag and a last contact", 60*time.Second, func() (bool, string) {
		_, body := get("/metrics")
		lag := regexp.MustCompile(`watchfed_peer_lag_entries\{peer="NL-CDIU"\} (\d+)`).FindStringSubmatch(body)
		age := regexp.MustCompile(`watchfed_peer_last_contact_seconds\{peer="NL-CDIU"\} ([0-9.e+]+)\n`).FindStringSubmatch(body)
		ok := strings.Contains(body, `watchfed_peer_reachable{peer="NL-CDIU"} 0`) && lag != nil && lag[1] != "0" && age != nil &&
			strings.Contains(body, `watchfed_peer_reachable{peer="FR-SBDU"} 1`)
		return ok, grepLines(body, "watchfed_peer_")
	})
	if c, b := get("/healthz"); c != 200 {
		t.Errorf("/healthz: %d %s", c, b)
	}
	if c, b := get("/readyz"); c != 200 {
		t.Errorf("/readyz with two of three members up: %d %s", c, b)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
