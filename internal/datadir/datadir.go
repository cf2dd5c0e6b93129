// Package datadir makes one process the owner of a data directory: an
// exclusive flock(2) on a lock file in it, naming the owner for whoever
// finds it taken. The kernel drops the lock when the process dies, however
// it dies, so a kill -9 leaves nothing to clean up.
package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockFile is the file in a data directory whose lock says which process
// owns the directory.
const LockFile = "composeci.lock"

// InUseError says that another process owns the data directory.
type InUseError struct {
	Dir string
	// Holder describes the owner as it wrote itself into the lock file
	// ("composeci listen, pid 4242 on host qa1, since …"); "" if unknown.
	Holder string
}

func (e *InUseError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "another process"
	}
	return fmt.Sprintf("data directory %s is in use by %s; stop it or give another --data", e.Dir, holder)
}

// Lock is an exclusive flock(2) on a lock file of a data directory.
type Lock struct {
	f *os.File
}

// Take locks <dir>/<file> (file "" is LockFile), creating the directory if
// needed, and writes who into it; or returns an *InUseError at once, naming
// the owner as it wrote itself in.
func Take(dir, file, who string) (*Lock, error) {
	if file == "" {
		file = LockFile
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, file)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			return nil, &InUseError{Dir: dir, Holder: strings.TrimSpace(string(b))}
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	note := fmt.Sprintf("%s, pid %d on host %s, since %s\n", who, os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(note), 0)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing drops the flock
	l.f = nil
	return err
}

// Wait takes the lock like Take, but waits (polling) while another holder
// has it, until ctx ends: for short critical sections that several
// processes take in turn.
func Wait(ctx context.Context, dir, file, who string) (*Lock, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		l, err := Take(dir, file, who)
		var inUse *InUseError
		if !errors.As(err, &inUse) {
			return l, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for %s: %w", filepath.Join(dir, file), ctx.Err())
		case <-t.C:
		}
	}
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory, synced, renamed over path, and the directory synced, so a
// reader sees the old content or the new, never half of one.
func WriteAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
