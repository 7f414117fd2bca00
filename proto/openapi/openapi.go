// Package openapi embeds the OpenAPI (Swagger 2.0) document that `make gen`
// generates from Bastion's protos, so the gateway can serve it without
// reading files at run time. Internal RPCs have no HTTP mapping and so never
// appear in it.
package openapi

import (
	_ "embed"
	"slices"
)

//go:embed bastion.swagger.json
var document []byte

// Document returns a copy of the OpenAPI document as JSON.
func Document() []byte { return slices.Clone(document) }
