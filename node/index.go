package node

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/watchfed/watchfed/node/names"
	"github.com/watchfed/watchfed/node/screen"
	"github.com/watchfed/watchfed/node/store"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The screening index: built from the store at start, then kept in step
// with every write and every received entry.

// indexSource is the screening index as the public services see it.
type indexSource struct{ n *Node }

func (x indexSource) Current() *screen.Index { return x.n.index }
func (x indexSource) AsOf(ctx context.Context, t time.Time) (*screen.Index, error) {
	return x.n.indexAsOf(ctx, t)
}
func (x indexSource) Follow(rec *pb.Record, shared bool) { x.n.follow(rec, shared) }

// buildIndex fills the screening index from the store: own records in force
// and the shared entries this agency can read. It runs at start; afterwards
// the index follows every write and every received entry.
func (n *Node) buildIndex(ctx context.Context) error {
	start := time.Now()
	x := screen.NewIndex()
	if n.cfg.GivenNames != "" {
		g, err := names.LoadLexicon(n.cfg.GivenNames)
		if err != nil {
			return err
		}
		x.UseGivenNames(g)
	}
	own, err := n.ownInForce(ctx, time.Time{})
	if err != nil {
		return err
	}
	for _, rec := range own {
		if screened(rec) {
			x.Put(screen.EntryOf(rec, false))
		}
	}
	shared, err := n.store.SharedCurrent(ctx, "", false)
	if err != nil {
		return fmt.Errorf("screening index: %w", err)
	}
	for _, e := range shared {
		if screened(e.Record) {
			x.Put(screen.EntryOf(e.Record, true))
		}
	}
	n.index = x
	entries, names := x.Len()
	n.log.Info("screening index built", "entries", entries, "names", names, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// screened says which records the index holds: designations and denials.
// A consultation names a party too, but it is a thread between two
// agencies, not a listing.
func screened(rec *pb.Record) bool {
	return rec.Kind == pb.Kind_KIND_DESIGNATION || rec.Kind == pb.Kind_KIND_DENIAL
}

// ownInForce lists the agency's records in force (at asOf, or now).
func (n *Node) ownInForce(ctx context.Context, asOf time.Time) ([]*pb.Record, error) {
	recs, _, err := n.store.List(ctx, store.ListOptions{AsOf: asOf})
	if err != nil {
		return nil, fmt.Errorf("screening index: %w", err)
	}
	return recs, nil
}

// follow keeps the index in step with one written or received record
// version: in force, it is (re)indexed; delisted or revoked, it leaves.
func (n *Node) follow(rec *pb.Record, shared bool) {
	if !screened(rec) {
		return
	}
	if store.Active(rec) {
		n.index.Put(screen.EntryOf(rec, shared))
	} else {
		n.index.Remove(rec.Id, rec.Version)
	}
}

// indexAsOf builds a throwaway index of the own records in force at a past
// date, plus the shared entries held now (their history is the originator's).
// It costs a pass over the store: as-of screens are for audits, not volume.
func (n *Node) indexAsOf(ctx context.Context, asOf time.Time) (*screen.Index, error) {
	own, err := n.ownInForce(ctx, asOf)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	x := screen.NewIndex()
	x.UseGivenNames(n.index.GivenNames())
	for _, rec := range own {
		if screened(rec) {
			x.Put(screen.EntryOf(rec, false))
		}
	}
	shared, err := n.store.SharedCurrent(ctx, "", false)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "shared entries: %v", err)
	}
	for _, e := range shared {
		if screened(e.Record) {
			x.Put(screen.EntryOf(e.Record, true))
		}
	}
	return x, nil
}
