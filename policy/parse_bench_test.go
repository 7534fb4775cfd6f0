package policy

import (
	"fmt"
	"strings"
	"testing"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// bigPolicy is a policy of one partner whose programmes and excluded
// programmes hold n items in all, in flow style ([A, B, ...]), the way a
// generated file lists them: 80,000 items make about 700 KB.
func bigPolicy(n int) []byte {
	var b strings.Builder
	b.WriteString("agency: DE-BAFA\ndefault: deny\npartners:\n  FR-SBDU:\n    kinds: [designation]\n    max_marking: GREEN\n")
	list := func(key string, from, to int) {
		b.WriteString("    " + key + ": [")
		for i := from; i < to; i++ {
			if i > from {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "P%06d", i)
		}
		b.WriteString("]\n")
	}
	list("programs", 0, n/2)
	list("exclude_programs", n/2, n)
	return []byte(b.String())
}

// BenchmarkParseItems is the parse time of a policy whose lists hold many
// items: linear in the items (go test ./policy -run X -bench ParseItems).
func BenchmarkParseItems(b *testing.B) {
	for _, n := range []int{10_000, 20_000, 40_000, 80_000} {
		data := bigPolicy(n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse("big.yaml", data, Options{ValidID: validID, Members: members}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideItems is one sharing decision under a policy whose lists
// hold 80,000 items: a programme not listed (go test ./policy -run X -bench DecideItems).
func BenchmarkDecideItems(b *testing.B) {
	p, err := Parse("big.yaml", bigPolicy(80_000), Options{ValidID: validID})
	if err != nil {
		b.Fatal(err)
	}
	rec := &pb.Record{Origin: "DE-BAFA", Kind: pb.Kind_KIND_DESIGNATION, Marking: pb.Marking_MARKING_GREEN,
		Detail: &pb.Record_Designation{Designation: &pb.Designation{Program: "NOT-LISTED"}}}
	for b.Loop() {
		if d := p.Decide(rec, "FR-SBDU"); d.Share {
			b.Fatal("shared a programme the policy does not list")
		}
	}
}
