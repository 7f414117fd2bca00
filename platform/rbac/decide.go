package rbac

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// OwnerResolver finds who owns a resource. Each service supplies one for the
// resources its rules name; the platform calls it, so a handler can never
// forget the check.
type OwnerResolver interface {
	// Owners returns the ids of the users who own the resource (an account has
	// one owner, a transfer the owners of both sides), or an error of kind
	// errs.NotFound if there is no such resource.
	Owners(ctx context.Context, resource, id string) ([]string, error)
}

// OwnerFunc adapts a function to OwnerResolver.
type OwnerFunc func(ctx context.Context, resource, id string) ([]string, error)

// Owners calls f.
func (f OwnerFunc) Owners(ctx context.Context, resource, id string) ([]string, error) {
	return f(ctx, resource, id)
}

// Denial reasons, used as metric labels.
const (
	ReasonNoRule    = "no_rule"
	ReasonCaller    = "caller_not_allowed"
	ReasonRole      = "role"
	ReasonNotOwner  = "not_owner"
	ReasonNoUser    = "no_user"
	ReasonNoOwnerFn = "no_owner_resolver"
)

// Denied is returned by the decision functions. Its kind is Permission for a
// missing role and NotFound for someone else's resource: docs/api.md promises a
// 404 there, identical to a missing id, so that existence never leaks.
type Denied struct {
	Reason string
	Err    *errs.Error
}

func (d *Denied) Error() string { return "access denied: " + d.Reason }

// Unwrap exposes the errs.Error so the transport maps the kind.
func (d *Denied) Unwrap() error { return d.Err }

func deny(reason string, kind errs.Kind, msg string) error {
	return &Denied{Reason: reason, Err: errs.New(kind, msg)}
}

// CheckRoles decides the role part of the rule for user.
func (r Rule) CheckRoles(user identity.User) error {
	if !r.NeedsUser() {
		return nil
	}
	if user.ID == "" {
		return deny(ReasonNoUser, errs.Unauthenticated, "authentication required")
	}
	if !user.HasAnyRole(r.Roles...) {
		return deny(ReasonRole, errs.Permission, "permission denied")
	}
	return nil
}

// CheckOwner decides the ownership part of the rule for user and the request
// message, asking owners who owns the addressed resource. It must run after
// input validation, so that the id handed to the resolver is well formed.
func (r Rule) CheckOwner(ctx context.Context, user identity.User, req proto.Message, owners OwnerResolver) error {
	if r.Owner == nil {
		return nil
	}
	if user.HasAnyRole(r.Owner.BypassRoles...) {
		return nil
	}
	if owners == nil {
		return &Denied{Reason: ReasonNoOwnerFn, Err: errs.Wrap(errs.Internal, "", fmt.Errorf("rbac: %s needs an owner resolver", r.Method))}
	}
	m := req.ProtoReflect()
	f := m.Descriptor().Fields().ByName(protoreflect.Name(r.Owner.Field))
	if f == nil {
		return &Denied{Reason: ReasonNoRule, Err: errs.Wrap(errs.Internal, "", fmt.Errorf("rbac: %s: field %q missing", r.Method, r.Owner.Field))}
	}
	id := m.Get(f).String()
	ids, err := owners.Owners(ctx, r.Owner.Resource, id)
	if errs.KindOf(err) == errs.NotFound {
		return deny(ReasonNotOwner, errs.NotFound, r.Owner.Resource+" not found")
	}
	if err != nil {
		return fmt.Errorf("resolve owner of %s: %w", r.Owner.Resource, err)
	}
	if !slices.Contains(ids, user.ID) {
		return deny(ReasonNotOwner, errs.NotFound, r.Owner.Resource+" not found")
	}
	return nil
}
