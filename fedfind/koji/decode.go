package koji

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The response decoder reads a methodResponse straight from the bytes of
// its body: no token objects, no reflection and no intermediate tree of
// maps for the values composeci converts anyway. A multicall of 300 tasks
// went through kolo's reflection-driven decoder at about 1,300 allocations
// per task, nearly all of them tokens and a map[string]any per task; this
// one makes the Task in place and allocates only for what the Task keeps
// (see docs/performance.md, "Koji multicall decoding").
//
// It accepts what Python's xmlrpc.client (the hub's marshaller) writes and
// what an XML parser must accept around it — comments, processing
// instructions, CDATA sections, entity and character references, attributes,
// namespace prefixes (<ex:nil/>, <ex:i8>) — and refuses a DOCTYPE. Values
// decode as kolo decoded them into any, so Call and MultiCall answer as
// before: <int>, <i4> and <i8> are int64, <double> float64, <boolean> bool,
// <nil/> nil, <dateTime.iso8601> time.Time, <base64> its text, an empty
// <string> (and an empty untyped value) nil, an empty <struct> an empty
// map and an empty <array> an empty slice. Nesting is bounded by
// maxValueDepth, so a hostile answer cannot exhaust the stack.

// maxValueDepth bounds how deeply arrays and structs may nest; Koji's
// deepest answer (a task's request inside a listTasks result inside a
// multicall) is about six levels.
const maxValueDepth = 256

// maxInterned bounds the strings one decoder interns.
const maxInterned = 4096

// syntaxError is a response that is not a well-formed XML-RPC answer.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

// decoder reads one response. It is used by one goroutine for one body.
type decoder struct {
	b     []byte
	pos   int
	depth int
	// text and name are scratch for character data that needed resolving
	// (entities, CDATA); member names get their own so that reading a
	// member's value does not overwrite its name.
	text, name []byte
	// elems is a stack of array elements being read, copied out into a
	// slice of the right size when the array ends.
	elems []any
	// strs interns strings boxed as any: a multicall of tasks repeats the
	// same arches, methods, owners, targets and option names hundreds of
	// times, and a string shared is an allocation saved. Strings are
	// immutable, so sharing them between tasks and callers is safe.
	strs map[string]any
}

func newDecoder(b []byte) *decoder { return &decoder{b: b} }

func (d *decoder) errorf(format string, args ...any) error {
	return &syntaxError{off: d.pos, msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isNameByte reports whether c may appear in an element name (any byte of a
// multi-byte UTF-8 sequence may).
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c >= 0x80
}

func (d *decoder) has(prefix string) bool {
	return len(d.b)-d.pos >= len(prefix) && string(d.b[d.pos:d.pos+len(prefix)]) == prefix
}

// skipDelimited skips from d.pos past the end marker of a comment, a
// processing instruction or a CDATA section, whose opening is open.
func (d *decoder) skipDelimited(open, end, what string) error {
	i := bytes.Index(d.b[d.pos+len(open):], []byte(end))
	if i < 0 {
		return d.errorf("unterminated %s", what)
	}
	d.pos += len(open) + i + len(end)
	return nil
}

// skipMisc skips what may stand between elements: white space, comments
// and processing instructions (the XML declaration among them). It stops at
// the next tag or at the end; other text there is an error.
func (d *decoder) skipMisc() error {
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		switch {
		case isSpace(c):
			d.pos++
		case c != '<':
			return d.errorf("text where an element belongs")
		case d.has("<!--"):
			if err := d.skipDelimited("<!--", "-->", "comment"); err != nil {
				return err
			}
		case d.has("<?"):
			if err := d.skipDelimited("<?", "?>", "processing instruction"); err != nil {
				return err
			}
		case d.has("<!"):
			return d.errorf("DOCTYPE or CDATA where an element belongs")
		default:
			return nil
		}
	}
	return nil
}

// tag reads the tag at d.pos, which must be '<': a start tag, whose
// attributes are skipped, or an end tag (end). name is the local name, a
// slice of the document; empty reports a self-closing start tag.
func (d *decoder) tag() (name []byte, end, empty bool, err error) {
	if d.pos >= len(d.b) {
		return nil, false, false, d.errorf("unexpected end of document")
	}
	p := d.pos + 1
	if p < len(d.b) && d.b[p] == '/' {
		end = true
		p++
	}
	start := p
	for p < len(d.b) && isNameByte(d.b[p]) {
		p++
	}
	if p == start {
		return nil, false, false, d.errorf("malformed tag")
	}
	name = d.b[start:p]
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	for p < len(d.b) {
		switch c := d.b[p]; {
		case c == '>':
			d.pos = p + 1
			return name, end, false, nil
		case c == '/' && !end && p+1 < len(d.b) && d.b[p+1] == '>':
			d.pos = p + 2
			return name, false, true, nil
		case isSpace(c):
			p++
		case end || c == '<' || c == '&':
			return nil, false, false, d.errorf("malformed tag <%s>", name)
		case c == '"' || c == '\'':
			i := bytes.IndexByte(d.b[p+1:], c)
			if i < 0 {
				return nil, false, false, d.errorf("unterminated attribute value in <%s>", name)
			}
			p += i + 2
		default:
			p++ // an attribute's name or '='
		}
	}
	return nil, false, false, d.errorf("unterminated tag <%s>", name)
}

// start reads the start tag of element want, after any white space.
func (d *decoder) start(want string) (empty bool, err error) {
	if err := d.skipMisc(); err != nil {
		return false, err
	}
	name, end, empty, err := d.tag()
	if err != nil {
		return false, err
	}
	if end || string(name) != want {
		return false, d.errorf("<%s> where <%s> belongs", tagString(name, end), want)
	}
	return empty, nil
}

// open reads the start tag of element want, which must have content.
func (d *decoder) open(want string) error {
	empty, err := d.start(want)
	if err == nil && empty {
		err = d.errorf("empty <%s/>", want)
	}
	return err
}

// end reads the end tag of element want, after any white space.
func (d *decoder) end(want string) error {
	if err := d.skipMisc(); err != nil {
		return err
	}
	name, end, _, err := d.tag()
	if err != nil {
		return err
	}
	if !end || string(name) != want {
		return d.errorf("<%s> where </%s> belongs", tagString(name, end), want)
	}
	return nil
}

// endOf is end for a name read from the document.
func (d *decoder) endOf(want []byte) error {
	if err := d.skipMisc(); err != nil {
		return err
	}
	name, end, _, err := d.tag()
	if err != nil {
		return err
	}
	if !end || !bytes.Equal(name, want) {
		return d.errorf("<%s> where </%s> belongs", tagString(name, end), want)
	}
	return nil
}

func tagString(name []byte, end bool) string {
	if end {
		return "/" + string(name)
	}
	return string(name)
}

// atEnd skips white space and reports whether an end tag comes next.
func (d *decoder) atEnd() (bool, error) {
	if err := d.skipMisc(); err != nil {
		return false, err
	}
	if d.pos >= len(d.b) {
		return false, d.errorf("unexpected end of document")
	}
	return d.has("</"), nil
}

// charData reads character data up to the next tag. When the text needed
// nothing resolved it is a slice of the document (stable: valid for the
// whole decode); otherwise the resolved text is built in *buf and valid
// until *buf is used again. Comments inside the text are dropped, CDATA
// sections taken literally, entity and character references resolved, and
// line ends normalised to \n, as an XML parser does.
func (d *decoder) charData(buf *[]byte) (s []byte, stable bool, err error) {
	i := bytes.IndexByte(d.b[d.pos:], '<')
	if i < 0 {
		return nil, false, d.errorf("unexpected end of document")
	}
	run := d.b[d.pos : d.pos+i]
	rest := d.b[d.pos+i:]
	if bytes.IndexByte(run, '&') < 0 && bytes.IndexByte(run, '\r') < 0 &&
		!bytes.HasPrefix(rest, []byte("<!")) {
		d.pos += i
		return run, true, nil
	}
	out := (*buf)[:0]
	for {
		if d.pos >= len(d.b) {
			return nil, false, d.errorf("unexpected end of document")
		}
		switch c := d.b[d.pos]; c {
		case '<':
			switch {
			case d.has("<![CDATA["):
				j := bytes.Index(d.b[d.pos+9:], []byte("]]>"))
				if j < 0 {
					return nil, false, d.errorf("unterminated CDATA section")
				}
				out = appendNormalised(out, d.b[d.pos+9:d.pos+9+j])
				d.pos += 9 + j + 3
			case d.has("<!--"):
				if err := d.skipDelimited("<!--", "-->", "comment"); err != nil {
					return nil, false, err
				}
			case d.has("<!"):
				return nil, false, d.errorf("DOCTYPE inside a value")
			default:
				*buf = out
				return out, false, nil
			}
		case '&':
			var err error
			if out, err = d.reference(out); err != nil {
				return nil, false, err
			}
		default:
			j := bytes.IndexAny(d.b[d.pos:], "<&")
			if j < 0 {
				return nil, false, d.errorf("unexpected end of document")
			}
			out = appendNormalised(out, d.b[d.pos:d.pos+j])
			d.pos += j
		}
	}
}

// appendNormalised appends s with \r\n and lone \r turned into \n.
func appendNormalised(out, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '\r')
		if i < 0 {
			return append(out, s...)
		}
		out = append(out, s[:i]...)
		out = append(out, '\n')
		s = s[i+1:]
		if len(s) > 0 && s[0] == '\n' {
			s = s[1:]
		}
	}
}

// reference resolves the entity or character reference at d.pos onto out.
func (d *decoder) reference(out []byte) ([]byte, error) {
	end := bytes.IndexByte(d.b[d.pos:], ';')
	if end < 0 || end > 12 {
		return nil, d.errorf("malformed reference")
	}
	ref := d.b[d.pos+1 : d.pos+end]
	d.pos += end + 1
	switch string(ref) {
	case "lt":
		return append(out, '<'), nil
	case "gt":
		return append(out, '>'), nil
	case "amp":
		return append(out, '&'), nil
	case "quot":
		return append(out, '"'), nil
	case "apos":
		return append(out, '\''), nil
	}
	if len(ref) < 2 || ref[0] != '#' {
		return nil, d.errorf("unknown entity &%s;", ref)
	}
	var n uint64
	var err error
	if ref[1] == 'x' {
		n, err = strconv.ParseUint(string(ref[2:]), 16, 32)
	} else {
		n, err = strconv.ParseUint(string(ref[1:]), 10, 32)
	}
	r := rune(n)
	if err != nil || n == 0 || n > utf8.MaxRune || !utf8.ValidRune(r) {
		return nil, d.errorf("bad character reference &%s;", ref)
	}
	return utf8.AppendRune(out, r), nil
}

// valueHead is the opening of a value.
type valueHead struct {
	// typ is the type element's local name ("int", "struct", ...), a slice
	// of the document; nil for an untyped value, which is then fully read.
	typ []byte
	// empty: the type element is self-closing (<nil/>, <string/>).
	empty bool
	// text is an untyped value's text, trimmed as kolo trimmed it.
	text   []byte
	stable bool
}

// head reads <value> and the start tag of its type element, or all of an
// untyped value.
func (d *decoder) head() (valueHead, error) {
	empty, err := d.start("value")
	if err != nil || empty {
		return valueHead{}, err
	}
	text, stable, err := d.charData(&d.text)
	if err != nil {
		return valueHead{}, err
	}
	name, end, empty, err := d.tag()
	if err != nil {
		return valueHead{}, err
	}
	if end {
		if string(name) != "value" {
			return valueHead{}, d.errorf("</%s> inside <value>", name)
		}
		return valueHead{text: bytes.TrimSpace(text), stable: stable}, nil
	}
	if len(bytes.TrimSpace(text)) > 0 {
		return valueHead{}, d.errorf("text before <%s> in a value", name)
	}
	return valueHead{typ: name, empty: empty}, nil
}

// scalarText reads the text of a scalar value's type element through
// </value>.
func (d *decoder) scalarText(h valueHead) (text []byte, stable bool, err error) {
	if h.typ == nil {
		return h.text, h.stable, nil
	}
	if !h.empty {
		if text, stable, err = d.charData(&d.text); err != nil {
			return nil, false, err
		}
		if err := d.endOf(h.typ); err != nil {
			return nil, false, err
		}
	}
	return text, stable, d.end("value")
}

func (d *decoder) nest() error {
	if d.depth++; d.depth > maxValueDepth {
		return d.errorf("values nested deeper than %d", maxValueDepth)
	}
	return nil
}

// elements calls one for each element of the array h opens; one reads
// exactly one value. It reads through </value>.
func (d *decoder) elements(h valueHead, one func() error) error {
	if err := d.nest(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	if !h.empty {
		if end, err := d.atEnd(); err != nil {
			return err
		} else if !end { // <array></array> is taken for empty too
			empty, err := d.start("data")
			if err != nil {
				return err
			}
			for !empty {
				end, err := d.atEnd()
				if err != nil {
					return err
				}
				if end {
					if err := d.end("data"); err != nil {
						return err
					}
					break
				}
				if err := one(); err != nil {
					return err
				}
			}
		}
		if err := d.end("array"); err != nil {
			return err
		}
	}
	return d.end("value")
}

// members calls one for each member of the struct h opens, with the
// member's name, valid until one returns; one reads exactly one value. It
// reads through </value>.
func (d *decoder) members(h valueHead, one func(name []byte) error) error {
	if err := d.nest(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	if !h.empty {
		for {
			end, err := d.atEnd()
			if err != nil {
				return err
			}
			if end {
				break
			}
			if err := d.open("member"); err != nil {
				return err
			}
			var name []byte
			if empty, err := d.start("name"); err != nil {
				return err
			} else if !empty {
				if name, _, err = d.charData(&d.name); err != nil {
					return err
				}
				if err := d.end("name"); err != nil {
					return err
				}
			}
			if err := one(name); err != nil {
				return err
			}
			if err := d.end("member"); err != nil {
				return err
			}
		}
		if err := d.end("struct"); err != nil {
			return err
		}
	}
	return d.end("value")
}

// str returns b as a string, interned.
func (d *decoder) str(b []byte) string {
	s, _ := d.boxed(b).(string)
	return s
}

// boxed returns b as a string in an interface, interned.
func (d *decoder) boxed(b []byte) any {
	if v, ok := d.strs[string(b)]; ok {
		return v
	}
	var v any = string(b)
	if d.strs == nil {
		d.strs = make(map[string]any)
	}
	if len(d.strs) < maxInterned {
		d.strs[v.(string)] = v
	}
	return v
}

// value reads a value into the types kolo gave: see the comment at the top.
func (d *decoder) value() (any, error) {
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	return d.rest(h)
}

// rest reads the rest of the value h opens.
func (d *decoder) rest(h valueHead) (any, error) {
	switch string(h.typ) {
	case "array":
		base := len(d.elems)
		err := d.elements(h, func() error {
			v, err := d.value()
			d.elems = append(d.elems, v)
			return err
		})
		out := slices.Clone(d.elems[base:])
		if out == nil {
			out = []any{}
		}
		clear(d.elems[base:])
		d.elems = d.elems[:base]
		if err != nil {
			return nil, err
		}
		return out, nil
	case "struct":
		m := map[string]any{}
		err := d.members(h, func(name []byte) error {
			k := d.str(name)
			v, err := d.value()
			m[k] = v
			return err
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	s, err := d.scalar(h)
	if err != nil {
		return nil, err
	}
	switch s.kind {
	case kindInt:
		return s.i, nil
	case kindDouble:
		return s.f, nil
	case kindBool:
		return s.i != 0, nil
	case kindTime:
		return s.t, nil
	case kindString:
		if len(s.s) == 0 {
			return nil, nil // as kolo, which left the target untouched
		}
		return d.boxed(s.s), nil
	}
	return nil, nil
}

// skip reads a value and drops it, allocating nothing. Its scalars are
// checked all the same: an answer is well-formed or not, whatever part of
// it the caller keeps.
func (d *decoder) skip() error {
	h, err := d.head()
	if err != nil {
		return err
	}
	switch string(h.typ) {
	case "array":
		return d.elements(h, d.skip)
	case "struct":
		return d.members(h, func([]byte) error { return d.skip() })
	}
	_, err = d.scalar(h)
	return err
}

// Scalar kinds.
const (
	kindNil byte = iota
	kindInt
	kindDouble
	kindBool
	kindString
	kindTime
	kindComposite // an array or struct, skipped
)

// scalar is one scalar value, read without allocating. s is valid until
// the next read unless stable.
type scalar struct {
	kind   byte
	i      int64 // kindInt; kindBool as 0 or 1
	f      float64
	s      []byte
	stable bool
	t      time.Time
}

// scalarValue reads a value as a scalar; an array or struct is skipped and
// reported as kindComposite.
func (d *decoder) scalarValue() (scalar, error) {
	h, err := d.head()
	if err != nil {
		return scalar{}, err
	}
	switch string(h.typ) {
	case "array":
		return scalar{kind: kindComposite}, d.elements(h, d.skip)
	case "struct":
		return scalar{kind: kindComposite}, d.members(h, func([]byte) error { return d.skip() })
	}
	return d.scalar(h)
}

// kolo's dateTime.iso8601 layouts.
var iso8601Layouts = [...]string{"20060102T15:04:05", "20060102T15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00"}

// scalar reads the rest of the scalar value h opens. Malformed numbers,
// booleans and times are syntax errors, as they were for kolo.
func (d *decoder) scalar(h valueHead) (scalar, error) {
	typ := h.typ // a slice, not a string: a string would escape with the errors
	text, stable, err := d.scalarText(h)
	if err != nil {
		return scalar{}, err
	}
	switch string(typ) {
	case "", "string", "base64":
		return scalar{kind: kindString, s: text, stable: stable}, nil
	case "nil":
		if len(bytes.TrimSpace(text)) > 0 {
			return scalar{}, d.errorf("text in <nil/>")
		}
		return scalar{kind: kindNil}, nil
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(string(bytes.TrimSpace(text)), 10, 64)
		if err != nil {
			return scalar{}, d.errorf("bad <%s>: %v", typ, err)
		}
		return scalar{kind: kindInt, i: n}, nil
	case "double":
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(text)), 64)
		if err != nil {
			return scalar{}, d.errorf("bad <double>: %v", err)
		}
		return scalar{kind: kindDouble, f: f}, nil
	case "boolean":
		b, err := strconv.ParseBool(string(bytes.TrimSpace(text)))
		if err != nil {
			return scalar{}, d.errorf("bad <boolean>: %v", err)
		}
		s := scalar{kind: kindBool}
		if b {
			s.i = 1
		}
		return s, nil
	case "dateTime.iso8601":
		for _, l := range iso8601Layouts {
			if t, err := time.Parse(l, string(bytes.TrimSpace(text))); err == nil {
				return scalar{kind: kindTime, t: t}, nil
			}
		}
		return scalar{}, d.errorf("bad <dateTime.iso8601> %q", text)
	}
	return scalar{}, d.errorf("unsupported type <%s>", typ)
}

// readResponse reads a methodResponse: read is handed the decoder at its
// one value and must read exactly that value; a fault is returned as a
// *Fault without calling read. Errors of read are returned as they are.
func readResponse(data []byte, read func(d *decoder) error) error {
	d := newDecoder(data)
	err := d.response(read)
	if se, ok := err.(*syntaxError); ok { // not one already wrapped
		return fmt.Errorf("koji: decoding response: %w", se)
	}
	return err
}

func (d *decoder) response(read func(d *decoder) error) error {
	if d.has("\uFEFF") { // a byte order mark
		d.pos += len("\uFEFF")
	}
	if err := d.skipMisc(); err != nil {
		return err
	}
	if d.pos >= len(d.b) {
		return d.errorf("empty document")
	}
	if err := d.open("methodResponse"); err != nil {
		return err
	}
	if err := d.skipMisc(); err != nil {
		return err
	}
	switch {
	case d.has("<params"):
		if err := d.open("params"); err != nil {
			return err
		}
		if err := d.open("param"); err != nil {
			return err
		}
		if err := read(d); err != nil {
			return err
		}
		if err := d.end("param"); err != nil {
			return err
		}
		if err := d.end("params"); err != nil {
			return err
		}
	case d.has("<fault"):
		if err := d.open("fault"); err != nil {
			return err
		}
		f, err := d.fault()
		if err != nil {
			return fmt.Errorf("koji: decoding fault: %w", err)
		}
		if err := d.end("fault"); err != nil {
			return err
		}
		if err := d.finish(); err != nil {
			return err
		}
		return f
	default:
		return d.errorf("a methodResponse without params or fault")
	}
	return d.finish()
}

// finish reads </methodResponse> and checks nothing but white space,
// comments and processing instructions follow.
func (d *decoder) finish() error {
	if err := d.end("methodResponse"); err != nil {
		return err
	}
	if err := d.skipMisc(); err != nil {
		return err
	}
	if d.pos < len(d.b) {
		return d.errorf("data after </methodResponse>")
	}
	return nil
}

// fault reads a fault struct: an integer faultCode and a faultString
// (absent or nil reads as ""); other members, such as the traceback Koji
// adds inside a multicall, are skipped. A struct without an integer
// faultCode is not a fault: it is returned as nil with ok false.
func (d *decoder) faultStruct(h valueHead) (f *Fault, ok bool, err error) {
	f = &Fault{}
	hasCode, strOK := false, true
	err = d.members(h, func(name []byte) error {
		switch string(name) {
		case "faultCode":
			s, err := d.scalarValue()
			hasCode = s.kind == kindInt
			f.Code = int(s.i)
			return err
		case "faultString":
			s, err := d.scalarValue()
			switch s.kind {
			case kindString:
				f.String, strOK = string(s.s), true
			case kindNil:
				f.String, strOK = "", true
			default:
				strOK = false
			}
			return err
		}
		return d.skip()
	})
	if err != nil || !hasCode || !strOK {
		return nil, false, err
	}
	return f, true, nil
}

// fault reads the value of a top-level <fault>.
func (d *decoder) fault() (*Fault, error) {
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	if string(h.typ) != "struct" {
		return nil, d.errorf("a fault that is not a struct")
	}
	f, ok, err := d.faultStruct(h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, d.errorf("a fault without an integer faultCode and a string faultString")
	}
	return f, nil
}

// shapeError is a well-formed answer of the wrong shape, e.g. a multicall
// answered with fewer results than calls.
type shapeError struct{ msg string }

func (e *shapeError) Error() string { return "koji: " + e.msg }

// readMultiCall reads the answer to a multicall of n calls: an array of
// one result per call, each a one-element array holding the call's value
// or a fault struct. read(i, d) reads the value of call i; faults[i] is the
// fault of call i, for which read is not called.
func readMultiCall(data []byte, n int, read func(i int, d *decoder) error) (faults []*Fault, err error) {
	faults = make([]*Fault, n)
	err = readResponse(data, func(d *decoder) error {
		h, err := d.head()
		if err != nil {
			return err
		}
		if string(h.typ) != "array" {
			v, err := d.rest(h)
			if err != nil {
				return err
			}
			return &shapeError{fmt.Sprintf("multicall of %d calls answered with %s", n, describe(v))}
		}
		i := 0
		err = d.elements(h, func() error {
			defer func() { i++ }()
			if i >= n {
				return d.skip()
			}
			rh, err := d.head()
			if err != nil {
				return err
			}
			switch string(rh.typ) {
			case "array":
				k := 0
				err := d.elements(rh, func() error {
					defer func() { k++ }()
					if k > 0 {
						return d.skip()
					}
					return read(i, d)
				})
				if err == nil && k != 1 {
					err = &shapeError{fmt.Sprintf("multicall result %d is an array of %d, want 1", i, k)}
				}
				return err
			case "struct":
				f, ok, err := d.faultStruct(rh)
				if err == nil && !ok {
					err = &shapeError{fmt.Sprintf("multicall result %d is a struct but not a fault", i)}
				}
				faults[i] = f
				return err
			}
			v, err := d.rest(rh)
			if err == nil {
				err = &shapeError{fmt.Sprintf("multicall result %d is %s", i, describe(v))}
			}
			return err
		})
		if err == nil && i != n {
			err = &shapeError{fmt.Sprintf("multicall of %d calls answered with an array of %d", n, i)}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return faults, nil
}

// taskOrNil reads a task struct, as getTaskInfo answers it, or nil (an
// unknown task: ok false). bad is a value that could not be a task (not a
// struct, no integer id, an unreadable time), read through all the same so
// that the rest of the answer can be; err is a broken answer.
func (d *decoder) taskOrNil() (t Task, ok bool, bad, err error) {
	h, err := d.head()
	if err != nil {
		return Task{}, false, nil, err
	}
	if string(h.typ) == "nil" {
		_, err := d.scalar(h)
		return Task{}, false, nil, err
	}
	t, bad, err = d.taskRest(h)
	return t, bad == nil && err == nil, bad, err
}

// task reads one task of a list.
func (d *decoder) task() (Task, error, error) {
	h, err := d.head()
	if err != nil {
		return Task{}, nil, err
	}
	return d.taskRest(h)
}

// Task members, as taskRest reads them.
const (
	fieldSkip = iota
	fieldID
	fieldMethod
	fieldState
	fieldArch
	fieldOwner
	fieldOwnerName
	fieldParent
	fieldLabel
	fieldHostID
	fieldChannelID
	fieldPriority
	fieldWeight
	fieldRequest
	fieldCreateTS
	fieldStartTS
	fieldCompletionTS
	fieldCreateTime
	fieldStartTime
	fieldCompletionTime
)

func taskField(name []byte) int {
	switch string(name) {
	case "id":
		return fieldID
	case "method":
		return fieldMethod
	case "state":
		return fieldState
	case "arch":
		return fieldArch
	case "owner":
		return fieldOwner
	case "owner_name":
		return fieldOwnerName
	case "parent":
		return fieldParent
	case "label":
		return fieldLabel
	case "host_id":
		return fieldHostID
	case "channel_id":
		return fieldChannelID
	case "priority":
		return fieldPriority
	case "weight":
		return fieldWeight
	case "request":
		return fieldRequest
	case "create_ts":
		return fieldCreateTS
	case "start_ts":
		return fieldStartTS
	case "completion_ts":
		return fieldCompletionTS
	case "create_time":
		return fieldCreateTime
	case "start_time":
		return fieldStartTime
	case "completion_time":
		return fieldCompletionTime
	}
	return fieldSkip
}

// taskRest reads the task struct h opens, member by member into the Task,
// with the conversions the old decode-then-convert path made: integers
// from <int>/<i8> or <double> (anything else, nil included, is 0), strings
// from <string> (anything else is ""), times from the *_ts doubles with
// the *_time strings as a fallback. Members composeci does not keep (the
// raw result, waiting, awaited, ...) are skipped unread. A repeated member
// counts once, the last time, as it did in a map.
func (d *decoder) taskRest(h valueHead) (Task, error, error) {
	if string(h.typ) != "struct" {
		v, err := d.rest(h)
		return Task{}, fmt.Errorf("koji: task is %s, not a struct", describe(v)), err
	}
	var t Task
	hasID := false
	// The times, by prefix: create, start, completion. A *_time string is
	// kept until the end, when it is known whether a *_ts came too; it is
	// copied only when it is not a slice of the document.
	var ts, str [3]scalar
	var strBuf [3][]byte
	asInt := func(s scalar) int {
		switch s.kind {
		case kindInt:
			return int(s.i)
		case kindDouble:
			return int(s.f)
		}
		return 0
	}
	asString := func(s scalar) string {
		if s.kind != kindString || len(s.s) == 0 {
			return ""
		}
		return d.str(s.s)
	}
	err := d.members(h, func(name []byte) error {
		// name may be overwritten by what the value holds: decide first.
		field := taskField(name)
		switch field {
		case fieldSkip:
			return d.skip()
		case fieldRequest:
			// With decode the request is the argument array; without it,
			// raw XML text, which composeci never asks for.
			v, err := d.value()
			t.Request, _ = v.([]any)
			return err
		}
		s, err := d.scalarValue()
		if err != nil {
			return err
		}
		switch field {
		case fieldID:
			t.ID, hasID = int(s.i), s.kind == kindInt
		case fieldMethod:
			t.Method = asString(s)
		case fieldState:
			t.State = TaskState(asInt(s))
		case fieldArch:
			t.Arch = asString(s)
		case fieldOwner:
			t.Owner = asInt(s)
		case fieldOwnerName:
			t.OwnerName = asString(s)
		case fieldParent:
			t.Parent = asInt(s)
		case fieldLabel:
			t.Label = asString(s)
		case fieldHostID:
			t.HostID = asInt(s)
		case fieldChannelID:
			t.ChannelID = asInt(s)
		case fieldPriority:
			t.Priority = asInt(s)
		case fieldWeight:
			switch s.kind {
			case kindDouble:
				t.Weight = s.f
			case kindInt:
				t.Weight = float64(s.i)
			default:
				t.Weight = 0
			}
		case fieldCreateTS, fieldStartTS, fieldCompletionTS:
			ts[field-fieldCreateTS] = s
		case fieldCreateTime, fieldStartTime, fieldCompletionTime:
			i := field - fieldCreateTime
			if s.kind == kindString && !s.stable {
				strBuf[i] = append(strBuf[i][:0], s.s...)
				s.s, s.stable = strBuf[i], true
			}
			str[i] = s
		}
		return nil
	})
	if err != nil {
		return Task{}, nil, err
	}
	if !hasID {
		return Task{}, errors.New("koji: task without an integer id"), nil
	}
	for i, dst := range [3]*time.Time{&t.CreateTime, &t.StartTime, &t.CompletionTime} {
		tm, err := scalarTime(ts[i], str[i])
		if err != nil {
			return Task{}, fmt.Errorf("koji: task %d: %w", t.ID, err), nil
		}
		*dst = tm
	}
	return t, nil, nil
}

// scalarTime reads one of a task's times: the *_ts double (or integer)
// when present, else the *_time string, else zero (not yet started or
// completed).
func scalarTime(ts, str scalar) (time.Time, error) {
	switch ts.kind {
	case kindDouble:
		return fromEpoch(ts.f), nil
	case kindInt:
		return time.Unix(ts.i, 0).UTC(), nil
	}
	switch str.kind {
	case kindString:
		if len(str.s) == 0 {
			return time.Time{}, nil
		}
		return parseTime(string(str.s))
	case kindTime:
		return str.t.UTC(), nil
	}
	return time.Time{}, nil
}

// taskList reads a list of tasks (listTasks, getTaskChildren) into dst, in
// ID order. bad is the first element that is not a task, or a value that
// is not a list.
func (d *decoder) taskList() (tasks []Task, bad, err error) {
	h, err := d.head()
	if err != nil {
		return nil, nil, err
	}
	if string(h.typ) != "array" {
		v, err := d.rest(h)
		return nil, fmt.Errorf("koji: task list is %s", describe(v)), err
	}
	tasks = []Task{}
	err = d.elements(h, func() error {
		t, b, err := d.task()
		if err != nil {
			return err
		}
		if b != nil {
			bad = cmpOr(bad, b)
			return nil
		}
		tasks = append(tasks, t)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if bad != nil {
		return nil, bad, nil
	}
	slices.SortFunc(tasks, func(a, b Task) int { return a.ID - b.ID })
	return tasks, nil, nil
}
