// Package rpc serves the ledger over gRPC: TransactionsService for end users
// (through the gateway) and LedgerService for the accounts service. The
// platform's interceptors have authenticated the caller, applied the access
// rule from the .proto (roles, ownership through the service's resolver,
// calling services) and validated the request before a handler runs;
// handlers translate between proto and the domain (a replayed idempotency
// key becomes a response header and a security event), and nothing else.
package rpc

import (
	"google.golang.org/grpc"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/telemetry"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// Register adds the ledger's services to s. The whole API:
//
//	TransactionsService (end users, via the gateway)
//	  CreateTransfer   POST /v1/transfers                         owner of the source
//	  GetTransfer      GET  /v1/transfers/{id}                    owner of either side, manager, admin
//	  ApproveTransfer  POST /v1/transfers/{id}:approve            manager, admin; never the initiator
//	  RejectTransfer   POST /v1/transfers/{id}:reject             manager, admin; never the initiator
//	  ListTransactions GET  /v1/accounts/{id}/transactions        owner, manager, admin
//	  CreateDeposit    POST /v1/accounts/{id}/deposits            manager, admin
//	LedgerService (internal: the accounts service only)
//	  OpenLedgerAccount, SetLedgerAccountStatus, GetBalances
//
// events (the
// process's platform/telemetry Security, or nil for none) is told of every
// replayed or reused idempotency key.
func Register(s *grpc.Server, svc *domain.Service, events domain.Metrics) {
	if events == nil {
		events = (*telemetry.Security)(nil) // counts nothing
	}
	transactionsv1.RegisterTransactionsServiceServer(s, &transactions{svc: svc, events: events})
	transactionsv1.RegisterLedgerServiceServer(s, &ledger{svc: svc})
}
