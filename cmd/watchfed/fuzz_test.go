package main

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"

	"github.com/watchfed/watchfed/node/record"
)

// FuzzRecordJSON: the record a user pipes into `designations add` or
// `denials add` is read and validated as the node would, without a panic.
func FuzzRecordJSON(f *testing.F) {
	f.Add(`{"marking":"MARKING_GREEN","subject":{"schema":"SCHEMA_PERSON","name":"Ivan PETROV","countries":["RU"]},"designation":{"program":"RUSSIA-EO14024"}}`)
	f.Add(`{"denial":{"item":"FPGA","controlListEntry":"3A001.a.1","destination":"IR"}}`)
	f.Add(`{"subject":{"birthDates":["1965-02-30"]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		fl := &recordFlags{fromJSON: "-"}
		cmd := &cobra.Command{}
		cmd.SetIn(bytes.NewReader([]byte(doc)))
		rec, err := fl.readJSON(cmd)
		if err != nil || rec == nil {
			return
		}
		_ = record.Validate(rec)
	})
}
