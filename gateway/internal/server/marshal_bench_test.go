package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/benchcpu"
)

// BenchmarkJSONDecode measures the request body decoder alone: the strict
// checks and the protojson decode of one body, as grpc-gateway calls it.
//
//	go test -run '^$' -bench BenchmarkJSONDecode -benchmem -count 6 ./gateway/internal/server/
func BenchmarkJSONDecode(b *testing.B) {
	const id = "5f0c6a52-8a6b-4c55-9d6e-2f4a1b7e9c10"
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	cases := []struct {
		name string
		msg  func() proto.Message
		body string
	}{
		{"transfer", func() proto.Message { return &transactionsv1.CreateTransferRequest{} },
			`{"fromAccountId":"` + id + `","toAccountId":"` + id + `","amount":"100","currency":"EUR","description":"rent"}`},
		{"register", func() proto.Message { return &authv1.RegisterRequest{} },
			`{"email":"someone@example.com","password":"correct horse battery staple","displayName":"Someone"}`},
		{"open-account", func() proto.Message { return &accountsv1.OpenAccountRequest{} },
			`{"currency":"EUR","displayName":"savings"}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			before := benchcpu.Time(b)
			for b.Loop() {
				if err := m.NewDecoder(strings.NewReader(c.body)).Decode(c.msg()); err != nil {
					b.Fatal(err)
				}
			}
			benchcpu.Report(b, before)
		})
	}
}

// BenchmarkJSONEncode measures the response encoder: protojson and the
// compaction to one stable form.
func BenchmarkJSONEncode(b *testing.B) {
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	desc := "rent"
	resp := &transactionsv1.CreateTransferResponse{Transfer: &transactionsv1.Transfer{
		Id: "0b6f3c1e-8a43-4c55-9d5c-2f1e7a9b0c01", FromAccountId: "5e8c1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c03",
		ToAccountId: "7d2a9e4b-1c3f-4e8a-b6d0-5a4c3b2e1f02", Amount: 100, Currency: "EUR", Status: "COMPLETED",
		Description: desc,
	}}
	b.ReportAllocs()
	before := benchcpu.Time(b)
	for b.Loop() {
		if _, err := m.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
	benchcpu.Report(b, before)
}
