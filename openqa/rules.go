package openqa

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/composeci/composeci/fedfind"
)

//go:embed rules.toml
var defaultRulesTOML string

// Rules are the scheduling rules as data: which images are tested, on which
// arches, and what is posted for each product. They live in rules.toml
// (embedded) so a user can change what is tested without a new build.
type Rules struct {
	// Arches to schedule.
	Arches []string `toml:"arches"`
	// Releases are the release numbers used when neither numbers given by
	// hand nor the release data give them (ScheduleOptions).
	Releases Releases `toml:"releases"`
	// Params are posted with every product.
	Params map[string]string `toml:"params"`
	// ELNParams are added for ELN composes.
	ELNParams map[string]string `toml:"eln_params"`
	// Formats maps an image format to the URL parameter carrying it.
	Formats map[string]string `toml:"formats"`
	// Toolbox names the container image passed to image products.
	Toolbox ToolboxRule `toml:"toolbox"`
	// Wanted lists the images tested.
	Wanted []WantedImage `toml:"wanted"`
	// Special lists the image-less flavors.
	Special []SpecialFlavor `toml:"special"`
}

// Releases are the release numbers the upgrade tests need. Fedora QA's
// release data gives them (ScheduleOptions.ReleaseData); numbers in the
// rules or given by hand keep scheduling going without it.
type Releases struct {
	// Current is the newest stable release (CURRREL).
	Current int `toml:"current" json:"current"`
	// Rawhide is the number Rawhide will be released as, i.e. the
	// branched release + 1 (RAWREL).
	Rawhide int `toml:"rawhide" json:"rawhide"`
}

// ToolboxRule selects the toolbox container image of an arch.
type ToolboxRule struct {
	Subvariant string   `toml:"subvariant"`
	Types      []string `toml:"types"`
	Format     string   `toml:"format"`
	Param      string   `toml:"param"`
}

// WantedImage matches images exactly on all four fields.
type WantedImage struct {
	Subvariant string `toml:"subvariant"`
	Type       string `toml:"type"`
	Format     string `toml:"format"`
	Arch       string `toml:"arch"`
}

func (w WantedImage) matches(im fedfind.Image) bool {
	return im.Subvariant == w.Subvariant && im.Type == w.Type && im.Format == w.Format && im.Arch == w.Arch
}

// SpecialFlavor is a flavor tested without an image (upgrade tests).
type SpecialFlavor struct {
	Flavor     string   `toml:"flavor"`
	Arches     []string `toml:"arches"`
	Subvariant string   `toml:"subvariant"`
	ImageType  string   `toml:"imagetype"`
}

// DefaultRules returns the embedded rules, which match fedora_openqa: a
// copy of its own each time, which the caller may change.
func DefaultRules() *Rules {
	r, err := defaultRules()
	if err != nil {
		panic("openqa: embedded rules.toml: " + err.Error()) // a build defect, caught by tests
	}
	c := r.clone()
	return &c
}

// defaultRules parses the embedded rules once, on first use: not at
// start-up, where every command would pay for it (docs/performance.md,
// "Start-up"), and not at every call. The parsed rules are never handed
// out or changed, only cloned, so the cache is an immutable value.
var defaultRules = sync.OnceValues(func() (*Rules, error) {
	return parseRules(nil, defaultRulesTOML, "rules.toml")
})

// LoadRules reads rules from a TOML file laid out like rules.toml, on top
// of the defaults: a key the file sets replaces the default, tables are
// merged key by key, lists are replaced whole.
func LoadRules(path string) (*Rules, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("openqa rules: %w", err)
	}
	return ParseRules(string(raw), path)
}

// ParseRules reads rules from TOML text on top of the defaults; name is
// used in errors.
func ParseRules(text, name string) (*Rules, error) {
	return parseRules(DefaultRules(), text, name)
}

func parseRules(base *Rules, text, name string) (*Rules, error) {
	var r Rules
	if base != nil {
		r = base.clone()
	}
	// Decode lists into fresh values so a file's list replaces the
	// default instead of merging element by element.
	var lists struct {
		Arches  *[]string        `toml:"arches"`
		Wanted  *[]WantedImage   `toml:"wanted"`
		Special *[]SpecialFlavor `toml:"special"`
		Toolbox *struct {
			Types *[]string `toml:"types"`
		} `toml:"toolbox"`
	}
	if _, err := toml.Decode(text, &lists); err != nil {
		return nil, fmt.Errorf("openqa rules %s: %w", name, err)
	}
	md, err := toml.Decode(text, &r)
	if err != nil {
		return nil, fmt.Errorf("openqa rules %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("openqa rules %s: unknown keys %s", name, strings.Join(keys, ", "))
	}
	if lists.Arches != nil {
		r.Arches = *lists.Arches
	}
	if lists.Wanted != nil {
		r.Wanted = *lists.Wanted
	}
	if lists.Special != nil {
		r.Special = *lists.Special
	}
	if lists.Toolbox != nil && lists.Toolbox.Types != nil {
		r.Toolbox.Types = *lists.Toolbox.Types
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("openqa rules %s: %w", name, err)
	}
	return &r, nil
}

func (r *Rules) clone() Rules {
	c := *r
	c.Arches = slices.Clone(r.Arches)
	c.Params = maps.Clone(r.Params)
	c.ELNParams = maps.Clone(r.ELNParams)
	c.Formats = maps.Clone(r.Formats)
	c.Toolbox.Types = slices.Clone(r.Toolbox.Types)
	c.Wanted = slices.Clone(r.Wanted)
	c.Special = slices.Clone(r.Special)
	for i := range c.Special {
		c.Special[i].Arches = slices.Clone(c.Special[i].Arches)
	}
	return c
}

// Validate reports rules that could not schedule anything sensible.
func (r *Rules) Validate() error {
	var errs []error
	if len(r.Arches) == 0 {
		errs = append(errs, errors.New("arches is empty"))
	}
	for i, w := range r.Wanted {
		if w.Subvariant == "" || w.Type == "" || w.Format == "" || w.Arch == "" {
			errs = append(errs, fmt.Errorf("wanted[%d]: subvariant, type, format and arch are all required", i))
		}
		if r.Formats[w.Format] == "" {
			errs = append(errs, fmt.Errorf("wanted[%d]: no URL parameter for format %q in [formats]", i, w.Format))
		}
	}
	for i, s := range r.Special {
		if s.Flavor == "" || len(s.Arches) == 0 || s.Subvariant == "" || s.ImageType == "" {
			errs = append(errs, fmt.Errorf("special[%d]: flavor, arches, subvariant and imagetype are all required", i))
		}
	}
	if r.Toolbox.Subvariant != "" && (r.Toolbox.Param == "" || r.Toolbox.Format == "") {
		errs = append(errs, errors.New("toolbox: param and format are required with subvariant"))
	}
	if r.Releases.Current < 0 || r.Releases.Rawhide < 0 {
		errs = append(errs, errors.New("releases: negative release number"))
	}
	return errors.Join(errs...)
}

// Compose is what the scheduler needs to know of a compose; the caller
// fills it from fedfind.
type Compose struct {
	// ID is the productmd compose ID, posted as BUILD: reporters derive
	// the compose from it.
	ID string
	// Version is posted as VERSION: "Rawhide", a release number for
	// Branched ("44"), "eln" for ELN.
	Version string
	// Location is the compose URL (the .../compose directory), posted as
	// LOCATION; image URLs are resolved against it when an Image has none.
	Location string
	// Label is the compose label ("RC-1.5"), posted as LABEL when set.
	Label string
	// HasGenericTree is true for a full compose (an "Everything" variant):
	// only those get the image-less upgrade flavors.
	HasGenericTree bool
	// ELN marks an ELN compose (also implied by Version "eln").
	ELN bool
	// Candidate marks a production (candidate) compose of Fedora: once
	// its jobs are created, Schedule tags the build important in
	// ScheduleOptions.CandidateGroup, as fedora_openqa does, so that no
	// nightly's jobs obsolete them and their logs are kept longer.
	Candidate bool
	// Images are the compose's images.
	Images []fedfind.Image
}

func (c Compose) eln() bool { return c.ELN || strings.EqualFold(c.Version, "eln") }

// Product is one POST /api/v1/isos: a flavor on an arch with its
// parameters.
type Product struct {
	Flavor string            `json:"flavor"`
	Arch   string            `json:"arch"`
	Params map[string]string `json:"params"`
	// Image is the image tested; nil for special flavors.
	Image *fedfind.Image `json:"-"`
}

// ErrNoImages: the compose has none of the wanted images (at most the
// image-less flavors would be posted), as fedora_openqa's "Compose found,
// but no available images".
var ErrNoImages = errors.New("openqa: compose found, but no available images")

// Products applies the rules to a compose: one Product per wanted image
// (flavor, arch) on a scheduled arch, in the order of the wanted list, then
// the special flavors. A zero field of rel takes the rules' default.
func (r *Rules) Products(c Compose, rel Releases) ([]Product, error) {
	if c.ID == "" || c.Version == "" {
		return nil, fmt.Errorf("openqa: compose needs an ID and a version (got %q, %q)", c.ID, c.Version)
	}
	if rel.Current == 0 {
		rel.Current = r.Releases.Current
	}
	if rel.Rawhide == 0 {
		rel.Rawhide = r.Releases.Rawhide
	}
	arches := map[string]bool{}
	for _, a := range r.Arches {
		arches[a] = true
	}
	toolbox := map[string]string{}
	if r.Toolbox.Subvariant != "" {
		for _, im := range c.Images {
			if im.Subvariant == r.Toolbox.Subvariant && im.Format == r.Toolbox.Format &&
				(len(r.Toolbox.Types) == 0 || slices.Contains(r.Toolbox.Types, im.Type)) {
				if _, ok := toolbox[im.Arch]; !ok {
					toolbox[im.Arch] = imageURL(c, im)
				}
			}
		}
	}
	common := r.commonParams(c, rel)
	seen := map[[2]string]bool{}
	var out []Product
	for _, w := range r.Wanted {
		if !arches[w.Arch] {
			continue
		}
		for _, im := range c.Images {
			if !w.matches(im) {
				continue
			}
			flavor := im.Flavor()
			key := [2]string{flavor, im.Arch}
			if seen[key] {
				continue // one product per (flavor, arch), the first image wins
			}
			seen[key] = true
			p := maps.Clone(common)
			p["FLAVOR"], p["ARCH"] = flavor, im.Arch
			p["SUBVARIANT"], p["IMAGETYPE"] = im.Subvariant, im.Type
			p[r.Formats[im.Format]] = imageURL(c, im)
			if u, ok := toolbox[im.Arch]; ok {
				p[r.Toolbox.Param] = u
			}
			img := im
			out = append(out, Product{Flavor: flavor, Arch: im.Arch, Params: p, Image: &img})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w (compose %s, arches %s)", ErrNoImages, c.ID, strings.Join(r.Arches, ","))
	}
	if c.HasGenericTree && !c.eln() {
		for _, s := range r.Special {
			for _, a := range s.Arches {
				if !arches[a] || seen[[2]string{s.Flavor, a}] {
					continue
				}
				seen[[2]string{s.Flavor, a}] = true
				p := maps.Clone(common)
				p["FLAVOR"], p["ARCH"] = s.Flavor, a
				p["SUBVARIANT"], p["IMAGETYPE"] = s.Subvariant, s.ImageType
				out = append(out, Product{Flavor: s.Flavor, Arch: a, Params: p})
			}
		}
	}
	return out, nil
}

// commonParams are the parameters every product of the compose shares.
func (r *Rules) commonParams(c Compose, rel Releases) map[string]string {
	p := maps.Clone(r.Params)
	if p == nil {
		p = map[string]string{}
	}
	p["VERSION"] = c.Version
	p["BUILD"] = c.ID
	p["LOCATION"] = c.Location
	if c.Label != "" {
		p["LABEL"] = c.Label
	}
	// As fedora_openqa: the release under test is VERSION when it is a
	// number, else (Rawhide, ELN) the Rawhide number; upgrade tests start
	// one and two releases before it.
	relnum := rel.Rawhide
	if n, err := strconv.Atoi(c.Version); err == nil {
		relnum = n
	}
	p["CURRREL"] = strconv.Itoa(rel.Current)
	p["RAWREL"] = strconv.Itoa(rel.Rawhide)
	p["UP1REL"] = strconv.Itoa(relnum - 1)
	p["UP2REL"] = strconv.Itoa(relnum - 2)
	if c.eln() {
		for k, v := range r.ELNParams {
			if _, ok := p[k]; !ok {
				p[k] = v
			}
		}
	}
	return p
}

// imageURL is the image's absolute URL, or its path under the compose's
// location when the image carries none.
func imageURL(c Compose, im fedfind.Image) string {
	if im.URL != "" {
		return im.URL
	}
	return strings.TrimRight(c.Location, "/") + "/" + strings.TrimLeft(im.Path, "/")
}
