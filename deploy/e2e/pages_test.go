package e2e

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"
)

// pages follows nextPageToken from path (with the query q) until it is
// empty and returns every item of key, failing on a page larger than size
// or a loop.
func pages(t *testing.T, c *caller, path string, q url.Values, key string, s schema, size int) []map[string]any {
	t.Helper()
	var all []map[string]any
	token := ""
	q = url.Values(maps.Clone(q))
	if q == nil {
		q = url.Values{}
	}
	q.Set("pageSize", fmt.Sprint(size))
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatalf("%s: more than 50 pages; the tokens loop", path)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		r := c.do("GET", path+"?"+q.Encode(), nil).must(t, 200, "page")
		items := r.list(t, path, key, s)
		if len(items) > size || (len(items) < size && r.str("nextPageToken") != "") {
			t.Errorf("%s: page %d has %d items with nextPageToken %q, want at most %d and a short page only last", path, i, len(items), r.str("nextPageToken"), size)
		}
		all = append(all, items...)
		if token = r.str("nextPageToken"); token == "" {
			return all
		}
	}
}

// TestPagination: following nextPageToken visits every account and every
// ledger entry exactly once, entries newest first; the last page has an
// empty token; page sizes up to 100 are accepted.
func TestPagination(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "pages"), manager(t, "pages-mgr")
	var opened []string
	for range 7 {
		opened = append(opened, u.openAccount("EUR"))
	}
	a := opened[0]
	for i := range 4 {
		mgr.deposit(a, int64(100+i), "EUR").must(t, 200, "deposit")
		u.transfer(rand.Text(), a, opened[1], 1, "EUR").must(t, 200, "transfer")
	}

	var listed []string
	for _, acct := range pages(t, u, "/v1/accounts", nil, "accounts", accountShape, 3) {
		listed = append(listed, acct["id"].(string))
	}
	if !sameSet(listed, opened) {
		t.Errorf("paging through accounts listed %v, want each of %v once", listed, opened)
	}
	if all := u.do("GET", "/v1/accounts", nil).must(t, 200, "default page").list(t, "default page", "accounts", accountShape); len(all) != 7 {
		t.Errorf("the default page has %d accounts, want all 7", len(all))
	}
	byManager := pages(t, mgr, "/v1/accounts", url.Values{"ownerId": {u.userID}}, "accounts", accountShape, 4)
	if len(byManager) != 7 {
		t.Errorf("a manager paging by ownerId saw %d accounts, want 7", len(byManager))
	}

	for _, size := range []int{1, 3, 100} {
		entries := pages(t, u, "/v1/accounts/"+a+"/transactions", nil, "entries", entryShape, size)
		if len(entries) != 8 {
			t.Fatalf("page size %d: %d entries, want 8 (4 deposits, 4 transfers)", size, len(entries))
		}
		seen := map[string]bool{}
		var prev time.Time
		for i, e := range entries {
			at, _ := time.Parse(time.RFC3339Nano, e["createdAt"].(string))
			if i > 0 && at.After(prev) {
				t.Errorf("page size %d: entry %d (%v) is newer than the one before (%v); want newest first", size, i, at, prev)
			}
			prev = at
			k := e["transferId"].(string) + e["amount"].(string)
			if seen[k] {
				t.Errorf("page size %d: entry %v listed twice", size, e)
			}
			seen[k] = true
		}
		if entries[0]["amount"] != "-1" || entries[0]["balanceAfter"] != "402" || entries[7]["amount"] != "100" {
			t.Errorf("page size %d: newest %v, oldest %v; want the last transfer (-1, balance 402) first and the first deposit (100) last", size, entries[0], entries[7])
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
