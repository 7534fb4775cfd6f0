package bench

import (
	"strings"
	"testing"

	"github.com/watchfed/watchfed/node/importer"
	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// TestSeparateSameName: a listed person's name in another romanisation or
// order is moved to the same-name row of its kind, whatever the set; another
// name is not.
func TestSeparateSameName(t *testing.T) {
	person := func(name string, aliases ...string) importer.Item {
		s := &pb.Subject{Schema: pb.Schema_SCHEMA_PERSON, Name: name}
		for _, a := range aliases {
			s.Aliases = append(s.Aliases, &pb.Alias{Name: a})
		}
		return importer.Item{Record: &pb.Record{Subject: s}}
	}
	items := []importer.Item{
		person("OSTROWSKY, Alexander"),
		person("RYAN, John"),
		person("EL ABBOUBI, Anas"),
		person("Sheikh Bilal Hassaan Omar"),
		person("ANDRE, Johnson"),
		{Record: &pb.Record{Subject: &pb.Subject{Schema: pb.Schema_SCHEMA_ORGANIZATION, Name: "NATIONAL COMERCIAL TRADING LTD"}}},
	}
	sets := []EvalSet{{Split: "s", Ordinary: []Ordinary{
		{Kind: "given-near", Name: "Alexander Ostrovskiy", Given: "alexey"}, // surname romanised otherwise
		{Kind: "re-paired", Name: "Ryan Jon", Given: "yun"},                 // reordered, jon for john
		{Kind: "person", Name: "Hasan Bilal"},                               // reordered, a romanisation, a title and a name dropped
		{Kind: "person", Name: "Wanas El Abboubi"},                          // another name
		{Kind: "person", Name: "Andrew Johnson"},                            // andre is ANDRE's surname here
		{Kind: "business", Name: "National Comercial LLC"},                  // a firm's words are no person's name
		{Kind: "re-paired", Name: "Eduardo Ruiz", Given: "edward"},          // the first rule: the paired given name
	}}}
	moved := SeparateSameName(sets, items, names.DefaultGivenNames())
	want := []bool{true, true, true, false, false, false, true}
	for i, o := range sets[0].Ordinary {
		if got := strings.HasSuffix(o.Kind, sameNameKind); got != want[i] {
			t.Errorf("%q: kind %q, want same-name %v", o.Name, o.Kind, want[i])
		}
	}
	if moved != 3 {
		t.Errorf("moved %d by the listed-name rule, want 3", moved)
	}
}
