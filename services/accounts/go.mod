module github.com/bastion-bank/bastion/services/accounts

go 1.26.0

replace (
	github.com/bastion-bank/bastion/platform => ../../platform
	github.com/bastion-bank/bastion/proto => ../../proto
)

require (
	github.com/bastion-bank/bastion/platform v0.0.0-00010101000000-000000000000
	github.com/bastion-bank/bastion/proto v0.0.0-00010101000000-000000000000
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)
