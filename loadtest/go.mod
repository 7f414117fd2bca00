module github.com/bastion-bank/bastion/loadtest

go 1.26.0

replace (
	github.com/bastion-bank/bastion/platform => ../platform
	github.com/bastion-bank/bastion/proto => ../proto
)
