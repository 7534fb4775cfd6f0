package api

import (
	"fmt"
	"strings"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// The limits past which an edition is taken for a wrong, empty or damaged
// file rather than a list that changed: such an edition is refused whole.
const (
	maxRejectShare = 0.01 // of the edition's rows
	maxDelistShare = 0.10 // of the list's records in force
)

// importLimits are an import's safety limits with the operator's overrides.
type importLimits struct {
	allowRejects  bool
	delistCount   *uint32  // at most this many delistings, when set
	delistPercent *float64 // else at most this share (percent) of those in force
}

func limitsOf(req *pb.ImportRequest) importLimits {
	return importLimits{allowRejects: req.GetAllowRejects(), delistCount: req.MaxDelistCount, delistPercent: req.MaxDelistPercent}
}

// overrides says which limits the operator raised, for the audit log ("" if none).
func (l importLimits) overrides() string {
	var o []string
	if l.allowRejects {
		o = append(o, "allow_rejects")
	}
	switch {
	case l.delistCount != nil:
		o = append(o, fmt.Sprintf("max_delist %d", *l.delistCount))
	case l.delistPercent != nil:
		o = append(o, fmt.Sprintf("max_delist %g%%", *l.delistPercent))
	}
	return strings.Join(o, ", ")
}

func (l importLimits) check() error {
	if p := l.delistPercent; p != nil && !(*p >= 0 && *p <= 100) {
		return fmt.Errorf("max_delist_percent: %g is not a percentage from 0 to 100", *p)
	}
	return nil
}

// refusal returns why an edition is refused whole, or "" to import it. read
// is how many records the edition gave, rowsRejected how many rows the client
// could not read; the plan adds the records the node refused and the
// delistings, inForce is how many records of the list were in force.
func (l importLimits) refusal(source string, read, rowsRejected, inForce int, p *importPlan) string {
	rows, rejected := read+rowsRejected, rowsRejected+len(p.rejected)
	if read == 0 {
		return fmt.Sprintf("the edition of %s reads no entries (%d rows rejected): an empty or wrong file is not an edition", source, rowsRejected)
	}
	if !l.allowRejects && float64(rejected) > maxRejectShare*float64(rows) {
		return fmt.Sprintf("%d of the edition's %d rows are rejected (%.1f %%; limit %g %%, --allow-rejects overrides)",
			rejected, rows, percent(rejected, rows), maxRejectShare*100)
	}
	what := "delist"
	if p.revoking {
		what = "revoke"
	}
	switch {
	case l.delistCount != nil:
		if p.delisted > int(*l.delistCount) {
			return fmt.Sprintf("it would %s %d of the %d %s records in force (limit %d, from --max-delist)", what, p.delisted, inForce, source, *l.delistCount)
		}
	case l.delistPercent != nil:
		if float64(p.delisted) > *l.delistPercent/100*float64(inForce) {
			return fmt.Sprintf("it would %s %d of the %d %s records in force (%.1f %%; limit %g %%, from --max-delist)", what, p.delisted, inForce, source, percent(p.delisted, inForce), *l.delistPercent)
		}
	default:
		if float64(p.delisted) > maxDelistShare*float64(inForce) {
			return fmt.Sprintf("it would %s %d of the %d %s records in force (%.1f %%; limit %g %%, --max-delist N|P%% overrides)", what, p.delisted, inForce, source, percent(p.delisted, inForce), maxDelistShare*100)
		}
	}
	return ""
}

func percent(n, of int) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}
