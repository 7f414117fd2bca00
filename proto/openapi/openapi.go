// Package openapi embeds the OpenAPI 3.0 document of Bastion's public REST
// routes, which `make gen` builds from the protos (gateway/cmd/apidoc), so
// the gateway can serve it without reading files at run time. Internal
// RPCs have no HTTP mapping and so never appear in it.
package openapi

import (
	_ "embed"
	"slices"
)

//go:embed bastion.openapi.json
var document []byte

// Document returns a copy of the OpenAPI document as JSON.
func Document() []byte { return slices.Clone(document) }
