package rpc

import (
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// PublicKeys returns the public verification keys (tokens.Keys).
type PublicKeys interface {
	PublicKeys() []token.JWK
}

// Register adds the auth service's whole API to s: every RPC the service
// answers is one of these two services, each guarded by the access rule in
// proto/bank/auth/v1/auth.proto.
//
//	bank.auth.v1.AuthService:       Register, Login, LoginMFA, Refresh (public,
//	                                gateway only)
//	                                Logout, GetMe, ChangePassword, ListSessions,
//	                                RevokeSession, EnrollTOTP, VerifyTOTP (any
//	                                signed-in user)
//	                                SetUserRoles, ListUsers, DisableUser,
//	                                EnableUser (admin)
//	                                GetJWKS (gateway, accounts, transactions)
//	bank.auth.v1.RevocationService: WatchRevocations (gateway, accounts, transactions)
func Register(s grpc.ServiceRegistrar, svc *domain.Service, keys PublicKeys, revs *domain.Revocations) {
	authv1.RegisterAuthServiceServer(s, &AuthServer{svc: svc, keys: keys})
	authv1.RegisterRevocationServiceServer(s, &RevocationServer{revs: revs})
}

// jwksToProto copies the public keys into the response. token.JWK has no
// private field to copy by mistake; the JWK message has none to fill.
func jwksToProto(keys []token.JWK) *authv1.GetJWKSResponse {
	out := &authv1.GetJWKSResponse{Keys: make([]*authv1.JWK, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, &authv1.JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Alg: k.Alg, Use: k.Use})
	}
	return out
}
