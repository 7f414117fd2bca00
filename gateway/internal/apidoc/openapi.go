package apidoc

import "encoding/json"

// The types below are the part of OpenAPI 3.0.3 that Bastion's document
// uses. 3.0 rather than 3.1: every client generator the project proves
// (oapi-codegen, openapi-typescript) and Swagger UI read it fully, while
// 3.1 support is still partial in some of them.

// Version is the OpenAPI version the document declares.
const Version = "3.0.3"

// Document is an OpenAPI document.
type Document struct {
	OpenAPI    string                `json:"openapi"`
	Info       Info                  `json:"info"`
	Servers    []Server              `json:"servers"`
	Security   []SecurityRequirement `json:"security"`
	Tags       []Tag                 `json:"tags"`
	Paths      map[string]PathItem   `json:"paths"`
	Components Components            `json:"components"`
}

// Info is the document's title block.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

// Server is where the API is served, relative to the document's own URL.
type Server struct {
	URL string `json:"url"`
}

// Tag groups the operations of one gRPC service.
type Tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// SecurityRequirement names the schemes an operation needs; an empty list
// of requirements marks a public operation.
type SecurityRequirement map[string][]string

// PathItem maps a lower-case HTTP method to its operation.
type PathItem map[string]*Operation

// Operation is one route.
type Operation struct {
	OperationID string                `json:"operationId"`
	Tags        []string              `json:"tags"`
	Summary     string                `json:"summary,omitempty"`
	Description string                `json:"description,omitempty"`
	Security    []SecurityRequirement `json:"security"`
	Parameters  []*Parameter          `json:"parameters,omitempty"`
	RequestBody *RequestBody          `json:"requestBody,omitempty"`
	Responses   map[string]*Response  `json:"responses"`
	// Access is the route's access rule as the gateway enforces it, for
	// tools and tests that read the document rather than the protos.
	Access Access `json:"x-bastion-access"`
}

// Access is the x-bastion-access extension of an operation.
type Access struct {
	Public    bool     `json:"public"`
	Roles     []string `json:"roles,omitempty"`
	Owner     string   `json:"owner,omitempty"`
	RateClass string   `json:"rateClass"`
}

// Parameter is a path, query or header parameter, or a reference to one.
type Parameter struct {
	Ref         string  `json:"$ref,omitempty"`
	Name        string  `json:"name,omitempty"`
	In          string  `json:"in,omitempty"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema,omitempty"`
}

// RequestBody is a JSON request body.
type RequestBody struct {
	Required bool                 `json:"required"`
	Content  map[string]MediaType `json:"content"`
}

// Response is one status of an operation, or a reference to a shared one.
type Response struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]*Header   `json:"headers,omitempty"`
	Content     map[string]MediaType `json:"content,omitempty"`
}

// Header is a response header, or a reference to a shared one.
type Header struct {
	Ref         string  `json:"$ref,omitempty"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema,omitempty"`
}

// MediaType is the schema of a body in one media type.
type MediaType struct {
	Schema *Schema `json:"schema"`
}

// Components holds what operations refer to.
type Components struct {
	Schemas         map[string]*Schema         `json:"schemas"`
	Responses       map[string]*Response       `json:"responses,omitempty"`
	Headers         map[string]*Header         `json:"headers"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes"`
}

// SecurityScheme is how a client authenticates.
type SecurityScheme struct {
	Type         string `json:"type"`
	Scheme       string `json:"scheme"`
	BearerFormat string `json:"bearerFormat,omitempty"`
	Description  string `json:"description,omitempty"`
}

// Schema is an OpenAPI 3.0 schema object (a JSON Schema subset). Numbers
// are json.Number so that 64-bit bounds keep every digit.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Description          string             `json:"description,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	MinLength            *int64             `json:"minLength,omitempty"`
	MaxLength            *int64             `json:"maxLength,omitempty"`
	Minimum              json.Number        `json:"minimum,omitempty"`
	ExclusiveMinimum     bool               `json:"exclusiveMinimum,omitempty"`
	Maximum              json.Number        `json:"maximum,omitempty"`
	ExclusiveMaximum     bool               `json:"exclusiveMaximum,omitempty"`
	MinItems             *int64             `json:"minItems,omitempty"`
	MaxItems             *int64             `json:"maxItems,omitempty"`
	UniqueItems          bool               `json:"uniqueItems,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties any                `json:"additionalProperties,omitempty"` // false, or the schema of a map's values
	Example              any                `json:"example,omitempty"`
}

// ref returns a schema that refers to the component schema name.
func ref(name string) *Schema { return &Schema{Ref: "#/components/schemas/" + name} }
