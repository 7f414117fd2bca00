module github.com/bastion-bank/bastion/services/auth

go 1.26.0

replace (
	github.com/bastion-bank/bastion/platform => ../../platform
	github.com/bastion-bank/bastion/proto => ../../proto
)
