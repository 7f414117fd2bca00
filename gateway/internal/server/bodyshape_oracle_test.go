package server

import (
	"encoding/json"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
)

// oracleUnmarshal is the body decoder as it was before the shape check
// became a walk over the bytes: protojson, then every object decoded again
// by encoding/json into a map and its names checked. The tests below hold
// the decoder to the same answers on every body.
func oracleUnmarshal(routes map[protoreflect.FullName]map[string]bool, data []byte, msg proto.Message) error {
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, msg); err != nil {
		return errMalformedBody
	}
	md := msg.ProtoReflect().Descriptor()
	if md.FullName().Parent() != "google.protobuf" && !oracleNames(md, routes[md.FullName()], data) {
		proto.Reset(msg)
		return errMalformedBody
	}
	return nil
}

func oracleNames(md protoreflect.MessageDescriptor, notInBody map[string]bool, data []byte) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return false
	}
	fields := md.Fields()
	for name, raw := range obj {
		f := fields.ByJSONName(name)
		if f == nil || notInBody[name] {
			return false
		}
		if !oracleNested(f, raw) {
			return false
		}
	}
	return true
}

func oracleNested(f protoreflect.FieldDescriptor, raw json.RawMessage) bool {
	if f.Message() == nil || f.IsMap() || f.Message().FullName().Parent() == "google.protobuf" || string(raw) == "null" {
		return true
	}
	if !f.IsList() {
		return oracleNames(f.Message(), nil, raw)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return false
	}
	for _, it := range items {
		if !oracleNames(f.Message(), nil, it) {
			return false
		}
	}
	return true
}

// oracleRoutes is the old bodyShapes: per request message of a route, the
// names its body may not use, read from the HTTP rules.
func oracleRoutes() map[protoreflect.FullName]map[string]bool {
	shapes := map[protoreflect.FullName]map[string]bool{}
	for b := range httprule.All(PublicServices()) {
		in := b.Method.Input()
		notInBody := shapes[in.FullName()]
		if notInBody == nil {
			notInBody = map[string]bool{}
			shapes[in.FullName()] = notInBody
		}
		if f := in.Fields().ByName(policy.IdempotencyField); f != nil {
			notInBody[f.JSONName()] = true
		}
		for _, v := range b.Variables() {
			if f := in.Fields().ByName(protoreflect.Name(v)); f != nil {
				notInBody[f.JSONName()] = true
			}
		}
	}
	return shapes
}

// nodeDescriptor is a message the bank's API does not have but the decoder
// must handle as the old one did: it contains itself (directly, in a list
// and as a map value), and holds a well-known type.
//
//	message Node {
//	  string name = 1; repeated Node children = 2; map<string, Node> index = 3;
//	  Node parent = 4; google.protobuf.Timestamp at = 5; repeated string tags = 6;
//	  int64 size = 7; string custom = 8 [json_name = "renamed"];
//	}
func nodeDescriptor(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	s := proto.String
	i := proto.Int32
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	fd := &descriptorpb.FileDescriptorProto{
		Name: s("oracle/node.proto"), Package: s("oracle"), Syntax: s("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: s("Node"),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: s("name"), Number: i(1), Label: opt, Type: str, JsonName: s("name")},
				{Name: s("children"), Number: i(2), Label: rep, Type: msg, TypeName: s(".oracle.Node"), JsonName: s("children")},
				{Name: s("index"), Number: i(3), Label: rep, Type: msg, TypeName: s(".oracle.Node.IndexEntry"), JsonName: s("index")},
				{Name: s("parent"), Number: i(4), Label: opt, Type: msg, TypeName: s(".oracle.Node"), JsonName: s("parent")},
				{Name: s("at"), Number: i(5), Label: opt, Type: msg, TypeName: s(".google.protobuf.Timestamp"), JsonName: s("at")},
				{Name: s("tags"), Number: i(6), Label: rep, Type: str, JsonName: s("tags")},
				{Name: s("size_bytes"), Number: i(7), Label: opt, Type: i64, JsonName: s("sizeBytes")},
				{Name: s("custom"), Number: i(8), Label: opt, Type: str, JsonName: s("renamed")},
			},
			NestedType: []*descriptorpb.DescriptorProto{{
				Name:    s("IndexEntry"),
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: s("key"), Number: i(1), Label: opt, Type: str, JsonName: s("key")},
					{Name: s("value"), Number: i(2), Label: opt, Type: msg, TypeName: s(".oracle.Node"), JsonName: s("value")},
				},
			}},
		}},
	}
	f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("build the oracle's Node: %v", err)
	}
	return f.Messages().ByName("Node")
}

// oracleMessages are the messages every corpus body is decoded into: each
// route's request, responses with nested messages, lists of them and
// well-known types, and Node.
func oracleMessages(t testing.TB) []func() proto.Message {
	node := nodeDescriptor(t)
	out := []func() proto.Message{
		func() proto.Message { return &accountsv1.ListAccountsResponse{} },
		func() proto.Message { return &accountsv1.GetAccountResponse{} },
		func() proto.Message { return &authv1.ListUsersResponse{} },
		func() proto.Message { return &authv1.GetJWKSResponse{} },
		func() proto.Message { return &transactionsv1.CreateTransferResponse{} },
		func() proto.Message { return timestamppb.New(timestamppb.Now().AsTime()) },
		func() proto.Message { return dynamicpb.NewMessage(node) },
	}
	for _, r := range bodyRoutes {
		out = append(out, r.msg)
	}
	return out
}

// oracleCorpus is every body the comparison decodes into every message of
// oracleMessages: shapes that are right for one message are wrong for the
// others, so the cross product covers accepted and refused bodies alike.
var oracleCorpus = []string{
	``, ` `, `{}`, ` { } `, "\ufeff{}", "{}\ufeff", `null`, ` null `, `[]`, `[{}]`, `""`, `0`, `true`,
	`{"email":"a@example.com","password":"p"}`,
	`{"email":"a@example.com","password":"p","displayName":"A"}`,
	`{"email":"a","email":"b"}`, `{"email":"a"} x`, `{"email":"a"}{"email":"b"}`, `{"email":"a"}null`,
	"{\"email\":\"\xff\"}", "{\"em\xffail\":\"a\"}", `{"Email":"a"}`, `{"email":"a\u0000"}`,
	`{"\u0065mail":"a"}`, `{"em\u0061il":"a","password":"p"}`, `{"email\u0000":"a"}`, `{"e\"mail":"a"}`,
	`{"email":"\ud800"}`, `{"\ud800":"a"}`, `{"email":"\"}"}`, `{"email":"\\"}`, `{"email":"a\/b"}`,
	`{"email":null}`, `{"email":5}`, `{"email":[]}`, `{"email":{}}`, `{ "email" : "a" , "password" : "p" }`,
	"{\n\t\"email\":\r\n\"a\"\n}", `{"email":"a",}`, `{,}`, `{"email"}`, `{"email":}`, `{"email":"a"`,
	`{"roles":["user"]}`, `{"roles":["user","admin"],"userId":"u"}`, `{"roles":[]}`, `{"roles":null}`,
	`{"roles":[null]}`, `{"roles":[1]}`, `{"roles":"user"}`, `{"roles":[["user"]]}`,
	`{"currency":"EUR","displayName":null}`, `{"currency":"EUR","display_name":"x"}`,
	`{"currency":"EUR","displayName":"x","display_name":"y"}`, `{"reason":"r"}`, `{"reason":"r","accountId":"a"}`,
	`{"fromAccountId":"a","toAccountId":"b","amount":"5","currency":"EUR","description":"d"}`,
	`{"amount":"1e3","currency":"EUR"}`, `{"amount":1e3}`, `{"amount":-1}`, `{"amount":"-0"}`, `{"amount":1.0}`,
	`{"amount":1.5}`, `{"amount":"9223372036854775808"}`, `{"amount":9223372036854775807}`, `{"amount":"0x10"}`,
	`{"amount":01}`, `{"amount":+1}`, `{"amount":" 5"}`, `{"amount":0e}`, `{"amount":1E+}`, `{"amount":2e-}`,
	`{"amount":1.}`, `{"amount":.5}`, `{"amount":-}`, `{"amount":1e5}`, `{"amount":1e+2}`, `{"roles":[0e]}`, `{"amount":5,"idempotencyKey":"k"}`,
	`{"amount":5,"idempotency_key":"k"}`, `{"amount":5,"currency":"EUR","reference":"r","accountId":"a"}`,
	`{"amount":{"amount":5}}`, `{"transferId":"t"}`, `{"refreshToken":"r"}`,
	// nested messages, lists of them, well-known types
	`{"accounts":[]}`, `{"accounts":null}`, `{"accounts":[null]}`, `{"accounts":[{}]}`, `{"accounts":{}}`,
	`{"accounts":[{"id":"a","balance":{"currency":"EUR","amount":"5"}}]}`,
	`{"accounts":[{"id":"a","balance":{"currency":"EUR","amount":"5","extra":1}}]}`,
	`{"accounts":[{"id":"a","owner_id":"u"}]}`, `{"accounts":[{"id":"a"},{"id":"b","nope":1}]}`,
	`{"accounts":[{"id":"a","id":"b"}]}`, `{"accounts":[{"balance":{"amount":"1","amount":"2"}}]}`,
	`{"accounts":[{"createdAt":"2024-01-01T00:00:00Z"}]}`, `{"accounts":[{"createdAt":{"seconds":1}}]}`,
	`{"accounts":[{"createdAt":null,"balance":null,"availableBalance":{}}]}`, `{"accounts":[1]}`,
	`{"accounts":[{"balance":[]}]}`, `{"accounts":[{"balance":"5"}]}`, `{"accounts":[[]]}`,
	`{"account":{"id":"a","balance":{"currency":"EUR","amount":"5"}}}`, `{"account":{"Id":"a"}}`,
	`{"account":{"balance":{"\u0061mount":"5"}}}`, `{"account":{"balance":{"am\u006Funt":"5","x":{}}}}`,
	`{"account":null}`, `{"account":{"balance":null}}`, `{"account":{}}`, `{"account":[]}`,
	`{"users":[{"id":"u","roles":["user"],"createdAt":"2024-01-01T00:00:00Z","display_name":"x"}]}`,
	`{"users":[{"roles":null}]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"a","kid":"k","alg":"EdDSA","use":"sig"}]}`,
	`{"keys":[{"kty":"OKP","e":"AQAB"}]}`,
	`{"transfer":{"id":"t","amount":"5","approvedBy":null}}`, `{"transfer":{"approvedBy":"m","approved_by":"m"}}`,
	`"2024-01-01T00:00:00Z"`, `{"seconds":1}`,
	// Node: recursion, maps, json_name, lists of scalars
	`{"name":"n","children":[{"name":"c","children":[{"name":"g"}]}]}`,
	`{"name":"n","children":[{"name":"c","children":[{"nom":"g"}]}]}`,
	`{"parent":{"parent":{"parent":{"name":"root"}}}}`, `{"parent":{"parent":{"parent":{"size_bytes":"1"}}}}`,
	`{"index":{"a":{"name":"x"},"b":{"children":[]}}}`, `{"index":{"a":{"nope":1}}}`, `{"index":{"a":null}}`,
	`{"index":{"a":{"name":"x"},"a":{"name":"y"}}}`, `{"index":{"name":{"name":"x"}}}`, `{"index":[]}`,
	`{"at":"2024-01-01T00:00:00Z","tags":["a","b"],"sizeBytes":"7"}`, `{"size_bytes":7}`, `{"sizeBytes":7,"size_bytes":8}`,
	`{"renamed":"r"}`, `{"custom":"r"}`, `{"tags":[{"x":1}]}`, `{"tags":["a",null]}`, `{"children":[{"tags":["a"]}]}`,
	`{"parent":{"at":{"nested":"x"}}}`, `{"children":[{"index":{"k":{"children":[{"name":"deep"}]}}}]}`,
	`{"children":[{"index":{"k":{"children":[{"nope":"deep"}]}}}]}`,
	`{"children":[{"name":"a"},{"name":"b","name":"c"}]}`, `{"children":[{"name":"a","children":[{"x":1},{"name":"b"}]}]}`,
	`{"name":"{\"x\":1}","tags":["]","}","\"","\\"]}`, `{"name":"a\\","children":[{"name":"\\\""}]}`,
}

// TestBodyCheckAgreesWithTheOracle: every body of the corpus, into every
// message, gets the same answer, and the same message, as from the old
// decoder.
func TestBodyCheckAgreesWithTheOracle(t *testing.T) {
	t.Parallel()
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	routes := oracleRoutes()
	accepted := 0
	for _, newMsg := range oracleMessages(t) {
		for _, body := range oracleCorpus {
			want, got := newMsg(), newMsg()
			wantErr := oracleUnmarshal(routes, []byte(body), want)
			gotErr := m.Unmarshal([]byte(body), got)
			name := got.ProtoReflect().Descriptor().FullName()
			if (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%s %q: error %v, the old decoder's %v", name, body, gotErr, wantErr)
				continue
			}
			if gotErr != nil && !errors.Is(gotErr, errMalformedBody) {
				t.Errorf("%s %q: error %v, want errMalformedBody", name, body, gotErr)
			}
			if !proto.Equal(want, got) {
				t.Errorf("%s %q: decoded %v, the old decoder %v", name, body, got, want)
			}
			if gotErr == nil {
				accepted++
			}
		}
	}
	if accepted < 40 {
		t.Errorf("only %d bodies accepted: the corpus no longer exercises the accepting path", accepted)
	}
}

// FuzzBodyCheckAgreesWithTheOracle is TestBodyCheckAgreesWithTheOracle
// over arbitrary bytes.
func FuzzBodyCheckAgreesWithTheOracle(f *testing.F) {
	msgs := oracleMessages(f)
	for i, body := range oracleCorpus {
		f.Add(uint8(i%len(msgs)), []byte(body))
	}
	m := newJSONMarshaler(newBodyShapes(PublicServices()))
	routes := oracleRoutes()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		newMsg := msgs[int(which)%len(msgs)]
		want, got := newMsg(), newMsg()
		wantErr := oracleUnmarshal(routes, body, want)
		gotErr := m.Unmarshal(body, got)
		if (wantErr == nil) != (gotErr == nil) || !proto.Equal(want, got) {
			t.Fatalf("%T %q: %v (%v), the old decoder %v (%v)", got, body, gotErr, got, wantErr, want)
		}
	})
}
