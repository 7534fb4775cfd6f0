package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/watchfed/watchfed/node/names"
)

func TestVariants(t *testing.T) {
	items := Synthetic(500, 7)
	vs := Variants(items, 60, 1)
	if len(vs) != 60 {
		t.Fatalf("%d variants, want 60", len(vs))
	}
	kinds := map[string]int{}
	for _, v := range vs {
		kinds[v.Kind]++
		if v.Query == "" || v.Ref == "" {
			t.Errorf("empty variant %+v", v)
		}
		if v.Kind == "reorder" && v.Query == names.Normalize(v.Source) {
			t.Errorf("reorder left %q as it was", v.Source)
		}
	}
	if len(kinds) != len(variantKinds) {
		t.Errorf("kinds %v: want all of %v", kinds, variantKinds)
	}
	if got := toCyrillic("ivan shchukin"); got != "иван щукин" {
		t.Errorf("toCyrillic = %q", got)
	}
	// Same seed, same data: runs are comparable.
	if a, b := Synthetic(10, 3), Synthetic(10, 3); a[9].Record.Subject.Name != b[9].Record.Subject.Name {
		t.Error("Synthetic is not deterministic")
	}
}

// TestScreenBench runs the benchmark small, through the real API.
func TestScreenBench(t *testing.T) {
	runs, err := Screen(context.Background(), ScreenConfig{Synthetic: 3000, Clients: []int{2}, Duration: time.Second, Variants: 120, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || len(runs[0].Rows) != 1 || runs[0].Rows[0].Ops == 0 || runs[0].Entries != 3000 {
		t.Fatalf("runs: %+v", runs)
	}
	if len(runs[0].Quality) != 4 {
		t.Fatalf("quality on %d splits, want tuning, held-out, fresh and re-paired", len(runs[0].Quality))
	}
	for _, q := range runs[0].Quality {
		for kind, k := range q.Kinds {
			if k.Recall() < 0.9 {
				t.Errorf("%s %s: recall@10 %.3f on synthetic variants", q.Split, kind, k.Recall())
			}
		}
		if o := q.Ordinary["person"]; q.Split != "fresh" && q.Split != "re-paired" && (o == nil || o.Names == 0) {
			t.Errorf("%s: no ordinary names screened", q.Split)
		}
	}
	var b bytes.Buffer
	if err := WriteScreenTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"screens/s", "recall@10", "top-1", "held-out", "share ≥ 0.8", "below 0.8", "3000 synthetic names"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestOrdinaryListedAsWritten: an ordinary name that is a listed name as
// written is left out of the ordinary names and said apart.
func TestOrdinaryListedAsWritten(t *testing.T) {
	items := Synthetic(50, 1)
	listed := items[0].Record.Subject.Name
	ordinary := []Ordinary{{Name: listed + " Inc", Kind: "company"}, {Name: "Zqxv Wrtp", Kind: "person"}, {Name: "Yqxv Wrtp", Kind: "person"}, {Name: "Xqxv Wrtp", Kind: "person"}}
	sets := EvalSplits(items, ordinary, func(string) bool { return true }, 5)
	var left []string
	for _, s := range sets {
		left = append(left, s.Listed...)
		for _, o := range s.Ordinary {
			if o.Name == listed+" Inc" {
				t.Errorf("%s: %q kept as an ordinary name", s.Split, o.Name)
			}
		}
	}
	if len(left) != 1 || left[0] != listed+" Inc" {
		t.Errorf("left out %q, want [%q]", left, listed+" Inc")
	}
}
