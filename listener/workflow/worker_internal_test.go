package workflow

import (
	"fmt"
	"os"
	"testing"
)

func TestDeadHolder(t *testing.T) {
	host, _ := os.Hostname()
	alive := func(pid int) bool { return pid == 4242 }
	for _, tc := range []struct {
		lease string
		dead  bool
	}{
		{fmt.Sprintf("Fedora-Rawhide-20261122.n.0/1/schedule/1@%s/999999/17#3", host), true},
		{fmt.Sprintf("Fedora-Rawhide-20261122.n.0/1/schedule/1@%s/4242/17#3", host), false},            // alive
		{fmt.Sprintf("Fedora-Rawhide-20261122.n.0/1/schedule/1@%s/%d/17#3", host, os.Getpid()), false}, // this process
		{"Fedora-Rawhide-20261122.n.0/1/schedule/1@another-host.example.org/999999/17#3", false},
		{"garbage", false},
		{fmt.Sprintf("x@%s/notapid/1#1", host), false},
		{fmt.Sprintf("x@%s/0/1#1", host), false},
	} {
		if got := deadHolder(tc.lease, alive); got != tc.dead {
			t.Errorf("deadHolder(%q) = %v, want %v", tc.lease, got, tc.dead)
		}
	}
	if !processAlive(os.Getpid()) {
		t.Error("this process is not alive")
	}
}
