package replication

import (
	"fmt"
	"unicode/utf8"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication/safetext"
)

// Protocol 2: a publication's clear parts must be what they claim. Under
// protocol 1 the FSM checked only the signature and structure (VerifyFunc),
// so a member could publish, under its own signature, an entry id of
// another agency, or ids holding terminal escapes and bidi controls that
// every partner's operator would be shown. From protocol 2 every FSM refuses
// such a publication whole. Entries applied under protocol 1 keep their
// verdict: replaying an old log gives the same state.

// checkClearParts is protocol 2's rule for a verified publication: every id
// in clear is well formed, and every entry, grant and key it carries is the
// origin's own.
func checkClearParts(pub *peerpb.Publication, body *peerpb.PublicationBody) error {
	origin := pub.GetOrigin()
	if err := agency("origin", origin); err != nil {
		return err
	}
	ownEntry := func(id string, format string, args ...any) error {
		if a, err := safetext.ParseID(id); err == nil && a == origin {
			return nil // the common case, without naming the field
		}
		field := fmt.Sprintf(format, args...)
		if err := printable(field, id); err != nil {
			return err
		}
		a, err := safetext.ParseID(id)
		if err != nil {
			return fmt.Errorf("%s: %v", field, err)
		}
		if a != origin {
			return fmt.Errorf("%s %s: an entry of %s published by %s", field, id, a, origin)
		}
		return nil
	}
	for i, g := range body.GetEpochGrants() {
		if err := agencyf(g.GetRecipient(), "epoch_grants[%d].recipient", i); err != nil {
			return err
		}
	}
	for i, env := range body.GetEnvelopes() {
		h := env.GetHeader()
		if err := ownEntry(h.GetEntryId(), "envelopes[%d].header.entry_id", i); err != nil {
			return err
		}
		if h.GetOrigin() != origin {
			return fmt.Errorf("envelopes[%d].header.origin %q: the publication's origin is %s", i, h.GetOrigin(), origin)
		}
		for j, r := range h.GetRelTo() {
			if err := agencyf(r, "envelopes[%d].header.rel_to[%d]", i, j); err != nil {
				return err
			}
		}
		for j, r := range h.GetRecipients() {
			if err := agencyf(r, "envelopes[%d].header.recipients[%d]", i, j); err != nil {
				return err
			}
		}
		for j, b := range env.GetBodies() {
			for k, r := range b.GetRecipients() {
				if err := agencyf(r, "envelopes[%d].bodies[%d].recipients[%d]", i, j, k); err != nil {
					return err
				}
			}
			for k, w := range b.GetKeys() {
				if err := agencyf(w.GetRecipient(), "envelopes[%d].bodies[%d].keys[%d].recipient", i, j, k); err != nil {
					return err
				}
			}
		}
	}
	for i, g := range body.GetKeyGrants() {
		if err := ownEntry(g.GetEntryId(), "key_grants[%d].entry_id", i); err != nil {
			return err
		}
		if err := agencyf(g.GetKey().GetRecipient(), "key_grants[%d].key.recipient", i); err != nil {
			return err
		}
	}
	return nil
}

// agencyf is agency with the field named by a format, built only when the
// id is refused: an FSM checks several ids per record it applies.
func agencyf(id string, format string, args ...any) error {
	if safetext.ValidateAgencyID(id) == nil {
		return nil // valid: printable ASCII
	}
	return agency(fmt.Sprintf(format, args...), id)
}

func agency(field, id string) error {
	if err := printable(field, id); err != nil {
		return err
	}
	if err := safetext.ValidateAgencyID(id); err != nil {
		return fmt.Errorf("%s: %v", field, err)
	}
	return nil
}

// printable names a control or bidi control in clear text, so that the
// refusal says what was wrong rather than only that an id is malformed.
func printable(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if safetext.Unprintable(r) {
			return fmt.Errorf("%s contains U+%04X (a control or bidi control)", field, r)
		}
	}
	return nil
}
