module github.com/bastion-bank/bastion/proto

go 1.26.0


