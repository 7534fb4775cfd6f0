package importer

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/watchfed/watchfed/node/names"
	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

var dplColumns = []string{"Name", "Street_Address", "City", "State", "Country", "Postal_Code", "Effective_Date", "Expiration_Date", "Standard_Order", "Last_Update", "Action", "FR_Citation"}

// ParseDPL reads the BIS Denied Persons List (tab-separated, quoted, with a
// header row) as denials: a denial order withdraws all export privileges,
// so the control-list entry is ALL, the destination the party's country
// (the United States when none is given: the order binds US exporters
// dealing with a party there), in force from the effective date until the
// expiration date, if any (no review date: reviewing the order is BIS's
// duty, not the importing agency's). The list has no entry numbers: an
// entry is known by its name and effective date.
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
			return nil, fmt.Errorf("header: column %q missing (have %s)", c, strings.Join(header, ", "))
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
		addr := &pb.Address{Street: strings.TrimSpace(get("Street_Address")), City: strings.TrimSpace(get("City")), Region: strings.TrimSpace(get("State")), PostalCode: strings.TrimSpace(get("Postal_Code")), Country: country}
		if i, dup := seen[ref]; dup {
			// The same order against a party at another address.
			b := builder{res.Items[i].Record.Subject}
			b.address(addr)
			if country != "" {
				addCountry(&b.s.Countries, country)
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
		where := strings.Join(nonEmpty(addr.Street, addr.City, addr.Region, addr.PostalCode), ", ")
		rec := &pb.Record{
			Kind:      pb.Kind_KIND_DENIAL,
			Subject:   subj,
			SourceRef: ref,
			Detail: &pb.Record_Denial{Denial: &pb.Denial{
				ControlListEntry: "ALL",
				Item:             "all items subject to the EAR: export privileges denied",
				Destination:      dest,
				Reason:           "DENIAL-ORDER",
				Regime:           "US-EAR",
				Parties:          []*pb.Party{{Role: pb.PartyRole_PARTY_ROLE_END_USER, Name: name, Country: country, Address: strings.TrimSpace(where)}},
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
