package fedfind

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
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
// holding only one entry in memory, so a 100 MB file costs no more memory
// than a small one. It returns the header and compose metadata. A header
// with an unsupported format stops the walk before any package is passed on
// (productmd writes "header" before "payload"; should a file put it after,
// the packages are read first and the error comes at the end).
func StreamRPMs(r io.Reader, file string, fn func(RPM) error) (RPMsHeader, error) {
	w := rpmWalker{dec: json.NewDecoder(r), file: file, fn: fn}
	err := w.walk()
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return RPMsHeader{Header: w.header, Compose: w.compose}, err
}

type rpmWalker struct {
	dec        *json.Decoder
	file       string
	fn         func(RPM) error
	header     Header
	haveHeader bool
	compose    ComposeMeta
	entries    int
}

func (w *rpmWalker) fail(err error) error {
	if errors.Is(err, ErrStop) {
		return err
	}
	var me *MetadataError
	if errors.As(err, &me) {
		return err
	}
	return jsonErr(w.file, err)
}

// expectDelim reads one token that must be the delimiter d. what names the
// place for an error; it is built only then (it runs for every package).
func (w *rpmWalker) expectDelim(d json.Delim, what func() string) error {
	t, err := w.dec.Token()
	if err != nil {
		return w.fail(err)
	}
	if t != d {
		return metaErr(w.file, "%s: want JSON %q, got %v", what(), string(d), t)
	}
	return nil
}

// at names a place in the file, for expectDelim.
func at(parts ...string) func() string {
	return func() string { return strings.Join(parts, ".") }
}

// object walks the members of an object whose '{' is next, calling member
// for each key; member must consume the value.
func (w *rpmWalker) object(what func() string, member func(key string) error) error {
	if err := w.expectDelim('{', what); err != nil {
		return err
	}
	for w.dec.More() {
		t, err := w.dec.Token()
		if err != nil {
			return w.fail(err)
		}
		key, _ := t.(string)
		if err := member(key); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return w.fail(err)
	}
	return nil
}

// skip consumes one value of any shape without keeping it.
func (w *rpmWalker) skip() error {
	depth := 0
	for {
		t, err := w.dec.Token()
		if err != nil {
			return w.fail(err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func (w *rpmWalker) walk() error {
	err := w.object(at("top level"), func(key string) error {
		switch key {
		case "header":
			if err := w.dec.Decode(&w.header); err != nil {
				return w.fail(err)
			}
			w.haveHeader = true
			_, _, err := w.header.check(w.file, "productmd.rpms")
			return err
		case "payload":
			return w.payload()
		}
		return w.skip()
	})
	if err != nil {
		return err
	}
	if t, err := w.dec.Token(); err != io.EOF {
		return metaErr(w.file, "unexpected data after the top-level object: %v", t)
	}
	if !w.haveHeader {
		return metaErr(w.file, "no header")
	}
	return nil
}

func (w *rpmWalker) payload() error {
	return w.object(at("payload"), func(key string) error {
		switch key {
		case "compose":
			if err := w.dec.Decode(&w.compose); err != nil {
				return w.fail(err)
			}
			_, err := w.compose.validate(w.file)
			return err
		case "rpms":
			return w.object(at("payload", "rpms"), func(variant string) error {
				return w.object(at("payload", "rpms", variant), func(arch string) error {
					return w.object(at("payload", "rpms", variant, arch), func(srpm string) error {
						return w.object(at("payload", "rpms", variant, arch, srpm), func(nevra string) error {
							return w.entry(variant, arch, srpm, nevra)
						})
					})
				})
			})
		}
		return w.skip()
	})
}

func (w *rpmWalker) entry(variant, arch, srpm, nevra string) error {
	var e struct {
		Path     *string `json:"path"`
		Sigkey   *string `json:"sigkey"`
		Category string  `json:"category"`
	}
	if err := w.dec.Decode(&e); err != nil {
		return w.fail(err)
	}
	w.entries++
	if e.Path == nil {
		return metaErr(w.file, "payload.rpms.%s.%s.%s.%s: path is missing", variant, arch, srpm, nevra)
	}
	rpm := RPM{Variant: variant, Arch: arch, SRPM: srpm, NEVRA: nevra, Path: *e.Path, Category: e.Category}
	if e.Sigkey != nil {
		rpm.Sigkey = *e.Sigkey
	}
	return w.fn(rpm)
}
