// Package templates holds the text and HTML templates of the compose check
// report, embedded in the binary so a deployment needs no files beside it.
// The data they are executed with is the reports package's view of a
// report; the functions they may call are Funcs.
//
// Text templates end in .txt.tmpl and are parsed with text/template; HTML
// templates end in .html.tmpl and are parsed with html/template, which
// escapes everything a compose or an openQA job can put in them.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed *.tmpl
var files embed.FS

// FS returns the embedded template files.
func FS() fs.FS { return files }

// The names of the report templates, to execute: the compose check report,
// and the short report of a compose that ended without a result.
const (
	ReportText = "report.txt.tmpl"
	ReportHTML = "report.html.tmpl"
	DoomedText = "doomed.txt.tmpl"
	DoomedHTML = "doomed.html.tmpl"
)

// Text parses every text template (*.txt.tmpl) with Funcs.
func Text() (*texttemplate.Template, error) {
	t, err := texttemplate.New("").Funcs(Funcs()).ParseFS(files, "*.txt.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parsing text templates: %w", err)
	}
	return t, nil
}

// HTML parses every HTML template (*.html.tmpl) with Funcs.
func HTML() (*htmltemplate.Template, error) {
	t, err := htmltemplate.New("").Funcs(Funcs()).ParseFS(files, "*.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parsing HTML templates: %w", err)
	}
	return t, nil
}

// Funcs returns the functions the templates call. A fresh map each time: a
// caller may add to it.
func Funcs() map[string]any {
	return map[string]any{
		"plural":     Plural,
		"dur":        Duration,
		"size":       Size,
		"pct":        Percent,
		"clean":      Clean,
		"join":       strings.Join,
		"ts":         Timestamp,
		"padr":       PadRight,
		"lower":      strings.ToLower,
		"nonzero":    func(n int) bool { return n != 0 },
		"wrap":       Wrap,
		"sentence":   Sentence,
		"splitAfter": strings.SplitAfter,
	}
}

// Plural says "1 image" or "2 images".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Duration writes seconds as people read a job's run time: "1h 05m",
// "25m 10s", "40s".
func Duration(seconds int64) string {
	d := time.Duration(seconds) * time.Second
	h, m, s := int64(d.Hours()), int64(d.Minutes())%60, int64(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// Size writes a byte count in binary units: "3.0 GiB", "512.0 MiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Percent writes a relative change: 0.5 is "+50.0%".
func Percent(f float64) string { return fmt.Sprintf("%+.1f%%", f*100) }

// Clean replaces control characters with spaces, so that a test name or
// status holding a newline cannot forge lines of a plain-text report.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// Timestamp writes t in UTC as RFC 3339, or "-" for the zero time.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// PadRight pads s with spaces to width runes, for aligned text columns.
func PadRight(width int, s string) string {
	n := len([]rune(s))
	if n >= width {
		return s
	}
	return s + strings.Repeat(" ", width-n)
}

// Wrap breaks s into lines of at most width runes, only after a
// separator (sep: " " between words, ", " between the items of a list), for
// a text whose first line starts at column indent: the lines after the first
// are indented by as many spaces, so that they line up under the first. A
// piece longer than a line (a URL) is never broken.
func Wrap(width, indent int, sep, s string) string {
	var out []byte
	col := indent
	for i, piece := range strings.SplitAfter(s, sep) {
		if i > 0 && col+utf8.RuneCountInString(strings.TrimRight(piece, " ")) > width {
			out = append(bytes.TrimRight(out, " "), '\n')
			out = append(out, strings.Repeat(" ", indent)...)
			col = indent
		}
		out = append(out, piece...)
		col += utf8.RuneCountInString(piece)
	}
	return string(out)
}

// Sentence makes a phrase a sentence: first letter upper case, a full
// stop at the end ("none" is "None.").
func Sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:] + "."
}
