package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// genesis is the prev_hash of the first row.
var genesis = make([]byte, sha256.Size)

// formatVersion starts every encoded row, so that a future change to the
// encoding cannot produce the same bytes as this one.
const formatVersion = 1

// record is one row of audit_events.
type record struct {
	seq      int64
	at       time.Time
	actor    string
	action   string
	resource string
	outcome  string
	reason   string
	clientIP string
	traceID  string
	detail   map[string]string
	prevHash []byte
	hash     []byte
}

// encode returns r's canonical bytes: fixed-width integers, every string
// prefixed by its length, and Detail in sorted key order, so that no two
// different rows encode alike (moving text from one field to the next, or
// reordering keys, changes the bytes).
func (r *record) encode() []byte {
	b := make([]byte, 0, 256)
	b = append(b, formatVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(r.seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.at.UnixMicro()))
	for _, s := range []string{r.actor, r.action, r.resource, r.outcome, r.reason, r.clientIP, r.traceID} {
		b = appendString(b, s)
	}
	keys := make([]string, 0, len(r.detail))
	for k := range r.detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.detail[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// chainHash returns SHA-256(prev || encode(r)).
func (r *record) chainHash(prev []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(r.encode())
	return h.Sum(nil)
}

// ChainError reports the first row at which Verify found the chain broken.
type ChainError struct {
	Seq     int64  // the first sequence number that is missing or wrong
	Problem string // what is wrong with it
}

// Error names the row and the problem.
func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Problem)
}
