package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// Policy is an agency's sharing policy: what it sends to each partner and
// which partners' entries it trusts for screening and its consumers' feeds.
type Policy struct {
	Agency   string
	Partners map[string]*Partner
	Receive  Receive
	// Source is the file's text, kept to show diffs of policy changes.
	Source string
}

// Partner is the block of one partner: what it may receive.
type Partner struct {
	ID                  string
	Kinds               []pb.Kind
	MaxMarking          pb.Marking
	Marking             pb.Marking // narrow what is sent to at least this; unset: keep
	OriginatorControl   bool       // add originator control to what is sent
	Programs            []string   // include; empty or "*" means all
	ExcludePrograms     []string
	Regimes             []string
	ExcludeRegimes      []string
	Destinations        []string
	ExcludeDestinations []string
	Redact              []string
	Line                int

	// sets hold the list fields above as sets, built by Parse, so that a
	// decision costs the same whatever the lists' length.
	sets map[*[]string]map[string]bool
}

// index builds the sets of the partner's lists.
func (pt *Partner) index() {
	pt.sets = map[*[]string]map[string]bool{}
	for _, l := range []*[]string{&pt.Programs, &pt.ExcludePrograms, &pt.Regimes, &pt.ExcludeRegimes, &pt.Destinations, &pt.ExcludeDestinations} {
		set := make(map[string]bool, len(*l))
		for _, v := range *l {
			set[v] = true
		}
		pt.sets[l] = set
	}
}

// in reports whether v is in one of the partner's lists (by its set when
// Parse built them).
func (pt *Partner) in(list *[]string, v string) bool {
	if set, ok := pt.sets[list]; ok {
		return set[v]
	}
	return slices.Contains(*list, v)
}

// Receive is the receiving side: which partners' entries, of which kinds,
// enter screening and consumers' feeds. It never affects replication.
type Receive struct {
	Trust    bool // default for partners not named: trust (true) or ignore
	Partners map[string][]pb.Kind
}

// Error is one problem in a policy file.
type Error struct {
	File   string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// Errors are all the problems of a refused file.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Options says how to check partner ids.
type Options struct {
	// ValidID checks the form of an agency id.
	ValidID func(string) error
	// Members, when set, are the federation's members: a partner outside
	// them is an error. Nil skips the check (offline, or a node not yet in a
	// federation).
	Members []string
	// Former, when set, reports whether an id outside Members was a member
	// and left or was removed: a partner named so is accepted (nothing is
	// shared with it while it is out), so that an agency leaving on its own
	// does not make every partner's policy file invalid.
	Former func(id string) bool
}

// MaxFileSize is the largest policy file accepted: 1 MiB holds tens of
// thousands of list items, far beyond any agency's policy, and bounds the
// time a reload may take.
const MaxFileSize = 1 << 20

// Load reads and checks a policy file; it reads no more than MaxFileSize+1
// bytes of it.
func Load(path string, o Options) (*Policy, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, o)
}

// ReadFile reads a policy file, at most MaxFileSize+1 bytes of it: enough
// for Parse to refuse a larger file without reading all of it.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return data, nil
}

// Parse checks a policy document; name is the file name used in errors.
// Any problem refuses the whole document.
func Parse(name string, data []byte, o Options) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, Errors{{File: name, Reason: fmt.Sprintf("file too large: over %d bytes (1 MiB), the limit of a policy file", MaxFileSize)}}
	}
	p := &parser{file: name, o: o}
	pol := p.parse(data)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, p.errs
	}
	pol.Source = string(data)
	return pol, nil
}

type parser struct {
	file string
	o    Options
	errs Errors
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) *Policy {
	pol := &Policy{Partners: map[string]*Partner{}, Receive: Receive{Trust: true}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		var te *yaml.TypeError
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		// yaml reports "line N: reason"; keep the line as ours.
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Reason: "not YAML: " + msg})
		return pol
	}
	if len(doc.Content) == 0 {
		p.fail(nil, "empty policy: it needs at least `agency:` and `default: deny`")
		return pol
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root, "the policy must be a mapping with agency, default, partners and receive")
		return pol
	}
	seen := p.mapping(root, "policy", []string{"agency", "default", "partners", "receive"})
	if n := seen["agency"]; n == nil {
		p.fail(root, "agency: missing (this agency's id, e.g. DE-BAFA)")
	} else if pol.Agency = p.scalar(n, "agency"); pol.Agency != "" {
		p.checkID(n, "agency", pol.Agency)
	}
	if n := seen["default"]; n == nil {
		p.fail(root, "default: missing; write `default: deny` (a partner not named gets nothing)")
	} else if v := p.scalar(n, "default"); v != "" && v != "deny" {
		p.fail(n, "default: %q: the only default is deny (name each partner that may receive)", v)
	}
	if n := seen["partners"]; n != nil && n.Tag != "!!null" {
		if n.Kind != yaml.MappingNode {
			p.fail(n, "partners: must map partner ids to blocks")
		} else {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				id := k.Value
				if _, dup := pol.Partners[id]; dup {
					p.fail(k, "partners.%s: named twice", id)
					continue
				}
				if !p.checkPartner(k, "partners."+id, id, pol.Agency) {
					continue
				}
				if pt := p.partner(id, v); pt != nil {
					pt.Line = k.Line
					pol.Partners[id] = pt
				}
			}
		}
	}
	if n := seen["receive"]; n != nil {
		pol.Receive = p.receive(n, pol.Agency)
	}
	return pol
}

// mapping checks a mapping's keys against the allowed ones and returns the
// value node of each.
func (p *parser) mapping(n *yaml.Node, where string, allowed []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s: must be a mapping", where)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			p.fail(k, "%s: unknown key %q (known: %s)", where, k.Value, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, "%s: %s given twice", where, k.Value)
			continue
		}
		out[k.Value] = n.Content[i+1]
	}
	return out
}

func (p *parser) scalar(n *yaml.Node, where string) string {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, "%s: must be a single value", where)
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (p *parser) list(n *yaml.Node, where string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{strings.TrimSpace(n.Value)} // a lone value is a list of one
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "%s: must be a list", where)
		return nil
	}
	var out []string
	seen := make(map[string]bool, len(n.Content)) // a set: lists may hold many thousand items
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			p.fail(c, "%s: items must be single values", where)
			continue
		}
		v := strings.TrimSpace(c.Value)
		if v == "" {
			p.fail(c, "%s: empty item", where)
			continue
		}
		if seen[v] {
			p.fail(c, "%s: %q listed twice", where, v)
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

func (p *parser) checkID(n *yaml.Node, where, id string) bool {
	if p.o.ValidID != nil {
		if err := p.o.ValidID(id); err != nil {
			p.fail(n, "%s: %v", where, err)
			return false
		}
	}
	return true
}

func (p *parser) checkPartner(n *yaml.Node, where, id, self string) bool {
	if !p.checkID(n, where, id) {
		return false
	}
	if id == self {
		p.fail(n, "%s: this is the agency itself, not a partner", where)
		return false
	}
	if p.o.Members != nil && !slices.Contains(p.o.Members, id) && (p.o.Former == nil || !p.o.Former(id)) {
		p.fail(n, "%s: unknown partner: not a member of the federation (members: %s)", where, strings.Join(p.o.Members, ", "))
		return false
	}
	return true
}

var partnerKeys = []string{"kinds", "max_marking", "marking", "originator_control", "programs", "exclude_programs",
	"regimes", "exclude_regimes", "destinations", "exclude_destinations", "redact"}

func (p *parser) kinds(n *yaml.Node, where string) []pb.Kind {
	var out []pb.Kind
	for i, k := range p.list(n, where) {
		kind, err := ParseKind(k)
		if err != nil {
			at := n
			if n.Kind == yaml.SequenceNode {
				at = n.Content[i]
			}
			p.fail(at, "%s: %v", where, err)
			continue
		}
		out = append(out, kind)
	}
	return out
}

func (p *parser) partner(id string, n *yaml.Node) *Partner {
	where := "partners." + id
	before := len(p.errs)
	seen := p.mapping(n, where, partnerKeys)
	pt := &Partner{ID: id}
	if v := seen["kinds"]; v == nil {
		p.fail(n, "%s: kinds missing (designation, denial or both)", where)
	} else if pt.Kinds = p.kinds(v, where+".kinds"); len(pt.Kinds) == 0 && len(p.errs) == before {
		p.fail(v, "%s.kinds: empty: the partner would get nothing; remove its block instead", where)
	}
	if v := seen["max_marking"]; v == nil {
		p.fail(n, "%s: max_marking missing (the highest marking this partner may receive)", where)
	} else if m, err := ParseMarking(p.scalar(v, where+".max_marking")); err != nil {
		p.fail(v, "%s.max_marking: %v", where, err)
	} else {
		pt.MaxMarking = m
	}
	if v := seen["marking"]; v != nil {
		m, err := ParseMarking(p.scalar(v, where+".marking"))
		switch {
		case err != nil:
			p.fail(v, "%s.marking: %v", where, err)
		case pt.MaxMarking != 0 && m > pt.MaxMarking:
			// A narrowed marking above max_marking would keep nothing it lets through consistent.
			p.fail(v, "%s.marking: %s is above max_marking %s: records would be sent marked more restrictively than this partner may receive", where, MarkingName(m), MarkingName(pt.MaxMarking))
		default:
			pt.Marking = m
		}
	}
	if v := seen["originator_control"]; v != nil {
		switch p.scalar(v, where+".originator_control") {
		case "true":
			pt.OriginatorControl = true
		case "false":
		default:
			p.fail(v, "%s.originator_control: must be true or false", where)
		}
	}
	get := func(key string) []string {
		if v := seen[key]; v != nil {
			return p.list(v, where+"."+key)
		}
		return nil
	}
	pt.Programs, pt.ExcludePrograms = get("programs"), get("exclude_programs")
	pt.Regimes, pt.ExcludeRegimes = get("regimes"), get("exclude_regimes")
	pt.Destinations, pt.ExcludeDestinations = get("destinations"), get("exclude_destinations")
	pt.Redact = get("redact")

	// Impossible combinations.
	has := func(k pb.Kind) bool { return slices.Contains(pt.Kinds, k) }
	if len(pt.Kinds) > 0 {
		for _, key := range []string{"programs", "exclude_programs"} {
			if seen[key] != nil && !has(pb.Kind_KIND_DESIGNATION) {
				p.fail(seen[key], "%s.%s: programmes select designations, but kinds has no designation", where, key)
			}
		}
		for _, key := range []string{"regimes", "exclude_regimes", "destinations", "exclude_destinations"} {
			if seen[key] != nil && !has(pb.Kind_KIND_DENIAL) {
				p.fail(seen[key], "%s.%s: regimes and destinations select denials, but kinds has no denial", where, key)
			}
		}
	}
	p.overlap(seen, where, "programs", "exclude_programs", pt.Programs, pt.ExcludePrograms)
	p.overlap(seen, where, "regimes", "exclude_regimes", pt.Regimes, pt.ExcludeRegimes)
	p.overlap(seen, where, "destinations", "exclude_destinations", pt.Destinations, pt.ExcludeDestinations)
	for i, name := range pt.Redact {
		at := seen["redact"]
		if at.Kind == yaml.SequenceNode && i < len(at.Content) {
			at = at.Content[i]
		}
		f, ok := lookupField(name)
		switch {
		case ok && len(pt.Kinds) > 0 && !slices.ContainsFunc(f.kinds, has):
			p.fail(at, "%s.redact: %s exists only in %s records, and kinds does not include them", where, name, KindName(f.kinds[0]))
		case ok:
		case notRedactable[name] != "":
			p.fail(at, "%s.redact: %s cannot be redacted: it %s", where, name, notRedactable[name])
		default:
			p.fail(at, "%s.redact: unknown field %q (fields: %s)", where, name, strings.Join(RedactableFields(), ", "))
		}
	}
	if len(p.errs) > before {
		return nil
	}
	pt.index()
	return pt
}

func (p *parser) overlap(seen map[string]*yaml.Node, where, inc, exc string, include, exclude []string) {
	included := make(map[string]bool, len(include))
	for _, v := range include {
		included[v] = true
	}
	for _, v := range exclude {
		if included[v] {
			p.fail(seen[exc], "%s: %q is both in %s and %s", where, v, inc, exc)
		}
	}
	if slices.Contains(exclude, "*") {
		p.fail(seen[exc], "%s.%s: \"*\" excludes everything; remove the kind from kinds instead", where, exc)
	}
	if slices.Contains(include, "*") && len(include) > 1 {
		p.fail(seen[inc], "%s.%s: \"*\" already includes everything; list nothing else", where, inc)
	}
}

func (p *parser) receive(n *yaml.Node, self string) Receive {
	r := Receive{Trust: true, Partners: map[string][]pb.Kind{}}
	seen := p.mapping(n, "receive", []string{"default", "partners"})
	if v := seen["default"]; v != nil {
		switch p.scalar(v, "receive.default") {
		case "trust":
		case "ignore":
			r.Trust = false
		default:
			p.fail(v, "receive.default: must be trust or ignore")
		}
	}
	if v := seen["partners"]; v != nil {
		if v.Kind != yaml.MappingNode {
			p.fail(v, "receive.partners: must map partner ids to blocks")
			return r
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, b := v.Content[i], v.Content[i+1]
			where := "receive.partners." + k.Value
			if _, dup := r.Partners[k.Value]; dup {
				p.fail(k, "%s: named twice", where)
				continue
			}
			if !p.checkPartner(k, where, k.Value, self) {
				continue
			}
			kb := p.mapping(b, where, []string{"kinds"})
			if kb["kinds"] == nil {
				p.fail(b, "%s: kinds missing (the kinds of this partner's entries to trust; [] for none)", where)
				continue
			}
			var kinds []pb.Kind
			if kb["kinds"].Kind != yaml.SequenceNode || len(kb["kinds"].Content) > 0 {
				kinds = p.kinds(kb["kinds"], where+".kinds")
			}
			r.Partners[k.Value] = kinds
		}
	}
	return r
}

// ParseKind reads designation or denial.
func ParseKind(s string) (pb.Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "designation", "designations":
		return pb.Kind_KIND_DESIGNATION, nil
	case "denial", "denials":
		return pb.Kind_KIND_DENIAL, nil
	}
	return 0, fmt.Errorf("kind %q: want designation or denial", s)
}

// KindName is designation, denial or consultation.
func KindName(k pb.Kind) string {
	switch k {
	case pb.Kind_KIND_DESIGNATION:
		return "designation"
	case pb.Kind_KIND_DENIAL:
		return "denial"
	case pb.Kind_KIND_CONSULTATION:
		return "consultation"
	}
	return "unknown"
}

// Partners are the partner ids the policy names, sorted.
func (p *Policy) PartnerIDs() []string {
	out := make([]string, 0, len(p.Partners))
	for id := range p.Partners {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
