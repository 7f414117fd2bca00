// Command apidoc writes the OpenAPI document of the gateway's public routes
// (gateway/internal/apidoc). It reads a FileDescriptorSet of the protos
// with source info on standard input, for the comments, and writes the
// document to the file named by -o, replacing it only once the whole
// document is built. `make gen` runs it:
//
//	buf build --as-file-descriptor-set -o - | go run ./cmd/apidoc -o ../proto/openapi/bastion.openapi.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bastion-bank/bastion/gateway/internal/apidoc"
	"github.com/bastion-bank/bastion/gateway/internal/server"
)

func main() {
	if err := run(os.Args, os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "apidoc:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "the document to write")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		return errors.New("usage: apidoc -o FILE < descriptor-set")
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("read the descriptor set: %w", err)
	}
	source, err := protodesc.NewFiles(&set)
	if err != nil {
		return fmt.Errorf("read the descriptor set: %w", err)
	}
	doc, err := apidoc.Build(server.PublicServices(), source)
	if err != nil {
		return err
	}
	b, err := apidoc.Marshal(doc)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".apidoc-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), *out)
}
