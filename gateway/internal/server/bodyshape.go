package server

import (
	"encoding/json"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
)

// bodyShapes holds, per request message of a public route, the member names
// a JSON body may use, which leaves out the fields a client may not send in
// the body although the message has them: the ones bound from the path
// (accountId of …:freeze) and the one filled from a header
// (idempotencyKey). docs/api.md's body shapes leave them out, and "unknown
// fields are rejected", so a body naming one is a 400 rather than a value
// silently replaced.
//
// The check also holds clients to the lowerCamelCase names of docs/api.md:
// protojson would accept a field's proto name too (display_name), a second
// spelling no client was promised and no test of the contract would cover.
//
// The names are looked up in maps built once, by a walk over the body's
// bytes that allocates nothing unless a name is written with escapes: the
// body is parsed once, by protojson, and only read again here.
type bodyShapes struct {
	routes map[protoreflect.FullName]*bodyShape
	// other holds the shapes of messages that are no route's request,
	// built on first use (protoreflect.FullName → *bodyShape).
	other sync.Map
}

// bodyShape is the JSON object of one message as a body may write it.
type bodyShape struct {
	members map[string]member // by JSON name
}

// member is one name a body may use. nested is the shape of the objects
// its value holds, for a message-typed field; it is nil for every other
// field, and for well-known types and maps, which have JSON forms of their
// own (a Timestamp is a string; a map's keys are data rather than names)
// and are left to protojson.
type member struct {
	nested *bodyShape
	list   bool
}

// newBodyShapes reads the HTTP rule of every method of services.
func newBodyShapes(services []protoreflect.ServiceDescriptor) *bodyShapes {
	notInBody := map[protoreflect.FullName]map[string]bool{}
	inputs := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	for b := range httprule.All(services) {
		in := b.Method.Input()
		inputs[in.FullName()] = in
		skip := notInBody[in.FullName()]
		if skip == nil {
			skip = map[string]bool{}
			notInBody[in.FullName()] = skip
		}
		if f := in.Fields().ByName(policy.IdempotencyField); f != nil {
			skip[f.JSONName()] = true
		}
		for _, v := range b.Variables() {
			if f := in.Fields().ByName(protoreflect.Name(v)); f != nil {
				skip[f.JSONName()] = true
			}
		}
	}
	s := &bodyShapes{routes: map[protoreflect.FullName]*bodyShape{}}
	built := map[protoreflect.FullName]*bodyShape{}
	for name, md := range inputs {
		s.routes[name] = shapeOf(md, notInBody[name], built)
	}
	return s
}

// shapeOf builds md's shape without the names in skip. Nested messages
// are built with nothing skipped, once each (built), which also ends the
// recursion of a message that contains itself.
func shapeOf(md protoreflect.MessageDescriptor, skip map[string]bool, built map[protoreflect.FullName]*bodyShape) *bodyShape {
	if len(skip) == 0 {
		if sh, ok := built[md.FullName()]; ok {
			return sh
		}
	}
	sh := &bodyShape{members: map[string]member{}}
	if len(skip) == 0 {
		built[md.FullName()] = sh
	}
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if skip[f.JSONName()] {
			continue
		}
		m := member{list: f.IsList()}
		if f.Message() != nil && !f.IsMap() && !wellKnown(f.Message()) {
			m.nested = shapeOf(f.Message(), nil, built)
		}
		sh.members[f.JSONName()] = m
	}
	return sh
}

func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.FullName().Parent() == "google.protobuf"
}

// shape returns md's shape: its route's, or one built now for a message
// that is no route's request.
func (s *bodyShapes) shape(md protoreflect.MessageDescriptor) *bodyShape {
	if sh, ok := s.routes[md.FullName()]; ok {
		return sh
	}
	if sh, ok := s.other.Load(md.FullName()); ok {
		return sh.(*bodyShape)
	}
	sh, _ := s.other.LoadOrStore(md.FullName(), shapeOf(md, nil, map[protoreflect.FullName]*bodyShape{}))
	return sh.(*bodyShape)
}

// check reports whether every member name of the JSON object data (already
// parsed by protojson, so well formed) is a name md's shape allows; nested
// messages are checked the same way.
func (s *bodyShapes) check(md protoreflect.MessageDescriptor, data []byte) bool {
	if wellKnown(md) {
		return true // a well-known type's JSON is not an object of field names
	}
	// protojson accepts a few texts that are not JSON (an exponent without
	// digits: {"amount":0e}); encoding/json, which did this check before,
	// refused them, and so does this. json.Valid allocates nothing.
	if !json.Valid(data) {
		return false
	}
	w := walker{data: data}
	if !w.message(s.shape(md)) {
		return false
	}
	w.space()
	return w.i == len(data)
}

// walker reads one JSON text. It relies on protojson having accepted the
// text, but on any input it only ever answers false early, never reads out
// of bounds and never panics.
type walker struct {
	data []byte
	i    int
}

func (w *walker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

func (w *walker) peek() byte {
	if w.i < len(w.data) {
		return w.data[w.i]
	}
	return 0
}

// null consumes a null literal if one is next.
func (w *walker) null() bool {
	if len(w.data)-w.i >= 4 && string(w.data[w.i:w.i+4]) == "null" {
		w.i += 4
		return true
	}
	return false
}

// message checks a value that must be an object of sh's names, or null.
func (w *walker) message(sh *bodyShape) bool {
	w.space()
	if w.null() {
		return true
	}
	if w.peek() != '{' {
		return false
	}
	w.i++
	w.space()
	if w.peek() == '}' {
		w.i++
		return true
	}
	for {
		w.space()
		m, ok := w.member(sh)
		if !ok {
			return false
		}
		w.space()
		if w.peek() != ':' {
			return false
		}
		w.i++
		switch {
		case m.nested == nil:
			ok = w.skip()
		case m.list:
			ok = w.list(m.nested)
		default:
			ok = w.message(m.nested)
		}
		if !ok {
			return false
		}
		w.space()
		switch w.peek() {
		case ',':
			w.i++
		case '}':
			w.i++
			return true
		default:
			return false
		}
	}
}

// list checks a value that must be an array of objects of sh's names (or
// nulls), or null.
func (w *walker) list(sh *bodyShape) bool {
	w.space()
	if w.null() {
		return true
	}
	if w.peek() != '[' {
		return false
	}
	w.i++
	w.space()
	if w.peek() == ']' {
		w.i++
		return true
	}
	for {
		if !w.message(sh) {
			return false
		}
		w.space()
		switch w.peek() {
		case ',':
			w.i++
		case ']':
			w.i++
			return true
		default:
			return false
		}
	}
}

// member reads a member name and looks it up in sh. A name without
// escapes is looked up as it stands (string(b) in a map index does not
// copy); one with escapes is decoded by encoding/json first, as rare as it
// is legal.
func (w *walker) member(sh *bodyShape) (member, bool) {
	start := w.i
	escaped, ok := w.str()
	if !ok {
		return member{}, false
	}
	if !escaped {
		m, ok := sh.members[string(w.data[start+1:w.i-1])]
		return m, ok
	}
	var name string
	if err := json.Unmarshal(w.data[start:w.i], &name); err != nil {
		return member{}, false
	}
	m, ok := sh.members[name]
	return m, ok
}

// str consumes a string and reports whether it has escapes.
func (w *walker) str() (escaped, ok bool) {
	if w.peek() != '"' {
		return false, false
	}
	for w.i++; w.i < len(w.data); w.i++ {
		switch w.data[w.i] {
		case '"':
			w.i++
			return escaped, true
		case '\\':
			escaped = true
			w.i++
		}
	}
	return false, false
}

// skip consumes one value of any kind.
func (w *walker) skip() bool {
	w.space()
	switch w.peek() {
	case '"':
		_, ok := w.str()
		return ok
	case '{', '[':
		depth := 0
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case '"':
				if _, ok := w.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				return true
			}
		}
		return false
	default: // a number, true, false or null
		start := w.i
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return w.i > start
			}
			w.i++
		}
		return w.i > start
	}
}
