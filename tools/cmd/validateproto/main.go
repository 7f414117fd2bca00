// Command validateproto writes buf/validate/validate.proto, which the buf
// registry serves but no reachable package ships as a file.
//
// It prints the file back from the descriptor compiled into the Go module
// buf.build/gen/go/bufbuild/protovalidate (pinned in tools/go.mod to the
// version that buf.build/go/protovalidate uses), so `make third-party`
// rebuilds proto/third_party offline and reproducibly through the Go module
// proxy. The output is Apache-2.0, like its source.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/jhump/protoreflect/v2/protoprint"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "validateproto:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: validateproto OUTPUT_DIR")
	}
	fd := validatepb.File_buf_validate_validate_proto
	out := filepath.Join(args[1], fd.Path())
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	p := protoprint.Printer{SortElements: false, Compact: false}
	if err := p.PrintProtoFile(fd, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
