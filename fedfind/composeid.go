// Package fedfind finds composes and reads what they hold: compose IDs and
// release streams, tree locations, productmd metadata, Pungi STATUS, images
// and their identities, expected images, the diff of two composes (images,
// and source packages in RPM's version order) and the previous compose of a
// stream.
package fedfind

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ComposeType is productmd's compose type. Its order is productmd's order of
// composes of one date: test < ci < nightly < production < development.
type ComposeType int

// The compose types, in productmd's order.
const (
	TypeTest ComposeType = iota
	TypeCI
	TypeNightly
	TypeProduction
	TypeDevelopment
)

var composeTypeNames = [...]string{"test", "ci", "nightly", "production", "development"}
var composeTypeSuffix = [...]string{".t", ".ci", ".n", "", ".d"}

// String returns productmd's name of t ("nightly", "production", ...).
func (t ComposeType) String() string {
	if t < 0 || int(t) >= len(composeTypeNames) {
		return fmt.Sprintf("ComposeType(%d)", int(t))
	}
	return composeTypeNames[t]
}

// Suffix returns the suffix t gives a compose ID (".n" for nightly, "" for
// production).
func (t ComposeType) Suffix() string {
	if t < 0 || int(t) >= len(composeTypeSuffix) {
		return ""
	}
	return composeTypeSuffix[t]
}

// ParseComposeType reads a productmd compose type name.
func ParseComposeType(s string) (ComposeType, error) {
	for i, n := range composeTypeNames {
		if n == s {
			return ComposeType(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown compose type %q", ErrInvalidInput, s)
}

// ErrInvalidInput is wrapped by every error about input a user gave: a
// malformed compose ID, label or URL.
var ErrInvalidInput = errors.New("invalid input")

// ComposeID is a parsed productmd compose ID such as
// Fedora-Rawhide-20261122.n.0. Prefix is everything before the date:
// "<short>-<version>[-<release type>][-<base product>]", which cannot be split
// reliably on its own (short names hold dashes), so the parts that matter are
// derived by Stream.
type ComposeID struct {
	Prefix string
	Date   string // YYYYMMDD
	Type   ComposeType
	Respin int
}

// composeIDPattern is the strict form: a prefix of safe characters, the date,
// an optional type suffix, and the respin, anchored at both ends. Regexps
// are compiled on first use, not at start-up (docs/conventions.md); a
// compiled one is immutable and safe to share.
var composeIDPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.+-]*)-(\d{8})(?:\.(n|nightly|t|test|ci|d))?\.(\d{1,6})$`)
})

// maxComposeIDLen bounds an ID; real ones are under 60 bytes.
const maxComposeIDLen = 128

// ParseComposeID parses and validates a compose ID. It accepts exactly the
// IDs Pungi writes (and productmd's long type names .nightly and .test), and
// rejects anything that could escape a path when it names a file or URL:
// slashes, backslashes, "..", control characters, spaces. The legacy form
// with the type after the respin (Test-20151203.0.t, a 2015 Pungi test
// fixture) is rejected: productmd itself misreads it as a production compose.
func ParseComposeID(s string) (ComposeID, error) {
	if len(s) > maxComposeIDLen {
		return ComposeID{}, fmt.Errorf("%w: compose ID is %d bytes long, at most %d allowed", ErrInvalidInput, len(s), maxComposeIDLen)
	}
	m := composeIDPattern().FindStringSubmatch(s)
	if m == nil {
		return ComposeID{}, fmt.Errorf("%w: %q is not a compose ID (want <short>-<version>-<YYYYMMDD>[.n|.t|.ci|.d].<respin>, e.g. Fedora-Rawhide-20261122.n.0)", ErrInvalidInput, s)
	}
	if strings.Contains(m[1], "..") {
		return ComposeID{}, fmt.Errorf("%w: compose ID %q contains \"..\"", ErrInvalidInput, s)
	}
	if _, err := time.Parse("20060102", m[2]); err != nil {
		return ComposeID{}, fmt.Errorf("%w: compose ID %q has no valid date: %s", ErrInvalidInput, s, m[2])
	}
	id := ComposeID{Prefix: m[1], Date: m[2]}
	switch m[3] {
	case "":
		id.Type = TypeProduction
	case "n", "nightly":
		id.Type = TypeNightly
	case "t", "test":
		id.Type = TypeTest
	case "ci":
		id.Type = TypeCI
	case "d":
		id.Type = TypeDevelopment
	}
	id.Respin, _ = strconv.Atoi(m[4]) // at most 6 digits: cannot fail
	return id, nil
}

// MustParseComposeID is ParseComposeID for constants in tests and examples;
// it panics on an invalid ID.
func MustParseComposeID(s string) ComposeID {
	id, err := ParseComposeID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// String returns the canonical ID (short type suffixes).
func (c ComposeID) String() string {
	return c.Prefix + "-" + c.Date + c.Type.Suffix() + "." + strconv.Itoa(c.Respin)
}

// IsZero reports whether c is the zero ComposeID.
func (c ComposeID) IsZero() bool { return c == ComposeID{} }

// ImageRelease is the release string Pungi gives Koji for this compose's
// images: "<date><type suffix>.<respin>", e.g. "20261122.n.0".
func (c ComposeID) ImageRelease() string {
	return c.Date + c.Type.Suffix() + "." + strconv.Itoa(c.Respin)
}

// Time returns the compose date at midnight UTC.
func (c ComposeID) Time() time.Time {
	t, _ := time.Parse("20060102", c.Date)
	return t
}

// SameSeries reports whether c and o belong to one series of composes: the
// same prefix and compose type. Only such composes are compared in
// "previous compose" and diffs.
func (c ComposeID) SameSeries(o ComposeID) bool {
	return c.Prefix == o.Prefix && c.Type == o.Type
}

// Compare orders composes as productmd does: by date, then by compose type
// (test < ci < nightly < production < development), then by respin as an
// integer; the prefix breaks remaining ties so the order is total.
func (c ComposeID) Compare(o ComposeID) int {
	switch {
	case c.Date != o.Date:
		return strings.Compare(c.Date, o.Date)
	case c.Type != o.Type:
		return int(c.Type) - int(o.Type)
	case c.Respin != o.Respin:
		if c.Respin < o.Respin {
			return -1
		}
		return 1
	}
	return strings.Compare(c.Prefix, o.Prefix)
}

// Label is a productmd compose label such as Beta-1.2 or RC-1.5.
type Label struct {
	Milestone    string // Beta, RC, ...
	Major, Minor int
}

// labelPattern is a productmd label, compiled on first use
// (docs/conventions.md).
var labelPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(EA|DevelPhaseExit|InternalAlpha|Alpha|InternalSnapshot|Beta|Snapshot|RC|Update|SecurityFix)-(\d{1,4})\.(\d{1,4})$`)
})

// ParseLabel parses a productmd label.
func ParseLabel(s string) (Label, error) {
	m := labelPattern().FindStringSubmatch(s)
	if m == nil {
		return Label{}, fmt.Errorf("%w: %q is not a compose label (want e.g. Beta-1.2 or RC-1.5)", ErrInvalidInput, s)
	}
	maj, _ := strconv.Atoi(m[2])
	minr, _ := strconv.Atoi(m[3])
	return Label{Milestone: m[1], Major: maj, Minor: minr}, nil
}

// String returns the label as productmd writes it.
func (l Label) String() string {
	return fmt.Sprintf("%s-%d.%d", l.Milestone, l.Major, l.Minor)
}

// MajorString returns the label's major version, "Beta-1" for Beta-1.2.
func (l Label) MajorString() string { return fmt.Sprintf("%s-%d", l.Milestone, l.Major) }

// Version returns the part Pungi sends to Koji as the image release, "1.2".
func (l Label) Version() string { return fmt.Sprintf("%d.%d", l.Major, l.Minor) }
