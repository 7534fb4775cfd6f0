package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
)

// clientFlags are how every client command finds its node.
type clientFlags struct {
	addr, caCert, cert, key string
	output                  string

	tls *tls.Config // set by dial, for explaining a refused handshake
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
	f.addr, f.tls = addr, tlsCfg
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
	err = fn(ctx, conn)
	if status.Code(err) == codes.Unavailable {
		if why := f.refusal(ctx); why != nil {
			return status.Errorf(codes.PermissionDenied, "the node refused this client's certificate (%v)", why)
		}
	}
	return err
}

// refusal tells whether the node refuses this client's certificate. Under
// TLS 1.3 the server checks the client certificate after the client has
// finished its side of the handshake, so gRPC often reports only a broken
// pipe; the server's alert arrives on the first read.
func (f *clientFlags) refusal(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cfg := f.tls.Clone()
	cfg.NextProtos = []string{"h2"}
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", f.addr)
	if err != nil {
		return alertOnly(err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetReadDeadline(deadline)
	// A server that accepted the certificate sends its HTTP/2 settings.
	_, err = c.Read(make([]byte, 1))
	return alertOnly(err)
}

// alertOnly keeps err if it is a TLS alert from the server (crypto/tls
// exports no type for a received alert, only its message).
func alertOnly(err error) error {
	if err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return err
	}
	return nil
}
