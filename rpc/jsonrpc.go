package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/rpc/api"
)

// Request is one decoded JSON-RPC 2.0 call.
type Request struct {
	// ID is the raw id (a string, a number or null); nil for a
	// notification, which gets no answer.
	ID json.RawMessage
	// Method is the method name.
	Method string
	// Params is nil, a JSON array or a JSON object.
	Params json.RawMessage
	// Err is set when the element is not a valid request. It is answered
	// with Err and ID (null when the id itself was unusable).
	Err *api.Error
}

// IsNotification reports whether the call expects no answer.
func (r *Request) IsNotification() bool { return r.ID == nil && r.Err == nil }

// DecodeRequest parses a request body: one call, or a batch (an array) of
// at most maxBatch calls. A non-nil error means the body as a whole is
// unusable (not JSON, an empty or oversized batch) and is answered with
// that single error. Otherwise every element comes back as a Request,
// invalid ones with their Err set, so one bad call in a batch does not
// spoil the others. It never panics and allocates in proportion to body.
func DecodeRequest(body []byte, maxBatch int) (reqs []Request, batch bool, err *api.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, api.Errorf(api.CodeInvalidRequest, "empty request body")
	}
	if body[0] != '[' {
		if !json.Valid(body) {
			return nil, false, parseError(body)
		}
		return []Request{decodeCall(body)}, false, nil
	}
	var elems []json.RawMessage
	if e := json.Unmarshal(body, &elems); e != nil {
		return nil, true, parseError(body)
	}
	if len(elems) == 0 {
		return nil, true, api.Errorf(api.CodeInvalidRequest, "empty batch")
	}
	if len(elems) > maxBatch {
		return nil, true, api.Errorf(api.CodeBatchTooLarge, "batch of %d calls exceeds the limit of %d", len(elems), maxBatch)
	}
	reqs = make([]Request, len(elems))
	for i, el := range elems {
		reqs[i] = decodeCall(el)
	}
	return reqs, true, nil
}

func parseError(body []byte) *api.Error {
	var v any
	err := json.Unmarshal(body, &v)
	if se, ok := err.(*json.SyntaxError); ok {
		return api.Errorf(api.CodeParseError, "parse error: %v at byte %d", se, se.Offset)
	}
	if err != nil {
		return api.Errorf(api.CodeParseError, "parse error: %v", err)
	}
	return api.Errorf(api.CodeParseError, "parse error")
}

// callJSON is a call as it arrives; raw fields keep their JSON types so
// they can be checked.
type callJSON struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// maxMethodLen bounds method names and maxIDLen ids; no real client
// comes near either.
const (
	maxMethodLen = 128
	maxIDLen     = 128
)

func decodeCall(raw json.RawMessage) Request {
	invalid := func(id json.RawMessage, format string, args ...any) Request {
		if id == nil {
			id = json.RawMessage("null")
		}
		return Request{ID: id, Err: api.Errorf(api.CodeInvalidRequest, format, args...)}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return invalid(nil, "invalid request: want a JSON object")
	}
	var c callJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return invalid(nil, "invalid request: %v", err)
	}
	var id json.RawMessage
	if c.ID != nil {
		switch c.ID[0] {
		case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			id = c.ID
		default:
			return invalid(nil, "invalid request: id must be a string, a number or null")
		}
		if len(id) > maxIDLen {
			return invalid(nil, "invalid request: id longer than %d bytes", maxIDLen)
		}
		// The id is echoed verbatim: it must be valid JSON text, which
		// is UTF-8 (RFC 8259), or the answer would not be.
		if !utf8.Valid(id) {
			return invalid(nil, "invalid request: id is not valid UTF-8")
		}
	}
	var version string
	if c.JSONRPC == nil || json.Unmarshal(c.JSONRPC, &version) != nil || version != "2.0" {
		return invalid(id, `invalid request: "jsonrpc" must be "2.0"`)
	}
	var method string
	if c.Method == nil || json.Unmarshal(c.Method, &method) != nil || method == "" {
		return invalid(id, `invalid request: "method" must be a non-empty string`)
	}
	if len(method) > maxMethodLen {
		return invalid(id, "invalid request: method name longer than %d bytes", maxMethodLen)
	}
	params := c.Params
	if params != nil && string(params) == "null" {
		params = nil
	}
	if params != nil && params[0] != '[' && params[0] != '{' {
		return invalid(id, `invalid request: "params" must be an array or an object`)
	}
	return Request{ID: id, Method: method, Params: params}
}

// okResponse and errResponse are the two shapes of an answer.
type okResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
}

type errResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *api.Error      `json:"error"`
}

func encodeResult(id json.RawMessage, result any) ([]byte, error) {
	res, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return json.Marshal(okResponse{JSONRPC: "2.0", ID: orNull(id), Result: res})
}

func encodeError(id json.RawMessage, e *api.Error) []byte {
	b, err := json.Marshal(errResponse{JSONRPC: "2.0", ID: orNull(id), Error: e})
	if err != nil {
		// Error data is built from plain types; fall back to no data.
		b, _ = json.Marshal(errResponse{JSONRPC: "2.0", ID: orNull(id), Error: &api.Error{Code: e.Code, Message: e.Message}})
	}
	return b
}

func orNull(id json.RawMessage) json.RawMessage {
	if id == nil {
		return json.RawMessage("null")
	}
	return id
}

// notification builds a subscription notification.
func notification(subID string, result []byte) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string                 `json:"jsonrpc"`
		Method  string                 `json:"method"`
		Params  api.SubscriptionNotice `json:"params"`
	}{"2.0", api.NotificationSubscription, api.SubscriptionNotice{Subscription: subID, Result: result}})
	return b
}
