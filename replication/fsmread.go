package replication

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	peerpb "github.com/watchfed/watchfed/proto/watchfed/peer/v1"
	"github.com/watchfed/watchfed/replication/checksum"
)

// Reads of the FSM's state beyond the registry: envelopes (with the cache
// of decoded publication bodies), backups, the state hash and the last
// stored entry. Each holds the FSM's lock: Restore swaps the file.

// Envelope returns the published envelope of an entry version. It is
// shared with other callers: read it, do not change it.
func (f *FSM) Envelope(id string, version uint64) (*peerpb.Envelope, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var body *peerpb.PublicationBody
	err := f.view(func(tx *bolt.Tx) error {
		k := get(tx, bucketEntries, entryKey(id, version))
		if k == nil {
			return fmt.Errorf("no entry %s version %d", id, version)
		}
		idx := u64(k)
		if body = f.bodies.get(idx); body != nil {
			return nil
		}
		raw := getLog(tx, k)
		var err error
		if body, err = decodeBody(raw); err != nil {
			return err
		}
		f.bodies.put(idx, body, len(raw))
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, env := range body.Envelopes {
		if env.GetHeader().GetEntryId() == id && env.GetHeader().GetVersion() == version {
			return env, nil
		}
	}
	return nil, fmt.Errorf("entry %s version %d missing from its publication", id, version)
}

// EntriesFor is Entries for one agency's reader: a publication whose
// encoded body does not contain the agency's id anywhere comes back empty
// (its index only), without being decoded, unless its decoded body is at
// hand (cached) anyway. Such a publication can hold nothing for the agency:
// a recipient, an epoch grant's or a key grant's recipient are the id as it
// is in the encoding. A newcomer reading the log from index 1 then decodes
// only what names it, mostly what came after its join.
func (f *FSM) EntriesFor(after uint64, limit int, agency string) ([]Entry, error) {
	if agency == "" {
		return nil, fmt.Errorf("entries for no agency")
	}
	return f.entries(after, limit, func(_, body []byte) bool { return bytes.Contains(body, []byte(agency)) })
}

// EntriesFrom is Entries for what one agency published: a publication from
// another origin (as its command says in clear, which the FSM checked is
// its body's origin) comes back empty, undecoded, unless cached.
func (f *FSM) EntriesFrom(after uint64, limit int, origin string) ([]Entry, error) {
	if origin == "" {
		return nil, fmt.Errorf("entries from no agency")
	}
	return f.entries(after, limit, func(from, _ []byte) bool { return string(from) == origin })
}

// entries is Entries (need nil: every publication decoded), EntriesFor and
// EntriesFrom: need says, from a publication's origin and encoded body,
// whether its reader needs it decoded.
func (f *FSM) entries(after uint64, limit int, need func(origin, body []byte) bool) ([]Entry, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Entry
	var skipped *peerpb.PublicationBody // empty, shared by every entry skipped
	err := f.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		c := b.Cursor()
		for k, v := c.Seek(be64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			idx := u64(k)
			v = logValue(tx, b, k, v) // checked even when the body is cached: a damaged file is found early
			if body := f.bodies.get(idx); body != nil {
				out = append(out, Entry{Index: idx, Body: body})
				continue
			}
			origin, raw, isPub := publicationBody(v)
			if !isPub {
				var cmd peerpb.Command
				if err := proto.Unmarshal(v, &cmd); err != nil {
					return fmt.Errorf("entry %d: %w", idx, err)
				}
				if g := cmd.GetGovernance(); g != nil {
					out = append(out, Entry{Index: idx, Body: &peerpb.PublicationBody{}, Governance: g})
					continue
				}
				origin, raw = []byte(cmd.GetPublication().GetOrigin()), cmd.GetPublication().GetBody()
			}
			if need != nil && !need(origin, raw) {
				if skipped == nil {
					skipped = &peerpb.PublicationBody{}
				}
				out = append(out, Entry{Index: idx, Body: skipped})
				continue
			}
			body := &peerpb.PublicationBody{}
			if err := proto.Unmarshal(raw, body); err != nil {
				return fmt.Errorf("entry %d body: %w", idx, err)
			}
			out = append(out, Entry{Index: idx, Body: body})
		}
		return nil
	})
	return out, err
}

// decodeBody decodes the body of a publication command as stored in the log.
func decodeBody(raw []byte) (*peerpb.PublicationBody, error) {
	_, b, ok := publicationBody(raw)
	if !ok {
		var cmd peerpb.Command
		if err := proto.Unmarshal(raw, &cmd); err != nil {
			return nil, err
		}
		b = cmd.GetPublication().GetBody()
	}
	body := &peerpb.PublicationBody{}
	if err := proto.Unmarshal(b, body); err != nil {
		return nil, err
	}
	return body, nil
}

// publicationBody finds the origin and body bytes of a publication command
// without decoding the command: decoding it would copy the whole body (the
// bulk of the log's bytes) only for the body to be decoded again. The
// results alias cmd. ok is false for any other command, and for any
// encoding this does not expect (a field repeated, a type that does not
// match): the caller then decodes the command whole.
func publicationBody(cmd []byte) (origin, body []byte, ok bool) {
	var f [4][]byte
	if !publicationFields(cmd, &f) {
		return nil, nil, false
	}
	return f[1], f[2], true
}

// decodeCommand decodes a log entry's command. A publication's fields are
// taken as they are, aliasing raw, rather than copied by proto.Unmarshal (a
// bulk import's publication is a MB, copied on every member); anything
// publicationFields does not expect, or an origin that is not UTF-8 (which
// proto.Unmarshal refuses), is decoded whole.
func decodeCommand(raw []byte) (*peerpb.Command, error) {
	var f [4][]byte
	if publicationFields(raw, &f) && utf8.Valid(f[1]) {
		return &peerpb.Command{Command: &peerpb.Command_Publication{Publication: &peerpb.Publication{
			Origin: string(f[1]), Body: f[2], Signature: f[3]}}}, nil
	}
	cmd := &peerpb.Command{}
	if err := proto.Unmarshal(raw, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// publicationFields sets f[n] to the bytes of field n of a publication
// command's Publication (1 origin, 2 body, 3 signature; nil when absent),
// aliasing cmd, and reports whether cmd is one publication encoded as
// expected: each field once, of the bytes type. Other fields are skipped,
// as proto.Unmarshal keeps them only as unknown fields.
func publicationFields(cmd []byte, f *[4][]byte) bool {
	num, typ, n := protowire.ConsumeTag(cmd)
	if n < 0 || num != 1 || typ != protowire.BytesType { // Command.publication
		return false
	}
	pub, m := protowire.ConsumeBytes(cmd[n:])
	if m < 0 || n+m != len(cmd) {
		return false
	}
	var seen [4]bool
	for len(pub) > 0 {
		num, typ, n := protowire.ConsumeTag(pub)
		if n < 0 {
			return false
		}
		pub = pub[n:]
		n = protowire.ConsumeFieldValue(num, typ, pub)
		if n < 0 {
			return false
		}
		if num >= 1 && num <= 3 { // Publication.origin, .body, .signature
			if typ != protowire.BytesType || seen[num] {
				return false
			}
			seen[num] = true
			f[num], _ = protowire.ConsumeBytes(pub[:n])
		}
		pub = pub[n:]
	}
	return true
}

// bodyCache keeps the publication bodies last applied or decoded, so that
// each is decoded once rather than by every reader: the receive loop and the
// publisher's holdings read each entry right after it is applied, and a
// newcomer's catch-up brings key grants for the envelopes of the same large
// publications one after another (20,000 imported records took a newcomer
// 71 s to read when every grant decoded its 1,024-record publication again).
// Bodies are shared: read them, do not change them.
type bodyCache struct {
	mu    sync.Mutex
	order []cached // oldest first
	m     map[uint64]*peerpb.PublicationBody
	bytes int
}

type cached struct {
	idx  uint64
	size int
}

// The cache holds at most this many bodies, and this many bytes of them as
// encoded in the log.
const (
	bodyCacheSize  = 64
	bodyCacheBytes = 16 << 20
)

func (c *bodyCache) get(idx uint64) *peerpb.PublicationBody {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[idx]
}

func (c *bodyCache) put(idx uint64, b *peerpb.PublicationBody, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint64]*peerpb.PublicationBody{}
	}
	if _, ok := c.m[idx]; ok || size > bodyCacheBytes {
		return
	}
	for len(c.order) > 0 && (len(c.order) == bodyCacheSize || c.bytes+size > bodyCacheBytes) {
		delete(c.m, c.order[0].idx)
		c.bytes -= c.order[0].size
		c.order = c.order[1:]
	}
	c.order = append(c.order, cached{idx, size})
	c.m[idx] = b
	c.bytes += size
}

// Backup writes a consistent copy of the FSM's file to w, once every value
// in it checked out: a backup never carries damage away.
func (f *FSM) Backup(w io.Writer) (int64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var n int64
	err := f.db.View(func(tx *bolt.Tx) (err error) {
		if err := checksum.Verify(tx); err != nil {
			f.noteDamage(err)
			return fmt.Errorf("backup: %w", err)
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// StateHash is the SHA-256 of the whole replicated state (every bucket, key
// and value, in bbolt's sorted order) and the applied index it was taken at,
// read in one transaction: members at the same index must agree byte for byte.
// Values are hashed bare, without their checksums: the hash is of what the
// log determines, whatever format each member's file is in.
func (f *FSM) StateHash() (index uint64, sum []byte, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h := newFieldHash()
	err = f.view(func(tx *bolt.Tx) error {
		index = u64(get(tx, bucketMeta, keyApplied))
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.field(name)
			return forEachFramed(b, func(k, v []byte) error {
				if bytes.Equal(name, bucketMeta) && bytes.Equal(k, keyFormat) {
					return nil // how this node's file is laid out, not replicated state
				}
				h.field(k)
				h.field(val(tx, name, k, v))
				return nil
			})
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("state hash: %w", err)
	}
	return index, h.Sum(nil), nil
}

// fieldHash hashes length-prefixed fields, so that no two different states
// hash the same bytes. The prefix is written from a buffer of its own: a
// slice made per field was an allocation per key and value hashed.
type fieldHash struct {
	hash.Hash
	n [4]byte
}

func newFieldHash() *fieldHash { return &fieldHash{Hash: sha256.New()} }

func (h *fieldHash) field(b []byte) {
	binary.BigEndian.PutUint32(h.n[:], uint32(len(b)))
	h.Write(h.n[:])
	h.Write(b)
}

// LastEntry is the index of the last stored entry at or below index (0 if none).
func (f *FSM) LastEntry(index uint64) (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var last uint64
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		k, _ := c.Seek(be64(index + 1))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		last = u64(k)
		return nil
	})
	return last, err
}

// Bound reports whether an agency id is bound to a CA and keys: registered
// under protocol 3, whether still a member or gone since.
func (f *FSM) Bound(agency string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	found := false
	_ = f.view(func(tx *bolt.Tx) error {
		found = get(tx, bucketBindings, []byte(agency)) != nil
		return nil
	})
	return found
}

// Granted reports whether the origin→recipient key of an epoch has travelled.
func (f *FSM) Granted(origin, recipient string, epoch uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	found := false
	_ = f.view(func(tx *bolt.Tx) error {
		found = get(tx, bucketGrants, grantKey(origin, recipient, epoch)) != nil
		return nil
	})
	return found
}

// Grantees are the agencies that were granted an entry version after it was
// published (a newcomer's catch-up, a widened policy), in name order.
func (f *FSM) Grantees(id string, version uint64) ([]string, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	prefix := append(entryKey(id, version), 0)
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKeyGrants).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			val(tx, bucketKeyGrants, k, v)
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}

func grantKey(origin, recipient string, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(origin+"\x00"+recipient+"\x00"), epoch)
}
