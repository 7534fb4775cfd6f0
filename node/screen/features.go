package screen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	pb "github.com/watchfed/watchfed/proto/watchfed/v1"
)

// features adjusts a name score by schema, birth date and country.
func features(ns float64, e *Entry, q Query) (float64, []Feature) {
	score := ns
	var fs []Feature
	addF := func(name string, agrees bool, effect float64, detail string) {
		score += effect
		fs = append(fs, Feature{Name: name, Agrees: agrees, Effect: effect, Detail: detail})
	}
	if q.Schema != pb.Schema_SCHEMA_UNSPECIFIED && e.Schema != pb.Schema_SCHEMA_UNSPECIFIED {
		if q.Schema == e.Schema {
			addF("schema", true, 0, schemaName(e.Schema))
		} else {
			addF("schema", false, -0.2, fmt.Sprintf("query %s, listed %s", schemaName(q.Schema), schemaName(e.Schema)))
		}
	}
	if q.BirthDate != "" && len(e.BirthDates) > 0 {
		qy, _ := strconv.Atoi(q.BirthDate[:min(4, len(q.BirthDate))])
		bestD, bestDate := 1000, ""
		for _, d := range e.BirthDates {
			y, err := strconv.Atoi(d[:min(4, len(d))])
			if err != nil {
				continue
			}
			diff := y - qy
			if diff < 0 {
				diff = -diff
			}
			if diff < bestD || (diff == 0 && d == q.BirthDate) {
				bestD, bestDate = diff, d
			}
		}
		switch {
		case bestDate == "":
		case bestD == 0 && len(q.BirthDate) == 10 && bestDate == q.BirthDate:
			addF("birth_date", true, 0.05, bestDate)
		case bestD == 0 && len(q.BirthDate) == 10 && len(bestDate) == 10:
			addF("birth_date", false, -0.05, fmt.Sprintf("query %s, listed %s", q.BirthDate, bestDate))
		case bestD == 0:
			addF("birth_date", true, 0.03, bestDate)
		case bestD == 1:
			addF("birth_date", false, -0.05, fmt.Sprintf("query %s, listed %s", q.BirthDate, bestDate))
		default:
			addF("birth_date", false, -0.25, fmt.Sprintf("query %s, listed %s", q.BirthDate, strings.Join(e.BirthDates, ", ")))
		}
	}
	if len(q.Countries) > 0 && len(e.Countries) > 0 {
		var common []string
		for _, c := range q.Countries {
			if slices.Contains(e.Countries, strings.ToUpper(c)) {
				common = append(common, strings.ToUpper(c))
			}
		}
		if len(common) > 0 {
			addF("country", true, 0.03, strings.Join(common, ", "))
		} else {
			addF("country", false, -0.1, fmt.Sprintf("query %s, listed %s", strings.Join(q.Countries, ", "), strings.Join(e.Countries, ", ")))
		}
	}
	return min(1, max(0, score)), fs
}

func schemaName(s pb.Schema) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SCHEMA_"))
}
