package testnet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// ApproveEverywhere has the operator of each of members approve a pending
// proposal until it is applied: a testnet forms its federation with every
// agency approving (from protocol 3 an invitation is a proposal). A member
// that cannot approve yet (not joined, or approved already) is skipped and
// asked again. A nil or applied proposal needs nothing.
func ApproveEverywhere(ctx context.Context, p *pb.Proposal, members []*Member) error {
	for p != nil && p.State == "pending" {
		for _, m := range members {
			if m.Agency == p.ProposedBy || p.State != "pending" {
				continue
			}
			got, err := approve(ctx, m, p.Id)
			if err == nil {
				p = got
				continue
			}
			if c := status.Code(err); c != codes.FailedPrecondition && c != codes.Unavailable {
				return fmt.Errorf("%s approving proposal %s: %w", m.Agency, p.Id, err)
			}
			if got, err := proposal(ctx, m, p.Id); err == nil {
				p = got
			}
		}
		if p.State == "pending" {
			select {
			case <-ctx.Done():
				return fmt.Errorf("proposal %s (%s %s) still pending with %d of %d approvals: %w", p.Id, p.Action, p.Agency, p.Approvals, p.Needed, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if p != nil && p.State != "applied" {
		return fmt.Errorf("proposal %s (%s %s) is %s", p.Id, p.Action, p.Agency, p.State)
	}
	return nil
}

func approve(ctx context.Context, m *Member, id string) (*pb.Proposal, error) {
	conn, err := m.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := pb.NewFederationServiceClient(conn).ApproveProposal(ctx, &pb.ApproveProposalRequest{Id: id})
	return resp.GetProposal(), err
}

// proposal reads a proposal as m's node holds it.
func proposal(ctx context.Context, m *Member, id string) (*pb.Proposal, error) {
	conn, err := m.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := pb.NewFederationServiceClient(conn).ListProposals(ctx, &pb.ListProposalsRequest{All: true})
	if err != nil {
		return nil, err
	}
	for _, p := range resp.Proposals {
		if p.Id == id {
			return p, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no proposal %s on %s", id, m.Agency)
}

// others are the members of l other than those named.
func (l *Local) others(except ...string) []*Member {
	var out []*Member
	for _, ln := range l.Nodes {
		if !slices.Contains(except, ln.Agency) {
			out = append(out, ln.Member)
		}
	}
	return out
}

// RemoveApproved has by's operator remove agency (from protocol 3 a
// proposal) and every other member's operator approve it.
func (l *Local) RemoveApproved(ctx context.Context, by *LocalNode, agency string) error {
	var p *pb.Proposal
	if err := by.call(ctx, func(c pb.FederationServiceClient) error {
		resp, err := c.RemovePeer(ctx, &pb.RemovePeerRequest{Agency: agency})
		p = resp.GetProposal()
		return err
	}); err != nil {
		return fmt.Errorf("remove %s: %w", agency, err)
	}
	return ApproveEverywhere(ctx, p, l.others(agency))
}

// InviteApproved has by's operator invite req's agency (from protocol 3 a
// proposal) and every other member's operator approve it.
func (l *Local) InviteApproved(ctx context.Context, by *LocalNode, req *pb.InvitePeerRequest) (*pb.Invitation, error) {
	var resp *pb.InvitePeerResponse
	if err := by.call(ctx, func(c pb.FederationServiceClient) (err error) {
		resp, err = c.InvitePeer(ctx, req)
		return err
	}); err != nil {
		return nil, fmt.Errorf("invite %s: %w", req.Agency, err)
	}
	return resp.Invitation, ApproveEverywhere(ctx, resp.Proposal, l.others(req.Agency))
}
