package fedfind

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// ErrUnsupportedFormat is wrapped when a productmd file has a format version
// this reader does not handle (below 1.0, or 2.0 and above).
var ErrUnsupportedFormat = errors.New("unsupported productmd format version")

// MetadataError reports a malformed, truncated or unsupported metadata file.
// File names the file (e.g. "images.json" or its URL).
type MetadataError struct {
	File string
	Err  error
}

func (e *MetadataError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *MetadataError) Unwrap() error { return e.Err }

func metaErr(file string, format string, args ...any) error {
	return &MetadataError{File: file, Err: fmt.Errorf(format, args...)}
}

// jsonErr turns a decoding error into a MetadataError that says what is
// wrong in words: truncation, bad syntax (with the byte offset) or a field
// of the wrong type.
func jsonErr(file string, err error) error {
	var syn *json.SyntaxError
	var tsyn *jsontext.SyntacticError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return metaErr(file, "truncated JSON (the file ends early): %w", err)
	case errors.As(err, &syn):
		return metaErr(file, "malformed JSON at byte %d: %w", syn.Offset, err)
	case errors.As(err, &tsyn):
		return metaErr(file, "malformed JSON at byte %d: %w", tsyn.ByteOffset, err)
	case errors.As(err, &typ):
		return metaErr(file, "field %q has the wrong type (want %s, got JSON %s)", typ.Field, typ.Type, typ.Value)
	}
	return &MetadataError{File: file, Err: err}
}

// Header is the envelope header of every productmd file.
type Header struct {
	Type    string `json:"type"`
	Version string `json:"version"`
}

// versionPattern is a productmd format version, compiled on first use
// (docs/conventions.md).
var versionPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+)\.(\d+)$`) })

// check validates the header for a file of productmd type wantType and
// returns the format's major and minor version. Formats 1.0 to 1.x are read;
// 1.0 has no type, from 1.1 on the type is required. Format 2.0 (productmd's
// development branch) changes the image fields and is refused rather than
// misread.
func (h Header) check(file, wantType string) (major, minor int, err error) {
	if h.Version == "" {
		return 0, 0, metaErr(file, "no header.version: not a productmd file")
	}
	m := versionPattern().FindStringSubmatch(h.Version)
	if m == nil {
		return 0, 0, metaErr(file, "header.version %q is not <major>.<minor>", h.Version)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	switch {
	case major >= 2:
		return 0, 0, &MetadataError{File: file, Err: fmt.Errorf("%w: format %s (this reader handles 1.0 to 1.2; format 2 changes the image fields)", ErrUnsupportedFormat, h.Version)}
	case major < 1:
		return 0, 0, &MetadataError{File: file, Err: fmt.Errorf("%w: legacy format %s (this reader handles 1.0 to 1.2)", ErrUnsupportedFormat, h.Version)}
	}
	if h.Type == "" && minor >= 1 {
		return 0, 0, metaErr(file, "header.type is missing (required from format 1.1 on)")
	}
	if h.Type != "" && h.Type != wantType {
		return 0, 0, metaErr(file, "header.type is %q, want %q", h.Type, wantType)
	}
	return major, minor, nil
}

// ComposeMeta is the "compose" object found in every productmd file.
type ComposeMeta struct {
	ID     string `json:"id"`
	Date   string `json:"date"`
	Respin int    `json:"respin"`
	Type   string `json:"type"`
	Label  string `json:"label,omitempty"`
	Final  bool   `json:"final,omitempty"`
}

func (c ComposeMeta) validate(file string) (ComposeID, error) {
	if c.ID == "" {
		return ComposeID{}, metaErr(file, "payload.compose.id is missing")
	}
	id, err := ParseComposeID(c.ID)
	if err != nil {
		return ComposeID{}, metaErr(file, "payload.compose.id: %w", err)
	}
	if c.Label != "" {
		if _, err := ParseLabel(c.Label); err != nil {
			return ComposeID{}, metaErr(file, "payload.compose.label: %w", err)
		}
	}
	return id, nil
}

// decodeEnvelope reads a whole productmd file of type kind: it decodes the
// header and the payload P, checks the header, that there is a payload, and
// the compose the payload names.
func decodeEnvelope[P any](r io.Reader, file, kind string, compose func(*P) ComposeMeta) (Header, *P, ComposeID, error) {
	var doc struct {
		Header  Header `json:"header"`
		Payload *P     `json:"payload"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return Header{}, nil, ComposeID{}, jsonErr(file, err)
	}
	if _, _, err := doc.Header.check(file, kind); err != nil {
		return Header{}, nil, ComposeID{}, err
	}
	if doc.Payload == nil {
		return Header{}, nil, ComposeID{}, metaErr(file, "no payload")
	}
	id, err := compose(doc.Payload).validate(file)
	if err != nil {
		return Header{}, nil, ComposeID{}, err
	}
	return doc.Header, doc.Payload, id, nil
}

// Release is composeinfo's release (or base_product) object.
type Release struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Short     string `json:"short"`
	Type      string `json:"type"`
	Internal  bool   `json:"internal"`
	IsLayered bool   `json:"is_layered,omitempty"`
}

// Variant is one variant of a compose.
type Variant struct {
	ID     string                       `json:"id"`
	UID    string                       `json:"uid"`
	Name   string                       `json:"name"`
	Type   string                       `json:"type"`
	Arches []string                     `json:"arches"`
	Paths  map[string]map[string]string `json:"paths,omitempty"`
	// Children lists the ids of child variants (addons, optional, layered).
	Children []string `json:"variants,omitempty"`
}

// ComposeInfo is composeinfo.json.
type ComposeInfo struct {
	Header      Header             `json:"header"`
	ID          ComposeID          `json:"-"`
	Compose     ComposeMeta        `json:"compose"`
	Release     Release            `json:"release"`
	BaseProduct *Release           `json:"base_product,omitempty"`
	Variants    map[string]Variant `json:"variants"`
	// Archived: read from the metadata archive (the tree is gone).
	Archived bool `json:"archived,omitempty"`
}

// HasVariant reports whether the compose has a variant with this UID.
func (ci *ComposeInfo) HasVariant(uid string) bool {
	_, ok := ci.Variants[uid]
	return ok
}

// ParseComposeInfo reads composeinfo.json. file names it in errors.
func ParseComposeInfo(r io.Reader, file string) (*ComposeInfo, error) {
	type payload struct {
		Compose     ComposeMeta        `json:"compose"`
		Release     *Release           `json:"release"`
		BaseProduct *Release           `json:"base_product"`
		Variants    map[string]Variant `json:"variants"`
	}
	hdr, p, id, err := decodeEnvelope(r, file, "productmd.composeinfo", func(p *payload) ComposeMeta { return p.Compose })
	if err != nil {
		return nil, err
	}
	if p.Release == nil || p.Release.Short == "" || p.Release.Version == "" {
		return nil, metaErr(file, "payload.release is missing or lacks short/version")
	}
	for uid, v := range p.Variants {
		if v.ID == "" || v.UID == "" || v.Type == "" {
			return nil, metaErr(file, "variant %q lacks id, uid or type", uid)
		}
		if v.UID != uid {
			return nil, metaErr(file, "variant key %q does not match its uid %q", uid, v.UID)
		}
	}
	return &ComposeInfo{Header: hdr, ID: id, Compose: p.Compose, Release: *p.Release,
		BaseProduct: p.BaseProduct, Variants: p.Variants}, nil
}

// ImagesFile is images.json, flattened: every image with its variant, sorted
// by variant, arch and path.
type ImagesFile struct {
	Header  Header      `json:"header"`
	ID      ComposeID   `json:"-"`
	Compose ComposeMeta `json:"compose"`
	Images  []Image     `json:"images"`
	// Archived: read from the metadata archive (the tree is gone).
	Archived bool `json:"archived,omitempty"`
}

// rawImage is one image as productmd writes it; pointers tell a missing
// field from a zero one.
type rawImage struct {
	Path               *string           `json:"path"`
	Mtime              int64             `json:"mtime"`
	Size               *int64            `json:"size"`
	VolumeID           *string           `json:"volume_id"`
	Type               *string           `json:"type"`
	Format             *string           `json:"format"`
	Arch               *string           `json:"arch"`
	DiscNumber         int               `json:"disc_number"`
	DiscCount          int               `json:"disc_count"`
	Checksums          map[string]string `json:"checksums"`
	ImplantMD5         *string           `json:"implant_md5"`
	Bootable           bool              `json:"bootable"`
	Subvariant         *string           `json:"subvariant"`
	Unified            bool              `json:"unified"`
	AdditionalVariants []string          `json:"additional_variants"`
}

// ParseImages reads images.json. baseURL is the compose's location (its
// /compose directory); each image's URL is baseURL + "/" + path. file names
// the file in errors. Images of unknown type or format are kept: both lists
// grow over time.
func ParseImages(r io.Reader, file, baseURL string) (*ImagesFile, error) {
	type payload struct {
		Compose ComposeMeta                      `json:"compose"`
		Images  map[string]map[string][]rawImage `json:"images"`
	}
	hdr, p, id, err := decodeEnvelope(r, file, "productmd.images", func(p *payload) ComposeMeta { return p.Compose })
	if err != nil {
		return nil, err
	}
	if p.Images == nil {
		return nil, metaErr(file, "payload.images is missing")
	}
	base := strings.TrimSuffix(baseURL, "/")
	out := &ImagesFile{Header: hdr, ID: id, Compose: p.Compose, Images: []Image{}}
	// Format 1.2 lists source media under every binary arch; keep one.
	seen := map[[2]string]bool{}
	for variant, arches := range p.Images {
		for archKey, list := range arches {
			for i, ri := range list {
				where := fmt.Sprintf("payload.images.%s.%s[%d]", variant, archKey, i)
				im, err := ri.image(variant, where)
				if err != nil {
					return nil, &MetadataError{File: file, Err: err}
				}
				k := [2]string{variant, im.Path}
				if seen[k] {
					continue
				}
				seen[k] = true
				if base != "" {
					im.URL = base + "/" + im.Path
				}
				out.Images = append(out.Images, im)
			}
		}
	}
	slices.SortFunc(out.Images, func(a, b Image) int {
		return strings.Compare(a.Variant+"\x00"+a.Arch+"\x00"+a.Path, b.Variant+"\x00"+b.Arch+"\x00"+b.Path)
	})
	return out, nil
}

func (ri rawImage) image(variant, where string) (Image, error) {
	if ri.Path == nil || *ri.Path == "" {
		return Image{}, fmt.Errorf("%s: path is missing", where)
	}
	path := *ri.Path
	if strings.HasPrefix(path, "/") || slices.Contains(strings.Split(path, "/"), "..") {
		return Image{}, fmt.Errorf("%s: path %q leaves the compose directory", where, path)
	}
	if ri.Arch == nil || *ri.Arch == "" {
		return Image{}, fmt.Errorf("%s: arch is missing", where)
	}
	if ri.Type == nil || *ri.Type == "" {
		return Image{}, fmt.Errorf("%s: type is missing", where)
	}
	if ri.Size == nil || *ri.Size < 0 {
		return Image{}, fmt.Errorf("%s: size is missing or negative", where)
	}
	format := "iso" // productmd: a missing format (old files) means iso
	if ri.Format != nil && *ri.Format != "" {
		format = *ri.Format
	}
	im := Image{
		Variant: variant, Arch: *ri.Arch, Type: correctType(*ri.Type, path), Format: format,
		Path: path, Size: *ri.Size, Checksums: ri.Checksums, Mtime: ri.Mtime,
		Bootable: ri.Bootable, DiscNumber: ri.DiscNumber, DiscCount: ri.DiscCount,
		Unified: ri.Unified, AdditionalVariants: ri.AdditionalVariants,
	}
	if im.Checksums == nil {
		im.Checksums = map[string]string{}
	}
	if ri.Subvariant != nil {
		im.Subvariant = *ri.Subvariant
	}
	if ri.VolumeID != nil {
		im.VolumeID = *ri.VolumeID
	}
	if ri.ImplantMD5 != nil {
		im.ImplantMD5 = *ri.ImplantMD5
	}
	im.Identity = Identity(im.Subvariant, im.Type, im.Format)
	return im, nil
}

// Status is a compose's Pungi STATUS.
type Status string

// The STATUS values Pungi writes.
const (
	StatusStarted            Status = "STARTED"
	StatusFinished           Status = "FINISHED"
	StatusFinishedIncomplete Status = "FINISHED_INCOMPLETE"
	StatusDoomed             Status = "DOOMED"
	StatusTerminated         Status = "TERMINATED"
)

// Success reports FINISHED or FINISHED_INCOMPLETE: the compose produced
// something usable.
func (s Status) Success() bool { return s == StatusFinished || s == StatusFinishedIncomplete }

// Failed reports DOOMED or TERMINATED: the compose ended without result.
// (fedfind has no handling for TERMINATED, so waiting on one never ends.)
func (s Status) Failed() bool { return s == StatusDoomed || s == StatusTerminated }

// Terminal reports whether the compose will not change status any more.
func (s Status) Terminal() bool { return s.Success() || s.Failed() }

// ValidStatus reports whether s can be a Pungi STATUS: one word of at most
// 64 characters, a letter first, then letters, digits, '_', '-' or '.'.
// Pungi writes the five known words and allows any other (logging it as
// nonstandard), which are simply not terminal; what is not one such word —
// an HTML error page served with 200, say — is no STATUS. Checked by hand:
// a regexp with a counted repeat, compiled at start-up, unrolls into a
// copy per repeat for every command (docs/performance.md, "Start-up").
func ValidStatus(s string) bool {
	if s == "" || len(s) > 64 || !isASCIILetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isASCIILetter(c) && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// ParseStatus reads a STATUS file: one word, with or without a trailing
// newline. Non-standard words are allowed (Pungi allows them) and are simply
// not terminal; anything that is not one word (ValidStatus) is an error (an
// HTML error page served with 200, for one).
func ParseStatus(b []byte, file string) (Status, error) {
	s := strings.TrimSpace(string(b))
	if !ValidStatus(s) {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return "", metaErr(file, "not a Pungi STATUS: %q", s)
	}
	return Status(s), nil
}
