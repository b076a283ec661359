package genesis

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
)

// MaxDocBytes bounds a genesis document; Parse and Load reject larger
// input before decoding it, and Save refuses to write a larger one.
const MaxDocBytes = 16 << 20

// Parse decodes and validates a genesis document. It accepts exactly one
// JSON object of at most MaxDocBytes with only known keys, each written in
// lower case and at most once per object; integers are decimal strings.
// Every problem (up to 50) comes back at once in an *InvalidError naming
// its field: all problems of syntax and form when the document does not
// decode, else all problems of validity (see Validate). A document Parse
// returns is valid.
func Parse(b []byte) (*Doc, error) {
	d, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("parse genesis: %w", err)
	}
	return d, nil
}

func parse(b []byte) (*Doc, error) {
	if len(b) > MaxDocBytes {
		return nil, fmt.Errorf("the document is larger than the limit of %d bytes", MaxDocBytes)
	}
	if err := checkSyntax(b); err != nil {
		return nil, err
	}
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// maxDepth bounds the nesting of a genesis document, which needs 3 levels
// (the document, consensus_params, a timeout).
const maxDepth = 8

// maxBalances bounds the balances a document may list. MaxDocBytes allows
// about 200,000 real ones; the bound only limits the memory that a file of
// empty entries could make the decoder use.
const maxBalances = 1 << 20

// maxKeys bounds the keys of one object; genesis objects have at most 7.
const maxKeys = 32

// listLimits bounds the length of the document's top-level arrays.
var listLimits = map[string]int{"validators": ledger.MaxValidators, "balances": maxBalances}

// frame is one open object or array during checkSyntax's walk.
type frame struct {
	object  bool
	keys    []string // object: keys seen so far
	wantKey bool     // object: a key (or the end) comes next
	index   int      // array: the number of elements begun
	limit   int      // array: most elements allowed, 0 for no limit
}

// walk is the stack of open objects and arrays; walk[0] is the document.
// Frames are values reused as the walk goes, so a document of many small
// values costs no allocation per value.
type walk []frame

// path names the value open at depth n (walk[n]) in a message, such as
// "balances[3]" or "consensus_params.timeout_propose"; "document" for the
// top. It is rendered only for messages.
func (w walk) path(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		f := &w[i]
		switch {
		case !f.object:
			fmt.Fprintf(&sb, "[%d]", f.index-1)
		case i > 0:
			sb.WriteString("." + quoteKey(f.keys[len(f.keys)-1]))
		default:
			sb.WriteString(quoteKey(f.keys[len(f.keys)-1]))
		}
	}
	if sb.Len() == 0 {
		return "document"
	}
	return sb.String()
}

// checkSyntax checks what encoding/json lets through: the input must be
// one JSON object, alone, nested at most maxDepth deep, with at most the
// allowed number of validators and balances, and whose objects have each
// key once, spelt in lower case. (encoding/json keeps the last of
// duplicate keys and matches keys ignoring case, so a reviewer of a file
// could read one value while nodes use another.)
func checkSyntax(b []byte) error {
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		return &InvalidError{Problems: []error{errors.New("the document starts with a byte order mark; save it as UTF-8 without one")}}
	}
	var p problems
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	w := make(walk, 0, maxDepth)
	for started := false; !started || len(w) > 0; started = true {
		if p.stopped() {
			return p.err()
		}
		tok, err := dec.Token()
		if err != nil {
			p.addf("%s", syntaxProblem(b, started, err))
			return p.err()
		}
		if !started && tok != json.Delim('{') {
			p.addf("%s: want a JSON object ({...}) as the document", position(b, 0))
			return p.err()
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			w = w[:len(w)-1]
			continue
		}
		if n := len(w); n > 0 {
			top := &w[n-1]
			switch {
			case top.object && top.wantKey:
				key, _ := tok.(string) // the decoder returns keys as strings
				switch lower := strings.ToLower(key); {
				case len(top.keys) == maxKeys:
					p.addf("%s: more than %d keys; a genesis object has at most 7", w.path(n-1), maxKeys)
					return p.err()
				case !isLowerKey(key) && isLowerKey(lower):
					p.addf("%s: key %q: keys are lower case; write %q", w.path(n-1), key, lower)
				case !isLowerKey(key):
					p.addf("%s: key %s: keys are lower-case ASCII letters, digits and underscores", w.path(n-1), quoteShort(key))
				case slices.Contains(top.keys, key):
					p.addf("%s: key %q appears twice; keep one", w.path(n-1), key)
				}
				top.keys = append(top.keys, key)
				top.wantKey = false
				continue
			case top.object:
				top.wantKey = true
			default:
				if top.limit > 0 && top.index == top.limit {
					p.addf("%s: more than %d given, at most %d allowed", w.path(n-1), top.limit, top.limit)
					return p.err()
				}
				top.index++
			}
		}
		if tok != json.Delim('{') && tok != json.Delim('[') {
			continue
		}
		n := len(w)
		if n == maxDepth {
			p.addf("%s: nested deeper than %d levels; a genesis document needs 3", w.path(n), maxDepth)
			return p.err()
		}
		w = w[:n+1]
		f := &w[n]
		*f = frame{object: tok == json.Delim('{'), keys: f.keys[:0]}
		f.wantKey = f.object
		if n == 1 && !f.object {
			f.limit = listLimits[w[0].keys[len(w[0].keys)-1]]
		}
	}
	rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")
	if len(rest) > 0 {
		p.addf("%s: unexpected data after the document; a genesis file holds one JSON object", position(b, len(b)-len(rest)))
	}
	return p.err()
}

// quoteKey writes a key as a path segment: as it is when it is a proper
// key, else quoted and cut short.
func quoteKey(k string) string {
	if isLowerKey(k) {
		return k
	}
	return quoteShort(k)
}

// quoteShort quotes s for a message, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...", s[:40])
	}
	return fmt.Sprintf("%q", s)
}

func syntaxProblem(b []byte, started bool, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s: invalid JSON: %v", position(b, int(se.Offset)), err)
	case !started && errors.Is(err, io.EOF):
		return "the document is empty; want a JSON object"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the document ends early (is the file cut short?)"
	}
	return fmt.Sprintf("invalid JSON: %v", err)
}

// position names a byte offset as a line and column, both counted from 1.
func position(b []byte, off int) string {
	off = min(max(off, 0), len(b))
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

func isLowerKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode fills a Doc from input that passed checkSyntax, reporting every
// field that does not decode.
func decode(b []byte) (*Doc, error) {
	var p problems
	d := new(Doc)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		p.addf("document: %v", err)
		return nil, p.err()
	}
	checkKnown(&p, "", fields, reflect.TypeFor[Doc]())
	if raw, ok := fields["chain_id"]; ok {
		decodeValue(&p, "chain_id", raw, &d.ChainID)
	}
	if raw, ok := fields["genesis_time"]; ok {
		d.GenesisTime = decodeTime(&p, "genesis_time", raw)
	}
	if raw, ok := fields["consensus_params"]; ok {
		decodeObject(&p, "consensus_params", raw, &d.Params)
	}
	d.Staking = staking.DefaultParams()
	if raw, ok := fields["staking"]; ok {
		decodeObject(&p, "staking", raw, &d.Staking)
	}
	if raw, ok := fields["validators"]; ok {
		d.Validators = decodeList[ledger.Validator](&p, "validators", raw)
	}
	if raw, ok := fields["balances"]; ok {
		d.Balances = decodeList[Balance](&p, "balances", raw)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// strictUnmarshal decodes one JSON value into dst, rejecting unknown keys.
func strictUnmarshal(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

func decodeValue(p *problems, path string, raw json.RawMessage, dst any) {
	if err := strictUnmarshal(raw, dst); err != nil {
		p.addf("%s: %s", path, describe(err))
	}
}

func decodeTime(p *problems, path string, raw json.RawMessage) ledger.Timestamp {
	const want = `want an RFC 3339 time in a string, such as "2026-01-01T00:00:00Z"`
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.addf("%s: %s", path, want)
		return 0
	}
	if s == "" {
		return 0 // unset; Validate says so
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.addf("%s: %q is not a valid time; %s", path, s, want)
		return 0
	}
	ts, err := genesisTimeOf(t)
	if err != nil {
		p.addf("%s: %v", path, err)
		return 0
	}
	return ts
}

// decodeObject decodes the JSON object raw into dst, a pointer to a
// struct. When that fails it decodes each field alone, to report every
// field that is wrong by its path rather than only the first.
func decodeObject(p *problems, path string, raw json.RawMessage, dst any) {
	err := strictUnmarshal(raw, dst)
	if err == nil {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		p.addf("%s: got %s, want an object", path, jsonKind(raw))
		return
	}
	t := reflect.TypeOf(dst).Elem()
	before := p.count()
	checkKnown(p, path, fields, t)
	for _, name := range fieldNames(t) {
		v, ok := fields[name]
		if !ok {
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{name: v}) // v is valid JSON
		if e := strictUnmarshal(one, reflect.New(t).Interface()); e != nil {
			p.addf("%s: %s", joinPath(path, name), describe(e))
		}
	}
	if p.count() == before {
		p.addf("%s: %s", path, describe(err))
	}
}

// decodeList decodes a JSON array of objects, whose length checkSyntax
// has bounded.
func decodeList[T any](p *problems, path string, raw json.RawMessage) []T {
	var out []T
	if strictUnmarshal(raw, &out) == nil {
		return out
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		p.addf("%s: got %s, want an array", path, jsonKind(raw))
		return nil
	}
	out = make([]T, len(elems))
	for i, e := range elems {
		if p.stopped() {
			break
		}
		decodeObject(p, fmt.Sprintf("%s[%d]", path, i), e, &out[i])
	}
	return out
}

// checkKnown reports every key of fields that t has no field for.
func checkKnown(p *problems, path string, fields map[string]json.RawMessage, t reflect.Type) {
	names := fieldNames(t)
	var unknown []string
	for k := range fields {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		if p.stopped() {
			return
		}
		place := path
		if place == "" {
			place = "document"
		}
		p.addf("%s: unknown field %s; the fields are %s", place, quoteShort(k), strings.Join(names, ", "))
	}
}

// fieldNames lists the JSON names of t's fields in declaration order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// describe turns a decoding error into words about the value: what was
// found and what belongs there.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Type != nil:
		return fmt.Sprintf("got %s, want %s", te.Value, want(te.Type))
	// encoding/json has no error type for a ",string" field holding
	// something else; its message has been the same since Go 1.0.
	case strings.Contains(err.Error(), "invalid use of ,string struct tag, trying to unmarshal unquoted value"):
		return `got a number without quotes; write it as a decimal string, such as "10"`
	case strings.Contains(err.Error(), "invalid use of ,string struct tag"):
		return "want " + want(reflect.TypeFor[uint64]())
	}
	return err.Error()
}

// want says in words what JSON a Go type decodes from. Every integer of a
// genesis document is a decimal string.
func want(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return `a whole number written as a decimal string, such as "10"`
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// jsonKind names the kind of a JSON value for messages.
func jsonKind(raw json.RawMessage) string {
	switch s := bytes.TrimSpace(raw); {
	case len(s) == 0:
		return "nothing"
	case s[0] == '{':
		return "an object"
	case s[0] == '[':
		return "an array"
	case s[0] == '"':
		return "a string"
	case s[0] == 't' || s[0] == 'f':
		return "a boolean"
	case s[0] == 'n':
		return "null"
	}
	return "a number"
}
