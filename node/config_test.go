package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	valid := "agency: DE-BAFA\nlisten: 127.0.0.1:7500\ntls:\n  ca_cert: ca.pem\n  cert: node.pem\n  key: node-key.pem\n"
	cases := []struct {
		name    string
		yaml    string
		wantErr string // substring; empty means success
	}{
		{"valid", valid, ""},
		{"unknown key", valid + "lisen: 1.2.3.4:5\n", "line 7: field lisen not found"},
		{"unknown nested key", strings.Replace(valid, "  key:", "  keyfile:", 1), "line 6: field keyfile not found"},
		{"bad listen", strings.Replace(valid, "127.0.0.1:7500", "nowhere", 1), ":2: listen: \"nowhere\" is not host:port"},
		{"bad agency", strings.Replace(valid, "DE-BAFA", "de bafa", 1), ":1: agency:"},
		{"bad log level", valid + "log_level: loud\n", ":7: log_level: \"loud\" is not one of"},
		{"wrong type", valid + "max_message_bytes: lots\n", "line 7: cannot unmarshal"},
		{"missing tls", "agency: DE-BAFA\n", "tls.ca_cert: must be set"},
		{"bad yaml", "agency: [\n", "did not find expected"},
		{"peer routes", valid + "peer_routes:\n  \"10.0.0.2:7400\": \"127.0.0.1:9000\"\n", ""},
		{"bad peer route", valid + "peer_routes:\n  \"10.0.0.2:7400\": \"nowhere\"\n", ":7: peer_routes: \"nowhere\" is not host:port"},
		{"holidays", valid + "holidays: [2026-12-25, 2026-12-26]\n", ""},
		{"raft log on a disk of its own", valid + "raft_log_dir: log\nraft_log_segment_bytes: 65536\n", ""},
		{"tiny raft log segments", valid + "raft_log_segment_bytes: 4096\n", ":7: raft_log_segment_bytes: 4096 is outside"},
		{"bad holiday", valid + "holidays:\n  - 2026-12-25\n  - 25.12.2026\n", ":7: holidays: entry 2: \"25.12.2026\" is not a date YYYY-MM-DD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "node.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Listen != "127.0.0.1:7500" || cfg.LogLevel != "info" {
					t.Fatalf("settings or defaults lost: %+v", cfg)
				}
				if cfg.TLS.CACert != filepath.Join(dir, "ca.pem") {
					t.Fatalf("relative path not resolved against the file: %s", cfg.TLS.CACert)
				}
				if cfg.RaftLogDir != "" && cfg.RaftLogDir != filepath.Join(dir, "log") {
					t.Fatalf("raft_log_dir not resolved against the file: %s", cfg.RaftLogDir)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v; want it to name %s and contain %q", err, path, tc.wantErr)
			}
		})
	}
}

// FuzzLoadConfig: any file is either a configuration that validates or an
// error naming the file; never a panic.
func FuzzLoadConfig(f *testing.F) {
	f.Add("agency: DE-BAFA\nlisten: 127.0.0.1:7500\ntls:\n  ca_cert: ca.pem\n  cert: node.pem\n  key: node-key.pem\n")
	f.Add("agency: DE-BAFA\npeer_routes:\n  \"a:1\": \"b:2\"\nmax_message_bytes: 70000\n")
	f.Add("agency: [\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml string) {
		path := filepath.Join(dir, "node.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "config") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded a configuration that does not validate: %v", err)
		}
	})
}
