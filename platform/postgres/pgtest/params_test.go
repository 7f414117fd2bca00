package pgtest

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestUUIDArrayOfStringsFailsBinary pins the pgx behaviour RequireTextIDLists
// works around: when it stops failing, the text[] casts are no longer needed.
func TestUUIDArrayOfStringsFailsBinary(t *testing.T) {
	m := pgtype.NewMap()
	if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}, nil); err == nil {
		t.Log("pgx now encodes []string as binary uuid[]: the text[] casts are no longer needed")
	}
	if _, err := m.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}, nil); err != nil {
		t.Errorf("[]string as binary text[]: %v, want it encoded", err)
	}
}

func TestRequireTextIDLists(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"WHERE id = ANY($1::uuid[])", true},
		{"unnest($12::uuid[], $2::text[])", true},
		{"WHERE id = ANY($1::text[]::uuid[])", false},
		{"WHERE id = $1::uuid", false},
	} {
		if got := uuidArrayParam.MatchString(tc.src); got != tc.want {
			t.Errorf("%q matched = %v, want %v", tc.src, got, tc.want)
		}
	}
}
