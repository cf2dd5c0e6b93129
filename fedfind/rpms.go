package fedfind

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// RPM is one package entry of rpms.json.
type RPM struct {
	Variant  string `json:"variant"`
	Arch     string `json:"arch"`
	SRPM     string `json:"srpm"`  // source NEVRA
	NEVRA    string `json:"nevra"` // name-epoch:version-release.arch
	Path     string `json:"path"`
	Sigkey   string `json:"sigkey,omitempty"` // 8 hex digits, or "" when unsigned
	Category string `json:"category"`         // binary, debug or source
}

// ErrStop may be returned by a StreamRPMs callback to end the walk early
// without an error.
var ErrStop = errors.New("stop")

// RPMsHeader is what StreamRPMs learns besides the packages.
type RPMsHeader struct {
	Header  Header      `json:"header"`
	Compose ComposeMeta `json:"compose"`
}

// StreamRPMs walks rpms.json entry by entry and calls fn for each package,
// holding only one entry in memory, so a 150 MB file costs no more memory
// than a small one. It returns the header and compose metadata. A header
// with an unsupported format stops the walk before any package is passed on
// (productmd writes "header" before "payload"; should a file put it after,
// the packages are read first and the error comes at the end).
//
// The file is read with a JSON tokenizer that does not allocate per token
// (jsontext) rather than encoding/json, which spends most of its time on
// reflection and garbage: a package costs one allocation, for its NEVRA and
// path, and the strings that repeat (variant, arch, sigkey, category, the
// source package of several packages) are shared.
func StreamRPMs(r io.Reader, file string, fn func(RPM) error) (RPMsHeader, error) {
	w := newRPMsWalker(r, file)
	w.group = func(variant, arch string, srpm []byte) error {
		s := string(srpm) // before the next read reuses the bytes
		if err := w.openObject(func() string { return where("payload.rpms", variant, arch, s) }); err != nil {
			return err
		}
		for {
			nevra, ok, err := w.nextName()
			if err != nil || !ok {
				return err
			}
			rpm, err := w.entry(variant, arch, s, nevra)
			if err != nil {
				return err
			}
			if err := fn(rpm); err != nil {
				return err
			}
		}
	}
	err := w.walk()
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return RPMsHeader{Header: w.header, Compose: w.compose}, err
}

// rpmsWalker reads rpms.json: the envelope, then payload.rpms, which maps
// variant → arch → source NEVRA → RPM NEVRA → {path, sigkey, category}. It
// hands each source package's object to group, which must consume it, and
// skips the variants and arches keep refuses unread.
type rpmsWalker struct {
	dec        *jsontext.Decoder
	file       string
	header     Header
	haveHeader bool
	compose    ComposeMeta

	// keep says whether to read a variant's arch; nil reads all.
	keep func(variant, arch string) bool
	// group reads the object of one source package of a tree kept.
	group func(variant, arch string, srpm []byte) error

	// scratch holds a string unescaped; entry holds a package's NEVRA and
	// path until they become one string. Both are reused, so reading
	// costs no allocation per token.
	scratch, entryBuf []byte
	// sigkeys shares the few signing key strings among packages.
	sigkeys map[string]string
}

func newRPMsWalker(r io.Reader, file string) *rpmsWalker {
	// Duplicate member names are allowed, as encoding/json allows them:
	// checking for them would keep every name of an object, and the object
	// of one arch has tens of thousands of source packages.
	return &rpmsWalker{
		dec:     jsontext.NewDecoder(r, jsontext.AllowDuplicateNames(true)),
		file:    file,
		sigkeys: map[string]string{},
	}
}

// fail turns an error of the decoder into a MetadataError naming the file.
func (w *rpmsWalker) fail(err error) error {
	if err == nil {
		return nil
	}
	return jsonErr(w.file, err)
}

// where names a place in the file for an error message; it is only built
// when there is an error.
func where(parts ...string) string { return strings.Join(parts, ".") }

// kindName names a JSON kind in words for an error message.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	}
	return k.String()
}

// openObject reads the '{' of the value that must come next; place names
// it in the error otherwise (and is not called when there is none).
func (w *rpmsWalker) openObject(place func() string) error {
	switch k := w.dec.PeekKind(); k {
	case '{', 0: // 0: an error, which the read reports
		_, err := w.dec.ReadToken()
		return w.fail(err)
	default:
		return metaErr(w.file, "%s: want a JSON object, got %s", place(), kindName(k))
	}
}

// nextName reads the next member name of the object being read, unescaped
// (valid until the next read), or its closing '}' (ok false).
func (w *rpmsWalker) nextName() (name []byte, ok bool, err error) {
	switch w.dec.PeekKind() {
	case '}':
		_, err := w.dec.ReadToken()
		return nil, false, w.fail(err)
	case 0:
		_, err := w.dec.ReadToken()
		return nil, false, w.fail(err)
	}
	v, err := w.dec.ReadValue()
	if err != nil {
		return nil, false, w.fail(err)
	}
	return w.unquote(v), true, nil
}

// unquote returns the contents of a JSON string. Most strings of rpms.json
// have no escapes and are returned in place, without a copy.
func (w *rpmsWalker) unquote(v jsontext.Value) []byte {
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	w.scratch, _ = jsontext.AppendUnquote(w.scratch[:0], v) // the decoder checked it
	return w.scratch
}

// members reads an object member by member; member must consume each value.
// It is for the few objects above the source packages, where a name string
// per member costs nothing.
func (w *rpmsWalker) members(place []string, member func(name string) error) error {
	if err := w.openObject(func() string { return where(place...) }); err != nil {
		return err
	}
	for {
		name, ok, err := w.nextName()
		if err != nil || !ok {
			return err
		}
		if err := member(string(name)); err != nil {
			return err
		}
	}
}

// decodeSmall decodes one small value (the header, the compose) with
// encoding/json, whose error messages name a field of the wrong type.
func (w *rpmsWalker) decodeSmall(v any) error {
	raw, err := w.dec.ReadValue()
	if err != nil {
		return w.fail(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *rpmsWalker) walk() error {
	err := w.members([]string{"top level"}, func(key string) error {
		switch key {
		case "header":
			if err := w.decodeSmall(&w.header); err != nil {
				return err
			}
			w.haveHeader = true
			_, _, err := w.header.check(w.file, "productmd.rpms")
			return err
		case "payload":
			return w.payload()
		}
		return w.fail(w.dec.SkipValue())
	})
	if err != nil {
		return err
	}
	if _, err := w.dec.ReadToken(); err != io.EOF {
		return metaErr(w.file, "unexpected data after the top-level object")
	}
	if !w.haveHeader {
		return metaErr(w.file, "no header")
	}
	return nil
}

func (w *rpmsWalker) payload() error {
	return w.members([]string{"payload"}, func(key string) error {
		switch key {
		case "compose":
			if err := w.decodeSmall(&w.compose); err != nil {
				return err
			}
			_, err := w.compose.validate(w.file)
			return err
		case "rpms":
			return w.members([]string{"payload", "rpms"}, func(variant string) error {
				return w.members([]string{"payload", "rpms", variant}, func(arch string) error {
					if w.keep != nil && !w.keep(variant, arch) {
						return w.fail(w.dec.SkipValue())
					}
					return w.tree(variant, arch)
				})
			})
		}
		return w.fail(w.dec.SkipValue())
	})
}

// tree reads the source packages of one variant's arch, the hot loop.
func (w *rpmsWalker) tree(variant, arch string) error {
	if err := w.openObject(func() string { return where("payload.rpms", variant, arch) }); err != nil {
		return err
	}
	for {
		srpm, ok, err := w.nextName()
		if err != nil || !ok {
			return err
		}
		if err := w.group(variant, arch, srpm); err != nil {
			return err
		}
	}
}

// entry reads the object of one package, whose NEVRA is the name just read.
func (w *rpmsWalker) entry(variant, arch, srpm string, nevra []byte) (RPM, error) {
	// The name is only valid until the next read: keep a copy.
	w.entryBuf = append(w.entryBuf[:0], nevra...)
	n := len(w.entryBuf)
	place := func() string {
		return where("payload.rpms", variant, arch, srpm, string(w.entryBuf[:n]))
	}
	if err := w.openObject(place); err != nil {
		return RPM{}, err
	}
	rpm := RPM{Variant: variant, Arch: arch, SRPM: srpm}
	havePath := false
	for {
		name, ok, err := w.nextName()
		if err != nil {
			return RPM{}, err
		}
		if !ok {
			break
		}
		var field string
		switch string(name) {
		case "path":
			field = "path"
		case "sigkey":
			field = "sigkey"
		case "category":
			field = "category"
		default:
			if err := w.dec.SkipValue(); err != nil {
				return RPM{}, w.fail(err)
			}
			continue
		}
		v, err := w.dec.ReadValue()
		if err != nil {
			return RPM{}, w.fail(err)
		}
		switch k := v.Kind(); {
		case k == 'n': // null: no value, as encoding/json reads it
			if field == "path" {
				w.entryBuf, havePath = w.entryBuf[:n], false
			} else if field == "sigkey" {
				rpm.Sigkey = ""
			} else {
				rpm.Category = ""
			}
			continue
		case k != '"':
			return RPM{}, metaErr(w.file, "%s: field %q has the wrong type (want string, got JSON %s)", place(), field, kindName(k))
		}
		s := w.unquote(v)
		switch field {
		case "path":
			w.entryBuf, havePath = append(w.entryBuf[:n], s...), true
		case "sigkey":
			rpm.Sigkey = w.sigkey(s)
		case "category":
			rpm.Category = category(s)
		}
	}
	if !havePath {
		return RPM{}, metaErr(w.file, "%s: path is missing", place())
	}
	// One allocation for the two strings no other package shares.
	both := string(w.entryBuf)
	rpm.NEVRA, rpm.Path = both[:n], both[n:]
	return rpm, nil
}

// sigkey returns the signing key as a string shared with every other
// package signed with it. A compose has a handful; past 256 (a file made
// up to defeat this) they are no longer shared.
func (w *rpmsWalker) sigkey(b []byte) string {
	if s, ok := w.sigkeys[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(w.sigkeys) < 256 {
		w.sigkeys[s] = s
	}
	return s
}

// category returns productmd's package categories without an allocation.
func category(b []byte) string {
	switch string(b) {
	case "binary":
		return "binary"
	case "debug":
		return "debug"
	case "source":
		return "source"
	}
	return string(b)
}
