package importer

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

var dplColumns = []string{"Name", "Street_Address", "City", "State", "Country", "Postal_Code", "Effective_Date", "Expiration_Date", "Standard_Order", "Last_Update", "Action", "FR_Citation"}

// ParseDPL reads the BIS Denied Persons List (tab-separated, quoted, with a
// header row) as denials: a denial order withdraws the party's export
// privileges, whatever the item and wherever the party is, so the
// control-list entry is ALL and the denial binds any destination
// (any_destination; destination names the country of the party's first
// address, the United States when none is given). It is in force from the
// effective date until the expiration date, if any (no review date:
// reviewing the order is BIS's duty, not the importing agency's). The list
// has no entry numbers: an entry is known by its name and effective date,
// and the list gives a row per address of a party, each kept as an address
// and a party of the one denial.
func ParseDPL(source string, r io.Reader) (*Result, error) {
	res := &Result{Source: source}
	s, err := text(r)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(strings.NewReader(s))
	cr.Comma = '\t'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range dplColumns[:8] {
		if _, ok := col[c]; !ok {
			have := strings.Join(header, ", ")
			if r := []rune(have); len(r) > 120 {
				// A file of another format: its first line, not all of it.
				have = string(r[:120]) + "..."
			}
			return nil, fmt.Errorf("line 1: header: column %q missing (have %s)", c, have)
		}
	}
	seen := map[string]int{} // ref → item
	for {
		row, line, err := nextRow(cr, res, "")
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		get := func(c string) string {
			if i := col[c]; i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		if len(row) < len(header) {
			res.reject(line, "", "%d fields, want %d", len(row), len(header))
			continue
		}
		name := cleanName(get("Name"))
		if name == "" {
			res.reject(line, "", "Name is empty")
			continue
		}
		eff, err := time.Parse("01/02/2006", get("Effective_Date"))
		if err != nil {
			res.reject(line, "", "Effective_Date %q is not MM/DD/YYYY", get("Effective_Date"))
			continue
		}
		key := names.Normalize(name) + "@" + eff.Format(time.DateOnly)
		ref := source + ":" + strings.ReplaceAll(key, " ", "-")
		country := Country(get("Country"))
		addr := &pb.Address{Street: get("Street_Address"), City: get("City"), Region: get("State"), PostalCode: get("Postal_Code"), Country: country}
		// A country the list writes in a way not known here stays in the
		// party's address as written: the order is kept either way.
		unknown := ""
		if country == "" {
			unknown = get("Country")
		}
		party := &pb.Party{Role: pb.PartyRole_PARTY_ROLE_END_USER, Name: name, Country: country,
			Address: strings.Join(nonEmpty(oneLine(addr.Street), oneLine(addr.City), oneLine(addr.Region), oneLine(addr.PostalCode), oneLine(unknown)), ", ")}
		if i, dup := seen[ref]; dup {
			// The same order against the party at another address: the
			// order covers it there too.
			rec := res.Items[i].Record
			b := builder{rec.Subject}
			b.address(addr)
			if country != "" {
				addCountry(&b.s.Countries, country)
			}
			d := rec.GetDenial()
			if !slices.ContainsFunc(d.Parties, func(p *pb.Party) bool { return proto.Equal(p, party) }) {
				d.Parties = append(d.Parties, party)
			}
			continue
		}
		expires := ""
		if x := get("Expiration_Date"); x != "" {
			t, err := time.Parse("01/02/2006", x)
			if err != nil {
				res.reject(line, ref, "Expiration_Date %q is not MM/DD/YYYY", x)
				continue
			}
			if !t.Before(eff) {
				expires = t.Format(time.DateOnly)
			}
		}
		dest := country
		if dest == "" {
			dest = "US"
		}
		schema := pb.Schema_SCHEMA_PERSON
		if names.LooksLikeOrganization(name) {
			schema = pb.Schema_SCHEMA_ORGANIZATION
		}
		subj := &pb.Subject{Schema: schema, Name: name}
		if country != "" {
			subj.Countries = []string{country}
		}
		builder{subj}.address(addr)
		rec := &pb.Record{
			Kind:      pb.Kind_KIND_DENIAL,
			Subject:   subj,
			SourceRef: ref,
			Detail: &pb.Record_Denial{Denial: &pb.Denial{
				ControlListEntry: "ALL",
				Item:             "all items subject to the EAR: export privileges denied",
				Destination:      dest,
				AnyDestination:   true,
				Reason:           "DENIAL-ORDER",
				Regime:           "US-EAR",
				Parties:          []*pb.Party{party},
				DeniedOn:         eff.Format(time.DateOnly),
				ExpiresOn:        expires,
				StatusReason:     strings.TrimSpace(get("Action") + " " + get("FR_Citation")),
			}},
		}
		// Only a row that became an item can take further addresses: a
		// rejected one left nothing to add them to (found by fuzzing).
		seen[ref] = len(res.Items)
		res.Items = append(res.Items, Item{Line: line, Record: rec})
	}
	return res, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
