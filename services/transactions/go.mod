module github.com/bastion-bank/bastion/services/transactions

go 1.26.0

replace (
	github.com/bastion-bank/bastion/platform => ../../platform
	github.com/bastion-bank/bastion/proto => ../../proto
)
