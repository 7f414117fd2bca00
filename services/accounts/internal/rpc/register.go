// Package rpc is the accounts service's gRPC surface: it translates
// accountsv1 messages to domain calls and back. Authentication, roles,
// input validation and the ownership check have already run in the
// platform's interceptor chain (platform/grpcserver) when a handler is
// called; errors are returned as domain error kinds and turned into gRPC
// statuses there, once.
//
// The whole API of the service, and who may call what, is in
// proto/bank/accounts/v1/accounts.proto; Register is the one place it is
// wired.
package rpc

import (
	"google.golang.org/grpc"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// Register adds the AccountsService, backed by svc, to s:
//
//	OpenAccount      POST /v1/accounts                        user, manager, admin
//	ListAccounts     GET  /v1/accounts                        user, manager, admin (ownerId: manager, admin)
//	GetAccount       GET  /v1/accounts/{accountId}            owner, manager, admin (404 to anyone else)
//	FreezeAccount    POST /v1/accounts/{accountId}:freeze     manager, admin
//	UnfreezeAccount  POST /v1/accounts/{accountId}:unfreeze   manager, admin
//
// The server must be built with svc as its OwnerResolver (svc.Owners) for
// GetAccount's ownership rule, and as its Config.Denials: ListAccounts
// returns its own denial (a plain user naming another owner) as an
// *rbac.Denied, which the chain counts and audits exactly as its own.
func Register(s grpc.ServiceRegistrar, svc *domain.Service) {
	accountsv1.RegisterAccountsServiceServer(s, &server{svc: svc})
}
