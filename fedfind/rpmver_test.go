package fedfind

import (
	"errors"
	"testing"
)

// rpmvercmpCases are the cases of RPM's own test suite (tests/rpmvercmp.at:
// the plain, tilde, caret and tilde-with-caret cases, the RhBug:178798
// separator cases and the documented oddities), plus a few of ours at the
// end. Each is also checked the other way round.
var rpmvercmpCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "2.0", -1},
	{"2.0", "1.0", 1},

	{"2.0.1", "2.0.1", 0},
	{"2.0", "2.0.1", -1},
	{"2.0.1", "2.0", 1},

	{"2.0.1a", "2.0.1a", 0},
	{"2.0.1a", "2.0.1", 1},
	{"2.0.1", "2.0.1a", -1},

	{"5.5p1", "5.5p1", 0},
	{"5.5p1", "5.5p2", -1},
	{"5.5p2", "5.5p1", 1},

	{"5.5p10", "5.5p10", 0},
	{"5.5p1", "5.5p10", -1},
	{"5.5p10", "5.5p1", 1},

	{"10xyz", "10.1xyz", -1},
	{"10.1xyz", "10xyz", 1},

	{"xyz10", "xyz10", 0},
	{"xyz10", "xyz10.1", -1},
	{"xyz10.1", "xyz10", 1},

	{"xyz.4", "xyz.4", 0},
	{"xyz.4", "8", -1},
	{"8", "xyz.4", 1},
	{"xyz.4", "2", -1},
	{"2", "xyz.4", 1},

	{"5.5p2", "5.6p1", -1},
	{"5.6p1", "5.5p2", 1},

	{"5.6p1", "6.5p1", -1},
	{"6.5p1", "5.6p1", 1},

	{"6.0.rc1", "6.0", 1},
	{"6.0", "6.0.rc1", -1},

	{"10b2", "10a1", 1},
	{"10a2", "10b2", -1},

	{"1.0aa", "1.0aa", 0},
	{"1.0a", "1.0aa", -1},
	{"1.0aa", "1.0a", 1},

	{"10.0001", "10.0001", 0},
	{"10.0001", "10.1", 0},
	{"10.1", "10.0001", 0},
	{"10.0001", "10.0039", -1},
	{"10.0039", "10.0001", 1},

	{"4.999.9", "5.0", -1},
	{"5.0", "4.999.9", 1},

	{"20101121", "20101121", 0},
	{"20101121", "20101122", -1},
	{"20101122", "20101121", 1},

	{"2_0", "2_0", 0},
	{"2.0", "2_0", 0},
	{"2_0", "2.0", 0},

	// RhBug:178798: separators alone compare equal.
	{"a", "a", 0},
	{"a+", "a+", 0},
	{"a+", "a_", 0},
	{"a_", "a+", 0},
	{"+a", "+a", 0},
	{"+a", "_a", 0},
	{"_a", "+a", 0},
	{"+_", "+_", 0},
	{"_+", "+_", 0},
	{"_+", "_", 0},
	{"+", "_", 0},
	{"_", "+", 0},

	// Tilde: sorts before everything, even the end of the string.
	{"1.0~rc1", "1.0~rc1", 0},
	{"1.0~rc1", "1.0", -1},
	{"1.0", "1.0~rc1", 1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~rc2", "1.0~rc1", 1},
	{"1.0~rc1~git123", "1.0~rc1~git123", 0},
	{"1.0~rc1~git123", "1.0~rc1", -1},
	{"1.0~rc1", "1.0~rc1~git123", 1},

	// Caret: after the end of the string, before anything else.
	{"1.0^", "1.0^", 0},
	{"1.0^", "1.0", 1},
	{"1.0", "1.0^", -1},
	{"1.0^git1", "1.0^git1", 0},
	{"1.0^git1", "1.0", 1},
	{"1.0", "1.0^git1", -1},
	{"1.0^git1", "1.0^git2", -1},
	{"1.0^git2", "1.0^git1", 1},
	{"1.0^git1", "1.01", -1},
	{"1.01", "1.0^git1", 1},
	{"1.0^20160101", "1.0^20160101", 0},
	{"1.0^20160101", "1.0.1", -1},
	{"1.0.1", "1.0^20160101", 1},
	{"1.0^20160101^git1", "1.0^20160101^git1", 0},
	{"1.0^20160102", "1.0^20160101^git1", 1},
	{"1.0^20160101^git1", "1.0^20160102", -1},

	// Tilde and caret together.
	{"1.0~rc1^git1", "1.0~rc1^git1", 0},
	{"1.0~rc1^git1", "1.0~rc1", 1},
	{"1.0~rc1", "1.0~rc1^git1", -1},
	{"1.0^git1~pre", "1.0^git1~pre", 0},
	{"1.0^git1", "1.0^git1~pre", 1},
	{"1.0^git1~pre", "1.0^git1", -1},

	// RPM's documented oddities (RhBug:811992): a letter after the number
	// is a segment of its own, compared with the next segment of the other.
	{"1b.fc17", "1b.fc17", 0},
	{"1b.fc17", "1.fc17", -1},
	{"1.fc17", "1b.fc17", 1},
	{"1g.fc17", "1g.fc17", 0},
	{"1g.fc17", "1.fc17", 1},
	{"1.fc17", "1g.fc17", -1},

	// Non-ASCII characters are separators, so these are all equal.
	{"1.1.α", "1.1.α", 0},
	{"1.1.α", "1.1.β", 0},
	{"1.1.β", "1.1.α", 0},
	{"1.1.αα", "1.1.α", 0},
	{"1.1.α", "1.1.ββ", 0},
	{"1.1.ββ", "1.1.αα", 0},

	// Ours: the cases the issue names, numbers beyond 64 bits, Fedora
	// releases, and a tilde against a caret.
	{"1.0", "1.0a", -1},
	{"1.0a", "1.0", 1},
	{"1.0", "1.0.0", -1},
	{"1.01", "1.1", 0},
	{"1.0", "1", 1},
	{"123456789012345678901234567890", "123456789012345678901234567891", -1},
	{"0000000000000000000000000000001", "1", 0},
	{"1.fc44", "2.fc44", -1},
	{"0.rc6.50.fc44", "1.fc44", -1},
	{"3.fc44", "3.fc44.1", -1},
	{"1~", "1^", -1},
	{"1^", "1~", 1},
	{"", "", 0},
	{"", "1", -1},
	{"a", "1", -1},
}

func TestRpmvercmp(t *testing.T) {
	for _, tt := range rpmvercmpCases {
		if got := Rpmvercmp(tt.a, tt.b); got != tt.want {
			t.Errorf("Rpmvercmp(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Rpmvercmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("Rpmvercmp(%q, %q) = %d, want %d (reversed)", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestCompareEVR(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0-1.fc44", "1.0-1.fc44", 0},
		{"0:1.0-1.fc44", "1.0-1.fc44", 0},    // a missing epoch is 0
		{"1:1.0-1.fc44", "9.9-9.fc44", 1},    // the epoch comes first
		{"1:1.0-1.fc44", "2:0.1-1.fc44", -1}, // and compares as a number
		{"10:1.0-1", "9:1.0-1", 1},
		{"1.0-2.fc44", "1.0-10.fc44", -1}, // then the release, by rpmvercmp
		{"1.10-1", "1.9-99", 1},           // the version before the release
		{"3.14.0~rc3-1.fc44", "3.14.0-1.fc44", -1},
		{"9.1.1^20261122git1-1.fc44", "9.1.1-1.fc44", 1},
		{"6.18.0-0.rc6.50.fc44", "6.18.0-1.fc44", -1},
		{"2.42.9000-5.fc44", "2.42.9000-4.fc44", 1},
	} {
		a, err := ParseEVR(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseEVR(tt.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := CompareEVR(a, b); got != tt.want {
			t.Errorf("CompareEVR(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareEVR(b, a); got != -tt.want {
			t.Errorf("CompareEVR(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestParseEVR(t *testing.T) {
	for in, want := range map[string]EVR{
		"1.0-1.fc44":      {0, "1.0", "1.fc44"},
		"0:1.0-1.fc44":    {0, "1.0", "1.fc44"},
		"2:4.18-1.fc44":   {2, "4.18", "1.fc44"},
		"1.0~rc1":         {0, "1.0~rc1", ""},
		"1:9.1^git1-0.fc": {1, "9.1^git1", "0.fc"},
	} {
		got, err := ParseEVR(in)
		if err != nil || got != want {
			t.Errorf("ParseEVR(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":1.0", "x:1.0-1", "-1:1.0-1", "1.0-", "1.0-1-2", "1:2:3-4", "99999999999:1-1"} {
		if got, err := ParseEVR(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseEVR(%q) = %+v, %v; want an error", bad, got, err)
		}
	}
}

func TestParseNEVR(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   NEVR
		string string // String() of the result
	}{
		{"bash-5.2.37-3.fc44", NEVR{"bash", EVR{0, "5.2.37", "3.fc44"}}, "bash-5.2.37-3.fc44"},
		{"bash-0:5.2.37-3.fc44", NEVR{"bash", EVR{0, "5.2.37", "3.fc44"}}, "bash-5.2.37-3.fc44"},
		{"perl-Foo-Bar-4:1.0-1.fc44", NEVR{"perl-Foo-Bar", EVR{4, "1.0", "1.fc44"}}, "perl-Foo-Bar-4:1.0-1.fc44"},
		{"4:perl-Foo-Bar-1.0-1.fc44", NEVR{"perl-Foo-Bar", EVR{4, "1.0", "1.fc44"}}, "perl-Foo-Bar-4:1.0-1.fc44"},
		{"python3.14-3.14.0~rc3-1.fc44", NEVR{"python3.14", EVR{0, "3.14.0~rc3", "1.fc44"}}, "python3.14-3.14.0~rc3-1.fc44"},
		{"vim-2:9.1.1^20261122git1-1.fc44", NEVR{"vim", EVR{2, "9.1.1^20261122git1", "1.fc44"}}, "vim-2:9.1.1^20261122git1-1.fc44"},
	} {
		got, err := ParseNEVR(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseNEVR(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.string {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tt.string)
		}
		if again, err := ParseNEVR(got.String()); err != nil || again != got {
			t.Errorf("ParseNEVR(%q) = %+v, %v: String does not round-trip", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "bash", "bash-1", "-1-2", "bash--2", "bash-1-", "bash-x:1-2", "a:b:bash-1-2", "x:bash-1-2", "bash-:1-2"} {
		if got, err := ParseNEVR(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseNEVR(%q) = %+v, %v; want an error", bad, got, err)
		}
	}
}

func TestParseNEVRA(t *testing.T) {
	for in, want := range map[string]NEVRA{
		"bash-0:4.3.30-2.fc21.x86_64":          {"bash", 0, "4.3.30", "2.fc21", "x86_64"},
		"perl-Foo-Bar-4:1.0-1.fc44.noarch":     {"perl-Foo-Bar", 4, "1.0", "1.fc44", "noarch"},
		"kernel-core-6.18.0-0.rc6.50.fc44.src": {"kernel-core", 0, "6.18.0", "0.rc6.50.fc44", "src"},
		"libfoo-1:2.3-4.fc44.src":              {"libfoo", 1, "2.3", "4.fc44", "src"},
		"1:libfoo-2.3-4.fc44.src":              {"libfoo", 1, "2.3", "4.fc44", "src"},
	} {
		got, err := ParseNEVRA(in)
		if err != nil || got != want {
			t.Errorf("ParseNEVRA(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "bash", "bash.x86_64", "bash-1.x86_64", "bash-x:1-2.x86_64", "bash-1-2."} {
		if _, err := ParseNEVRA(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseNEVRA(%q) err %v", bad, err)
		}
	}
	n, _ := ParseNEVRA("libfoo-1:2.3-4.fc44.src")
	if got := n.NEVR().String(); got != "libfoo-1:2.3-4.fc44" {
		t.Errorf("NEVR() = %q", got)
	}
}

func TestEVRText(t *testing.T) {
	e := EVR{Epoch: 1, Version: "2.3", Release: "4.fc44"}
	b, _ := e.MarshalText()
	var back EVR
	if err := back.UnmarshalText(b); err != nil || back != e || string(b) != "1:2.3-4.fc44" {
		t.Errorf("EVR text %q -> %+v, %v", b, back, err)
	}
	n := NEVR{Name: "perl-Foo", EVR: e}
	b, _ = n.MarshalText()
	var nb NEVR
	if err := nb.UnmarshalText(b); err != nil || nb != n {
		t.Errorf("NEVR text %q -> %+v, %v", b, nb, err)
	}
	if err := nb.UnmarshalText([]byte("nope")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("NEVR text of nonsense: %v", err)
	}
	// The zero values are written as "" and read back from it, so a stored
	// report with one reads back (a crasher of FuzzParseReport); "" stays
	// no EVR to ParseEVR.
	for _, zero := range []interface {
		MarshalText() ([]byte, error)
	}{EVR{}, NEVR{}} {
		if b, err := zero.MarshalText(); err != nil || len(b) != 0 {
			t.Errorf("%T{} written as %q, %v", zero, b, err)
		}
	}
	back, nb = EVR{Version: "x"}, NEVR{Name: "x"}
	if err := back.UnmarshalText(nil); err != nil || back != (EVR{}) {
		t.Errorf(`EVR from "": %+v, %v`, back, err)
	}
	if err := nb.UnmarshalText(nil); err != nil || nb != (NEVR{}) {
		t.Errorf(`NEVR from "": %+v, %v`, nb, err)
	}
	if _, err := ParseEVR(""); !errors.Is(err, ErrInvalidInput) {
		t.Errorf(`ParseEVR(""): %v`, err)
	}
}
