package fedfind

import (
	"testing"

	"github.com/composeci/composeci/fedfind/koji"
)

// TestTaskOfCompose matches Koji image tasks to the compose they build, in
// the shapes the hub stores: kiwiBuild's opts without a version (as
// Fedora's kiwi tasks are), with one, and the positional version of
// livemedia.
func TestTaskOfCompose(t *testing.T) {
	const release = "20261122.n.0"
	rawhide, err := ParseComposeID("Fedora-Rawhide-20261122.n.0")
	if err != nil {
		t.Fatal(err)
	}
	branched, err := ParseComposeID("Fedora-44-20261122.n.0")
	if err != nil {
		t.Fatal(err)
	}
	kiwi := func(opts map[string]any) koji.Task {
		return koji.Task{Method: koji.MethodKiwiBuild, Request: []any{"f44", []any{"x86_64", "aarch64"},
			"git+https://pagure.example.invalid/fedora-kiwi-descriptions.git#0123abc", "teams/cloud/cloud.kiwi", opts}}
	}
	repo := func(id string) []any {
		return []any{"https://kojipkgs.example.invalid/compose/" + id + "/compose/Everything/$arch/os"}
	}
	tests := []struct {
		name              string
		task              koji.Task
		rawhide, branched bool
	}{
		{"kiwi, no version, repos naming no compose: the release alone",
			kiwi(map[string]any{"profile": "Cloud-Base-Generic", "release": release, "repos": []any{"https://example.invalid/repo/$arch/os"}, "use_buildroot_repo": true}),
			true, true},
		{"kiwi, no version, repos naming Rawhide's compose",
			kiwi(map[string]any{"release": release, "repos": repo("Fedora-Rawhide-20261122.n.0")}), true, false},
		{"kiwi, no version, repos naming Branched's compose",
			kiwi(map[string]any{"release": release, "repos": repo("Fedora-44-20261122.n.0")}), false, true},
		{"kiwi, no version, both named: its own wins",
			kiwi(map[string]any{"release": release, "repos": append(repo("Fedora-44-20261122.n.0"), repo("Fedora-Rawhide-20261122.n.0")...)}), true, true},
		{"kiwi, a version of null: none",
			kiwi(map[string]any{"release": release, "version": nil, "repos": repo("Fedora-Rawhide-20261122.n.0")}), true, false},
		{"kiwi with version Rawhide", kiwi(map[string]any{"release": release, "version": "Rawhide"}), true, false},
		{"kiwi with version 44, repos naming Rawhide: the version decides",
			kiwi(map[string]any{"release": release, "version": "44", "repos": repo("Fedora-Rawhide-20261122.n.0")}), false, true},
		{"kiwi of another day", kiwi(map[string]any{"release": "20261121.n.0", "repos": repo("Fedora-Rawhide-20261121.n.0")}), false, false},
		{"kiwi without a release", kiwi(map[string]any{"repos": repo("Fedora-Rawhide-20261122.n.0")}), false, false},
		{"livemedia, version positional", koji.Task{Method: koji.MethodLiveMedia, Request: []any{"Fedora-KDE-Live", "44", []any{"x86_64"}, "f44", "fedora-live-kde.ks",
			map[string]any{"release": release, "install_tree_url": "https://kojipkgs.example.invalid/compose/Fedora-Rawhide-20261122.n.0/compose/Everything/$arch/os"}}},
			false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := taskOfCompose(tt.task, rawhide, release, "Rawhide"); got != tt.rawhide {
				t.Errorf("of Rawhide's compose: %v, want %v", got, tt.rawhide)
			}
			if got := taskOfCompose(tt.task, branched, release, "44"); got != tt.branched {
				t.Errorf("of Branched's compose: %v, want %v", got, tt.branched)
			}
		})
	}
}
