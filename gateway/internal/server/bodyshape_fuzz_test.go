package server

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

// bodyRoutes are the request messages of docs/api.md's routes with a JSON body,
// each with the fields docs/api.md binds from the path or a header and so leaves
// out of the body. The list is written from docs/api.md, not derived from the
// HTTP rules the way bodyShapes is, so that the fuzz target checks the code
// against the contract rather than against itself.
var bodyRoutes = []struct {
	msg        func() proto.Message
	notForBody []string
}{
	{func() proto.Message { return &authv1.RegisterRequest{} }, nil},
	{func() proto.Message { return &authv1.LoginRequest{} }, nil},
	{func() proto.Message { return &authv1.RefreshRequest{} }, nil},
	{func() proto.Message { return &authv1.LogoutRequest{} }, nil},
	{func() proto.Message { return &authv1.SetUserRolesRequest{} }, []string{"userId"}},
	{func() proto.Message { return &accountsv1.OpenAccountRequest{} }, nil},
	{func() proto.Message { return &accountsv1.FreezeAccountRequest{} }, []string{"accountId"}},
	{func() proto.Message { return &accountsv1.UnfreezeAccountRequest{} }, []string{"accountId"}},
	{func() proto.Message { return &transactionsv1.CreateTransferRequest{} }, []string{"idempotencyKey"}},
	{func() proto.Message { return &transactionsv1.ApproveTransferRequest{} }, []string{"transferId"}},
	{func() proto.Message { return &transactionsv1.RejectTransferRequest{} }, []string{"transferId"}},
	{func() proto.Message { return &transactionsv1.CreateDepositRequest{} }, []string{"accountId", "idempotencyKey"}},
}

// FuzzJSONBody decodes arbitrary bytes as the body of each route. The decoder
// must never panic, must refuse with the one fixed malformed-body error, and
// may accept only a JSON object whose every member is a body field of the
// route spelled as docs/api.md spells it; nothing the body did not name, and
// none of the path- or header-bound fields, may end up set.
func FuzzJSONBody(f *testing.F) {
	const id = "5f0c6a52-8a6b-4c55-9d6e-2f4a1b7e9c10"
	seeds := []struct {
		route uint8
		body  string
	}{
		{1, `{"email":"a@example.com","password":"p"}`},
		{1, `{"email":"a","email":"b"}`},
		{1, `{"email":"a"} x`},
		{1, "{\"email\":\"\xff\"}"},
		{1, `{"Email":"a"}`},
		{1, `{"email":"a\u0000"}`},
		{4, `{"roles":["user"]}`},
		{4, `{"roles":["user"],"userId":"` + id + `"}`},
		{5, `{"currency":"EUR","displayName":null}`},
		{5, `{"currency":"EUR","display_name":"x"}`},
		{6, `{"reason":"r","accountId":"` + id + `"}`},
		{8, `{"fromAccountId":"` + id + `","toAccountId":"` + id + `","amount":"5","currency":"EUR","description":"d"}`},
		{8, `{"amount":"1e3","currency":"EUR"}`},
		{8, `{"amount":-1}`},
		{8, `{"amount":"9223372036854775808"}`},
		{8, `{"amount":5,"idempotencyKey":"k"}`},
		{8, `{"amount":5,"idempotency_key":"k"}`},
		{9, `{}`},
		{9, `{"transferId":"` + id + `"}`},
		{11, `{"amount":5,"currency":"EUR","reference":"r","accountId":"` + id + `"}`},
		{11, `[]`},
		{11, `null`},
		{11, `{"amount":{"amount":5}}`},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := bodyRoutes[int(route)%len(bodyRoutes)]
		msg := r.msg()
		err := m.Unmarshal(body, msg)
		if err != nil {
			if !errors.Is(err, errMalformedBody) || err.Error() != errMalformedBody.Error() {
				t.Fatalf("Unmarshal(%q) error = %v, want errMalformedBody", body, err)
			}
			return
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(body, &members); err != nil || members == nil {
			t.Fatalf("Unmarshal(%q) into %T = nil error; want only JSON objects accepted (%v)", body, msg, err)
		}
		fields := msg.ProtoReflect().Descriptor().Fields()
		for name := range members {
			if fields.ByJSONName(name) == nil || slices.Contains(r.notForBody, name) {
				t.Fatalf("Unmarshal(%q) into %T accepted member %q, which is not a body field of docs/api.md", body, msg, name)
			}
		}
		msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if _, named := members[fd.JSONName()]; !named || slices.Contains(r.notForBody, fd.JSONName()) {
				t.Fatalf("Unmarshal(%q) into %T set %s, which the body may not set", body, msg, fd.JSONName())
			}
			return true
		})
	})
}
