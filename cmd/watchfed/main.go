// Command watchfed is the one binary of the federation: `watchfed node` runs
// an agency's node; every other subcommand is a client of a node.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, so scripts can tell failures apart.
const (
	exitOK          = 0
	exitError       = 1 // anything else
	exitUsage       = 2 // bad flags or input, rejected by the node as invalid
	exitNotFound    = 3
	exitDenied      = 4 // certificate refused or role missing
	exitUnavailable = 5 // node unreachable
	exitConflict    = 6 // the record changed meanwhile, or is in the wrong state
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "watchfed:", escapeText(errorMessage(err), true))
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "watchfed",
		Short: "Federation node for sanctions and export-control agencies",
		Long: `watchfed runs an agency's node (watchfed node) and talks to it (every other command).

Clients find the node and their certificate from flags or from the environment:
  WATCHFED_ADDR, WATCHFED_CACERT, WATCHFED_CLIENT_CERT, WATCHFED_CLIENT_KEY
(` + "`watchfed node --dev`" + ` prints these lines for a development node).

Exit codes: 0 ok, 1 error, 2 usage or invalid input, 3 not found, 4 permission denied,
5 node unavailable, 6 conflict (changed meanwhile or wrong state).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newNodeCmd(),
		newCertsCmd(),
		newDesignationsCmd(),
		newDenialsCmd(),
		newRecordsCmd(),
		newAuditCmd(),
		newFederationCmd(),
		newPeersCmd(),
		newLeaderCmd(),
		newStatusCmd(),
		newSharedCmd(),
		newWatchCmd(),
		newTestnetCmd(),
		newSnapshotCmd(),
		newImportCmd(),
		newScreenCmd(),
		newBenchCmd(),
		newPolicyCmd(),
		newConsultCmd(),
	)
	return root
}

// usageError marks an error as the user's input, for exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// conflictError marks an error as the state of things refusing the command
// (something already runs, or is in the wrong state), for exit code 6.
type conflictError struct{ err error }

func (e conflictError) Error() string { return e.err.Error() }
func (e conflictError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ce conflictError
	if errors.As(err, &ce) {
		return exitConflict
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.InvalidArgument:
			return exitUsage
		case codes.NotFound:
			return exitNotFound
		case codes.PermissionDenied, codes.Unauthenticated:
			return exitDenied
		case codes.Unavailable, codes.DeadlineExceeded:
			return exitUnavailable
		case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
			return exitConflict
		}
	}
	return exitError
}

// errorMessage shows a gRPC error as its code and message, not Go's
// "rpc error: code = ... desc = ..." wrapping.
func errorMessage(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}
