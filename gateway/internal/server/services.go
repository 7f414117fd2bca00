package server

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

// Service is one gRPC service whose HTTP routes the gateway serves. Its
// entry in services is the only place the gateway names it: the routes, the
// policy's rules, the OpenAPI document, the upstream connection, /readyz and
// the address variable all follow from it (docs/adding-a-service.md).
type Service struct {
	// Name is the service's platform identity: the SPIFFE name the gateway
	// requires of its certificate, its key in Upstreams and its name in
	// /readyz.
	Name string
	// AddrVar is the variable holding its address, and DefaultAddr the
	// address it has in the dev stack when that variable is unset.
	AddrVar, DefaultAddr string
	// Descriptor is the service in its .proto: each method's HTTP mapping,
	// access rule and input rules.
	Descriptor protoreflect.ServiceDescriptor
	// Register mounts the service's generated grpc-gateway routes on mux,
	// each calling the service over conn.
	Register func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
}

// services is every upstream, in the order the gateway dials them. To put a
// new service behind the gateway, add its entry here.
var services = []Service{
	{
		Name: "auth", AddrVar: "BANK_AUTH_ADDR", DefaultAddr: "127.0.0.1:9101",
		Descriptor: authv1.File_bank_auth_v1_auth_proto.Services().ByName("AuthService"),
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return authv1.RegisterAuthServiceHandlerClient(ctx, mux, authv1.NewAuthServiceClient(conn))
		},
	},
	{
		Name: "accounts", AddrVar: "BANK_ACCOUNTS_ADDR", DefaultAddr: "127.0.0.1:9102",
		Descriptor: accountsv1.File_bank_accounts_v1_accounts_proto.Services().ByName("AccountsService"),
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return accountsv1.RegisterAccountsServiceHandlerClient(ctx, mux, accountsv1.NewAccountsServiceClient(conn))
		},
	},
	{
		Name: "transactions", AddrVar: "BANK_TRANSACTIONS_ADDR", DefaultAddr: "127.0.0.1:9103",
		Descriptor: transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("TransactionsService"),
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return transactionsv1.RegisterTransactionsServiceHandlerClient(ctx, mux, transactionsv1.NewTransactionsServiceClient(conn))
		},
	},
}

// Services returns the services behind the gateway, a copy the caller may
// keep.
func Services() []Service {
	return append([]Service(nil), services...)
}

// PublicServices are the descriptors of Services. The policy loads the rule
// of each of their methods at start-up, and the OpenAPI document lists
// their routes.
func PublicServices() []protoreflect.ServiceDescriptor {
	out := make([]protoreflect.ServiceDescriptor, len(services))
	for i, s := range services {
		out[i] = s.Descriptor
	}
	return out
}

// Upstreams are the connections to the services, made with
// platform/grpcclient (mTLS, deadlines, error kinds), keyed by Service.Name.
type Upstreams map[string]grpc.ClientConnInterface

// check reports the first service of Services that has no connection.
func (u Upstreams) check() error {
	for _, s := range services {
		if u[s.Name] == nil {
			return fmt.Errorf("server: no upstream connection for the %s service", s.Name)
		}
	}
	return nil
}
