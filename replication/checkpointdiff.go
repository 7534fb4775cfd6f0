package replication

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/watchfed/watchfed/replication/checksum"
)

// maxDiffs bounds how many differing keys a disagreement's log names.
const maxDiffs = 8

// stateDiff names up to maxDiffs keys whose replicated values differ
// between the state file set aside at a disagreement and the state rebuilt
// from snapshot and log, both at the applied index upTo: what the log
// says why a member disagreed. Node-local meta keys are left out.
func stateDiff(asidePath string, rebuilt *bolt.DB) ([]string, error) {
	aside, err := bolt.Open(asidePath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", asidePath, err)
	}
	defer aside.Close()
	var out []string
	err = aside.View(func(atx *bolt.Tx) error {
		return rebuilt.View(func(rtx *bolt.Tx) error {
			out = diffTx(atx, rtx)
			return nil
		})
	})
	return out, err
}

// diffTx compares a (set aside) with r (rebuilt), key by key.
func diffTx(a, r *bolt.Tx) []string {
	var out []string
	note := func(format string, args ...any) bool {
		if len(out) < maxDiffs {
			out = append(out, fmt.Sprintf(format, args...))
		}
		return len(out) < maxDiffs
	}
	names := map[string]bool{}
	collect := func(tx *bolt.Tx) {
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names[string(name)] = true
			return nil
		})
	}
	collect(a)
	collect(r)
	for name := range names {
		ab, rb := a.Bucket([]byte(name)), r.Bucket([]byte(name))
		if ab == nil || rb == nil {
			if !note("bucket %s only in the %s state", name, map[bool]string{true: "rebuilt", false: "set-aside"}[ab == nil]) {
				return out
			}
			continue
		}
		skip := func(k []byte) bool { return name == string(bucketMeta) && isNodeLocal(k) }
		ac, rc := ab.Cursor(), rb.Cursor()
		ak, av := ac.First()
		rk, rv := rc.First()
		for ak != nil || rk != nil {
			switch {
			case ak != nil && skip(ak):
				ak, av = ac.Next()
			case rk != nil && skip(rk):
				rk, rv = rc.Next()
			case rk == nil || (ak != nil && bytes.Compare(ak, rk) < 0):
				if !note("%s/%s only in the set-aside state", name, checksum.ShowKey(ak)) {
					return out
				}
				ak, av = ac.Next()
			case ak == nil || bytes.Compare(ak, rk) > 0:
				if !note("%s/%s only in the rebuilt state", name, checksum.ShowKey(rk)) {
					return out
				}
				rk, rv = rc.Next()
			default:
				// A command stored nested (fsmlog.go) compares as stored flat.
				af, rf := nestedValue(ab, ak, av), nestedValue(rb, rk, rv)
				if !bytes.Equal(af, rf) && !note("%s/%s differs: set-aside %x, rebuilt %x", name, checksum.ShowKey(ak), head(af), head(rf)) {
					return out
				}
				ak, av = ac.Next()
				rk, rv = rc.Next()
			}
		}
	}
	return out
}

func head(v []byte) []byte { return v[:min(len(v), 24)] }
