package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/watchfed/watchfed/node"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// DevDataDir is where `watchfed node --dev` keeps everything unless --data-dir says otherwise.
const DevDataDir = ".watchfed/dev"

func newNodeCmd() *cobra.Command {
	var (
		configPath string
		joinPath   string
		dev        bool
		recover    bool
		cfg        = node.Defaults()
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run this agency's node",
		Long: `Run this agency's node: its records and audit log in DATA_DIR/node.db, served over
gRPC with mutual TLS 1.3 on one port.

Settings come from the YAML file given by --config (keys as the flag names with
underscores: agency, listen, data_dir, tls.ca_cert, tls.cert, tls.key, metrics_listen,
log_level, log_format, max_message_bytes); flags override the file. Defaults:
listen 127.0.0.1:7400, data_dir ./watchfed-data, log_level info, log_format auto
(text on a terminal, JSON otherwise), max_message_bytes 4194304. In the file only:
audit_anchor_events (100) and audit_anchor_interval (1m): the audit chain's head is
anchored once it grew by that many events, or grew and that long passed, and at
shutdown (see audit verify).

With --dev the node needs no set-up: agency DEV, data in ./.watchfed/dev, development
certificates made on first start, and the export lines a client needs printed on stdout.`,
		Example: `  watchfed node --dev
  watchfed node --config /etc/watchfed/node.yaml
  watchfed node --config /etc/watchfed/node.yaml --join invitation.json   # a new member: empty data directory
  watchfed node --config /etc/watchfed/node.yaml --recover   # quorum lost for good; refused if a live quorum answers
  watchfed node --agency DE-BAFA --listen 0.0.0.0:7400 --data-dir /var/lib/watchfed \
      --ca-cert ca.pem --cert node.pem --key node-key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fileCfg := node.Defaults()
			if configPath != "" {
				var err error
				if fileCfg, err = node.LoadConfig(configPath); err != nil {
					return usageError{err}
				}
			}
			final := overrideChanged(cmd, fileCfg, cfg)
			if dev {
				if final.Agency == "" {
					final.Agency = node.DevAgency
				}
				if !cmd.Flags().Changed("data-dir") && configPath == "" {
					final.DataDir = DevDataDir
				}
				if err := os.MkdirAll(final.DataDir, 0o700); err != nil {
					return err
				}
				env, err := node.EnsureDevCerts(&final)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), env.Exports())
			}
			if err := final.Validate(); err != nil {
				return usageError{fmt.Errorf("config: %w", err)}
			}
			var join *pb.Invitation
			if joinPath != "" {
				data, err := os.ReadFile(joinPath)
				if err != nil {
					return usagef("--join: %v", err)
				}
				join = &pb.Invitation{}
				if err := protojson.Unmarshal(data, join); err != nil {
					return usagef("--join %s: not an invitation: %v", joinPath, err)
				}
				if join.Agency != final.Agency {
					return usagef("--join: the invitation is for %s, this node is %s", join.Agency, final.Agency)
				}
				if recover {
					return usagef("--join and --recover exclude each other: --join starts a new member with an empty data directory, --recover carries on alone from this node's state")
				}
			}
			log := newLogger(final)
			n, err := node.New(final, log, node.Options{Recover: recover, AckBeforeCommit: ackBeforeCommit, Join: join})
			if errors.Is(err, node.ErrJoinWithState) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			err = n.Serve(ctx)
			// Say what stopped it: a signal from another process looks
			// like a clean stop otherwise.
			if cause := context.Cause(ctx); cause != nil {
				log.Info("node stopped by", "cause", cause.Error())
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "YAML configuration file")
	fl.BoolVar(&dev, "dev", false, "development mode: no set-up needed (see above)")
	fl.BoolVar(&recover, "recover", false, "quorum lost for good: carry on as a one-member federation from this node's state (refused if a live quorum answers)")
	fl.StringVar(&joinPath, "join", "", "invitation file (from `watchfed peers invite` on a member): join that federation (empty data directory)")
	fl.StringVar(&cfg.Advertise, "advertise", "", "address partners reach this node at (default: --listen)")
	fl.StringVar(&cfg.Agency, "agency", "", "this node's agency id, e.g. DE-BAFA")
	fl.StringVar(&cfg.Listen, "listen", cfg.Listen, "gRPC listen address")
	fl.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	fl.StringVar(&cfg.RaftLogDir, "raft-log-dir", "", "directory of the raft log, e.g. on a disk of its own (default: DATA_DIR/raft)")
	fl.StringVar(&cfg.TLS.CACert, "ca-cert", "", "agency CA certificate (PEM)")
	fl.StringVar(&cfg.TLS.Cert, "cert", "", "node certificate (PEM), with the node role")
	fl.StringVar(&cfg.TLS.Key, "key", "", "node key (PEM)")
	fl.StringVar(&cfg.MetricsListen, "metrics-listen", "", "HTTP address for Prometheus /metrics (off if empty)")
	fl.StringVar(&cfg.Policy, "policy", "", "sharing policy file (YAML); without one nothing is shared with partners")
	fl.StringVar(&cfg.GivenNames, "given-names", "", "lexicon of given names for screening (default: the built-in one; format in node/names/given_names.txt)")
	fl.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fl.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text, json or auto")
	fl.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest gRPC message accepted")
	return cmd
}

// overrideChanged puts every flag the user set over the file's value.
func overrideChanged(cmd *cobra.Command, file, flags node.Config) node.Config {
	set := cmd.Flags().Changed
	pick := func(name string, dst *string, v string) {
		if set(name) {
			*dst = v
		}
	}
	pick("agency", &file.Agency, flags.Agency)
	pick("listen", &file.Listen, flags.Listen)
	pick("advertise", &file.Advertise, flags.Advertise)
	pick("data-dir", &file.DataDir, flags.DataDir)
	pick("raft-log-dir", &file.RaftLogDir, flags.RaftLogDir)
	pick("ca-cert", &file.TLS.CACert, flags.TLS.CACert)
	pick("cert", &file.TLS.Cert, flags.TLS.Cert)
	pick("key", &file.TLS.Key, flags.TLS.Key)
	pick("metrics-listen", &file.MetricsListen, flags.MetricsListen)
	pick("policy", &file.Policy, flags.Policy)
	pick("given-names", &file.GivenNames, flags.GivenNames)
	pick("log-level", &file.LogLevel, flags.LogLevel)
	pick("log-format", &file.LogFormat, flags.LogFormat)
	if set("max-message-bytes") {
		file.MaxMessageBytes = flags.MaxMessageBytes
	}
	return file
}

// newLogger writes text to a terminal and JSON otherwise, on stderr: stdout
// is for what the command prints.
func newLogger(cfg node.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
