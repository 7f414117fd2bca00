package domain

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// Page tokens are minted and checked here, in the domain, as the accounts
// service does: the rpc layer passes the client's token through and maps
// the answer. Each token is signed (platform/pagetoken) and bound to a
// scope naming who it was minted for, so a token is good only for the
// caller (and account) it was minted for.

// QueueTokenPage is one page of the approval queue with the token of the
// next ("" on the last page).
type QueueTokenPage struct {
	Transfers     []Transfer
	NextPageToken string
}

// TransferQueue is PendingTransfers behind a page token minted for the
// manager u.
func (s *Service) TransferQueue(ctx context.Context, u identity.User, token string, size int) (QueueTokenPage, error) {
	scope := "transfers.queue|" + u.ID
	var after *QueueCursor
	if token != "" {
		b, err := s.pages.Decode(scope, token)
		if err != nil {
			return QueueTokenPage{}, err
		}
		if after, err = decodeQueueCursor(b); err != nil {
			return QueueTokenPage{}, err
		}
	}
	page, err := s.PendingTransfers(ctx, after, size)
	if err != nil {
		return QueueTokenPage{}, err
	}
	out := QueueTokenPage{Transfers: page.Transfers}
	if page.Next != nil {
		out.NextPageToken = s.pages.Encode(scope, encodeQueueCursor(*page.Next))
	}
	return out, nil
}

// HistoryTokenPage is one page of an account's history with the token of
// the next ("" on the last page).
type HistoryTokenPage struct {
	Entries       []Entry
	NextPageToken string
}

// History is ListEntries behind a page token minted for u and accountID.
func (s *Service) History(ctx context.Context, u identity.User, accountID, token string, size int) (HistoryTokenPage, error) {
	scope := "transactions.list|" + u.ID + "|" + accountID
	var before int64
	if token != "" {
		b, err := s.pages.Decode(scope, token)
		if err != nil {
			return HistoryTokenPage{}, err
		}
		if before, err = strconv.ParseInt(string(b), 10, 64); err != nil || before <= 0 {
			return HistoryTokenPage{}, pagetoken.ErrInvalid
		}
	}
	page, err := s.ListEntries(ctx, accountID, before, size)
	if err != nil {
		return HistoryTokenPage{}, err
	}
	out := HistoryTokenPage{Entries: page.Entries}
	if page.Next != 0 {
		out.NextPageToken = s.pages.Encode(scope, []byte(strconv.FormatInt(page.Next, 10)))
	}
	return out, nil
}

// encodeQueueCursor and decodeQueueCursor carry a queue position inside a
// page token: "<unix nanoseconds>|<transfer id>". The token is signed, so
// only a cursor this service minted is ever decoded.
func encodeQueueCursor(c QueueCursor) []byte {
	return []byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + "|" + c.ID)
}

func decodeQueueCursor(b []byte) (*QueueCursor, error) {
	ns, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return nil, pagetoken.ErrInvalid
	}
	return &QueueCursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}
