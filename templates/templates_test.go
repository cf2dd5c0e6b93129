package templates

import (
	"io/fs"
	"testing"
	"time"
)

func TestTemplatesParse(t *testing.T) {
	tt, err := Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ReportText, DoomedText} {
		if tt.Lookup(name) == nil {
			t.Errorf("no %s among the text templates", name)
		}
	}
	ht, err := HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ReportHTML, DoomedHTML} {
		if ht.Lookup(name) == nil {
			t.Errorf("no %s among the HTML templates", name)
		}
	}
	names, err := fs.Glob(FS(), "*.tmpl")
	if err != nil || len(names) != 4 {
		t.Errorf("embedded templates = %v, %v", names, err)
	}
}

func TestFuncs(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Plural(1, "image", "images"), "1 image"},
		{Plural(0, "image", "images"), "0 images"},
		{Plural(3, "image", "images"), "3 images"},
		{Duration(0), "0s"},
		{Duration(59), "59s"},
		{Duration(61), "1m 01s"},
		{Duration(3600 + 5*60 + 9), "1h 05m"},
		{Duration(30 * 3600), "30h 00m"},
		{Size(512), "512 B"},
		{Size(1536), "1.5 KiB"},
		{Size(3 << 30), "3.0 GiB"},
		{Percent(0.5), "+50.0%"},
		{Percent(-0.125), "-12.5%"},
		{Clean("a\nb\r\tc\x7fd\u0085e"), "a b  c d e"},
		{Timestamp(time.Time{}), "-"},
		{Timestamp(time.Date(2026, 11, 22, 18, 0, 0, 0, time.FixedZone("x", 3600))), "2026-11-22T17:00:00Z"},
		{PadRight(6, "ab"), "ab    "},
		{PadRight(1, "abc"), "abc"},
		{Wrap(20, 4, ", ", "aa, bb, cc, dd, ee, ff"), "aa, bb, cc, dd,\n    ee, ff"},
		{Wrap(20, 4, " ", "short"), "short"},
		{Wrap(12, 0, " ", "see https://example.org/long/url now"), "see\nhttps://example.org/long/url\nnow"},
		{Wrap(10, 2, ", ", "1 soft failure, 2 x"), "1 soft failure,\n  2 x"},
		{Sentence("none"), "None."},
		{Sentence("élan"), "Élan."},
		{Sentence(""), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
