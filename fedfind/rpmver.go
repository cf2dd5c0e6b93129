package fedfind

import (
	"fmt"
	"strconv"
	"strings"
)

// Package names and versions as RPM writes and orders them. A package
// diff says "upgraded" or "downgraded" only if it orders versions exactly as
// RPM (and so dnf) does: 1.0~rc1 before 1.0, 1.0 before 1.0^git1, 1.01 equal
// to 1.1, an epoch above any version. A plain string or semver comparison
// gets each of these wrong.

// Rpmvercmp compares two version (or release) strings as RPM's rpmvercmp
// does and returns -1, 0 or +1. The strings are cut into segments of ASCII
// digits or ASCII letters, everything else separating them; numeric segments
// compare as numbers (leading zeros dropped) and are newer than alphabetic
// ones; '~' sorts before everything, even the end of the string; '^' sorts
// after the end of the string but before anything else. Non-ASCII bytes are
// separators, as in RPM.
func Rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		// The tilde separator sorts before everything else.
		if ta, tb := i < len(a) && a[i] == '~', j < len(b) && b[j] == '~'; ta || tb {
			if !ta {
				return 1
			}
			if !tb {
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		// The caret is like the tilde, except that a string that ends (a
		// base version) sorts before one that goes on with a caret.
		if ca, cb := i < len(a) && a[i] == '^', j < len(b) && b[j] == '^'; ca || cb {
			switch {
			case i == len(a):
				return -1
			case j == len(b):
				return 1
			case !ca:
				return 1
			case !cb:
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if i == len(a) || j == len(b) {
			break
		}
		// One segment of each: all digits or all letters, of the kind a's
		// segment is.
		si, sj := i, j
		num := isDigit(a[i])
		if num {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		// Segments of different kinds: the numeric one is newer.
		if sj == j {
			if num {
				return 1
			}
			return -1
		}
		x, y := a[si:i], b[sj:j]
		if num {
			// Numbers of any length, without overflow: drop leading
			// zeros, then more digits win.
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				if len(x) > len(y) {
					return 1
				}
				return -1
			}
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	// Every segment compared equal; whichever has characters left wins
	// (separators alone left on both sides compare equal).
	switch {
	case i == len(a) && j == len(b):
		return 0
	case i == len(a):
		return -1
	}
	return 1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// EVR is the epoch, version and release of a package: the part of its name
// RPM orders packages by. A missing epoch is 0, as in RPM.
type EVR struct {
	Epoch   int
	Version string
	Release string
}

// CompareEVR orders two EVRs as RPM does: by epoch, then version, then
// release, each of the latter two by Rpmvercmp. It returns -1, 0 or +1.
func CompareEVR(a, b EVR) int {
	switch {
	case a.Epoch < b.Epoch:
		return -1
	case a.Epoch > b.Epoch:
		return 1
	}
	if c := Rpmvercmp(a.Version, b.Version); c != 0 {
		return c
	}
	return Rpmvercmp(a.Release, b.Release)
}

// String writes the EVR as RPM prints it: "2.3-4.fc44", with "1:" in front
// only for a non-zero epoch.
func (e EVR) String() string {
	s := e.Version
	if e.Release != "" {
		s += "-" + e.Release
	}
	if e.Epoch != 0 {
		s = strconv.Itoa(e.Epoch) + ":" + s
	}
	return s
}

// MarshalText writes the EVR as String does, so JSON shows it as one string.
func (e EVR) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText reads what MarshalText writes: "" is the zero EVR (which
// String writes as ""), so a stored zero value reads back.
func (e *EVR) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*e = EVR{}
		return nil
	}
	v, err := ParseEVR(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEVR reads "[epoch:]version[-release]", e.g. "1:2.3-4.fc44".
func ParseEVR(s string) (EVR, error) {
	var e EVR
	rest := s
	if ep, v, ok := strings.Cut(rest, ":"); ok {
		n, ok := parseEpoch(ep)
		if !ok {
			return EVR{}, fmt.Errorf("%w: %q is not an EVR: bad epoch", ErrInvalidInput, s)
		}
		e.Epoch, rest = n, v
	}
	if v, r, ok := strings.Cut(rest, "-"); ok {
		e.Version, e.Release = v, r
	} else {
		e.Version = rest
	}
	if !validVR(e.Version) || (e.Release == "" && strings.Contains(rest, "-")) || (e.Release != "" && !validVR(e.Release)) {
		return EVR{}, fmt.Errorf("%w: %q is not an EVR", ErrInvalidInput, s)
	}
	return e, nil
}

// parseEpoch reads an epoch: decimal digits that fit RPM's 32 bits.
func parseEpoch(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return int(n), err == nil
}

// validVR reports whether s can be an RPM version or release: not empty,
// without '-' (the separator) or ':' (the epoch's).
func validVR(s string) bool {
	return s != "" && !strings.ContainsAny(s, "-:")
}

// NEVR names a package without its arch: name, epoch, version, release. It
// is how a source package is known across arches.
type NEVR struct {
	Name string
	EVR  EVR
}

// String writes "name-version-release", with the epoch ("name-1:2.3-4")
// only when it is not 0, as RPM prints %{NEVR}.
func (n NEVR) String() string { return n.Name + "-" + n.EVR.String() }

// MarshalText writes the NEVR as String does, and the zero NEVR as "".
func (n NEVR) MarshalText() ([]byte, error) {
	if n == (NEVR{}) {
		return nil, nil
	}
	return []byte(n.String()), nil
}

// UnmarshalText reads what MarshalText writes ("" is the zero NEVR).
func (n *NEVR) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*n = NEVR{}
		return nil
	}
	v, err := ParseNEVR(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// ParseNEVR reads "name-[epoch:]version-release" ("bash-5.2.37-3.fc44",
// "perl-Foo-4:1.0-1.fc44") or, as yum wrote it, "epoch:name-version-release".
func ParseNEVR(s string) (NEVR, error) {
	n, ok := splitNEVR(s)
	if !ok {
		return NEVR{}, fmt.Errorf("%w: %q is not a NEVR", ErrInvalidInput, s)
	}
	return n, nil
}

// splitNEVR cuts name-[E:]V-R at its last two dashes: names may hold
// dashes, versions and releases may not.
func splitNEVR(s string) (NEVR, bool) {
	dash := strings.LastIndexByte(s, '-')
	if dash <= 0 || dash == len(s)-1 {
		return NEVR{}, false
	}
	release, rest := s[dash+1:], s[:dash]
	dash = strings.LastIndexByte(rest, '-')
	if dash <= 0 || dash == len(rest)-1 {
		return NEVR{}, false
	}
	n := NEVR{Name: rest[:dash], EVR: EVR{Version: rest[dash+1:], Release: release}}
	if e, v, ok := strings.Cut(n.EVR.Version, ":"); ok {
		ep, ok := parseEpoch(e)
		if !ok {
			return NEVR{}, false
		}
		n.EVR.Epoch, n.EVR.Version = ep, v
	} else if e, name, ok := strings.Cut(n.Name, ":"); ok {
		ep, ok := parseEpoch(e)
		if !ok {
			return NEVR{}, false
		}
		n.EVR.Epoch, n.Name = ep, name
	}
	if n.Name == "" || strings.Contains(n.Name, ":") || !validVR(n.EVR.Version) || !validVR(n.EVR.Release) {
		return NEVR{}, false
	}
	return n, true
}

// NEVRA is a parsed name-epoch:version-release.arch.
type NEVRA struct {
	Name    string `json:"name"`
	Epoch   int    `json:"epoch"`
	Version string `json:"version"`
	Release string `json:"release"`
	Arch    string `json:"arch"`
}

// ParseNEVRA parses "bash-0:4.3.30-2.fc21.x86_64", the form productmd
// writes; the epoch is optional, and may also come first, as yum wrote it
// ("0:bash-4.3.30-2.fc21.x86_64").
func ParseNEVRA(s string) (NEVRA, error) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return NEVRA{}, fmt.Errorf("%w: %q is not a NEVRA", ErrInvalidInput, s)
	}
	n, ok := splitNEVR(s[:dot])
	if !ok {
		return NEVRA{}, fmt.Errorf("%w: %q is not a NEVRA", ErrInvalidInput, s)
	}
	return NEVRA{Name: n.Name, Epoch: n.EVR.Epoch, Version: n.EVR.Version, Release: n.EVR.Release, Arch: s[dot+1:]}, nil
}

// NEVR drops the arch: the package as it is known on every arch.
func (n NEVRA) NEVR() NEVR {
	return NEVR{Name: n.Name, EVR: EVR{Epoch: n.Epoch, Version: n.Version, Release: n.Release}}
}
