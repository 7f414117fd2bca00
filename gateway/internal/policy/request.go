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

// authenticate verifies the one bearer token of the request. Every failure
// is the same Unauthenticated error; the reason goes to the counters only.
func (p *Policy) authenticate(ctx context.Context, st *edge.State) (string, identity.User, error) {
	if len(st.Authorization) == 0 {
		p.cfg.Counters.TokenRejected(ctx, "missing")
		return "", identity.User{}, errs.Reasoned(errs.Unauthenticated, "missing", "authentication required")
	}
	if len(st.Authorization) > 1 {
		p.cfg.Counters.TokenRejected(ctx, "multiple")
		return "", identity.User{}, errs.Reasoned(errs.Unauthenticated, "multiple", "invalid token")
	}
	raw, ok := token.ParseBearer(st.Authorization[0])
	if !ok {
		p.cfg.Counters.TokenRejected(ctx, "malformed")
		return "", identity.User{}, errs.Reasoned(errs.Unauthenticated, "malformed", "invalid token")
	}
	user, err := p.cfg.Verifier.Verify(ctx, raw)
	if err != nil {
		reason := "invalid"
		if e, ok := errs.As(err); ok && e.Reason != "" {
			reason = e.Reason
		}
		p.cfg.Counters.TokenRejected(ctx, reason)
		return "", identity.User{}, errs.Wrap(errs.Unauthenticated, "invalid token", err)
	}
	if user.ID == "" {
		p.cfg.Counters.TokenRejected(ctx, "no_subject")
		return "", identity.User{}, errs.Reasoned(errs.Unauthenticated, "no_subject", "invalid token")
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
