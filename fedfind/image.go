package fedfind

import (
	"strings"
)

// Image is one image of a compose: every productmd field, plus the variant it
// is listed under, its absolute URL and its identity.
type Image struct {
	Variant            string            `json:"variant"`
	Arch               string            `json:"arch"`
	Type               string            `json:"type"`
	Format             string            `json:"format"`
	Subvariant         string            `json:"subvariant"`
	Path               string            `json:"path"`
	URL                string            `json:"url"`
	Size               int64             `json:"size"`
	Checksums          map[string]string `json:"checksums"`
	Mtime              int64             `json:"mtime"`
	VolumeID           string            `json:"volume_id,omitempty"`
	ImplantMD5         string            `json:"implant_md5,omitempty"`
	Bootable           bool              `json:"bootable"`
	DiscNumber         int               `json:"disc_number"`
	DiscCount          int               `json:"disc_count"`
	Unified            bool              `json:"unified,omitempty"`
	AdditionalVariants []string          `json:"additional_variants,omitempty"`
	// Identity is "<subvariant>-<type>-<format>", the name of "the same
	// image" across composes (fedfind's identify_image in string form).
	Identity string `json:"identity"`
}

// Identity returns "<subvariant>-<type>-<format>" for the given parts, as
// fedfind's identify_image joins them.
func Identity(subvariant, typ, format string) string {
	return subvariant + "-" + typ + "-" + format
}

// Flavor returns the openQA FLAVOR of an image:
// "<subvariant>-<type with - as _>-<format>", e.g. Server-dvd-iso,
// Silverblue-dvd_ostree-iso, Minimal-raw_xz-raw.xz.
func (im Image) Flavor() string {
	return strings.ReplaceAll(im.Subvariant, "-", "_") + "-" +
		strings.ReplaceAll(im.Type, "-", "_") + "-" +
		strings.ReplaceAll(im.Format, "-", "_")
}

// Key identifies an image within one compose for comparisons: its identity,
// arch and disc number. Two images of two composes with the same Key are "the
// same image".
type ImageKey struct {
	Identity string `json:"identity"`
	Arch     string `json:"arch"`
	Disc     int    `json:"disc_number,omitempty"`
}

// Key returns the image's ImageKey.
func (im Image) Key() ImageKey {
	d := im.DiscNumber
	if d <= 1 {
		d = 0
	}
	return ImageKey{Identity: im.Identity, Arch: im.Arch, Disc: d}
}

// correctType applies fedfind's fix for Pungi issue 417: ostree installer
// ISOs once labelled "boot" are "dvd-ostree".
func correctType(typ, path string) string {
	if typ == "boot" {
		base := path[strings.LastIndex(path, "/")+1:]
		if strings.Contains(base, "-dvd-") || strings.Contains(base, "-ostree-") {
			return "dvd-ostree"
		}
	}
	return typ
}
