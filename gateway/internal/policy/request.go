package policy

import (
	"context"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/token"
)

// IdempotencyField is the request field the Idempotency-Key header fills.
// It is never a body field: the JSON decoder refuses it there.
const IdempotencyField = "idempotency_key"

// authenticate verifies the one bearer token of the request
// (token.Authenticate, as every service does again). Every failure is the
// same Unauthenticated error; the reason goes to the counters only.
func (p *Policy) authenticate(ctx context.Context, st *edge.State) (string, identity.User, error) {
	raw, user, reason, err := token.Authenticate(ctx, p.cfg.Verifier, st.Authorization)
	if err != nil {
		p.cfg.Counters.TokenRejected(ctx, reason)
		return "", identity.User{}, err
	}
	return raw, user, nil
}

// setIdempotencyKey copies the Idempotency-Key header into the request's
// idempotency_key field, if it has one. The header always wins: the JSON
// decoder already refuses the field in a body, and should a value get
// through some other way it is replaced, or cleared without the header, so
// that the service's validation reports the missing key (400) instead of
// trusting a body value no client library would think to keep stable.
func setIdempotencyKey(msg proto.Message, keys []string) error {
	m := msg.ProtoReflect()
	f := m.Descriptor().Fields().ByName(IdempotencyField)
	if f == nil || f.Kind() != protoreflect.StringKind || f.Cardinality() == protoreflect.Repeated {
		return nil
	}
	switch {
	case len(keys) == 0:
		m.Clear(f)
	case len(keys) > 1:
		return errs.InvalidField("idempotencyKey", "send exactly one Idempotency-Key header")
	case !utf8.ValidString(keys[0]):
		return errs.InvalidField("idempotencyKey", "Idempotency-Key must be printable ASCII")
	default:
		m.Set(f, protoreflect.ValueOfString(keys[0]))
	}
	return nil
}
