package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// Fixed ids the stubs know.
const (
	ownerID       = "0b6f3c1e-8a43-4c55-9d5c-2f1e7a9b0c01"
	otherUserID   = "7d2a9e4b-1c3f-4e8a-b6d0-5a4c3b2e1f02"
	ownedAccount  = "5e8c1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c03"
	brokenAccount = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b04"
	takenEmail    = "taken@example.com"
	lockedEmail   = "locked@example.com"
	busyEmail     = "busy@example.com" // the auth stub sheds this login as an overloaded hash pool does
	goodPassword  = "correct horse battery"
	leakedText    = "pq: relation ledger.entries at db-7.internal:5432"
)

// call is what one upstream handler saw.
type call struct {
	method   string
	user     identity.User
	clientIP string
	req      proto.Message
}

// recorder collects what the upstream services received: the raw metadata
// off the wire (before the server chain scrubs it) and what each handler saw.
type recorder struct {
	mu    sync.Mutex
	wire  []metadata.MD
	calls []call
}

func (r *recorder) record(ctx context.Context, method string, req proto.Message) {
	u, _ := identity.UserFrom(ctx)
	ip, _ := identity.ClientIPFrom(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{method: method, user: u, clientIP: ip, req: proto.Clone(req)})
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) Wire() []metadata.MD {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metadata.MD(nil), r.wire...)
}

// The recorder is also a stats.Handler, to see the headers as they arrived.
func (r *recorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (r *recorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r *recorder) HandleConn(context.Context, stats.ConnStats) {}
func (r *recorder) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok && !strings.HasPrefix(h.FullMethod, "/grpc.health") {
		r.mu.Lock()
		r.wire = append(r.wire, h.Header.Copy())
		r.mu.Unlock()
	}
}

// owners resolves the one owned account.
var owners = rbac.OwnerFunc(func(_ context.Context, resource, id string) ([]string, error) {
	if resource == "account" && (id == ownedAccount || id == brokenAccount) {
		return []string{ownerID}, nil
	}
	return nil, errs.New(errs.NotFound, resource+" not found")
})

type authStub struct {
	authv1.UnimplementedAuthServiceServer
	rec *recorder
}

func (s *authStub) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	s.rec.record(ctx, "Register", req)
	if req.GetEmail() == takenEmail {
		return nil, errs.Reasoned(errs.Conflict, "email_taken", "email already registered")
	}
	return &authv1.RegisterResponse{User: &authv1.User{Id: ownerID, Email: req.GetEmail(), DisplayName: req.GetDisplayName(), Roles: []string{"user"}}}, nil
}

func (s *authStub) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	s.rec.record(ctx, "Login", req)
	if req.GetEmail() == lockedEmail {
		return nil, errs.Throttled("login_locked", "too many failed logins", 90*time.Second)
	}
	if req.GetEmail() == busyEmail {
		// What services/auth's password.ErrBusy is: the login was shed
		// before any password was checked.
		return nil, errs.Throttled("hash_pool_busy", "server busy, try again shortly", time.Second)
	}
	if req.GetPassword() != goodPassword {
		return nil, errs.Wrap(errs.Unauthenticated, "invalid email or password", errors.New("argon2id mismatch for user 42"))
	}
	return &authv1.LoginResponse{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer", ExpiresIn: 900}, nil
}

// Refresh refuses every refresh token, as auth does a spent or revoked one.
func (s *authStub) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	s.rec.record(ctx, "Refresh", req)
	return nil, errs.New(errs.Unauthenticated, "invalid refresh token")
}

func (s *authStub) GetMe(ctx context.Context, req *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	s.rec.record(ctx, "GetMe", req)
	u, _ := identity.UserFrom(ctx)
	return &authv1.GetMeResponse{User: &authv1.User{Id: u.ID, Roles: u.Roles}}, nil
}

func (s *authStub) SetUserRoles(ctx context.Context, req *authv1.SetUserRolesRequest) (*authv1.SetUserRolesResponse, error) {
	s.rec.record(ctx, "SetUserRoles", req)
	return &authv1.SetUserRolesResponse{User: &authv1.User{Id: req.GetUserId(), Roles: req.GetRoles()}}, nil
}

func (s *authStub) GetJWKS(ctx context.Context, req *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	s.rec.record(ctx, "GetJWKS", req)
	return &authv1.GetJWKSResponse{}, nil
}

type accountsStub struct {
	accountsv1.UnimplementedAccountsServiceServer
	rec *recorder
}

func (s *accountsStub) GetAccount(ctx context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	s.rec.record(ctx, "GetAccount", req)
	if req.GetAccountId() == brokenAccount {
		return nil, errs.Wrap(errs.Internal, leakedText, errors.New(leakedText))
	}
	return &accountsv1.GetAccountResponse{Account: &accountsv1.Account{
		Id: req.GetAccountId(), OwnerId: ownerID, Currency: "EUR", Status: "ACTIVE",
		Balance: &accountsv1.Money{Currency: "EUR", Amount: 9007199254740993},
	}}, nil
}

func (s *accountsStub) ListAccounts(ctx context.Context, req *accountsv1.ListAccountsRequest) (*accountsv1.ListAccountsResponse, error) {
	s.rec.record(ctx, "ListAccounts", req)
	return &accountsv1.ListAccountsResponse{}, nil
}

type transactionsStub struct {
	transactionsv1.UnimplementedTransactionsServiceServer
	rec *recorder
}

func (s *transactionsStub) CreateTransfer(ctx context.Context, req *transactionsv1.CreateTransferRequest) (*transactionsv1.CreateTransferResponse, error) {
	s.rec.record(ctx, "CreateTransfer", req)
	switch {
	case req.GetAmount() > 1_000_000:
		return nil, errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds")
	case req.GetIdempotencyKey() == "in-flight":
		return nil, errs.Reasoned(errs.Conflict, "idempotency_in_flight", "a request with this Idempotency-Key is still in progress")
	case req.GetIdempotencyKey() == "replay":
		if err := grpc.SetHeader(ctx, metadata.Pairs("idempotent-replayed", "true", "x-internal-shard", "db-7")); err != nil {
			return nil, err
		}
	}
	return &transactionsv1.CreateTransferResponse{Transfer: &transactionsv1.Transfer{
		Id: "t1", FromAccountId: req.GetFromAccountId(), ToAccountId: req.GetToAccountId(),
		Amount: req.GetAmount(), Currency: req.GetCurrency(), Status: "COMPLETED",
	}}, nil
}
