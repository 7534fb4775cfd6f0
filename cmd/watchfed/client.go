package main

import (
	"cmp"
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/watchfed/watchfed/node/pki"
)

// clientFlags are how every client command finds its node.
type clientFlags struct {
	addr, caCert, cert, key string
	output                  string
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.addr, "addr", "", "node address host:port (env WATCHFED_ADDR)")
	fl.StringVar(&f.caCert, "cacert", "", "CA certificate that issued the node's certificate (env WATCHFED_CACERT)")
	fl.StringVar(&f.cert, "cert", "", "client certificate (env WATCHFED_CLIENT_CERT)")
	fl.StringVar(&f.key, "key", "", "client key (env WATCHFED_CLIENT_KEY)")
	fl.StringVarP(&f.output, "output", "o", "table", "output: table or json")
}

func (f *clientFlags) check() error {
	if f.output != "table" && f.output != "json" {
		return usagef("--output: %q is not table or json", f.output)
	}
	return nil
}

// dial connects over mutual TLS 1.3; the caller closes the connection.
func (f *clientFlags) dial() (*grpc.ClientConn, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	files := pki.Files{
		CACert: cmp.Or(f.caCert, os.Getenv("WATCHFED_CACERT")),
		Cert:   cmp.Or(f.cert, os.Getenv("WATCHFED_CLIENT_CERT")),
		Key:    cmp.Or(f.key, os.Getenv("WATCHFED_CLIENT_KEY")),
	}
	addr := cmp.Or(f.addr, os.Getenv("WATCHFED_ADDR"))
	for name, v := range map[string]string{"--addr/WATCHFED_ADDR": addr, "--cacert/WATCHFED_CACERT": files.CACert, "--cert/WATCHFED_CLIENT_CERT": files.Cert, "--key/WATCHFED_CLIENT_KEY": files.Key} {
		if v == "" {
			return nil, usagef("%s is not set (start a node with `watchfed node --dev` and run the export lines it prints)", name)
		}
	}
	tlsCfg, err := files.ClientConfig()
	if err != nil {
		return nil, usageError{err}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, nil
}

// withConn runs fn with a connection to the node.
func (f *clientFlags) withConn(ctx context.Context, fn func(context.Context, *grpc.ClientConn) error) error {
	conn, err := f.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(ctx, conn)
}
