package screen_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/watchfed/watchfed/node/screen"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
	"github.com/watchfed/watchfed/testnet/shareddata"
)

// typeWords are the words an analyst or a list writes before an identifier
// of each type (issue 18: Passport, National ID No., IMO, MMSI, Tax ID,
// Registration, LEI, SWIFT/BIC).
var typeWords = map[pb.IdentifierType][]string{
	pb.IdentifierType_IDENTIFIER_TYPE_PASSPORT:            {"Passport", "passport no."},
	pb.IdentifierType_IDENTIFIER_TYPE_NATIONAL_ID:         {"National ID No."},
	pb.IdentifierType_IDENTIFIER_TYPE_TAX_ID:              {"Tax ID No."},
	pb.IdentifierType_IDENTIFIER_TYPE_REGISTRATION_NUMBER: {"Registration", "Registration Number"},
	pb.IdentifierType_IDENTIFIER_TYPE_LEI:                 {"LEI"},
	pb.IdentifierType_IDENTIFIER_TYPE_IMO:                 {"IMO", "IMO number:"},
	pb.IdentifierType_IDENTIFIER_TYPE_MMSI:                {"MMSI"},
}

// bic is a SWIFT/BIC code as written (the lists give it type "other").
var bic = regexp.MustCompile(`^[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$`)

// TestTypedIDsReal screens every identifier of the real editions in the
// shared data folder written with its type words before it ("Passport
// 515731854", "IMO number: 9187629", "MMSI 273354240", "SWIFT/BIC
// BKCHCNBJ"): each must find its entry. It also checks that the MMSI
// numbers of OFAC's remarks and the IMO numbers of the UN list's free text
// are indexed, and the issue's own example, "Passport 515731854" (OFAC SDN
// 2021).
func TestTypedIDsReal(t *testing.T) {
	if testing.Short() {
		t.Skip("the complete lists take a few seconds each")
	}
	data := shareddata.Dir()
	for _, ed := range []struct {
		name, format             string
		main, alt, add, comments string
		// want: identifiers of a type the edition must hold, and one
		// query that must find an entry
		wantTypes []pb.IdentifierType
		query     string
	}{
		{"ofac-sdn-2021", "ofac-sdn", "ofac-sdn-2021/sdn.csv", "ofac-sdn-2021/alt.csv", "ofac-sdn-2021/add.csv", "ofac-sdn-2021/sdn_comments.csv",
			[]pb.IdentifierType{pb.IdentifierType_IDENTIFIER_TYPE_MMSI, pb.IdentifierType_IDENTIFIER_TYPE_IMO}, "Passport 515731854"},
		{"ofac-non-sdn-2025-12", "ofac-sdn", "ofac-non-sdn-2025-12/cons_prim.csv", "ofac-non-sdn-2025-12/cons_alt.csv", "ofac-non-sdn-2025-12/cons_add.csv", "ofac-non-sdn-2025-12/cons_comments.csv", nil, ""},
		{"ofac-sdn-2024-05-03", "ofac-sdn", "ofac-sdn-2024/sdn_2024-05-03.csv", "", "", "",
			[]pb.IdentifierType{pb.IdentifierType_IDENTIFIER_TYPE_MMSI, pb.IdentifierType_IDENTIFIER_TYPE_IMO}, "MMSI 572469210"},
		{"un-2026-02", "un-xml", "un/consolidated_2026-02.xml", "", "", "",
			[]pb.IdentifierType{pb.IdentifierType_IDENTIFIER_TYPE_IMO}, "IMO number: 5145892"},
	} {
		t.Run(ed.name, func(t *testing.T) {
			res := parseEdition(t, data, ed.format, ed.main, ed.alt, ed.add, ed.comments)
			x := screen.NewIndex()
			for _, it := range res.Items {
				it.Record.Id = it.Record.SourceRef
				x.Put(screen.EntryOf(it.Record, false))
			}
			count, byWord := map[pb.IdentifierType]int{}, map[string]int{}
			failed := 0
			for _, it := range res.Items {
				for _, id := range it.Record.Subject.Identifiers {
					count[id.Type]++
					words := typeWords[id.Type]
					if id.Type == pb.IdentifierType_IDENTIFIER_TYPE_OTHER && bic.MatchString(id.Value) {
						words = []string{"SWIFT/BIC"}
					}
					for _, w := range words {
						q := w + " " + id.Value
						byWord[w]++
						rs := x.Search(screen.Query{IDs: []string{q}, Limit: 1000})
						if !slices.ContainsFunc(rs, func(r screen.Result) bool { return r.Entry.ID == it.Record.SourceRef }) {
							if failed++; failed <= 10 {
								t.Errorf("%s: --id %q finds %d entries, not its own", it.Record.SourceRef, q, len(rs))
							}
						}
					}
				}
			}
			t.Logf("identifiers by type %v; queries by type word %v; %d did not find their entry", count, byWord, failed)
			for _, ty := range ed.wantTypes {
				if count[ty] == 0 {
					t.Errorf("no identifier of type %s: free text not read", ty)
				}
			}
			if ed.query != "" {
				if rs := x.Search(screen.Query{IDs: []string{ed.query}}); len(rs) == 0 {
					t.Errorf("--id %q finds nothing", ed.query)
				} else {
					t.Logf("--id %q: %s (%s)", ed.query, rs[0].Entry.ID, rs[0].Explanation)
				}
			}
		})
	}
}
