// Command watchfed is the one binary of the federation: `watchfed node` runs
// an agency's node; every other subcommand is a client of a node.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
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
	exitNotShared   = 7 // written, but not shared within the node's publish wait (in a federation)
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
		newProposalsCmd(),
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
	markRun(root)
	return root
}

// runError is an error of a command's own work (its RunE), as opposed to
// one cobra returns before running it: an unknown command or flag, a bad
// flag value, a missing required flag, a wrong number of arguments. Those
// are usage errors (exit 2).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// markRun wraps the RunE of c and of every command below it so that their
// errors are runErrors, and gives each command group a RunE that refuses
// an unknown subcommand (cobra would print the group's help and exit 0).
func markRun(c *cobra.Command) {
	if c.RunE == nil && c.Run == nil && c.HasSubCommands() {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
			}
			return fmt.Errorf("%s; run '%s --help' for its commands", msg, cmd.CommandPath())
		}
	} else if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := run(cmd, args); err != nil {
				return runError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub)
	}
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
	var re runError
	if !errors.As(err, &re) || errors.As(err, &ue) {
		return exitUsage
	}
	var ce conflictError
	if errors.As(err, &ce) {
		return exitConflict
	}
	if errors.As(err, new(errNotShared)) {
		return exitNotShared
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
// The status is looked for through wrapping (a command's errors are
// runErrors), else its message would be the whole wrapped text.
func errorMessage(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if s := se.GRPCStatus(); s.Code() != codes.Unknown {
			return fmt.Sprintf("%s: %s", s.Code(), s.Message())
		}
	}
	return err.Error()
}
