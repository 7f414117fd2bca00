// Package rbac turns each RPC's access rule (the bank.authz.v1.access method
// option in proto/) into decisions: which calling services may reach it,
// whether an end-user token is needed, which roles may call it, and whether
// the caller must own the resource it addresses.
//
// It denies by default: a method without a rule, or with a rule that does not
// say exactly one of public, service_only or roles, has no Rule and is
// refused by every interceptor that asks.
package rbac

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bastion-bank/bastion/platform/identity"
)

// AnyCaller in Rule.Callers admits every service with a valid platform
// certificate. Only infrastructure methods (health checks) use it.
const AnyCaller = "*"

// Rule is the checked access rule of one RPC.
type Rule struct {
	Method      string            // full method name, "/pkg.Service/Method"
	Public      bool              // no end-user token needed
	ServiceOnly bool              // internal: no end-user token, named callers only
	Roles       []string          // the user must hold one of these
	Owner       *Ownership        // the user must own the addressed resource
	StaffMFA    *StaffMFA         // a staff operation: staff need a second factor
	Callers     []string          // calling services allowed (by mTLS identity)
	RateClass   authzv1.RateClass // the edge rate-limit budget
	input       protoreflect.MessageDescriptor
}

// StaffMFA is the staff_mfa part of a rule (see CheckMFA).
type StaffMFA struct {
	WhenSet string // the request field that makes a call a staff operation; "" for every call
}

// Ownership is the ownership part of a rule.
type Ownership struct {
	Resource    string   // "account" or "transfer"
	Field       string   // the request field holding the resource id
	BypassRoles []string // roles exempt from the check
}

var (
	serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	roleNames   = map[authzv1.Role]string{
		authzv1.Role_ROLE_USER:    identity.RoleUser,
		authzv1.Role_ROLE_MANAGER: identity.RoleManager,
		authzv1.Role_ROLE_ADMIN:   identity.RoleAdmin,
	}
)

// infrastructure holds the rules of methods that are not Bastion's own and so
// carry no option: the standard health service, open to any platform peer.
var infrastructure = map[string]Rule{
	"/grpc.health.v1.Health/Check": {Method: "/grpc.health.v1.Health/Check", Public: true, Callers: []string{AnyCaller}},
	"/grpc.health.v1.Health/Watch": {Method: "/grpc.health.v1.Health/Watch", Public: true, Callers: []string{AnyCaller}},
	"/grpc.health.v1.Health/List":  {Method: "/grpc.health.v1.Health/List", Public: true, Callers: []string{AnyCaller}},
}

// RuleFor returns the checked rule of a full method name such as
// "/bank.accounts.v1.AccountsService/GetAccount", reading the option from the
// global proto registry. It returns an error if the method is unknown, has no
// rule, or has a rule that is not well formed.
func RuleFor(fullMethod string) (Rule, error) {
	if r, ok := infrastructure[fullMethod]; ok {
		return r, nil
	}
	svc, method, ok := splitMethod(fullMethod)
	if !ok {
		return Rule{}, fmt.Errorf("rbac: malformed method name %q", fullMethod)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return Rule{}, fmt.Errorf("rbac: %s: unknown service", fullMethod)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return Rule{}, fmt.Errorf("rbac: %s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return Rule{}, fmt.Errorf("rbac: %s: unknown method", fullMethod)
	}
	return ruleOf(fullMethod, md)
}

// RuleOf returns the checked rule of a method descriptor.
func RuleOf(md protoreflect.MethodDescriptor) (Rule, error) {
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	return ruleOf(full, md)
}

func ruleOf(full string, md protoreflect.MethodDescriptor) (Rule, error) {
	opts := md.Options()
	if opts == nil || !proto.HasExtension(opts, authzv1.E_Access) {
		return Rule{}, fmt.Errorf("rbac: %s has no access rule", full)
	}
	ar, _ := proto.GetExtension(opts, authzv1.E_Access).(*authzv1.AccessRule)
	if ar == nil {
		return Rule{}, fmt.Errorf("rbac: %s has no access rule", full)
	}
	r := Rule{
		Method:      full,
		Public:      ar.GetPublic(),
		ServiceOnly: ar.GetServiceOnly(),
		Callers:     slices.Clone(ar.GetCallers()),
		RateClass:   ar.GetRateClass(),
		input:       md.Input(),
	}
	for _, role := range ar.GetRoles() {
		name, ok := roleNames[role]
		if !ok {
			return Rule{}, fmt.Errorf("rbac: %s: unknown role %v", full, role)
		}
		r.Roles = append(r.Roles, name)
	}
	if o := ar.GetOwner(); o != nil {
		own := &Ownership{Resource: o.GetResource(), Field: o.GetField()}
		for _, role := range o.GetBypassRoles() {
			name, ok := roleNames[role]
			if !ok {
				return Rule{}, fmt.Errorf("rbac: %s: unknown bypass role %v", full, role)
			}
			own.BypassRoles = append(own.BypassRoles, name)
		}
		r.Owner = own
	}
	if m := ar.GetStaffMfa(); m != nil {
		r.StaffMFA = &StaffMFA{WhenSet: m.GetWhenSet()}
	}
	if len(r.Callers) == 0 && !r.ServiceOnly {
		r.Callers = []string{"gateway"}
	}
	return r, r.check()
}

// check enforces the shape of a rule, so that a typo in a .proto file fails
// at start-up instead of opening an RPC.
func (r Rule) check() error {
	kinds := 0
	for _, set := range []bool{r.Public, r.ServiceOnly, len(r.Roles) > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("rbac: %s: a rule must set exactly one of public, service_only or roles", r.Method)
	}
	if r.ServiceOnly && len(r.Callers) == 0 {
		return fmt.Errorf("rbac: %s: service_only rule names no callers", r.Method)
	}
	for _, c := range r.Callers {
		if !serviceName.MatchString(c) {
			return fmt.Errorf("rbac: %s: bad caller name %q", r.Method, c)
		}
	}
	if err := r.checkStaffMFA(); err != nil {
		return err
	}
	if r.Owner == nil {
		return nil
	}
	if len(r.Roles) == 0 {
		return fmt.Errorf("rbac: %s: an ownership rule needs roles", r.Method)
	}
	if r.Owner.Resource == "" {
		return fmt.Errorf("rbac: %s: ownership rule names no resource", r.Method)
	}
	f := r.input.Fields().ByName(protoreflect.Name(r.Owner.Field))
	if f == nil || f.Kind() != protoreflect.StringKind || f.IsList() || f.IsMap() {
		return fmt.Errorf("rbac: %s: ownership field %q is not a string field of %s", r.Method, r.Owner.Field, r.input.FullName())
	}
	return nil
}

// checkStaffMFA: a staff operation has a user to ask, and its field exists.
func (r Rule) checkStaffMFA() error {
	if r.StaffMFA == nil {
		return nil
	}
	if len(r.Roles) == 0 {
		return fmt.Errorf("rbac: %s: a staff_mfa rule needs roles", r.Method)
	}
	if r.StaffMFA.WhenSet == "" {
		return nil
	}
	f := r.input.Fields().ByName(protoreflect.Name(r.StaffMFA.WhenSet))
	if f == nil || f.Kind() != protoreflect.StringKind || f.IsList() || f.IsMap() {
		return fmt.Errorf("rbac: %s: staff_mfa field %q is not a string field of %s", r.Method, r.StaffMFA.WhenSet, r.input.FullName())
	}
	return nil
}

// AllowsCaller reports whether the calling service may reach the RPC.
func (r Rule) AllowsCaller(service string) bool {
	if service == "" {
		return false
	}
	return slices.Contains(r.Callers, AnyCaller) || slices.Contains(r.Callers, service)
}

// NeedsUser reports whether the RPC needs a verified end-user token.
func (r Rule) NeedsUser() bool { return !r.Public && !r.ServiceOnly }

func splitMethod(full string) (svc, method string, ok bool) {
	if !strings.HasPrefix(full, "/") {
		return "", "", false
	}
	svc, method, ok = strings.Cut(full[1:], "/")
	return svc, method, ok && svc != "" && method != "" && !strings.Contains(method, "/")
}
