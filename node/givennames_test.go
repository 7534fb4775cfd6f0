package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGivenNamesFile: a node screens with the lexicon of given names its
// configuration names in place of the built-in one, and refuses to start on
// a file that does not parse, naming the file and the line.
func TestGivenNamesFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "given.txt"), filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(good, []byte("# two names\nF 2 karin\nM 2 karim=kareem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("F 2 karin\nM two karim\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(path string) (*Node, error) {
		cfg := Defaults()
		cfg.Agency, cfg.Listen, cfg.DataDir, cfg.GivenNames = DevAgency, "127.0.0.1:0", t.TempDir(), path
		if _, err := EnsureDevCerts(&cfg); err != nil {
			t.Fatal(err)
		}
		return New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	}
	if _, err := start(bad); err == nil || !strings.Contains(err.Error(), bad+": line 2: commonness") {
		t.Errorf("a bad lexicon: %v, want an error naming %s and line 2", err, bad)
	}
	n, err := start(good)
	if err != nil {
		t.Fatal(err)
	}
	if g := n.index.GivenNames(); g == nil || g.Len() != 3 || !g.Known("kareem") {
		t.Errorf("the node's lexicon is not the file's")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Serve(ctx); err != nil {
		t.Error(err)
	}
}
