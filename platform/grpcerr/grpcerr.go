// Package grpcerr maps Bastion's error kinds to gRPC statuses and back. It is
// the one place where that mapping lives: the server interceptor uses ToStatus,
// clients use FromError, so a kind survives an RPC hop while the cause (the
// wrapped error, SQL, stack) never leaves the process that produced it.
package grpcerr

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Domain is the ErrorInfo domain of Bastion's errors.
const Domain = "bastion.local"

var kindToCode = map[errs.Kind]codes.Code{
	errs.Invalid:         codes.InvalidArgument,
	errs.Unauthenticated: codes.Unauthenticated,
	errs.Permission:      codes.PermissionDenied,
	errs.NotFound:        codes.NotFound,
	errs.Conflict:        codes.AlreadyExists,
	errs.Refused:         codes.FailedPrecondition,
	errs.RateLimited:     codes.ResourceExhausted,
	errs.Unavailable:     codes.Unavailable,
	errs.Internal:        codes.Internal,
	errs.Other:           codes.Internal,
}

var codeToKind = map[codes.Code]errs.Kind{
	codes.InvalidArgument:    errs.Invalid,
	codes.OutOfRange:         errs.Invalid,
	codes.Unauthenticated:    errs.Unauthenticated,
	codes.PermissionDenied:   errs.Permission,
	codes.NotFound:           errs.NotFound,
	codes.AlreadyExists:      errs.Conflict,
	codes.Aborted:            errs.Conflict,
	codes.FailedPrecondition: errs.Refused,
	codes.ResourceExhausted:  errs.RateLimited,
	codes.Unavailable:        errs.Unavailable,
	codes.DeadlineExceeded:   errs.Unavailable,
}

// Code returns the gRPC code for a kind.
func Code(k errs.Kind) codes.Code {
	if c, ok := kindToCode[k]; ok {
		return c
	}
	return codes.Internal
}

// ToStatus converts any error a handler returns into the status sent to the
// caller. Only the kind, the safe message, field violations, the retry delay
// and the stable reason cross the wire; an error that is not an *errs.Error
// becomes Internal with a generic message.
func ToStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	}
	e, ok := errs.As(err)
	if !ok {
		if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.Internal {
			// A status made by grpc itself (e.g. an unknown method): keep its code,
			// never its text, which may describe internals.
			return status.New(st.Code(), st.Code().String())
		}
		return status.New(codes.Internal, "internal error")
	}
	st := status.New(Code(e.Kind), errs.SafeMessage(err))
	var details []protoadapt.MessageV1
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Message})
		}
		details = append(details, br)
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if e.Reason != "" && e.Kind != errs.Internal && e.Kind != errs.Other {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason, Domain: Domain})
	}
	if len(details) == 0 {
		return st
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails
	}
	return st
}

// FromError converts an error returned by a gRPC call into an *errs.Error of
// the matching kind, keeping the safe message, violations, retry delay and
// reason. Codes with no kind (Unknown, Internal, DataLoss, …) become Internal
// and the remote text is kept only as the unexported cause, for logs.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errs.As(err); ok {
		return err // already a kind (e.g. mapped by a client interceptor)
	}
	st, ok := status.FromError(err)
	if !ok {
		return errs.Wrap(errs.Unavailable, "upstream unavailable", err)
	}
	kind, known := codeToKind[st.Code()]
	if !known {
		if st.Code() == codes.Canceled {
			return errs.Wrap(errs.Unavailable, "request canceled", err)
		}
		return errs.Wrap(errs.Internal, "internal error", err)
	}
	e := &errs.Error{Kind: kind, Msg: st.Message(), Err: err}
	if st.Code() == codes.DeadlineExceeded || st.Code() == codes.Unavailable {
		e.Msg = "upstream unavailable"
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, errs.Violation{Field: v.GetField(), Message: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryAfter = d.GetRetryDelay().AsDuration()
		case *errdetails.ErrorInfo:
			if d.GetDomain() == Domain {
				e.Reason = d.GetReason()
			}
		}
	}
	return e
}
