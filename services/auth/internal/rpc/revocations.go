package rpc

import (
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// RevocationServer implements authv1.RevocationServiceServer.
type RevocationServer struct {
	authv1.UnimplementedRevocationServiceServer
	revs *domain.Revocations
}

// WatchRevocations sends every revocation in force as one snapshot message,
// then each new batch as it happens, until the caller goes away. A watcher
// that falls too far behind is cut off with UNAVAILABLE; it reconnects and
// gets a fresh snapshot, so nothing is lost.
func (s *RevocationServer) WatchRevocations(_ *authv1.WatchRevocationsRequest, stream grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	snapshot, sub := s.revs.Subscribe()
	defer sub.Close()
	if err := stream.Send(&authv1.WatchRevocationsResponse{Snapshot: true, Revocations: revocationsToProto(snapshot)}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case batch, ok := <-sub.Updates():
			if !ok {
				return errs.New(errs.Unavailable, "revocation watcher fell behind; reconnect")
			}
			if err := stream.Send(&authv1.WatchRevocationsResponse{Revocations: revocationsToProto(batch)}); err != nil {
				return err
			}
		}
	}
}

func revocationsToProto(revs []domain.Revocation) []*authv1.Revocation {
	out := make([]*authv1.Revocation, len(revs))
	for i, v := range revs {
		out[i] = &authv1.Revocation{TokenId: v.TokenID, ExpiresAt: timestamppb.New(v.ExpiresAt)}
	}
	return out
}
