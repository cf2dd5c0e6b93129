package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTakeIsExclusiveAndNamesTheOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := Take(dir, "", "composeci listen")
	if err != nil {
		t.Fatal(err)
	}
	// A second Take opens the file afresh, as another process would: flock
	// locks belong to open files, so it conflicts even in this process.
	_, err = Take(dir, "", "composeci listen")
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second Take = %v, want an *InUseError", err)
	}
	msg := err.Error()
	for _, want := range []string{dir, "composeci listen, pid " + itoa(os.Getpid()), "--data"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is more than one line", msg)
	}
	// Another lock file of the same directory is another lock.
	other, err := Take(dir, "demo.lock", "composeci demo")
	if err != nil {
		t.Fatalf("a second lock file: %v", err)
	}
	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Take(dir, "", "composeci listen")
	if err != nil {
		t.Fatalf("Take after Release: %v", err)
	}
	_ = again.Release()
	_ = again.Release() // twice is harmless
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
