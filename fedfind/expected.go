package fedfind

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

//go:embed expected.toml
var defaultExpectedTOML []byte

// ExpectedImage is an image a compose must have, as fedfind names it:
// lower-case subvariant, type and arch.
type ExpectedImage struct {
	Subvariant string `json:"subvariant" toml:"subvariant"`
	Type       string `json:"type" toml:"type"`
	Arch       string `json:"arch" toml:"arch"`
}

// ExpectedImages maps a stream kind (rawhide, branched, ...) to the images
// its composes must have.
type ExpectedImages map[StreamKind][]ExpectedImage

// DefaultExpectedImages returns the built-in lists (fedfind/expected.toml):
// a copy of its own each time, which the caller may change.
func DefaultExpectedImages() ExpectedImages {
	e, err := defaultExpected()
	if err != nil {
		panic(err) // the embedded file is tested
	}
	out := make(ExpectedImages, len(e))
	for k, v := range e {
		out[k] = slices.Clone(v)
	}
	return out
}

// defaultExpected parses the embedded lists once, on first use: not at
// start-up, where every command would pay for it (docs/performance.md,
// "Start-up"), and not at every check. The parsed lists are never handed
// out, only copied, so the cache is an immutable value.
var defaultExpected = sync.OnceValues(func() (ExpectedImages, error) {
	return ParseExpectedImages(bytes.NewReader(defaultExpectedTOML), "expected.toml")
})

// ParseExpectedImages reads expected-image lists in the shape of
// expected.toml. name is used in errors.
func ParseExpectedImages(r io.Reader, name string) (ExpectedImages, error) {
	var doc struct {
		Streams map[string]struct {
			Images []ExpectedImage `toml:"images"`
		} `toml:"streams"`
	}
	md, err := toml.NewDecoder(r).Decode(&doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown keys %v", name, und)
	}
	out := ExpectedImages{}
	for s, v := range doc.Streams {
		kind := StreamKind(s)
		if !kind.Known() {
			return nil, fmt.Errorf("%s: unknown stream %q", name, s)
		}
		for i, e := range v.Images {
			if e.Subvariant == "" || e.Type == "" || e.Arch == "" {
				return nil, fmt.Errorf("%s: streams.%s.images[%d]: subvariant, type and arch are all required", name, s, i)
			}
			v.Images[i] = ExpectedImage{strings.ToLower(e.Subvariant), e.Type, e.Arch}
		}
		out[kind] = v.Images
	}
	return out, nil
}

// expectedMatchKey is how fedfind matches an image to an expected entry.
func expectedMatchKey(im Image) ExpectedImage {
	sv := strings.TrimSuffix(strings.ToLower(im.Subvariant), "_appliance")
	return ExpectedImage{Subvariant: sv, Type: im.Type, Arch: im.Arch}
}

// MissingExpected returns the expected images that images lacks, sorted by
// arch, subvariant and type. It never returns nil.
func MissingExpected(expected []ExpectedImage, images []Image) []ExpectedImage {
	have := make(map[ExpectedImage]bool, len(images))
	for _, im := range images {
		have[expectedMatchKey(im)] = true
	}
	missing := []ExpectedImage{}
	for _, e := range expected {
		if !have[e] && !slices.Contains(missing, e) {
			missing = append(missing, e)
		}
	}
	slices.SortFunc(missing, func(a, b ExpectedImage) int {
		return strings.Compare(a.Arch+"\x00"+a.Subvariant+"\x00"+a.Type, b.Arch+"\x00"+b.Subvariant+"\x00"+b.Type)
	})
	return missing
}

// Identity names the expected image as Image.Identity names the images of
// a compose, "<subvariant>-<type>-<format>", for people to see the two
// alike (composeci expected and diff). The list does not give the format
// (fedfind matches without it): it is that of an image of images with the
// same subvariant and type on another arch, whose spelling of the
// subvariant is kept (Server-boot-iso); failing that, the format Fedora's
// images of the type have (server-boot-iso), or none for a type it does
// not know (server-foo).
func (e ExpectedImage) Identity(images []Image) string {
	for _, im := range images {
		if k := expectedMatchKey(im); k.Subvariant == e.Subvariant && k.Type == e.Type {
			return im.Identity
		}
	}
	if f := typeFormat(e.Type); f != "" {
		return Identity(e.Subvariant, e.Type, f)
	}
	return e.Subvariant + "-" + e.Type
}

// typeFormat is the format of Fedora's images of a productmd image type.
func typeFormat(typ string) string {
	switch typ {
	case "boot", "dvd", "dvd-ostree", "live", "netinst":
		return "iso"
	case "raw-xz":
		return "raw.xz"
	case "qcow2":
		return "qcow2"
	case "docker", "container":
		return "tar.xz"
	case "vagrant-libvirt", "vagrant-virtualbox":
		return typ + ".box"
	case "vhd-compressed":
		return "vhd.xz"
	}
	return ""
}
