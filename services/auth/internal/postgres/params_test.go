package postgres

import (
	"testing"

	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

func TestUUIDArraysAreSentAsText(t *testing.T) { pgtest.RequireTextIDLists(t) }
