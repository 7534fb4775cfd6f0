package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/watchfed/watchfed/node/record"
)

// Config is everything a node needs to start. Every field has a default
// (Defaults) and can come from the YAML file given to `watchfed node --config`
// or from a flag of the same name; flags win.
type Config struct {
	// Agency is this node's agency id, e.g. DE-BAFA. It must match the O of
	// the node certificate.
	Agency string `yaml:"agency"`
	// Listen is the one gRPC address: public services, raft and peers.
	Listen string `yaml:"listen"`
	// Advertise is the address partners reach this node at; default Listen.
	Advertise string `yaml:"advertise"`
	// DataDir holds node.db (records and audit log) and, in dev mode, the certificates.
	DataDir string `yaml:"data_dir"`
	// RaftLogDir holds the raft log (wal/) when it should live on a disk of
	// its own (a fast one, or one apart from the record stores so that one
	// filling up leaves the other writable); default DATA_DIR/raft, beside
	// the replicated state (fsm.db) and the raft snapshots.
	RaftLogDir string `yaml:"raft_log_dir"`
	// RaftLogSegmentBytes is the size of the raft log's segment files,
	// each preallocated when created (an append inside one cannot fail for
	// space); 0 takes 16 MiB. A small raft log disk wants small segments.
	RaftLogSegmentBytes int `yaml:"raft_log_segment_bytes"`
	// RaftSnapshotThreshold and RaftSnapshotInterval: raft snapshots the
	// replicated state once the log grew by this many entries since the
	// last snapshot, checking every interval (jittered up to twice it);
	// 0 takes 16384 entries and 2 minutes.
	RaftSnapshotThreshold uint64        `yaml:"raft_snapshot_threshold"`
	RaftSnapshotInterval  time.Duration `yaml:"raft_snapshot_interval"`
	TLS                   TLS           `yaml:"tls"`
	// MetricsListen is an optional HTTP address for Prometheus /metrics; empty disables it.
	MetricsListen string `yaml:"metrics_listen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text, json, or auto (text on a terminal, JSON otherwise).
	LogFormat string `yaml:"log_format"`
	// Policy is the sharing policy file (YAML). Without one the node shares
	// nothing with partners: the policy's default is deny.
	Policy string `yaml:"policy"`
	// GivenNames is a lexicon of given names for screening, in the format
	// of names.ParseLexicon, in place of the one built in
	// (names.DefaultGivenNames).
	GivenNames string `yaml:"given_names"`
	// MaxMessageBytes bounds every gRPC message the node accepts.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// PeerRoutes maps a partner's advertised address to the address this
	// node actually connects to (a NAT, a tunnel, or a test's fault proxy).
	// TLS still verifies the advertised name.
	PeerRoutes map[string]string `yaml:"peer_routes"`
	// Holidays are this state's public holidays (YYYY-MM-DD): they do not
	// count as working days in a consultation's deadline.
	Holidays []string `yaml:"holidays"`
	// AuditAnchorEvents and AuditAnchorInterval: the head of the audit
	// chain is anchored (in the federation log, else in the node's anchor
	// file) once the chain grew by this many events, or grew at all and
	// this long passed since the last anchor; and at a clean shutdown.
	AuditAnchorEvents   uint64        `yaml:"audit_anchor_events"`
	AuditAnchorInterval time.Duration `yaml:"audit_anchor_interval"`
}

// TLS names the node's PEM files.
type TLS struct {
	// CACert is the agency CA that issues the node's and its users' certificates.
	CACert string `yaml:"ca_cert"`
	Cert   string `yaml:"cert"`
	Key    string `yaml:"key"`
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		Listen:          "127.0.0.1:7400",
		DataDir:         "watchfed-data",
		LogLevel:        "info",
		LogFormat:       "auto",
		MaxMessageBytes: 4 << 20,

		AuditAnchorEvents:   100,
		AuditAnchorInterval: time.Minute,
	}
}

// LoadConfig reads a YAML file over the defaults. An unknown key or a bad
// value is an error naming the file, the line and the reason.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			if line := lineOf(&root, strings.Split(fe.Field, ".")); line > 0 {
				return cfg, fmt.Errorf("%s:%d: %w", path, line, fe)
			}
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	// Relative paths in a config file are relative to the file, not to
	// wherever the node happens to be started.
	base := filepath.Dir(path)
	for _, p := range []*string{&cfg.DataDir, &cfg.RaftLogDir, &cfg.TLS.CACert, &cfg.TLS.Cert, &cfg.TLS.Key, &cfg.Policy, &cfg.GivenNames} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return cfg, nil
}

// FieldError names a bad configuration setting.
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks every setting. dev mode fills agency and TLS before this runs.
func (c Config) Validate() error {
	if err := record.ValidateAgencyID(c.Agency); err != nil {
		return &FieldError{"agency", err.Error()}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &FieldError{"listen", fmt.Sprintf("%q is not host:port", c.Listen)}
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return &FieldError{"advertise", fmt.Sprintf("%q is not host:port", c.Advertise)}
		}
	}
	if c.DataDir == "" {
		return &FieldError{"data_dir", "must not be empty"}
	}
	for _, f := range []struct{ name, v string }{{"tls.ca_cert", c.TLS.CACert}, {"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key}} {
		if f.v == "" {
			return &FieldError{f.name, "must be set (or start with --dev for development certificates)"}
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return &FieldError{"metrics_listen", fmt.Sprintf("%q is not host:port", c.MetricsListen)}
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &FieldError{"log_level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel)}
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return &FieldError{"log_format", fmt.Sprintf("%q is not one of auto, text, json", c.LogFormat)}
	}
	for from, to := range c.PeerRoutes {
		for _, a := range []string{from, to} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return &FieldError{"peer_routes", fmt.Sprintf("%q is not host:port", a)}
			}
		}
	}
	for i, h := range c.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return &FieldError{"holidays", fmt.Sprintf("entry %d: %q is not a date YYYY-MM-DD", i+1, h)}
		}
	}
	if c.AuditAnchorEvents < 1 || c.AuditAnchorEvents > 1_000_000 {
		return &FieldError{"audit_anchor_events", fmt.Sprintf("%d is outside 1..1000000", c.AuditAnchorEvents)}
	}
	if c.AuditAnchorInterval < time.Second || c.AuditAnchorInterval > 24*time.Hour {
		return &FieldError{"audit_anchor_interval", fmt.Sprintf("%s is outside 1s..24h", c.AuditAnchorInterval)}
	}
	if c.RaftLogSegmentBytes != 0 && (c.RaftLogSegmentBytes < 64<<10 || c.RaftLogSegmentBytes > 1<<30) {
		return &FieldError{"raft_log_segment_bytes", fmt.Sprintf("%d is outside 65536..1073741824 (0: the default, 16 MiB)", c.RaftLogSegmentBytes)}
	}
	if c.RaftSnapshotInterval != 0 && (c.RaftSnapshotInterval < 100*time.Millisecond || c.RaftSnapshotInterval > 24*time.Hour) {
		return &FieldError{"raft_snapshot_interval", fmt.Sprintf("%s is outside 100ms..24h (0: the default, 2m)", c.RaftSnapshotInterval)}
	}
	if c.MaxMessageBytes < 64<<10 || c.MaxMessageBytes > 64<<20 {
		return &FieldError{"max_message_bytes", fmt.Sprintf("%d is outside 65536..67108864", c.MaxMessageBytes)}
	}
	return nil
}

// lineOf finds the line of a dotted key in a YAML document; 0 if absent.
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}
