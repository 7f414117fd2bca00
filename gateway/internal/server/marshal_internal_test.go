package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

func TestJSONDecoderIsStrict(t *testing.T) {
	t.Parallel()
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	tests := []struct {
		name string
		body string
		want error
	}{
		{"valid", `{"email":"a@example.com","password":"p"}`, nil},
		{"empty body is the empty message", "", io.EOF},
		{"blank body is the empty message", " \n", io.EOF},
		{"unknown field", `{"email":"a","admin":true}`, errMalformedBody},
		{"trailing value", `{"email":"a"}{"email":"b"}`, errMalformedBody},
		{"trailing garbage", `{"email":"a"} x`, errMalformedBody},
		{"duplicate field", `{"email":"a","email":"b"}`, errMalformedBody},
		{"null", `null`, errMalformedBody},
		{"wrong type", `{"email":5}`, errMalformedBody},
		{"invalid UTF-8", "{\"email\":\"\xff\"}", errMalformedBody},
		{"proto name instead of the JSON name", `{"email":"a","pass_word":"p"}`, errMalformedBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req authv1.LoginRequest
			err := m.NewDecoder(strings.NewReader(tc.body)).Decode(&req)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode(%q) = %v, want %v", tc.body, err, tc.want)
			}
			if tc.body != "" && tc.want == nil {
				if err := m.Unmarshal([]byte(tc.body), &req); err != nil {
					t.Errorf("Unmarshal(%q) = %v", tc.body, err)
				}
			}
		})
	}
	if err := m.Unmarshal([]byte(`{"x":1}`), &authv1.LoginRequest{}); !errors.Is(err, errMalformedBody) {
		t.Errorf("Unmarshal(unknown field) = %v, want errMalformedBody", err)
	}
	if err := m.Unmarshal([]byte(`{}`), new(string)); !errors.Is(err, errMalformedBody) {
		t.Errorf("Unmarshal(into a non-message) = %v, want errMalformedBody", err)
	}
	out, err := m.Marshal(&authv1.LoginResponse{AccessToken: "a", ExpiresIn: 0})
	if err != nil || string(out) != `{"accessToken":"a","refreshToken":"","tokenType":"","expiresIn":0}` {
		t.Errorf("Marshal = %s, %v; want lowerCamelCase with every field of the shape present", out, err)
	}
	unset := "" // approvedBy has presence: absent until set, even though zero values are emitted
	out, _ = m.Marshal(&transactionsv1.Transfer{Id: "t"})
	if strings.Contains(string(out), "approvedBy") || !strings.Contains(string(out), `"amount":"0"`) {
		t.Errorf("Marshal(transfer) = %s; want amount \"0\" and no approvedBy", out)
	}
	out, _ = m.Marshal(&transactionsv1.Transfer{Id: "t", ApprovedBy: &unset})
	if !strings.Contains(string(out), `"approvedBy":""`) {
		t.Errorf("Marshal(transfer with approvedBy) = %s", out)
	}
}

// TestJSONDecoderHoldsBodiesToAPIShapes: a body may name only the fields
// docs/api.md lists for its route, spelled as docs/api.md spells them. Path parameters
// and the Idempotency-Key header are not body fields, and protojson's other
// spelling of a name (the proto name) is not one either.
func TestJSONDecoderHoldsBodiesToAPIShapes(t *testing.T) {
	t.Parallel()
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	const id = "5f0c6a52-8a6b-4c55-9d6e-2f4a1b7e9c10"
	tests := []struct {
		name string
		msg  proto.Message
		body string
		ok   bool
	}{
		{"transfer as documented", &transactionsv1.CreateTransferRequest{}, `{"fromAccountId":"` + id + `","toAccountId":"` + id + `","amount":"5","currency":"EUR","description":"d"}`, true},
		{"transfer with the idempotency key in the body", &transactionsv1.CreateTransferRequest{}, `{"amount":"5","idempotencyKey":"k"}`, false},
		{"transfer with snake_case names", &transactionsv1.CreateTransferRequest{}, `{"from_account_id":"` + id + `","amount":"5"}`, false},
		{"freeze as documented", &accountsv1.FreezeAccountRequest{}, `{"reason":"r"}`, true},
		{"freeze naming the path's account", &accountsv1.FreezeAccountRequest{}, `{"reason":"r","accountId":"` + id + `"}`, false},
		{"approve as documented", &transactionsv1.ApproveTransferRequest{}, `{}`, true},
		{"approve naming the path's transfer", &transactionsv1.ApproveTransferRequest{}, `{"transferId":"` + id + `"}`, false},
		{"deposit as documented", &transactionsv1.CreateDepositRequest{}, `{"amount":5,"currency":"EUR","reference":"r"}`, true},
		{"deposit naming the path's account", &transactionsv1.CreateDepositRequest{}, `{"amount":5,"currency":"EUR","reference":"r","accountId":"` + id + `"}`, false},
		{"deposit with the idempotency key in the body", &transactionsv1.CreateDepositRequest{}, `{"amount":5,"idempotencyKey":"k"}`, false},
		{"roles as documented", &authv1.SetUserRolesRequest{}, `{"roles":["user"]}`, true},
		{"roles naming the path's user", &authv1.SetUserRolesRequest{}, `{"roles":["user"],"userId":"` + id + `"}`, false},
		{"open account with the proto name", &accountsv1.OpenAccountRequest{}, `{"currency":"EUR","display_name":"x"}`, false},
		{"open account as documented", &accountsv1.OpenAccountRequest{}, `{"currency":"EUR","displayName":"x"}`, true},
		{"null for an optional field", &accountsv1.OpenAccountRequest{}, `{"currency":"EUR","displayName":null}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := m.NewDecoder(strings.NewReader(tc.body)).Decode(tc.msg)
			if (err == nil) != tc.ok {
				t.Errorf("Decode(%s) = %v, want ok %v", tc.body, err, tc.ok)
			}
			if err != nil && !errors.Is(err, errMalformedBody) {
				t.Errorf("Decode(%s) = %v, want errMalformedBody", tc.body, err)
			}
		})
	}
}

// compactCorpus is JSON text with whitespace in every place it may be,
// and strings holding what looks like whitespace, quotes and escapes.
var compactCorpus = []string{
	`{}`, ` { } `, "{\n\t\"a\" : 1 ,\r\n \"b\":[ 1, 2 ,3 ] }", `{"a":"x y"}`, `{"a":" \" , "}`,
	`{"a":"\\","b":" "}`, `{"a":"\\\" "}`, `["a b", "\u0020", "\t"]`, `"only a string"`, ` 5 `,
	`{"a":{"b":{"c":[{}, {"d":null} ]}}}`, `{"é ü":"ü é"}`, "{\"a\":\"\u2028 \u2029\"}", `{"a":"<&>"}`,
}

// TestCompactJSON: compactJSON gives what json.Compact gives, for the
// responses protojson writes and for any JSON text.
func TestCompactJSON(t *testing.T) {
	t.Parallel()
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	desc := "a \"quoted\" , : { } [ ] \\ description\twith\nwhitespace"
	for _, msg := range []proto.Message{
		&transactionsv1.CreateTransferResponse{Transfer: &transactionsv1.Transfer{Id: "t", Amount: 5, Description: desc}},
		&accountsv1.ListAccountsResponse{Accounts: []*accountsv1.Account{{Id: "a", Balance: &accountsv1.Money{Amount: -3}}, {Id: "b"}}},
		&authv1.GetJWKSResponse{},
	} {
		raw, err := m.MarshalOptions.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Marshal(msg)
		var want bytes.Buffer
		if cerr := json.Compact(&want, raw); err != nil || cerr != nil || string(got) != want.String() {
			t.Errorf("Marshal(%T) = %s, %v; want %s", msg, got, err, want.String())
		}
	}
	for _, in := range compactCorpus {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatalf("corpus entry %q is not JSON: %v", in, err)
		}
		if got := compactJSON([]byte(in)); string(got) != want.String() {
			t.Errorf("compactJSON(%q) = %q, want %q", in, got, want.String())
		}
	}
}

// FuzzCompactJSON is TestCompactJSON over any valid JSON text.
func FuzzCompactJSON(f *testing.F) {
	for _, in := range compactCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want bytes.Buffer
		if json.Compact(&want, in) != nil {
			return
		}
		if got := compactJSON(bytes.Clone(in)); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactJSON(%q) = %q, want %q", in, got, want.Bytes())
		}
	})
}
