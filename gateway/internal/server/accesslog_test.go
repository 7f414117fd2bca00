package server_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// accessLines returns the access-log lines by request id.
func accessLines(t *testing.T, logs string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("access log line is not JSON: %q: %v", sc.Text(), err)
		}
		id, _ := line["request_id"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("request %s logged twice", id)
		}
		out[id] = line
	}
	return out
}

// TestAccessLog: every request, served or refused at any layer, leaves one
// line that says who asked for what and what they got, and no line ever
// holds a secret the client sent (token, password, idempotency key, query).
func TestAccessLog(t *testing.T) {
	t.Parallel()
	var logs grpctest.SyncBuffer
	h := newHarness(t, func(o *options) { o.edge.AccessLog = slog.New(slog.NewJSONHandler(&logs, nil)) })
	user := h.env.Token(t, ownerID, "user")
	const secretQuery = "pageToken=QUERY-SECRET"
	huge := `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	long := "/scan/" + strings.Repeat("a", 500)

	cases := []struct {
		id          string
		req         request
		wantStatus  int
		wantRoute   string
		wantUser    string
		wantProblem bool
		wantPath    string
	}{
		{"served", request{method: "GET", path: "/v1/accounts?" + secretQuery, token: user},
			http.StatusOK, "/v1/accounts", ownerID, false, ""},
		{"no-token", request{method: "GET", path: "/v1/accounts"}, http.StatusUnauthorized, "/v1/accounts", "", true, ""},
		{"login", request{method: "POST", path: "/v1/auth/login", body: `{"email":"someone@example.com","password":"PASSWORD-SECRET"}`},
			0, "/v1/auth/login", "", false, ""},
		{"transfer-key", request{method: "POST", path: "/v1/transfers", token: user,
			body:    `{"fromAccountId":"` + ownedAccount + `","toAccountId":"` + toAccount + `","amount":"1.00","currency":"EUR"}`,
			headers: map[string]string{"Idempotency-Key": "IDEMPOTENCY-SECRET-0001"}}, 0, "/v1/transfers", ownerID, false, ""},
		{"too-big", request{method: "POST", path: "/v1/auth/register", body: huge}, http.StatusRequestEntityTooLarge, "unrouted", "", true, "/v1/auth/register"},
		{"scanner", request{method: "GET", path: long}, http.StatusNotFound, "unrouted", "", true, "/scan/" + strings.Repeat("a", 194) + "…"},
		{"health", request{method: "GET", path: "/healthz", headers: map[string]string{"User-Agent": strings.Repeat("u", 300)}}, http.StatusOK, "/healthz", "", false, ""},
	}
	got := map[string]response{}
	for _, tc := range cases {
		if tc.req.headers == nil {
			tc.req.headers = map[string]string{}
		}
		tc.req.headers["X-Request-Id"] = tc.id
		got[tc.id] = h.do(t, h.h2, tc.req)
	}
	h.h2.CloseIdleConnections()

	text := logs.String()
	for _, secret := range []string{user, "PASSWORD-SECRET", "IDEMPOTENCY-SECRET", "QUERY-SECRET"} {
		if strings.Contains(text, secret) {
			t.Errorf("access log contains %q:\n%s", secret, text)
		}
	}
	lines := accessLines(t, text)
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			line, ok := lines[tc.id]
			if !ok {
				t.Fatalf("no access-log line for request %s", tc.id)
			}
			resp := got[tc.id]
			if tc.wantStatus != 0 && resp.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.status, tc.wantStatus, resp.body)
			}
			if line["msg"] != "request" || line["status"] != float64(resp.status) {
				t.Errorf("line msg %v status %v, want request and %d", line["msg"], line["status"], resp.status)
			}
			if line["route"] != tc.wantRoute {
				t.Errorf("route = %v, want %q", line["route"], tc.wantRoute)
			}
			if u, _ := line["user"].(string); u != tc.wantUser {
				t.Errorf("user = %q, want %q", u, tc.wantUser)
			}
			if p, _ := line["path"].(string); p != tc.wantPath {
				t.Errorf("path = %q, want %q (only for unrouted requests, clipped)", p, tc.wantPath)
			}
			problem, _ := line["problem"].(string)
			if tc.wantProblem || resp.status >= 400 {
				if want := resp.problem(t).Code; problem != want {
					t.Errorf("problem = %q, want the response's code %q", problem, want)
				}
			} else if problem != "" {
				t.Errorf("problem = %q on a %d", problem, resp.status)
			}
			if line["client_ip"] != "127.0.0.1" || line["method"] != tc.req.method {
				t.Errorf("client_ip %v method %v", line["client_ip"], line["method"])
			}
			if ua, _ := line["user_agent"].(string); len(ua) > 203 {
				t.Errorf("user_agent is %d bytes, want it clipped to 200 and an ellipsis", len(ua))
			}
			if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms = %v", line["duration_ms"])
			}
		})
	}
}

// TestAccessLogRedactsBeforeItClips: a token in an unrouted path or in the
// User-Agent is removed whole before the value is clipped. Clipped first, a
// long token lost its signature and no longer looked like a token, so its
// header and part of its payload (the user id) reached the log.
func TestAccessLogRedactsBeforeItClips(t *testing.T) {
	t.Parallel()
	var logs grpctest.SyncBuffer
	h := newHarness(t, func(o *options) { o.edge.AccessLog = telemetry.NewLogger(&logs, slog.LevelInfo) })
	tok := h.env.Token(t, ownerID, "user")
	if len(tok) < 200 {
		t.Fatalf("token is %d bytes; the test needs one longer than the 200-byte clip", len(tok))
	}
	header, payload, _ := strings.Cut(tok, ".")
	payload, _, _ = strings.Cut(payload, ".")
	tests := []struct {
		id, path, userAgent string
		key, want           string
	}{
		{"path", "/nonexistent/" + tok, "", "path", "/nonexistent/" + telemetry.Redacted},
		{"user-agent", "/healthz", "probe/1.0 " + tok, "user_agent", "probe/1.0 " + telemetry.Redacted},
	}
	for _, tt := range tests {
		hdr := map[string]string{"X-Request-Id": tt.id}
		if tt.userAgent != "" {
			hdr["User-Agent"] = tt.userAgent
		}
		h.do(t, h.h2, request{method: "GET", path: tt.path, headers: hdr})
	}
	h.h2.CloseIdleConnections()
	text := logs.String()
	for _, part := range []string{header, payload[:16]} {
		if strings.Contains(text, part) {
			t.Errorf("access log holds part of the token (%s):\n%s", part, text)
		}
	}
	lines := accessLines(t, text)
	for _, tt := range tests {
		if got := lines[tt.id][tt.key]; got != tt.want {
			t.Errorf("%s of request %s = %.80q, want %q", tt.key, tt.id, got, tt.want)
		}
	}
}
