package fedfind

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// StreamRPMsEncodingJSON gives the benchmarks of package fedfind_test the
// old reader.
var StreamRPMsEncodingJSON = streamRPMsEncodingJSON

// streamRPMsEncodingJSON is StreamRPMs as it was before it moved to
// jsontext: a token walk with encoding/json's Decoder.Token and a Decode per
// package entry. It is kept only so that the benchmarks measure the old and
// the new reader in one run (docs/performance.md); nothing else calls it.
func streamRPMsEncodingJSON(r io.Reader, file string, fn func(RPM) error) (RPMsHeader, error) {
	w := ejWalker{dec: json.NewDecoder(r), file: file, fn: fn}
	err := w.walk()
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return RPMsHeader{Header: w.header, Compose: w.compose}, err
}

type ejWalker struct {
	dec        *json.Decoder
	file       string
	fn         func(RPM) error
	header     Header
	haveHeader bool
	compose    ComposeMeta
	entries    int
}

func (w *ejWalker) fail(err error) error {
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
func (w *ejWalker) expectDelim(d json.Delim, what func() string) error {
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
func ejAt(parts ...string) func() string {
	return func() string { return strings.Join(parts, ".") }
}

// object walks the members of an object whose '{' is next, calling member
// for each key; member must consume the value.
func (w *ejWalker) object(what func() string, member func(key string) error) error {
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
func (w *ejWalker) skip() error {
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

func (w *ejWalker) walk() error {
	err := w.object(ejAt("top level"), func(key string) error {
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

func (w *ejWalker) payload() error {
	return w.object(ejAt("payload"), func(key string) error {
		switch key {
		case "compose":
			if err := w.dec.Decode(&w.compose); err != nil {
				return w.fail(err)
			}
			_, err := w.compose.validate(w.file)
			return err
		case "rpms":
			return w.object(ejAt("payload", "rpms"), func(variant string) error {
				return w.object(ejAt("payload", "rpms", variant), func(arch string) error {
					return w.object(ejAt("payload", "rpms", variant, arch), func(srpm string) error {
						return w.object(ejAt("payload", "rpms", variant, arch, srpm), func(nevra string) error {
							return w.entry(variant, arch, srpm, nevra)
						})
					})
				})
			})
		}
		return w.skip()
	})
}

func (w *ejWalker) entry(variant, arch, srpm, nevra string) error {
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
