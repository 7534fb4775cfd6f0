package federation

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// recoverAskTimeout bounds how long a --recover start waits for each member's answer.
const recoverAskTimeout = 5 * time.Second

// refuseForkOf is asked before --recover rewrites the raft configuration to
// this node alone. It asks every other joined member in the registry for
// its status over mutual TLS, and refuses if any answers with a leader (the
// federation lives), or if the members that answer, with this node, are a
// majority of the voters (they can elect one): recovering then would make a
// second, one-member federation beside the live one.
func (f *Federation) refuseForkOf(members []*pb.Member) error {
	f.recovering = members
	defer func() { f.recovering = nil }()
	voters, selfVotes := 0, false
	var others []*pb.Member
	for _, m := range members {
		if !m.Joined {
			continue
		}
		if m.Voter {
			voters++
			selfVotes = selfVotes || m.Agency == f.cfg.Agency
		}
		if m.Agency != f.cfg.Agency && m.Address != "" {
			others = append(others, m)
		}
	}
	type answer struct {
		m  *pb.Member
		st *pb.GetStatusResponse
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	for _, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), recoverAskTimeout)
			defer cancel()
			st, err := f.PeerStatus(ctx, m.Address)
			if err != nil {
				f.log.Info("--recover: member does not answer", "agency", m.Agency, "address", m.Address, "err", err)
				return
			}
			mu.Lock()
			answers = append(answers, answer{m, st})
			mu.Unlock()
		}()
	}
	wg.Wait()
	alive := 0
	var names []string
	for _, a := range answers {
		if a.st.GetLeader() != "" && a.st.GetLeader() != f.cfg.Agency {
			return fmt.Errorf("--recover refused: the federation is alive: %s (%s) answers, and %s leads it in term %d; "+
				"recovering would fork a second, one-member federation. Start this node without --recover: "+
				"it rejoins the federation and catches up", a.m.Agency, a.m.Address, a.st.GetLeader(), a.st.GetTerm())
		}
		if a.m.Voter {
			alive++
		}
		names = append(names, a.m.Agency)
	}
	if selfVotes {
		alive++
	}
	if voters > 0 && alive > voters/2 {
		return fmt.Errorf("--recover refused: %d of the federation's %d voters answer (%s and this node), a majority that can elect a leader; "+
			"recovering would fork a second federation. Start this node without --recover and let them elect one", alive, voters, strings.Join(names, ", "))
	}
	if len(names) > 0 {
		f.log.Warn("--recover: members answer, but without a leader and short of a majority", "answering", names, "voters", voters)
	}
	return nil
}

// HasState reports whether this node holds federation state (raft state,
// or a member registry, as a restored backup does) and says what.
func (f *Federation) HasState() (bool, string) {
	ms, _ := f.rep.Members()
	if ok, _ := f.rep.Bootstrapped(); ok {
		return true, fmt.Sprintf("the raft state of a federation member (registry of %d members, applied index %d)", len(ms), f.rep.Applied())
	}
	if len(ms) > 0 {
		return true, fmt.Sprintf("the replicated state of a federation (registry of %d members, applied index %d)", len(ms), f.rep.Applied())
	}
	return false, ""
}
