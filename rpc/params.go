package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// method is one entry of the method table.
type method struct {
	name string
	// params are the parameter names in positional order; a trailing "?"
	// marks an optional one.
	params []string
	wsOnly bool
	fn     func(ctx context.Context, c *call) (any, error)
}

// call is one invocation of a method.
type call struct {
	s      *Server
	m      *method
	params json.RawMessage
	conn   *wsConn // nil over HTTP
	// after, when set by the handler, runs once the answer is queued.
	after func()
}

// bind decodes the call's parameters into dst, one pointer per declared
// parameter in order. Parameters come positionally (an array) or by name
// (an object); optional ones that are absent or null leave their
// destination untouched. Every error is an *api.Error naming the parameter.
func (c *call) bind(dst ...any) error {
	if len(dst) != len(c.m.params) {
		panic(fmt.Sprintf("rpc: method %s binds %d params, declares %d", c.m.name, len(dst), len(c.m.params)))
	}
	raw := make([]json.RawMessage, len(dst))
	if c.params != nil {
		switch c.params[0] {
		case '[':
			var arr []json.RawMessage
			if err := json.Unmarshal(c.params, &arr); err != nil {
				return api.Errorf(api.CodeInvalidParams, "invalid params: %v", err)
			}
			if len(arr) > len(dst) {
				return api.Errorf(api.CodeInvalidParams, "invalid params: %s takes at most %d parameters (%s), got %d",
					c.m.name, len(dst), c.m.signature(), len(arr))
			}
			copy(raw, arr)
		case '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(c.params, &obj); err != nil {
				return api.Errorf(api.CodeInvalidParams, "invalid params: %v", err)
			}
			for k, v := range obj {
				i := c.m.index(k)
				if i < 0 {
					return api.Errorf(api.CodeInvalidParams, "invalid params: %s has no parameter %q (it takes %s)",
						c.m.name, truncate(k), c.m.signature())
				}
				raw[i] = v
			}
		}
	}
	for i, p := range c.m.params {
		name, optional := strings.CutSuffix(p, "?")
		v := raw[i]
		if v == nil || string(bytes.TrimSpace(v)) == "null" {
			if !optional {
				return api.Errorf(api.CodeInvalidParams, "invalid params: missing required parameter %q (%s takes %s)",
					name, c.m.name, c.m.signature())
			}
			continue
		}
		if err := json.Unmarshal(v, dst[i]); err != nil {
			return paramError(name, err)
		}
	}
	return nil
}

func (m *method) index(name string) int {
	for i, p := range m.params {
		if strings.TrimSuffix(p, "?") == name {
			return i
		}
	}
	return -1
}

// signature lists the parameters, optional ones in brackets.
func (m *method) signature() string {
	if len(m.params) == 0 {
		return "no parameters"
	}
	parts := make([]string, len(m.params))
	for i, p := range m.params {
		if n, opt := strings.CutSuffix(p, "?"); opt {
			parts[i] = "[" + n + "]"
		} else {
			parts[i] = n
		}
	}
	return strings.Join(parts, ", ")
}

// paramError explains a parameter that did not decode.
func paramError(name string, err error) *api.Error {
	if errors.Is(err, api.ErrTxTooLarge) {
		return &api.Error{Code: api.CodeTxTooLarge, Message: fmt.Sprintf("parameter %q: %v", name, err),
			Data: &api.ErrorData{Reason: api.CodeName(api.CodeTxTooLarge)}}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return api.Errorf(api.CodeInvalidParams, "invalid params: parameter %q: got a JSON %s, want %s", name, te.Value, describeType(te.Type))
	}
	return api.Errorf(api.CodeInvalidParams, "invalid params: parameter %q: %v", name, err)
}

func describeType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case nil:
		return "another type"
	case reflect.TypeFor[crypto.Address]():
		return `a bech32 address ("ldg1...")`
	case reflect.TypeFor[crypto.Hash]():
		return "a hash: 64 hex digits"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an unsigned integer"
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a hex string"
		}
		return "an array"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}
