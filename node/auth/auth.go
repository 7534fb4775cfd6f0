// Package auth authorises every RPC by the roles in the caller's verified
// client certificate, never by anything the caller claims in a message.
package auth

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/pki"
)

// Rule says who may call a method and whether calls are audited.
type Rule struct {
	Roles []pki.Role // any one suffices
	// Audit: every call is written to the audit log (record reads and writes,
	// screens, policy and membership changes). Health checks are not.
	Audit bool
	// Partners: open to other agencies' node certificates (raft, forwarding,
	// join). Otherwise only the node's own agency may call.
	Partners bool
}

// Rules maps full gRPC method names ("/watchfed.v1.RecordService/GetRecord")
// to their rule. A method not in the table is refused: a new RPC is closed
// until someone decides who may call it.
type Rules map[string]Rule

// Service adds the same rule for every method of a service.
func (r Rules) Service(service string, methods []string, rule Rule) {
	for _, m := range methods {
		r["/"+service+"/"+m] = rule
	}
}

// Authorize checks that id may call method on the node of agency self.
func (r Rules) Authorize(method string, id pki.Identity, self string) error {
	rule, ok := r[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s is not open to any role", method)
	}
	if id.Agency != self && !rule.Partners {
		return status.Errorf(codes.PermissionDenied, "%s serves agency %s only; certificate %s is of another agency", method, self, id)
	}
	for _, role := range rule.Roles {
		if id.Has(role) {
			return nil
		}
	}
	return status.Errorf(codes.PermissionDenied, "%s needs role %v; certificate %s has %v", method, rule.Roles, id, id.Roles)
}

// Audited reports whether calls of method go to the audit log.
func (r Rules) Audited(method string) bool { return r[method].Audit }

// Allowed lists the roles of a method (for --help and docs).
func (r Rules) Allowed(method string) []pki.Role { return slices.Clone(r[method].Roles) }

// PeerIdentity reads the identity from the caller's verified TLS certificate.
func PeerIdentity(ctx context.Context) (pki.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, status.Error(codes.Unauthenticated, "connection is not TLS")
	}
	chains := ti.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return pki.Identity{}, status.Error(codes.Unauthenticated, "no verified client certificate")
	}
	id, err := pki.IdentityOf(chains[0][0])
	if err != nil {
		return pki.Identity{}, status.Error(codes.Unauthenticated, fmt.Sprintf("client certificate: %v", err))
	}
	// The issuing CA is an agency's; a certificate naming another agency than
	// its CA is a forgery by that CA and is refused.
	if ca := chains[0][len(chains[0])-1]; len(ca.Subject.Organization) != 1 || ca.Subject.Organization[0] != id.Agency {
		return pki.Identity{}, status.Errorf(codes.Unauthenticated, "certificate names agency %s but was issued by %v", id.Agency, ca.Subject.Organization)
	}
	return id, nil
}

type ctxKey struct{}

// WithIdentity returns ctx carrying the authenticated caller.
func WithIdentity(ctx context.Context, id pki.Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the authenticated caller set by the server's interceptor.
func FromContext(ctx context.Context) (pki.Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(pki.Identity)
	return id, ok
}
