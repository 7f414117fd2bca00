package server

import (
	"errors"
	"io"
	"strings"
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

func TestJSONDecoderIsStrict(t *testing.T) {
	t.Parallel()
	m := newJSONMarshaler()
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
