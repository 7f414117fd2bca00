module github.com/bastion-bank/bastion/loadtest

go 1.26.0

toolchain go1.26.10

replace (
	github.com/bastion-bank/bastion/platform => ../platform
	github.com/bastion-bank/bastion/proto => ../proto
)
